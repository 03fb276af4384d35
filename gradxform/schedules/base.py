"""What every schedule shares: its dtype, the step as a number, argument checks, exact transition ends."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.hyper import Schedule, is_concrete, validate
from gradxform.numerics import hyper_dtype

__all__ = [
    "Schedule",
    "as_hyper",
    "between",
    "check_number",
    "check_steps",
    "concrete_zero",
    "reached",
    "step_value",
    "steps_since",
]


def as_hyper(x: Any) -> jax.Array:
    """`x` as a scalar of the hyperparameter dtype."""
    return jnp.asarray(x).astype(hyper_dtype())


def steps_since(step: Any, begin: Any) -> jax.Array:
    """`step - begin` as a float of the hyperparameter dtype, the difference taken exactly.

    For an integer step and a concrete whole `begin` the subtraction is done in
    integers, so a transition that begins at step 10**8 moves one step at a time
    (in float32 the step itself is exact only up to 2**24, and `1e8 + 1` is `1e8`).
    """
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.integer) and is_concrete(begin) and not callable(begin):
        return (step.astype(jnp.int64 if step.dtype == jnp.int64 else jnp.int32) - int(begin)).astype(hyper_dtype())
    return step_value(step) - as_hyper(begin)


def reached(step: Any, boundary: Any) -> jax.Array:
    """`step >= boundary`, compared in integers for an integer step (exact past 2**24)."""
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.integer) and is_concrete(boundary):
        return step >= int(boundary)
    return step_value(step) >= as_hyper(boundary)


def half_cosine(done: jax.Array, total: Any) -> jax.Array:
    """$\\tfrac12(1 + \\cos(\\pi\\, d / T))$ for `done` $= d \\in [0, T]$, accurate to a few ulp everywhere.

    Written as $\\cos^2(\\tfrac{\\pi}{2} d/T)$ for $d \\le T/2$ and $\\sin^2(\\tfrac{\\pi}{2}(T - d)/T)$
    after, so that neither the sum $1 + \\cos$ nor the cosine near $\\pi/2$ loses digits where the value
    is small (the end of a decay).
    """
    total = as_hyper(total)
    first = jnp.cos(jnp.pi / 2 * (done / total)) ** 2
    second = jnp.sin(jnp.pi / 2 * ((total - done) / total)) ** 2
    return jnp.where(done <= total / 2, first, second)


def step_value(step: Any) -> jax.Array:
    """The step count as a float of the hyperparameter dtype (exact up to `2**24` in float32)."""
    return as_hyper(step)


def check_steps(who: str, name: str, value: Any, positive: bool) -> Any:
    """Validates a step-count argument: a non-negative (or positive) integer, if concrete."""
    if callable(value):
        raise TypeError(f"{who}: {name} is a number of steps; it cannot be a schedule.")
    validate(who, name, value, 0.0, low_open=positive)
    if is_concrete(value) and float(np.asarray(value)) != int(np.asarray(value)):
        raise ValueError(f"{who}: {name}={value!r} must be a whole number of steps.")
    return value


def check_number(who: str, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    if callable(value):
        raise TypeError(f"{who}: {name} must be a number or a JAX scalar, not a schedule.")
    return validate(who, name, value, *args, **kwargs)


def between(t: jax.Array, v: jax.Array, a: Any, b: Any, steps: Any) -> jax.Array:
    """A transition's value `v` at `t in [0, steps]`: exactly `a` at 0, `b` at `steps`, never beyond.

    Under `jit` XLA may fold constants (`c * (t / T)` into `t * (c / T)`),
    which moves a value by an ulp; this keeps a transition's ends exact and
    stops it overshooting them (e.g. a learning rate of `-3e-9` where it
    should be `0`).
    """
    a, b = as_hyper(a), as_hyper(b)
    v = jnp.clip(v, jnp.minimum(a, b), jnp.maximum(a, b))
    return jnp.where(t <= 0, a, jnp.where(t >= as_hyper(steps), b, v))


def concrete_zero(value: Any) -> bool:
    """True for a concrete zero (a number or a concrete array): a step count that makes a transition empty."""
    return is_concrete(value) and float(np.asarray(value)) == 0.0
