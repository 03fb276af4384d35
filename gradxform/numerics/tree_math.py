"""Arithmetic over pytrees, once: sums, dot products, norms, casts and the allocation of state.

Every function here accepts trees with `None` leaves (the empty subtrees that
`gradxform.masked` and `gradxform.partition` hand their inner
transforms) and skips them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.shard_alike import shard_alike
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.numerics.dtypes import compute_dtype, dtype_of, shape_of

PyTree = Any


def abs_sq(x: jax.Array) -> jax.Array:
    """$|x|^2$: `x * x` for real `x`; $\\mathrm{re}(x)^2 + \\mathrm{im}(x)^2$ (a real array) for complex `x`."""
    if jnp.iscomplexobj(x):
        return jnp.real(x) ** 2 + jnp.imag(x) ** 2
    return x * x


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    """$\\sum_\\ell \\mathrm{Re}\\langle a_\\ell, b_\\ell\\rangle$ over the leaves (0 for empty trees)."""
    parts = [jnp.real(jnp.vdot(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([])


def tree_sum_sq(tree: PyTree) -> jax.Array:
    """$\\sum_\\ell \\sum_i |u_{\\ell,i}|^2$, a real scalar accumulated in at least float32."""
    parts = [jnp.sum(abs_sq(u.astype(compute_dtype(u.dtype)))) for u in jax.tree.leaves(tree)]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], jnp.float32)


def global_norm(tree: PyTree) -> jax.Array:
    """The L2 norm of the whole tree, $\\sqrt{\\sum_\\ell \\sum_i |u_{\\ell,i}|^2}$, in at least float32.

    Safe from overflow and underflow: when the plain sum of squares is not a
    normal finite number (gradients of 1e20 square to inf in float32), the norm is
    recomputed as $m \\sqrt{\\sum |u/m|^2}$ with $m = \\max |u|$, under `lax.cond`, so
    the common case costs one pass. An infinite or NaN element still gives inf or NaN.

    Args:
      tree: a pytree of arrays (real or complex).

    Returns:
      A scalar array, the norm.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    sq = tree_sum_sq(tree)

    def rescaled(_):
        ups = [u.astype(compute_dtype(u.dtype)) for u in leaves]
        m = jnp.max(jnp.stack([jnp.max(jnp.abs(u), initial=0.0).astype(sq.dtype) for u in ups]))
        safe = jnp.where(m > 0, m, 1).astype(sq.dtype)
        inner = sum(jnp.sum(abs_sq(u / safe.astype(u.dtype))).astype(sq.dtype) for u in ups)
        return jnp.where(jnp.isfinite(m), m * jnp.sqrt(inner), m)

    tiny = jnp.finfo(sq.dtype).tiny
    ok = jnp.isfinite(sq) & (sq >= tiny)  # a zero sum may be underflow: the rescaled path tells
    return jax.lax.cond(ok, lambda _: jnp.sqrt(sq), rescaled, None)


def tree_axpy(alpha: jax.Array, d: PyTree, x: PyTree) -> PyTree:
    """$x + \\alpha d$, each leaf keeping `x`'s dtype.

    Computed as `x + (alpha * d)` with `alpha * d` in `d`'s dtype, the arithmetic
    of `apply_updates(x, tree_scale(alpha, d))`: a line search's accepted trial
    point is the point the loop then moves to.
    """

    def one(xi, di):
        return (xi + (alpha * di).astype(jnp.result_type(di))).astype(jnp.result_type(xi))

    return jax.tree.map(one, x, d)


def tree_scale(alpha: jax.Array, d: PyTree) -> PyTree:
    """$\\alpha d$, each leaf keeping its dtype."""
    return jax.tree.map(lambda di: (alpha * di).astype(jnp.result_type(di)), d)


