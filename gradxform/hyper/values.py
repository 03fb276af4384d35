"""Hyperparameters as values: a number, a JAX scalar, or a schedule `step -> value`.

Every block resolves its hyperparameters with `resolve` and nowhere else: any of
the three forms becomes a scalar array of `gradxform.numerics.hyper_dtype()` for the
optimizer's step count (the count *before* the update, so a schedule sees `0` on
the first update, as in optax and Keras).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.errors import lead
from gradxform.numerics.dtypes import hyper_dtype

Schedule = Callable[[jax.Array], Any]
Hyperparameter = float | int | jax.Array | np.ndarray | Schedule


def is_concrete(value: Any) -> bool:
    """True for a Python number or an array with a known value (not a tracer, not a schedule)."""
    return not callable(value) and not isinstance(value, jax.core.Tracer)


def is_schedule(value: Any) -> bool:
    """True for a schedule: a callable that is not a type."""
    return callable(value) and not isinstance(value, type)


def is_zero(value: Any) -> bool:
    """True for a Python or NumPy number equal to zero: a value that may choose a chain's structure.

    JAX arrays never count as zero (a live hyperparameter stored as an array can be
    set to any value later, so it must get the block a non-zero value would), nor
    do schedules.
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, jax.Array) or is_schedule(value):
        return False
    return isinstance(value, (int, float, np.number, np.ndarray)) and float(np.asarray(value)) == 0.0


def resolve(value: Hyperparameter, count: jax.Array | None, name: str = "hyperparameter") -> jax.Array:
    """The hyperparameter's value at step `count` as a scalar of `hyper_dtype()`.

    Args:
      value: a number, a JAX scalar or a schedule.
      count: the optimizer's step count before this update; needed for schedules only.
      name: the hyperparameter's name, for error messages.
    """
    if is_schedule(value):
        if count is None:
            raise ValueError(f"{lead('resolve')}: {name} is a schedule but no step count was given.")
        out = value(count)
        if jnp.shape(out) != ():
            raise ValueError(
                f"{lead('resolve')}: the schedule for {name} returned shape {list(jnp.shape(out))}; "
                "a schedule must return a scalar."
            )
    else:
        out = value
        if jnp.shape(out) != ():  # a traced value is not validated when built; its shape is checked here
            raise ValueError(
                f"{lead('resolve')}: {name} must be a scalar, got shape {list(jnp.shape(out))} "
                "(a per-element hyperparameter would broadcast into the updates)."
            )
    if jnp.iscomplexobj(out):
        raise TypeError(f"{lead('resolve')}: {name} must be real, got a complex {jnp.result_type(out)} value.")
    return jnp.asarray(out).astype(hyper_dtype())
