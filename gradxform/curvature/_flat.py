"""Flat-vector helpers shared by the curvature methods.

The curvature methods keep their matrices and histories over the raveled
parameters (`jax.flatten_util.ravel_pytree`): one vector of length `n`, in
the promoted dtype of the leaves. That suits the small and medium problems
these methods are for (`newton` and `bfgs` store `n x n` matrices).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradxform.linesearch import bind_value_fn
from gradxform.numerics import PyTree


def ravel(tree: PyTree) -> tuple[jax.Array, Callable[[jax.Array], PyTree]]:
    """`(vector, unravel)` for a pytree; the vector has at least float32 precision."""
    vec, unravel = ravel_pytree(tree)
    dt = jnp.result_type(jnp.float32, vec.dtype)
    return vec.astype(dt), unravel


def like(vec: jax.Array, tree: PyTree) -> PyTree:
    """`vec` unraveled into `tree`'s structure, each leaf in its dtype."""
    _, unravel = ravel_pytree(tree)
    out = unravel(vec.astype(ravel_pytree(tree)[0].dtype))
    return jax.tree.map(lambda o, t: o.astype(jnp.result_type(t)), out, tree)


def require_params(who: str, params: Any) -> None:
    if params is None:
        raise TypeError(f"{who}: update needs params (tx.update(grads, state, params, ...)).")


def flat_objective(who: str, value_fn: Any, params: PyTree, extra_args: dict) -> Callable[[jax.Array], jax.Array]:
    """`v -> f(unravel(v))` for the objective passed as the extra argument `value_fn`."""
    if value_fn is None or not callable(value_fn):
        raise TypeError(
            f"{who}: update needs the objective as the extra argument value_fn (a callable params -> scalar), "
            f"got {value_fn!r}. Call tx.update(grad, state, params, value=f(params), grad=grad, value_fn=f), "
            "or use gradxform.minimize, which passes it."
        )
    fn = bind_value_fn(value_fn, extra_args)
    _, unravel = ravel_pytree(params)
    leaf_dt = ravel_pytree(params)[0].dtype
    return lambda v: jnp.asarray(fn(unravel(v.astype(leaf_dt)))).astype(v.dtype)


def secant_pair(x, g, prev_x, prev_g, count, curvature_eps):
    r"""The quasi-Newton secant pair and whether it may update the model.

    $s = x_k - x_{k-1}$, $y = g_k - g_{k-1}$; the pair is used only after
    the first step and when the curvature condition
    $y^	op s > \epsilon\,\|s\|\,\|y\|$ holds (and is finite).
    Returns `(s, y, s^T y, y^T y, ok)`.
    """
    s = x - prev_x
    y = g - prev_g
    sy = s @ y
    yy = y @ y
    ok = (count > 0) & (sy > curvature_eps * jnp.sqrt((s @ s) * yy)) & jnp.isfinite(sy)
    return s, y, sy, yy, ok