def tree_where(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
    """Leafwise `where(cond, a, b)` for two trees of one structure."""
    return jax.tree.map(lambda p, q: jnp.where(cond, p, q), a, b)


def tree_max_abs(a: PyTree) -> jax.Array:
    """$\\max_i |a_i|$ over all leaves (0 for an empty tree)."""
    leaves = [jnp.max(jnp.abs(x)) for x in jax.tree.leaves(a) if x.size]
    return jnp.max(jnp.stack(leaves)) if leaves else jnp.zeros([])


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Each leaf of `tree` cast to the dtype of the matching leaf of `like` (a no-op where they agree)."""
    return jax.tree.map(lambda x, y: x if x.dtype == dtype_of(y) else x.astype(dtype_of(y)), tree, like)


def cast_out(tree: PyTree, like: PyTree) -> PyTree:
    """The cast at the end of an optimizer: each leaf to the precision of the incoming update leaf.

    A real leaf computed from a complex update (a statistic of $|g|^2$) stays real,
    in the update's real precision; everything else takes the update's dtype.
    """

    def one(x, y):
        want = dtype_of(y)
        if jnp.iscomplexobj(y) and not jnp.iscomplexobj(x):
            want = jnp.finfo(want).dtype
        return x if x.dtype == want else x.astype(want)

    return jax.tree.map(one, tree, like)


def _placed_like(x: Any, value: Any, dtype: Any) -> jax.Array:
    """`value` in `x`'s shape and `dtype`, on `x`'s sharding wherever that is known.

    * a concrete array or a `jax.ShapeDtypeStruct` with a sharding: `lax.full_like`
      keeps it;
    * a tracer (under `jax.jit`): tracers carry no sharding on an `Auto` mesh, so
      `shard_alike` ties the new leaf to `x` and XLA's sharding propagation gives it
      `x`'s sharding (a no-op on one device);
    * a Python number: a fresh array.
    """
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
        value = np.asarray(value)  # a concrete array fill (an injected first step size) must not be the leaf itself
    if isinstance(x, jax.core.Tracer):
        _, out = shard_alike(x, jax.lax.full_like(x, value, dtype))
        return out
    if isinstance(x, (jax.Array, jax.ShapeDtypeStruct)):
        return jax.lax.full_like(x, value, dtype)
    return jnp.full(shape_of(x), value, dtype)


def placed(x: Any, shape: tuple, value: Any, dtype: Any) -> jax.Array:
    """`value` in `shape` and `dtype`, placed like the leaf `x` where that is known and fits.

    For the pieces of a quantized moment (`gradxform.numerics.quantize`), whose shapes differ from the
    parameter's along the last axis only: in `x`'s shape this is `_placed_like`; otherwise a concrete
    `NamedSharding` is kept on every axis whose length its mesh axes divide (others replicated).
    """
    if tuple(shape) == tuple(shape_of(x)):
        return _placed_like(x, value, dtype)
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
        value = np.asarray(value)
    out = jnp.full(shape, value, dtype)
    sharding = getattr(x, "sharding", None)
    if isinstance(sharding, NamedSharding) and isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        out = jax.device_put(out, fitted(sharding, shape))
    return out


def fitted(sharding: NamedSharding, shape: tuple) -> NamedSharding:
    """`sharding` with each axis whose length its mesh axes do not divide replicated instead."""
    spec = tuple(sharding.spec) + (None,) * (len(shape) - len(sharding.spec))
    kept = []
    for size, p in zip(shape, spec[: len(shape)]):
        names = () if p is None else (p if isinstance(p, tuple) else (p,))
        ways = int(np.prod([sharding.mesh.shape[a] for a in names])) if names else 1
        kept.append(p if ways > 1 and size % ways == 0 else None)
    return NamedSharding(sharding.mesh, PartitionSpec(*kept), memory_kind=sharding.memory_kind)


def full_like(tree: PyTree, value: Any = 0, rule: Callable[[jnp.dtype], Any] | None = None) -> PyTree:
    """`value` in each leaf's shape, in the dtype `rule(leaf dtype)` (default: the leaf's).

    A rule may return a quantized storage (`gradxform.numerics.quantize.Storage`): the leaf is then a
    `Quantized` moment holding `value`, its codes and scales placed like the parameter.

    Each state leaf is born where its parameter lives: with the parameter's
    sharding for concrete sharded arrays, for `jax.ShapeDtypeStruct` s that carry a
    sharding, and under plain `jax.jit(tx.init)` (see `_placed_like`). Every
    leaf is a buffer of its own, so any state can be donated.
    """
    from gradxform.numerics.quantize import Storage

    rule = rule or (lambda dt: dt)

    def one(x):
        dt = rule(dtype_of(x))
        if isinstance(dt, Storage):
            return dt.zeros(x, value)
        return _placed_like(x, value, dt)

    return jax.tree.map(one, tree)


def zeros_like(tree: PyTree, rule: Callable[[jnp.dtype], Any] | None = None) -> PyTree:
    """Zeros in each leaf's shape, in the dtype `rule(leaf dtype)` (default: the leaf's); see `full_like`."""
    return full_like(tree, 0, rule)


def copy_like(tree: PyTree, rule: Callable[[jnp.dtype], Any] | None = None) -> PyTree:
    """The leaves' values in the dtype `rule(leaf dtype)` (default: the leaf's), each in a buffer of its own.

    A state that starts at the parameters (an average of them, slow weights) is
    born here: a copy keeps the parameter's sharding and never shares its buffer,
    so parameters and state can both be donated. A `jax.ShapeDtypeStruct` has no
    values; it gets zeros of its shape (what `init` on abstract leaves needs).
    """
    rule = rule or (lambda dt: dt)

    def one(x):
        dt = rule(dtype_of(x))
        if isinstance(x, jax.ShapeDtypeStruct):
            return jax.lax.full_like(x, 0, dt)
        return jnp.array(x, dtype=dt, copy=True)

    return jax.tree.map(one, tree)
