"""SM3's cover-set accumulators: one sum of squares per slice along each axis, not one per element."""

from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.core.state import Layout, per_param
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, Range, validate
from gradxform.hyper.values import Hyperparameter, resolve
from gradxform.numerics.checks import check_inexact
from gradxform.numerics.dtypes import compute_dtype, dtype_of, real_dtype, shape_of, square_dtype
from gradxform.numerics.tree_math import full_like

PyTree = Any


def acc_size(shape: tuple) -> tuple:
    """The shape of a leaf's accumulators: its own for 0-d and 1-d leaves, else the concatenated axes (sum of dims)."""
    return tuple(shape) if len(shape) < 2 else (sum(shape),)


def _replicated(sharding: Any, param_shape: tuple, leaf_shape: tuple) -> Any:
    if len(param_shape) < 2:
        return sharding  # the accumulator is shaped like the parameter
    if isinstance(sharding, NamedSharding):
        return NamedSharding(sharding.mesh, PartitionSpec(), memory_kind=sharding.memory_kind)
    return sharding


COVER_SETS = Layout("cover_sets", _replicated)
"""One accumulator per slice along each axis, concatenated (replicated); shaped like the parameter below 2-d."""


@per_param("acc", layout=COVER_SETS)
class Sm3State(NamedTuple):
    """`acc`: per leaf, the accumulators of its cover sets: for a leaf of shape $(d_1, \\dots, d_k)$, $k \\ge 2$,
    the $k$ vectors of lengths $d_i$ concatenated; for 0-d and 1-d leaves, one per element."""

    acc: PyTree


def _expanded(shape: tuple, axis: int) -> list:
    return [1] * axis + [shape[axis]] + [1] * (len(shape) - axis - 1)


def scale_by_sm3(b2: Hyperparameter = 1.0, eps: Hyperparameter = 1e-8) -> GradientTransformation:
    r"""SM3's adaptive scaling (Anil et al. 2019), with a cover set per slice along each axis.

    For a leaf with $k \ge 2$ axes, the cover sets are its slices $S_{i,j}$ (index $j$ on
    axis $i$), each with an accumulator $\mu_{i,j}$:

    $$\begin{aligned}
    \nu_t(x) &= c_1\,g_t(x)^2 + c_2 \min_{i} \mu_{i, x_i}, \\
    \mu_{i,j} &\leftarrow \max_{x \in S_{i,j}} \nu_t(x), \\
    u_t(x) &= \frac{g_t(x)}{\sqrt{\nu_t(x) + \epsilon}}\ (0 \text{ where } \nu_t = 0)
    \end{aligned}$$

    with $(c_1, c_2) = (1, 1)$ for $\beta_2 = 1$ (sums, the paper's) and $(1-\beta_2, \beta_2)$
    otherwise. A 1-d leaf's slices along its one axis are its elements, and a 0-d leaf is
    one element: both keep one accumulator per element, $\nu_t = c_1 g_t^2 + c_2 \nu_{t-1}$,
    Adagrad's (optax's `scale_by_sm3` does the same for 1-d leaves and fails on 0-d ones).
    A $d_1 \times d_2$ matrix keeps $d_1 + d_2$ numbers instead of $d_1 d_2$. Looks at
    leaf shapes, so `FlatParams` is refused. Real parameters only.

    Args:
      b2: $\beta_2 \in (0, 1]$.
      eps: $\epsilon \ge 0$, inside the root.
    """
    validate("scale_by_sm3", "b2", b2, Range(0.0, 1.0, low_open=True))
    validate("scale_by_sm3", "eps", eps, NONNEGATIVE)

    def init(params):
        check_inexact(params, "scale_by_sm3")
        if any(jnp.issubdtype(dtype_of(x), jnp.complexfloating) for x in jax.tree.leaves(params)):
            raise TypeError(f"{lead('scale_by_sm3')}: SM3 is defined for real parameters only.")
        return Sm3State(jax.tree.map(_zero_acc, params))

    def update(updates, state, params, count, extra_args):
        if jax.tree.structure(updates) != jax.tree.structure(state.acc):
            raise ValueError(
                f"{lead('scale_by_sm3')}: the update tree does not match the state made by init "
                f"({jax.tree.structure(updates)} vs {jax.tree.structure(state.acc)})."
            )
        jax.tree.map(_check_acc, updates, state.acc)
        b, e = resolve(b2, count, "b2"), resolve(eps, count, "eps")
        c1 = jnp.where(b == 1, 1, 1 - b)

        def one(g, acc):
            ct = compute_dtype(g.dtype, acc.dtype)
            rt = real_dtype(ct)
            g, acc = g.astype(ct), acc.astype(ct)
            k1, k2, ke = c1.astype(rt), b.astype(rt), e.astype(rt)
            if g.ndim < 2:
                nu = k1 * g**2 + k2 * acc
                new = nu
            else:
                parts = jnp.split(acc, list(itertools.accumulate(g.shape))[:-1])
                cover = functools.reduce(
                    jnp.minimum, [jnp.reshape(a, _expanded(g.shape, i)) for i, a in enumerate(parts)]
                )
                nu = k1 * g**2 + k2 * cover
                others = [tuple(j for j in range(g.ndim) if j != i) for i in range(g.ndim)]
                new = jnp.concatenate(
                    [
                        _replicated_value(jnp.max(nu, axis=ax)) if nu.size else jnp.zeros(g.shape[i], ct)
                        for i, ax in enumerate(others)
                    ]
                )
            out = g * jnp.where(nu > 0, jax.lax.rsqrt(nu + ke), 0)
            return out, new

        results = jax.tree.map(one, updates, state.acc)
        out = jax.tree.map(lambda _, r: r[0], updates, results)
        acc = jax.tree.map(lambda _, r, a: r[1].astype(a.dtype), updates, results, state.acc)
        return out, Sm3State(acc)

    return make_block("scale_by_sm3", init, update, per_leaf=True)


def _zero_acc(p: Any) -> jax.Array:
    """A leaf's accumulators at 0 (sums of squares: float32 for float16 leaves, `square_dtype`): placed like the
    parameter below 2-d (its shape), replicated above."""
    if len(shape_of(p)) < 2:
        return full_like(p, 0, square_dtype)
    return jnp.zeros(acc_size(shape_of(p)), square_dtype(dtype_of(p)))


def _replicated_value(x: jax.Array) -> jax.Array:
    """`x` replicated where its type carries a sharding (an Explicit mesh), so the per-axis maxima of a sharded
    leaf can be concatenated into one replicated vector; unchanged elsewhere (XLA places it on Auto meshes)."""
    sharding = jax.typeof(x).sharding
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty or all(s is None for s in sharding.spec):
        return x
    return jax.sharding.reshard(x, NamedSharding(mesh, PartitionSpec()))


def _check_acc(g: Any, acc: Any) -> None:
    want = acc_size(tuple(g.shape))
    if tuple(acc.shape) != want:
        raise ValueError(
            f"{lead('scale_by_sm3')}: an update of shape {list(g.shape)} needs accumulators of shape {list(want)}, "
            f"the state made by init has {list(acc.shape)}; use the state this optimizer's init made."
        )
