"""SOAP's eigenbasis: Shampoo's Kronecker factors, their eigenvectors, and a transform run in that basis.

For a matrix leaf $G$ ($m \\times n$), Shampoo's preconditioner is built from two
moving averages, $L$ of $GG^\\top$ and $R$ of $G^\\top G$. SOAP (Vyas et al. 2024)
keeps their eigenvectors $Q_L, Q_R$, refreshed every few steps, and runs Adam on
the rotated gradient $G' = Q_L^\\top G Q_R$; the result is rotated back.
`in_eigenbasis(inner)` is that rotation around any transform `inner`; SOAP's inner
transform is Adam's ratio, made of the library's moment blocks.

Which leaves have which factors (decided from the leaf's shape, statically): a leaf of
rank $\\ge 2$ is seen as the matrix $(\\prod_{k<d-1} n_k) \\times n_{d-1}$ (a convolution
kernel `(h, w, c_in, c_out)` as $(h w c_{in}) \\times c_{out}$), each side with a factor
if it has at most `max_precond_dim` entries; a vector has one factor $L$ only with
`precondition_1d`; a scalar has none. A side without a factor is not rotated.

**Layouts.** `l` and `q_l` ($m \\times m$) are sharded on their first axis like the
parameter's first axis (for a matrix or a vector; replicated for a leaf of rank
$\\ge 3$, whose rows merge several axes), `r` and `q_r` ($n \\times n$) on their first axis
like the parameter's last axis; a factor a leaf does not have is a 1-element
replicated placeholder. The inner transform's moments have the parameter's shape
(in the rotated basis) and its sharding.

These blocks look at whole leaves (`per_leaf`): `gradxform.FlatParams` refuses them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.blocks.base import leafwise
from gradxform.blocks.orthogonal import gathered, scattered
from gradxform.core.state import Layout, param_fields, per_param
from gradxform.core.transform import Block, GradientTransformation, as_transform, block_of, caller_description
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, UNIT, validate, validate_bool, validate_int
from gradxform.hyper.values import Hyperparameter, resolve
from gradxform.numerics.checks import check_inexact, check_real
from gradxform.numerics.dtypes import compute_dtype, dtype_of, real_dtype, shape_of
from gradxform.numerics.quantize import load, store
from gradxform.numerics.tree_math import full_like

PyTree = Any
REAL_ONLY = "its Kronecker factors are real symmetric matrices (SVD, QR)"


def factor_sizes(shape: tuple, max_precond_dim: int, precondition_1d: bool) -> tuple[int | None, int | None]:
    """`(m, n)`: the sizes of the left and right factors of a leaf of `shape` (`None`: no factor on that side).

    A leaf of rank >= 2 is the matrix `(prod(shape[:-1]), shape[-1])`; a vector is `(d, 1)` with a
    left factor only if `precondition_1d`; a scalar or an empty leaf has none. A side larger than
    `max_precond_dim` has none.
    """
    shape = tuple(int(s) for s in shape)

    def keep(d: int) -> int | None:
        return d if 0 < d <= max_precond_dim else None

    if len(shape) == 0 or math.prod(shape) == 0:
        return None, None
    if len(shape) == 1:
        return (keep(shape[0]) if precondition_1d else None), None
    return keep(math.prod(shape[:-1])), keep(shape[-1])


def as_matrix(x: jax.Array) -> jax.Array:
    """A leaf as the matrix its factors act on: `(prod(shape[:-1]), shape[-1])`, a vector as a column."""
    if x.ndim < 2:
        return x.reshape(-1, 1)
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def _replicated(sharding: Any) -> Any:
    return NamedSharding(sharding.mesh, PartitionSpec(), memory_kind=sharding.memory_kind)


def _factor_layout(name: str, side: int) -> Layout:
    """A factor's layout: its first axis sharded like the parameter's first (`side=0`) or last (`1`) axis."""

    def sharding(param_sharding, param_shape, leaf_shape):
        param_shape = tuple(param_shape)
        spec = tuple(param_sharding.spec) + (None,) * (len(param_shape) - len(param_sharding.spec))
        axis = 0 if side == 0 else len(param_shape) - 1
        if (
            len(leaf_shape) == 2
            and len(param_shape) in (1, 2)
            and (side == 0 or len(param_shape) == 2)
            and tuple(leaf_shape) == (param_shape[axis], param_shape[axis])
        ):
            return NamedSharding(
                param_sharding.mesh, PartitionSpec(spec[axis], None), memory_kind=param_sharding.memory_kind
            )
        if side == 1 and len(param_shape) > 2 and tuple(leaf_shape) == (param_shape[-1], param_shape[-1]):
            return NamedSharding(
                param_sharding.mesh, PartitionSpec(spec[-1], None), memory_kind=param_sharding.memory_kind
            )
        return _replicated(param_sharding)  # a placeholder, or the merged rows of a leaf of rank >= 3

    return Layout(name, sharding)


LEFT_FACTOR = _factor_layout("kronecker_left", 0)
"""`l`, `q_l`: $m \\times m$, the first axis sharded like the parameter's first axis (replicated placeholders)."""
RIGHT_FACTOR = _factor_layout("kronecker_right", 1)
"""`r`, `q_r`: $n \\times n$, the first axis sharded like the parameter's last axis (replicated placeholders)."""


