"""Clipping: bounding the size of the updates elementwise, per leaf, or over the whole tree.

Each clip is a transform with a :class:`~gradxform.blocks.CountState`, so its
bound may be a number, a JAX scalar or a schedule ``step -> value``. Norms
are computed in at least float32 (a bfloat16 tree's norm is not rounded to
bfloat16 before it is compared), and the result keeps each leaf's dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform.blocks._common import CountState
from gradxform.core import GradientTransformation
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import PyTree, abs_sq, compute_dtype, safe_increment, zero_count


def _init(params: PyTree) -> CountState:
    return CountState(zero_count())


def _sum_sq(u: jax.Array) -> jax.Array:
    """:math:`\\sum |u_i|^2` of one leaf, as a real scalar in at least float32."""
    return jnp.sum(abs_sq(u.astype(compute_dtype(u.dtype))))


def clip(max_delta: Hyperparameter) -> GradientTransformation:
    r"""Clips each element: :math:`u_i \leftarrow \min(\max(u_i, -c), c)`.

    ``max_delta`` :math:`= c \ge 0`. Same as ``optax.clip`` for real leaves. A
    complex element is clipped in modulus, its phase kept:
    :math:`u_i \leftarrow u_i \min(1, c/|u_i|)`.
    """
    validate("clip", "max_delta", max_delta, 0.0)

    def one(c, u):
        if jnp.iscomplexobj(u):
            mag = jnp.abs(u)
            factor = jnp.where(mag > c, c / jnp.where(mag > c, mag, 1), 1)
            return (u * factor.astype(u.dtype)).astype(u.dtype)
        return jnp.clip(u, -c.astype(u.dtype), c.astype(u.dtype))

    def update(updates, state, params=None, **extra_args):
        c = resolve(max_delta, state.count, "max_delta")
        return jax.tree.map(lambda u: one(c, u), updates), CountState(safe_increment(state.count))

    return GradientTransformation(_init, update)


def _rescale(u: jax.Array, norm: jax.Array, max_norm: jax.Array) -> jax.Array:
    """``u`` if ``norm < max_norm``, else ``u / norm * max_norm`` (optax's form), in ``u``'s dtype."""
    ct = compute_dtype(u.dtype)
    scaled = (u.astype(ct) / norm.astype(ct)) * max_norm.astype(ct)
    return jnp.where(norm < max_norm, u, scaled.astype(u.dtype))


def global_norm(tree: PyTree) -> jax.Array:
    r"""The L2 norm of the whole tree, :math:`\sqrt{\sum_{\text{leaves}} \sum_i |u_i|^2}`, in at least float32."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    return jnp.sqrt(sum(_sum_sq(u) for u in leaves))


def clip_by_global_norm(max_norm: Hyperparameter) -> GradientTransformation:
    r"""Rescales the whole tree so its L2 norm is at most ``max_norm``.

    .. math:: n = \sqrt{\textstyle\sum_{\text{leaves}}\sum_i |u_i|^2}, \qquad
              u \leftarrow u \;\text{ if } n < c, \text{ else } \frac{u}{n}\,c

    ``max_norm`` :math:`= c > 0`. The same formula as ``optax.clip_by_global_norm``;
    the norm is accumulated in at least float32.
    """
    validate("clip_by_global_norm", "max_norm", max_norm, 0.0, low_open=True)

    def update(updates, state, params=None, **extra_args):
        c = resolve(max_norm, state.count, "max_norm")
        n = global_norm(updates).astype(c.dtype)
        return jax.tree.map(lambda u: _rescale(u, n, c), updates), CountState(safe_increment(state.count))

    return GradientTransformation(_init, update)


def clip_by_block_norm(max_norm: Hyperparameter) -> GradientTransformation:
    r"""Rescales each leaf (block) separately so its L2 norm is at most ``max_norm``.

    .. math:: n_\ell = \sqrt{\textstyle\sum_i |u_{\ell,i}|^2}, \qquad
              u_\ell \leftarrow u_\ell \;\text{ if } n_\ell < c, \text{ else } \frac{u_\ell}{n_\ell}\,c

    ``max_norm`` :math:`= c > 0`. For a leaf of :math:`N` elements this equals
    ``optax.clip_by_block_rms(c / sqrt(N))`` (optax bounds the RMS, this the norm).
    """
    validate("clip_by_block_norm", "max_norm", max_norm, 0.0, low_open=True)

    def update(updates, state, params=None, **extra_args):
        c = resolve(max_norm, state.count, "max_norm")
        out = jax.tree.map(lambda u: _rescale(u, jnp.sqrt(_sum_sq(u)).astype(c.dtype), c), updates)
        return out, CountState(safe_increment(state.count))

    return GradientTransformation(_init, update)
