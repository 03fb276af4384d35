"""Hyperparameters as values: a number, a JAX scalar, or a schedule ``step -> value``.

Every block resolves its hyperparameters here and nowhere else:

* :func:`validate` checks a *concrete* value when a transform is built and
  raises ``ValueError`` naming the argument, its value and the allowed range.
  Traced values (inside ``jit``/``vmap``/``grad``) and schedules are not
  checked: they have no value yet.
* :func:`resolve` turns any of the three forms into a scalar array of
  :func:`gradxform.tree.hyper_dtype` for the step count ``count`` (the count
  *before* this update, so a schedule sees ``0`` on the first update, as in
  optax and Keras).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.tree import hyper_dtype

Schedule = Callable[[jax.Array], Any]
Hyperparameter = float | int | jax.Array | np.ndarray | Schedule


def is_concrete(value: Any) -> bool:
    """True for a Python number or an array with a known value (not a tracer)."""
    return not callable(value) and not isinstance(value, jax.core.Tracer)


def validate(
    who: str,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """Checks a concrete hyperparameter and returns it unchanged.

    The allowed range is ``low <= value <= high`` with either end open as
    asked; ``None`` ends are unbounded. Non-finite values are always refused.
    """
    if value is None:
        if allow_none:
            return value
        raise ValueError(f"{who}: {name} must be given (got None).")
    if callable(value):
        return value
    if isinstance(value, (bool, np.bool_)) or not is_concrete(value):
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{who}: {name} must be a number, got the boolean {value!r}.")
        return value
    arr = np.asarray(value)
    if arr.shape != ():
        raise ValueError(f"{who}: {name} must be a scalar, got an array of shape {list(arr.shape)}.")
    if not jnp.issubdtype(arr.dtype, jnp.number):  # jnp's: bfloat16 is a number too
        raise TypeError(f"{who}: {name} must be a number, got {value!r} of type {type(value).__name__}.")
    x = float(arr.real)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    allowed = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    bad = (
        not math.isfinite(x)
        or (low is not None and (x < low or (low_open and x == low)))
        or (high is not None and (x > high or (high_open and x == high)))
    )
    if bad:
        raise ValueError(f"{who}: {name}={value!r} is out of range; allowed: {allowed}.")
    return value


def validate_dtype(who: str, name: str, dtype: Any) -> jnp.dtype | None:
    """``None`` or a floating dtype, else ``TypeError`` naming the argument."""
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{who}: {name}={dtype!r} is not a dtype.") from err
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{who}: {name}={dtype!r} must be a floating dtype (e.g. jnp.bfloat16).")
    return dt


def resolve(value: Hyperparameter, count: jax.Array, name: str = "hyperparameter") -> jax.Array:
    """The hyperparameter's value at step ``count`` as a scalar of ``hyper_dtype()``."""
    if callable(value):
        out = value(count)
        if jnp.shape(out) != ():
            raise ValueError(
                f"the schedule for {name} returned shape {list(jnp.shape(out))}; a schedule must return a scalar."
            )
        return jnp.asarray(out).astype(hyper_dtype())
    return jnp.asarray(value).astype(hyper_dtype())
