"""Decays: exponential, inverse-time, cosine."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from gradxform.schedules.base import (
    Schedule,
    as_hyper,
    check_number,
    check_steps,
    concrete_zero,
    half_cosine,
    step_value,
    steps_since,
)
from gradxform.schedules.polynomial import constant_schedule


def exponential_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any | None = None,
) -> Schedule:
    r"""Exponential decay: $v(t) = I\,r^{(t - B)/T}$ for $t > B$, $I$ before.

    With `staircase` the exponent is $\lfloor (t-B)/T \rfloor$.
    `end_value` bounds the decay (a floor when $r < 1$, a ceiling when
    $r > 1$). `decay_rate` $r > 0$; `transition_steps`
    $T = 0$ holds $I$ forever (as optax). Keras'
    `ExponentialDecay(I, T, r, staircase)` is this with $B = 0$.

    Args:
      init_value: $I$.
      transition_steps: $T \ge 0$.
      decay_rate: $r > 0$.
      transition_begin: $B \ge 0$, steps before the decay starts.
      staircase: decay in whole steps of $T$.
      end_value: a bound on the decay, or `None`.

    Returns:
      A `Schedule`.
    """
    who = "exponential_decay"
    check_number(who, "init_value", init_value)
    check_steps(who, "transition_steps", transition_steps, positive=False)
    check_number(who, "decay_rate", decay_rate, 0.0, low_open=True)
    check_steps(who, "transition_begin", transition_begin, positive=False)
    check_number(who, "end_value", end_value, allow_none=True)
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"{who}: staircase must be True or False, got {staircase!r}.")
    if concrete_zero(transition_steps):
        return constant_schedule(init_value)

    def schedule(step):
        t = steps_since(step, transition_begin)
        p = t / as_hyper(transition_steps)
        if staircase:
            p = jnp.floor(p)
        v = jnp.where(t <= 0, as_hyper(init_value), as_hyper(init_value) * as_hyper(decay_rate) ** p)
        if end_value is not None:
            e = as_hyper(end_value)
            v = jnp.where(as_hyper(decay_rate) < 1, jnp.maximum(v, e), jnp.minimum(v, e))
        return v

    return schedule


def inverse_time_decay(init_value: Any, decay_rate: Any, decay_steps: int, staircase: bool = False) -> Schedule:
    r"""Inverse-time decay (the "learning rate decay" of Andrew Ng's deep-learning course; Keras' `InverseTimeDecay`).

    $$
    v(t) = \frac{v_0}{1 + r\,t / T}
    \qquad\text{or, with staircase,}\qquad
    v(t) = \frac{v_0}{1 + r\,\lfloor t / T \rfloor}
    $$

    with $v_0$ = `init_value`, $r$ = `decay_rate`
    $\ge 0$ and $T$ = `decay_steps` $> 0$. The course counts
    epochs: $\alpha = \alpha_0 / (1 + \text{decay_rate}\cdot\text{epoch_num})$
    is `decay_steps=steps_per_epoch` with `staircase=True`, and its
    "scheduled learning rate decay" $\alpha_0 / (1 + \text{decay_rate}
    \cdot \lfloor \text{epoch_num}/\text{time_interval} \rfloor)$ is
    `decay_steps=steps_per_epoch * time_interval` with `staircase=True`.
    The first update (step 0) gets $v_0$.

    Args:
      init_value: $v_0$.
      decay_rate: $r \ge 0$.
      decay_steps: $T > 0$.
      staircase: decay in whole steps of $T$.

    Returns:
      A `Schedule`.
    """
    who = "inverse_time_decay"
    check_number(who, "init_value", init_value)
    check_number(who, "decay_rate", decay_rate, 0.0)
    check_steps(who, "decay_steps", decay_steps, positive=True)
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"{who}: staircase must be True or False, got {staircase!r}.")

    def schedule(step):
        p = step_value(step) / as_hyper(decay_steps)
        if staircase:
            p = jnp.floor(p)
        return as_hyper(init_value) / (1 + as_hyper(decay_rate) * p)

    return schedule


def cosine_decay_schedule(init_value: Any, decay_steps: int, alpha: Any = 0.0, exponent: Any = 1.0) -> Schedule:
    r"""Cosine decay (Loshchilov & Hutter's SGDR without restarts).

    $$
    v(t) = I\left[(1-\alpha)\left(\tfrac12\left(1 + \cos\frac{\pi \min(t, T)}{T}\right)\right)^{p}
    + \alpha\right]
    $$

    `init_value` $I$, `decay_steps` $T > 0$, `alpha` the
    final fraction of $I$, `exponent` $p$. Held at
    $\alpha I$ after step $T$.

    Args:
      init_value: $I$.
      decay_steps: $T > 0$.
      alpha: the final value as a fraction of $I$.
      exponent: $p$.

    Returns:
      A `Schedule`.
    """
    who = "cosine_decay_schedule"
    check_number(who, "init_value", init_value)
    check_steps(who, "decay_steps", decay_steps, positive=True)
    check_number(who, "alpha", alpha)
    check_number(who, "exponent", exponent)

    def schedule(step):
        t = jnp.minimum(step_value(step), as_hyper(decay_steps))
        cosine = half_cosine(t, decay_steps)
        return as_hyper(init_value) * ((1 - as_hyper(alpha)) * cosine ** as_hyper(exponent) + as_hyper(alpha))

    return schedule
