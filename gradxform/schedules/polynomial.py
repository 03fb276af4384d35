"""Schedules that move polynomially between two values: constant, polynomial, linear."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from gradxform.hyper import is_concrete
from gradxform.schedules.base import (
    Schedule,
    as_hyper,
    between,
    check_number,
    check_steps,
    concrete_zero,
    steps_since,
)


def constant_schedule(value: Any) -> Schedule:
    r"""The same value at every step: $v(t) = v$.

    Args:
      value: $v$, a number or a traced scalar.

    Returns:
      A `Schedule`, `count -> value`.
    """
    check_number("constant_schedule", "value", value)

    def schedule(step):
        return jnp.broadcast_to(as_hyper(value), jnp.shape(step)) if jnp.ndim(step) else as_hyper(value)

    return schedule


def polynomial_schedule(
    init_value: Any, end_value: Any, power: Any, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    r"""Polynomial transition from `init_value` $I$ to `end_value` $E$.

    $$v(t) = (I - E)\left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^{P} + E$$

    with $T$ = `transition_steps`, $B$ = `transition_begin`,
    $P$ = `power`: $I$ until step $B$, $E$ from step
    $B + T$ on. `transition_steps=0` holds $I$ forever (as optax).

    Args:
      init_value: $I$.
      end_value: $E$.
      power: $P$.
      transition_steps: $T$ (`0` holds $I$ forever).
      transition_begin: $B \ge 0$.

    Returns:
      A `Schedule`.
    """
    who = "polynomial_schedule"
    check_number(who, "init_value", init_value)
    check_number(who, "end_value", end_value)
    check_number(who, "power", power)
    check_steps(who, "transition_steps", transition_steps, positive=False)
    check_steps(who, "transition_begin", transition_begin, positive=False)
    if concrete_zero(transition_steps):
        return constant_schedule(init_value)
    # A whole concrete power is taken by repeated multiplication (as optax does), others by pow.
    whole = is_concrete(power) and float(np.asarray(power)).is_integer()
    p = int(np.asarray(power)) if whole else None

    def schedule(step):
        t = jnp.clip(steps_since(step, transition_begin), 0, as_hyper(transition_steps))
        frac = (as_hyper(transition_steps) - t) / as_hyper(transition_steps)  # exactly 0 from B + T on
        v = (as_hyper(init_value) - as_hyper(end_value)) * (frac**p if whole else frac ** as_hyper(power)) + as_hyper(
            end_value
        )
        return between(t, v, init_value, end_value, transition_steps)

    return schedule


def linear_schedule(init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0) -> Schedule:
    r"""Linear transition: $v(t) = I + \frac{\min(\max(t-B,0),T)}{T}(E - I)$.

    `init_value` $I$ until step `transition_begin` $B$,
    `end_value` $E$ from step $B + T$ on. Momentum "initialized at 0.5
    and gradually annealed to 0.9", a common recipe, is
    `linear_schedule(0.5, 0.9, T)`.

    Args:
      init_value: $I$.
      end_value: $E$.
      transition_steps: $T$ (`0` holds $I$ forever).
      transition_begin: $B \ge 0$.

    Returns:
      A `Schedule`.
    """
    who = "linear_schedule"
    check_number(who, "init_value", init_value)
    check_number(who, "end_value", end_value)
    check_steps(who, "transition_steps", transition_steps, positive=False)
    check_steps(who, "transition_begin", transition_begin, positive=False)
    if concrete_zero(transition_steps):
        return constant_schedule(init_value)

    def schedule(step):
        t = jnp.clip(steps_since(step, transition_begin), 0, as_hyper(transition_steps))
        T = as_hyper(transition_steps)  # a weighted mean of the ends, weights exact: no cancellation near either end
        v = as_hyper(init_value) * ((T - t) / T) + as_hyper(end_value) * (t / T)
        return between(t, v, init_value, end_value, transition_steps)

    return schedule
