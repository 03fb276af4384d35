"""Clipping: bounding the size of the updates elementwise, per leaf, or over the whole tree.

Each bound may be a number, a JAX scalar or a schedule `step -> value`. Norms are
computed in at least float32 (a bfloat16 tree's norm is not rounded to bfloat16
before it is compared).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform.blocks.base import elementwise
from gradxform.core.transform import EmptyState, GradientTransformation, make_block
from gradxform.hyper.validate import NONNEGATIVE, POSITIVE, validate
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.dtypes import compute_dtype
from gradxform.numerics.tree_math import global_norm, tree_sum_sq


def clip(max_delta: Hyperparameter) -> GradientTransformation:
    r"""Clips each element: $u_i \leftarrow \min(\max(u_i, -c), c)$.

    Same as `optax.clip` for real leaves. A complex element is clipped in modulus,
    its phase kept: $u_i \leftarrow u_i \min(1, c/|u_i|)$.

    Args:
      max_delta: $c \ge 0$.
    """

    def fn(h, u):
        c = h.max_delta
        if jnp.iscomplexobj(u):
            mag = jnp.abs(u)
            return u * jnp.where(mag > c, c / jnp.where(mag > c, mag, 1), 1).astype(u.dtype)
        return jnp.clip(u, -c, c)

    return elementwise("clip", fn, hyper={"max_delta": (max_delta, NONNEGATIVE)})


def _rescale(u: jax.Array, norm: jax.Array, max_norm: jax.Array) -> jax.Array:
    """`u` if `norm < max_norm`, else `u / norm * max_norm` (optax's form), in `u`'s compute dtype."""
    ct = compute_dtype(u.dtype)
    u = u.astype(ct)
    return jnp.where(norm < max_norm, u, (u / norm.astype(ct)) * max_norm.astype(ct))


def _norm_clip(name: str, max_norm: Hyperparameter, norms, per_leaf: bool) -> GradientTransformation:
    validate(name, "max_norm", max_norm, POSITIVE)

    def update(updates, state, params, count, extra_args):
        c = resolve(max_norm, count, "max_norm")
        return norms(updates, c), state

    return make_block(
        name, lambda params: EmptyState(), update, needs_step=is_schedule(max_norm), stateless=True, per_leaf=per_leaf
    )


def clip_by_global_norm(max_norm: Hyperparameter) -> GradientTransformation:
    r"""Rescales the whole tree so its L2 norm is at most `max_norm`.

    $$n = \sqrt{\textstyle\sum_{\text{leaves}}\sum_i |u_i|^2}, \qquad
    u \leftarrow u \;\text{ if } n < c, \text{ else } \frac{u}{n}\,c$$

    The same formula as `optax.clip_by_global_norm`; the norm is accumulated in at
    least float32.

    Args:
      max_norm: $c > 0$.
    """

    def norms(updates, c):
        n = global_norm(updates).astype(c.dtype)
        return jax.tree.map(lambda u: _rescale(u, n, c), updates)

    return _norm_clip("clip_by_global_norm", max_norm, norms, per_leaf=False)


def clip_by_block_norm(max_norm: Hyperparameter) -> GradientTransformation:
    r"""Rescales each leaf (block) separately so its L2 norm is at most `max_norm`.

    $$n_\ell = \sqrt{\textstyle\sum_i |u_{\ell,i}|^2}, \qquad
    u_\ell \leftarrow u_\ell \;\text{ if } n_\ell < c, \text{ else } \frac{u_\ell}{n_\ell}\,c$$

    For a leaf of $N$ elements this equals `optax.clip_by_block_rms(c / sqrt(N))`
    (optax bounds the RMS, this the norm). It looks at whole leaves, so it refuses
    `FlatParams`.

    Args:
      max_norm: $c > 0$.
    """

    def norms(updates, c):
        return jax.tree.map(lambda u: _rescale(u, jnp.sqrt(tree_sum_sq(u)).astype(c.dtype), c), updates)

    return _norm_clip("clip_by_block_norm", max_norm, norms, per_leaf=True)