@per_param("l", "q_l", layout=LEFT_FACTOR)
@per_param("r", "q_r", layout=RIGHT_FACTOR)
class EigenbasisState(NamedTuple):
    """Shampoo's factors $L, R$, their eigenbases $Q_L, Q_R$, and the state of the transform run in that basis.

    A factor a leaf does not have is a 1-element placeholder.
    """

    l: PyTree
    r: PyTree
    q_l: PyTree
    q_r: PyTree
    inner: Any


def _factor_zeros(p: Any, side: int, size: int, dt: Any) -> jax.Array:
    """Zeros `(size, size)` along the parameter's first (`side=0`) or last axis (sums of zeros placed like `p`)."""
    z = full_like(p, 0, lambda _: dt)
    shape = tuple(shape_of(p))
    if side == 0 and len(shape) <= 2:
        keep = 0
    elif side == 1 and len(shape) >= 2:
        keep = len(shape) - 1
    else:
        return jnp.zeros((size, size), dt)
    line = jnp.sum(z, axis=tuple(a for a in range(len(shape)) if a != keep))
    return line[:, None] * jnp.zeros((1, size), dt)


def kronecker_statistics(beta: jax.Array, g: jax.Array, l: jax.Array | None, r: jax.Array | None):
    r"""$L \leftarrow \beta L + (1-\beta)\,GG^\top$, $R \leftarrow \beta R + (1-\beta)\,G^\top G$."""
    if l is None and r is None:
        return l, r
    x = as_matrix(g)
    if l is not None:
        l = beta * l + (1 - beta) * (x @ x.T)
    if r is not None:
        r = beta * r + (1 - beta) * (x.T @ x)
    return l, r


def singular_bases(g: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""$Q_L, Q_R$ at the first step: the eigenvectors of $L = (1-\beta)GG^\top$ and $R = (1-\beta)G^\top G$, by
    decreasing eigenvalue, which are $G$'s singular vectors ($G = U\Sigma V^\top$, full: $Q_L = U$, $Q_R = V$).

    Taken from the SVD of $G$ itself rather than `eigh` of the products: the same basis up to signs
    (better conditioned), and the basis of the kernel (directions no gradient has reached yet, when $G$
    has fewer columns than rows) is a function of $G$'s bits, not of how $GG^\top$ was rounded (e.g.
    summed across devices). Differentiating through the optimizer (`jax.grad` of a loss after some steps)
    treats this first basis as a constant: the derivative of a kernel's basis is not defined (and JAX has
    none for full SVDs); the later refreshes (`power_step`) are differentiated.
    """
    u, _, vt = jnp.linalg.svd(jax.lax.stop_gradient(as_matrix(g)), full_matrices=True)
    return u, vt.T


def _is_none(x: Any) -> bool:
    return x is None


def power_step(p: jax.Array, q: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""One power-iteration step from the basis $Q$: its columns sorted by $\mathrm{diag}(Q^\top P Q)$, then QR.

    $$\hat\lambda = \mathrm{diag}(Q^\top P Q), \qquad Q \leftarrow Q_{:,\sigma}
    \ (\sigma \text{ sorts } \hat\lambda \text{ decreasingly}), \qquad Q \leftarrow \mathrm{QR}(PQ)_Q$$

    Returns the new basis and $\sigma$ (by which the second moments are re-ordered).
    """
    pq = p @ q  # one product serves both: diag(Q^T P Q) = colsum(Q * PQ), and P Q_sorted = (PQ)_sorted
    order = jnp.argsort(-jnp.sum(q * pq, axis=0))
    return jnp.linalg.qr(pq[:, order])[0], order


