"""Pytree helpers shared by every block: dtypes, moments, counts and checks.

Each helper exists once, under one name. Blocks import from here rather than
re-deriving dtype rules, so the numerics below are the library's numerics:

* hyperparameters are scalars of :func:`hyper_dtype` (float32, or float64 when
  ``jax_enable_x64`` is on), never of the parameters' dtype;
* elementwise math runs in :func:`compute_dtype` (at least float32), so a
  bfloat16 moment is updated in float32 and rounded once, when it is stored;
* step counts are int32 and saturate at ``2**31 - 1`` instead of wrapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
INT32_MAX = np.iinfo(np.int32).max


def hyper_dtype() -> jnp.dtype:
    """The dtype hyperparameters are resolved in: float64 under x64, else float32."""
    return jnp.dtype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)


def compute_dtype(*dtypes: Any) -> jnp.dtype:
    """The dtype elementwise math runs in: the inputs' promoted with float32."""
    return jnp.dtype(jnp.result_type(jnp.float32, *dtypes))


def real_dtype(dtype: Any) -> jnp.dtype:
    """``float32`` for ``complex64``, ``float64`` for ``complex128``, else ``dtype``."""
    return jnp.dtype(jnp.finfo(dtype).dtype) if jnp.issubdtype(dtype, jnp.complexfloating) else jnp.dtype(dtype)


def scalar_for(value: jax.Array, dtype: Any) -> jax.Array:
    """Casts a hyperparameter scalar to the real part of the compute dtype of ``dtype``."""
    return value.astype(real_dtype(compute_dtype(dtype)))


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|^2``: ``x*x`` for real ``x``, ``re(x)^2 + im(x)^2`` (a real array) for complex ``x``."""
    if jnp.iscomplexobj(x):
        return jnp.real(x) ** 2 + jnp.imag(x) ** 2
    return x * x


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1`` for an int32 count, saturating at ``2**31 - 1`` instead of wrapping."""
    return jnp.where(count < INT32_MAX, count + 1, jnp.int32(INT32_MAX)).astype(jnp.int32)


def zero_count() -> jax.Array:
    """A fresh step count: an int32 scalar zero."""
    return jnp.zeros([], jnp.int32)


def dtype_of(x: Any) -> jnp.dtype:
    """A leaf's dtype; works for arrays, Python numbers and ``jax.ShapeDtypeStruct``."""
    return jnp.dtype(x.dtype) if hasattr(x, "dtype") else jnp.dtype(jnp.result_type(x))


def shape_of(x: Any) -> tuple:
    """A leaf's shape; works for arrays, Python numbers and ``jax.ShapeDtypeStruct``."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def full_like(tree: PyTree, value: Any = 0, rule: Callable[[jnp.dtype], Any] | None = None) -> PyTree:
    """``value`` in each leaf's shape, in the dtype ``rule(leaf dtype)`` (default: the leaf's)."""
    rule = rule or (lambda dt: dt)
    return jax.tree.map(lambda x: jnp.full(shape_of(x), value, rule(dtype_of(x))), tree)


def zeros_like(tree: PyTree, rule: Callable[[jnp.dtype], Any] | None = None) -> PyTree:
    """Zeros in each leaf's shape, in the dtype ``rule(leaf dtype)`` (default: the leaf's)."""
    return full_like(tree, 0, rule)


def path_str(path: tuple) -> str:
    """A key path as the user would index it, e.g. ``['layers'][0].w``; ``<root>`` if empty."""
    return jax.tree_util.keystr(path) or "<root>"


def _describe(x: Any) -> str:
    return f"{dtype_of(x)}{list(shape_of(x))}"


def check_inexact(tree: PyTree, who: str) -> None:
    """Raises ``TypeError`` naming the first leaf that is not a float or complex array."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = dtype_of(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{who}: the leaf at {path_str(path)} has dtype {dtype}; optimizers need float "
                "or complex leaves. Keep integer and boolean leaves out of the tree you optimize "
                "(split them off, or wrap the optimizer so it does not see them)."
            )


def check_match(
    updates: PyTree,
    reference: PyTree,
    who: str,
    dtype_rule: Callable[[jnp.dtype], Any] | None = None,
) -> None:
    """Raises ``ValueError`` at the first path where ``updates`` differs from ``reference``.

    Structure and shapes must be equal. If ``dtype_rule`` is given, each
    ``reference`` leaf's dtype must equal ``dtype_rule(updates leaf dtype)``.
    The check reads only static shapes and dtypes, so it costs nothing at run
    time and fires at trace time, before anything is computed.
    """
    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates)
    r_leaves, r_def = jax.tree_util.tree_flatten_with_path(reference)
    if u_def != r_def:
        u_paths = [path_str(p) for p, _ in u_leaves]
        r_paths = [path_str(p) for p, _ in r_leaves]
        missing = [p for p in r_paths if p not in set(u_paths)]
        extra = [p for p in u_paths if p not in set(r_paths)]
        if missing and extra:
            what = f"the updates have {extra[0]} where the state has {missing[0]}"
        elif missing:
            what = f"the updates lack {missing[0]}, which the state has"
        elif extra:
            what = f"the updates have {extra[0]}, which the state lacks"
        else:
            what = f"the containers differ (updates {u_def}, state {r_def})"
        raise ValueError(
            f"{who}: the update tree does not match the state made by init: {what}. "
            "Pass gradients for the same parameters that were given to init."
        )
    for (path, u), (_, r) in zip(u_leaves, r_leaves):
        if shape_of(u) != shape_of(r):
            raise ValueError(
                f"{who}: the update at {path_str(path)} has shape {list(shape_of(u))} but the "
                f"state made by init has shape {list(shape_of(r))}."
            )
        if dtype_rule is not None:
            want = jnp.dtype(dtype_rule(dtype_of(u)))
            if dtype_of(r) != want:
                raise ValueError(
                    f"{who}: the update at {path_str(path)} is {_describe(u)} but the state made "
                    f"by init holds {_describe(r)}; init and update must see the same dtypes "
                    "(cast the gradients, or call init again)."
                )
