"""A linear warmup followed by a constant, a cosine decay or an exponential decay."""

from __future__ import annotations

from typing import Any

from gradxform.hyper import is_concrete
from gradxform.schedules.base import Schedule, check_number, check_steps, concrete_zero
from gradxform.schedules.decay import cosine_decay_schedule, exponential_decay
from gradxform.schedules.piecewise import join_schedules
from gradxform.schedules.polynomial import linear_schedule


def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: int) -> Schedule:
    r"""Linear warmup from `init_value` to `peak_value` over `warmup_steps`, then constant.

    Args:
      init_value: the value at step 0.
      peak_value: the value from step `warmup_steps` on.
      warmup_steps: the length of the linear warmup.

    Returns:
      A `Schedule`.
    """
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Linear warmup to `peak_value`, then cosine decay to `end_value`.

    $$
    v(t) = \begin{cases} I + \frac{t}{W}(P - I) & t < W \\
    E + (P - E)\left(\tfrac12\left(1+\cos\frac{\pi\min(t-W,\,D-W)}{D-W}\right)\right)^{p} & t \ge W
    \end{cases}
    $$

    `decay_steps` $D$ counts the warmup too (as optax), so
    $D > W$.

    Args:
      init_value: $I$.
      peak_value: $P$.
      warmup_steps: $W$.
      decay_steps: $D > W$, the warmup included.
      end_value: $E$.
      exponent: $p$.

    Returns:
      A `Schedule`.
    """
    who = "warmup_cosine_decay_schedule"
    check_number(who, "peak_value", peak_value)
    check_number(who, "end_value", end_value)
    check_steps(who, "warmup_steps", warmup_steps, positive=False)
    check_steps(who, "decay_steps", decay_steps, positive=True)
    if is_concrete(warmup_steps) and is_concrete(decay_steps) and not decay_steps > warmup_steps:
        raise ValueError(
            f"{who}: decay_steps={decay_steps} counts the warmup too, so it must exceed warmup_steps={warmup_steps}."
        )
    alpha = 0.0 if concrete_zero(peak_value) else end_value / peak_value
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any | None = None,
) -> Schedule:
    r"""Linear warmup to `peak_value` over `warmup_steps`, then `exponential_decay` from it.

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warmup.
      warmup_steps: the length of the linear warmup.
      transition_steps: as in `exponential_decay`.
      decay_rate: as in `exponential_decay`.
      transition_begin: as in `exponential_decay`, counted after the warmup.
      staircase: as in `exponential_decay`.
      end_value: as in `exponential_decay`.

    Returns:
      A `Schedule`.
    """
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            exponential_decay(peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value),
        ],
        [warmup_steps],
    )