def rotate(g: jax.Array, q_l: jax.Array | None, q_r: jax.Array | None) -> jax.Array:
    r"""$G' = Q_L^\top G\, Q_R$ (a side without a factor is not rotated), in the leaf's shape."""
    if q_l is None and q_r is None:
        return g
    x = as_matrix(g)
    if q_l is not None:
        x = q_l.T @ x
    if q_r is not None:
        x = x @ q_r
    return x.reshape(g.shape)


def rotate_back(u: jax.Array, q_l: jax.Array | None, q_r: jax.Array | None) -> jax.Array:
    r"""$N = Q_L N' Q_R^\top$, in the leaf's shape: `rotate` by the transposed bases."""
    return rotate(u, None if q_l is None else q_l.T, None if q_r is None else q_r.T)


def reorder(v: jax.Array, order_l: jax.Array | None, order_r: jax.Array | None) -> jax.Array:
    """A second moment's rows and columns re-ordered with its basis's columns (`power_step`'s orders)."""
    if order_l is None and order_r is None:
        return v
    x = as_matrix(v)
    if order_l is not None:
        x = x[order_l, :]
    if order_r is not None:
        x = x[:, order_r]
    return x.reshape(v.shape)


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def rebase_state(inner: Any, rotate_mu, reorder_other) -> Any:
    """The inner state in a new basis: every marked `mu` field rotated, every other marked field re-ordered.

    A first moment is linear in the gradients, so it changes basis as they do
    ($M' \\leftarrow Q_L^{\\top}Q_L^{old} M' Q_R^{old\\top} Q_R$); a second moment is not, and keeps its
    values, re-ordered with the basis's columns (the reference implementation's rule).
    """

    def walk(node: Any) -> Any:
        marks = param_fields(node)
        if _is_named_tuple(node):
            out = []
            for f in node._fields:
                child = getattr(node, f)
                if f in marks:
                    out.append(rotate_mu(child) if f == "mu" else reorder_other(child))
                else:
                    out.append(walk(child))
            return type(node)(*out)
        if isinstance(node, dict):
            return type(node)((k, walk(v)) for k, v in node.items())
        if isinstance(node, (list, tuple)):
            return type(node)(walk(v) for v in node)
        return node

    return walk(inner)


