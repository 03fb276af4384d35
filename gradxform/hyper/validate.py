"""Validation, in one place: hyperparameters, dtypes, integers and flags, checked when a transform is built.

Concrete values are checked and raise with the argument's name, its value and the
allowed range, led by the function the user called (`gradxform.errors`). Traced
values (inside `jit`/`vmap`/`grad`) and schedules have no value yet and are not
checked. A numeric hyperparameter is checked as given *and* as it is used, rounded
to `gradxform.numerics.hyper_dtype()`: `b2=0.99999999` is `1.0` in float32, which
is out of `[0, 1)`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from gradxform.errors import lead
from gradxform.hyper.values import is_concrete, is_schedule
from gradxform.numerics.dtypes import hyper_dtype


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of allowed values; `None` ends are unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        lo = "(" if self.low_open or self.low is None else "["
        hi = ")" if self.high_open or self.high is None else "]"
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        return f"{lo}{low}, {high}{hi}"

    def __contains__(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return not (self.high is not None and (x > self.high or (self.high_open and x == self.high)))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


ANY = Range()
NONNEGATIVE = Range(0.0)
POSITIVE = Range(0.0, low_open=True)
UNIT = Range(0.0, 1.0, high_open=True)  # decay rates: b1, b2, rho, momentum
CLOSED_UNIT = Range(0.0, 1.0)  # fractions that may reach 1 (dampening)


def validate(
    who: str,
    name: str,
    value: Any,
    low: float | Range | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """Checks a concrete hyperparameter and returns it unchanged.

    Args:
      who: the checking function's name (a message is led by the user's function, see `gradxform.errors`).
      name: the argument's name.
      value: a number, a JAX scalar, a schedule, or `None` if `allow_none`.
      low: the lower end, or a whole `Range`.
      high: the upper end.
      low_open: exclude `low`.
      high_open: exclude `high`.
      allow_none: accept `None`.

    Non-finite values are always refused; so are values that round, in the
    dtype hyperparameters are used in, to a value out of range or to zero from a
    non-zero value (an `eps` of `1e-46` is `0.0` in float32).
    """
    rng = low if isinstance(low, Range) else Range(low, high, low_open, high_open)
    if value is None:
        if allow_none:
            return value
        raise ValueError(f"{lead(who)}: {name} must be given (got None).")
    if is_schedule(value):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{lead(who)}: {name} must be a number, got the boolean {value!r}.")
    if isinstance(value, str):
        raise TypeError(f"{lead(who)}: {name} must be a number, got the string {value!r}.")
    if not is_concrete(value):
        return value
    arr = np.asarray(value)
    if arr.shape != ():
        raise ValueError(f"{lead(who)}: {name} must be a scalar, got an array of shape {list(arr.shape)}.")
    if not jnp.issubdtype(arr.dtype, jnp.number):  # jnp's: bfloat16 is a number too
        raise TypeError(f"{lead(who)}: {name} must be a number, got {value!r} of type {type(value).__name__}.")
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(f"{lead(who)}: {name} must be a real number, got the complex {value!r}.")
    x = float(arr)
    if x not in rng:
        raise ValueError(f"{lead(who)}: {name}={value!r} is out of range; allowed: {rng}.")
    check_rounding(who, name, value, rng, hyper_dtype())
    return value


def check_rounding(who: str, name: str, value: Any, rng: Range, dtype: Any) -> None:
    """Raises if the concrete `value`, rounded to `dtype`, leaves `rng` or becomes zero from non-zero.

    `validate` calls it with the hyperparameter dtype; blocks call it again with each
    leaf's dtype when that is narrower (float32 leaves under x64).
    """
    if not is_concrete(value) or isinstance(value, (bool, np.bool_, str)):
        return
    x = float(np.asarray(value))
    dt = jnp.dtype(dtype)
    with np.errstate(over="ignore", under="ignore"):
        used = float(np.asarray(x, np.float64).astype(dt))
    if used not in rng or (used == 0.0 and x != 0.0):
        if lead(who) != who:  # found by an inner block, whose argument name may not be the user's
            name = f"{who}'s {name}"
        raise ValueError(
            f"{lead(who)}: {name}={value!r} is {used!r} in {dt.name}, the dtype it is used in, "
            f"which is out of range; allowed: {rng}" + (" and non-zero." if used == 0.0 and x != 0.0 else ".")
        )


def validate_dtype(who: str, name: str, dtype: Any) -> Any:
    """`None`, a floating dtype or a quantized storage spec (`gradxform.quantized`), else `TypeError`."""
    from gradxform.numerics.quantize import QuantizedSpec

    if dtype is None or isinstance(dtype, QuantizedSpec):
        return dtype
    try:
        dt = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{lead(who)}: {name}={dtype!r} is not a dtype.") from err
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"{lead(who)}: {name}={dtype!r} must be a floating dtype (e.g. jnp.bfloat16) or gradxform.quantized(...)."
        )
    return dt


def validate_int(who: str, name: str, value: Any, low: int = 0, *, allow_none: bool = False, what: str = "") -> Any:
    """An `int >= low` (not a bool), else `TypeError` (wrong kind) or `ValueError` (too small).

    Args:
      who: the checking function's name.
      name: the argument's name.
      value: the value to check.
      low: the smallest allowed value.
      allow_none: accept `None`.
      what: what the integer counts, for the message (e.g. "micro-steps per update").
    """
    if value is None and allow_none:
        return value
    about = f" ({what})" if what else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{lead(who)}: {name}={value!r} must be an int >= {low}{about}.")
    if value < low:
        raise ValueError(f"{lead(who)}: {name}={value!r} must be an int >= {low}{about}.")
    return int(value)


def validate_bool(who: str, name: str, value: Any) -> bool:
    """A Python (or NumPy) bool, else `TypeError`: `centered="no"` is not silently truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{lead(who)}: {name}={value!r} must be True or False.")
    return bool(value)
