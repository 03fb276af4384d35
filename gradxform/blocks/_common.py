"""What the blocks share: the count-only state and the dtype rules of moments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.hyper import validate_dtype
from gradxform.tree import PyTree, compute_dtype, real_dtype, scalar_for


class CountState(NamedTuple):
    """The state of a block whose only memory is the step count (for schedules)."""

    count: jax.Array


def dtype_rule(who: str, state_dtype: Any, real: bool = False) -> Callable[[jnp.dtype], jnp.dtype]:
    """The dtype a moment is stored in, as a function of its leaf's dtype.

    ``state_dtype`` if given, else the leaf's dtype (its real dtype when
    ``real``, for moments of ``|g|^2``).
    """
    fixed = validate_dtype(who, "state_dtype", state_dtype)
    if fixed is not None:
        return lambda dt: fixed
    return real_dtype if real else (lambda dt: jnp.dtype(dt))


def leafwise(fn: Callable[..., Any], hyper: jax.Array, updates: PyTree, *states: PyTree) -> PyTree:
    """``fn(h, u, *s)`` per leaf, every input cast up to at least float32.

    ``h`` is the hyperparameter scalar in the real dtype of the leaves'
    common compute dtype, so bfloat16 leaves are updated in float32 with a
    float32 ``0.999``. Real inputs stay real and complex ones complex.
    """

    def one(u, *s):
        ct = compute_dtype(u.dtype, *(x.dtype for x in s))
        return fn(scalar_for(hyper, ct), *(x.astype(compute_dtype(x.dtype)) for x in (u, *s)))

    return jax.tree.map(one, updates, *states)


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Each leaf of ``tree`` cast to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda x, y: x.astype(y.dtype), tree, like)