def in_eigenbasis(
    inner: GradientTransformation,
    beta: Hyperparameter = 0.95,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
) -> GradientTransformation:
    r"""Runs `inner` in the eigenbasis of Shampoo's Kronecker factors (SOAP, Vyas et al. 2024, Algorithm 3).

    $$\begin{aligned}
    G' &= Q_L^\top G\, Q_R, \qquad N' = \mathrm{inner}(G'), \qquad N = Q_L N' Q_R^\top, \\
    L &\leftarrow \beta L + (1-\beta)\,GG^\top, \qquad R \leftarrow \beta R + (1-\beta)\,G^\top G, \\
    Q_L, Q_R &\leftarrow \text{one power step (sort, } \mathrm{QR}(LQ_L), \mathrm{QR}(RQ_R)\text{) every } f
    \text{ steps}
    \end{aligned}$$

    The factors are updated after the rotation, so a step never projects its own gradient.
    The first step only gathers the statistics, sets $Q_L, Q_R$ to the eigenvectors of $L, R$
    by decreasing eigenvalue (`singular_bases`: $G$'s singular vectors) and outputs zeros; `inner`
    first runs at the second step and sees the step count less one (so its bias corrections count
    its own steps).
    When the basis is refreshed (after `inner`'s step $k$ with $k \bmod f = 0$, `power_step`),
    `inner`'s first moments (`mu`) are rotated into the new basis and its other moments
    re-ordered with the basis's columns (`rebase_state`). Sides larger than
    `max_precond_dim` are not rotated (see the module docstring). `inner` gets no parameters (they
    live in the original basis): a block that needs them (weight decay) goes after `in_eigenbasis`.

    Args:
      inner: the transform run in the rotated basis (SOAP: Adam's ratio).
      beta: $\beta \in [0, 1)$ of the factors' moving averages.
      precondition_frequency: $f \ge 1$, steps between refreshes of the basis.
      max_precond_dim: sides with more entries than this get no factor (an int >= 0).
      precondition_1d: give vectors a left factor too (a $d \times d$ matrix).
    """
    who = "in_eigenbasis"
    validate(who, "beta", beta, UNIT)
    validate_int(who, "precondition_frequency", precondition_frequency, 1)
    validate_int(who, "max_precond_dim", max_precond_dim, 0)
    validate_bool(who, "precondition_1d", precondition_1d)
    blk = block_of(inner, "in_eigenbasis (inner)")
    description = caller_description(who, 1, children=(blk,))
    freq = int(precondition_frequency)

    def sizes(x: Any) -> tuple[int | None, int | None]:
        return factor_sizes(tuple(shape_of(x)), max_precond_dim, precondition_1d)

    def rule(dt: Any) -> Any:
        return real_dtype(compute_dtype(dt))

    def init(params):
        check_inexact(params, who)
        check_real(params, who, REAL_ONLY)

        def one(p):
            dt = rule(dtype_of(p))
            m, n = sizes(p)

            def placeholder():  # a buffer of its own each time: any state can be donated
                return jnp.zeros((1,), dt)

            l = placeholder() if m is None else _factor_zeros(p, 0, m, dt)
            r = placeholder() if n is None else _factor_zeros(p, 1, n, dt)
            q_l = placeholder() if m is None else _factor_zeros(p, 0, m, dt) + jnp.eye(m, dtype=dt)
            q_r = placeholder() if n is None else _factor_zeros(p, 1, n, dt) + jnp.eye(n, dtype=dt)
            return l, r, q_l, q_r

        quads = jax.tree.map(one, params)
        pick = [jax.tree.map(lambda _, t, i=i: t[i], params, quads) for i in range(4)]
        return EigenbasisState(*pick, blk.init(params))

    def update(updates, state, params, count, extra_args):
        check_real(updates, who, REAL_ONLY)
        if not isinstance(state, EigenbasisState):
            raise TypeError(f"{lead(who)}: expected the state this optimizer's init made, got {type(state).__name__}.")
        b = resolve(beta, count, "beta")
        tree = updates

        def tmap(fn, *trees):
            return jax.tree.map(fn, tree, *trees)

        def pick(results, i):
            return tmap(lambda _, r: r[i], results)

        def factors(g, l, r, q_l, q_r):
            """The leaf's factors in its real compute dtype, gathered (`None` where it has none), checked."""
            m, n = sizes(g)
            for name, x, d in (("l", l, m), ("r", r, n), ("q_l", q_l, m), ("q_r", q_r, n)):
                want = (1,) if d is None else (d, d)
                if tuple(shape_of(x)) != want:
                    raise ValueError(
                        f"{lead(who)}: the state's {name} has shape {list(shape_of(x))} for an update of shape "
                        f"{list(shape_of(g))} (expected {list(want)}); use the state this optimizer's init made."
                    )
            rt = real_dtype(compute_dtype(g.dtype, l.dtype))
            return tuple(
                None if d is None else gathered(x.astype(rt))[0] for x, d in ((l, m), (r, n), (q_l, m), (q_r, n))
            )

        def stored_like(new, old):
            """`new` (replicated, or `None`: the leaf has no such factor) stored as `old` is: dtype and sharding."""
            return old if new is None else scattered(new.astype(old.dtype), gathered(old)[1])

        def gradient(g):
            """`g` in its compute dtype, gathered, and the sharding to return to."""
            return gathered(g.astype(compute_dtype(g.dtype)))

        def statistics(u, l, r, q_l, q_r):
            g, _ = gradient(u)
            fl, fr, _, _ = factors(u, l, r, q_l, q_r)
            nl, nr = kronecker_statistics(b.astype(g.dtype), g, fl, fr)
            return stored_like(nl, l), stored_like(nr, r)

        def first_step(_):
            """Statistics of the first gradient, and their eigenvectors: $G$'s singular vectors."""
            stats = tmap(statistics, state.l, state.r, state.q_l, state.q_r)

            def bases(u, q_l, q_r):
                m, n = sizes(u)
                if m is None and n is None:
                    return q_l, q_r
                g, _ = gradient(u)
                ql, qr = singular_bases(g)
                return stored_like(ql if m is not None else None, q_l), stored_like(qr if n is not None else None, q_r)

            qs = tmap(bases, state.q_l, state.q_r)
            out = tmap(lambda u: jnp.zeros_like(u, compute_dtype(u.dtype)))
            return out, EigenbasisState(pick(stats, 0), pick(stats, 1), pick(qs, 0), pick(qs, 1), state.inner)

        def later_step(_):
            def rotated(u, l, r, q_l, q_r):
                g, spec = gradient(u)
                _, _, fql, fqr = factors(u, l, r, q_l, q_r)
                return scattered(rotate(g, fql, fqr), spec)

            g_rot = tmap(rotated, state.l, state.r, state.q_l, state.q_r)
            n_rot, inner_state = blk.update(g_rot, state.inner, None, count - 1, extra_args)

            def back(u, n, l, r, q_l, q_r):
                _, spec = gradient(u)
                _, _, fql, fqr = factors(u, l, r, q_l, q_r)
                return scattered(rotate_back(gathered(n.astype(compute_dtype(u.dtype)))[0], fql, fqr), spec)

            out = tmap(back, n_rot, state.l, state.r, state.q_l, state.q_r)
            stats = tmap(statistics, state.l, state.r, state.q_l, state.q_r)
            args = (pick(stats, 0), pick(stats, 1), state.q_l, state.q_r, inner_state)
            l, r, q_l, q_r, inner_state = jax.lax.cond(count % freq == 0, refresh, lambda a: a, args)
            return out, EigenbasisState(l, r, q_l, q_r, inner_state)

        def refresh(args):
            """One power step of each basis; the inner state follows it (`rebase_state`)."""
            l, r, q_l, q_r, inner_state = args

            def one(u, lx, rx, ql, qr):
                fl, fr, fql, fqr = factors(u, lx, rx, ql, qr)
                nql, ol = (None, None) if fl is None else power_step(fl, fql)
                nqr, orr = (None, None) if fr is None else power_step(fr, fqr)
                return stored_like(nql, ql), stored_like(nqr, qr), (fql, fqr, nql, nqr, ol, orr)

            res = tmap(one, l, r, q_l, q_r)
            info = pick(res, 2)

            def rotate_mu(sub):
                def f(u, m, i):
                    if m is None:
                        return m
                    old_l, old_r, new_l, new_r, _, _ = i
                    if old_l is None and old_r is None:
                        return m
                    x = load(m)  # decoded if quantized
                    x, spec = gathered(x.astype(real_dtype(compute_dtype(x.dtype, u.dtype))))
                    return store(scattered(rotate(rotate_back(x, old_l, old_r), new_l, new_r), spec), m)

                return jax.tree.map(f, tree, sub, info, is_leaf=_is_none)

            def reorder_other(sub):
                def f(u, v, i):
                    if v is None or (i[4] is None and i[5] is None):
                        return v
                    x, spec = gathered(load(v))  # decoded if quantized; a permutation, exact otherwise
                    return store(scattered(reorder(x, i[4], i[5]), spec), v)

                return jax.tree.map(f, tree, sub, info, is_leaf=_is_none)

            return l, r, pick(res, 0), pick(res, 1), rebase_state(inner_state, rotate_mu, reorder_other)

        return jax.lax.cond(count == 0, first_step, later_step, None)

    return as_transform(
        Block(
            who,
            init,
            update,
            needs_step=True,
            stateless=False,
            per_leaf=True,
            extra_args=blk.extra_args,
            description=description,
        )
    )


def normalize_by_rms(eps: Hyperparameter = 1e-30) -> GradientTransformation:
    r"""Divides each leaf by its root mean square: $u \leftarrow u / (\epsilon + \sqrt{\operatorname{mean}(u^2)})$.

    $$u \leftarrow \frac{u}{\epsilon + \sqrt{\tfrac{1}{d}\sum_i u_i^2}}$$

    SOAP's `normalize_grads` (per leaf, after the rotation back). Stateless.

    Args:
      eps: $\epsilon \ge 0$.
    """
    return leafwise(
        "normalize_by_rms",
        lambda h, u: u / (h.eps + jnp.sqrt(jnp.mean(jnp.abs(u) ** 2))) if u.size else u,
        hyper={"eps": (eps, NONNEGATIVE)},
    )


__all__ = [
    "EigenbasisState",
    "LEFT_FACTOR",
    "RIGHT_FACTOR",
    "factor_sizes",
    "in_eigenbasis",
    "kronecker_statistics",
    "normalize_by_rms",
    "power_step",
    "rebase_state",
    "reorder",
    "rotate",
    "rotate_back",
    "singular_bases",
]
