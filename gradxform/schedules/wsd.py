"""Warmup-stable-decay: the schedule of current large-model recipes."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradxform.errors import lead
from gradxform.schedules.base import Schedule, as_hyper, check_number, check_steps, half_cosine, steps_since

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def warmup_stable_decay_schedule(
    peak_value: Any,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    init_value: Any = 0.0,
    decay_shape: str = "linear",
) -> Schedule:
    r"""Warmup, a long stable phase at the peak, then a short decay (WSD; Hu et al. 2024, Hägele et al. 2024).

    $$v(t) = \begin{cases}
    I + (P - I)\,t/W & t < W \\
    P & W \le t < W + S \\
    E + (P - E)\,\phi\bigl((t - W - S)/D\bigr) & W + S \le t < W + S + D \\
    E & \text{after}
    \end{cases}$$

    with the decay shape $\phi(p) = 1 - p$ (`"linear"`), $\tfrac12(1 + \cos \pi p)$
    (`"cosine"`) or $1 - \sqrt{p}$ (`"1-sqrt"`, the shape Hägele et al. found best).
    Because the stable phase is flat, a run can be stopped and decayed from any
    checkpoint of it.

    Args:
      peak_value: $P$.
      warmup_steps: $W \ge 0$.
      stable_steps: $S \ge 0$.
      decay_steps: $D \ge 0$.
      end_value: $E$.
      init_value: $I$.
      decay_shape: `"linear"`, `"cosine"` or `"1-sqrt"`.
    """
    who = "warmup_stable_decay_schedule"
    if decay_shape not in DECAY_SHAPES:
        raise ValueError(f"{lead(who)}: decay_shape={decay_shape!r} must be one of {', '.join(DECAY_SHAPES)}.")
    for name, v in (("peak_value", peak_value), ("end_value", end_value), ("init_value", init_value)):
        check_number(who, name, v)
    for name, v in (("warmup_steps", warmup_steps), ("stable_steps", stable_steps), ("decay_steps", decay_steps)):
        check_steps(who, name, v, positive=False)
    w, s, d = int(warmup_steps), int(stable_steps), int(decay_steps)

    def schedule(step):
        p_w = jnp.clip(steps_since(step, 0) / max(w, 1), 0, 1)
        p_d = jnp.clip(steps_since(step, w + s) / max(d, 1), 0, 1)
        if decay_shape == "linear":
            phi = 1 - p_d
        elif decay_shape == "cosine":
            phi = half_cosine(p_d * max(d, 1), max(d, 1))
        else:
            phi = 1 - jnp.sqrt(p_d)
        i, pk, e = as_hyper(init_value), as_hyper(peak_value), as_hyper(end_value)
        warm = i + (pk - i) * p_w
        decay = e + (pk - e) * phi
        return jnp.where(steps_since(step, w) < 0, warm, jnp.where(steps_since(step, w + s) < 0, pk, decay))

    return schedule
