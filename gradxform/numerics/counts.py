"""Step counts: int32 scalars that start at 0 and saturate at `2**31 - 1` instead of wrapping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = int(np.iinfo(np.int32).max)


def zero_count() -> jax.Array:
    """A fresh step count: an int32 scalar zero (a new buffer on every call, so states can be donated)."""
    return jnp.zeros([], jnp.int32)


def safe_increment(count: jax.Array) -> jax.Array:
    """`count + 1` for an int32 count, saturating at `2**31 - 1` instead of wrapping."""
    return jnp.where(count < INT32_MAX, count + 1, jnp.int32(INT32_MAX)).astype(jnp.int32)
