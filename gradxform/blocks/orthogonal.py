"""Matrix blocks of Muon: which axes of a leaf form its matrix, Newton-Schulz orthogonalization, shape scaling.

A leaf's *dimension numbers* (`MuonDimensionNumbers`, optax's name and meaning)
say which of its axes are the matrix's rows (the reduction axes of $xW = y$) and
columns (the output axes); every other axis is a batch axis, each slice along it a
matrix of its own. A 2-d weight is `MuonDimensionNumbers(0, 1)`; layers stacked by
`nn.scan` / `vmap`, of shape `(layers, d_in, d_out)`, are `MuonDimensionNumbers(1, 2)`;
a convolution kernel `(h, w, c_in, c_out)` is `MuonDimensionNumbers((0, 1, 2), 3)`.

These blocks look at whole leaves (`per_leaf`): `gradxform.FlatParams` refuses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core.transform import EmptyState, GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, POSITIVE, validate, validate_bool, validate_int
from gradxform.hyper.values import Hyperparameter, resolve
from gradxform.numerics.checks import check_inexact
from gradxform.numerics.dtypes import compute_dtype, real_dtype
from gradxform.numerics.tree_math import tree_scale

PyTree = Any

NS_COEFFS = (3.4445, -4.7750, 2.0315)
"""The quintic's coefficients $(a, b, c)$ of Keller Jordan's Muon (optax's and torch.optim's default)."""
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
"""One $(a, b, c)$ per step, from Dion (Ahn et al. 2025); optax's preset `"dion"`."""
NS_PRESETS = {"standard": NS_COEFFS, "dion": DION_NS_COEFFS}
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf are its matrix's rows (`reduction_axis`) and columns (`output_axis`).

    Each is an axis or a tuple of axes (negative axes count from the end); the other axes are
    batch axes, each slice along them orthogonalized on its own. optax's
    `optax.contrib.MuonDimensionNumbers` is accepted wherever this is.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def is_dimension_numbers(x: Any) -> bool:
    """`x` is a `MuonDimensionNumbers` (ours or optax's: a NamedTuple with these two fields)."""
    return isinstance(x, tuple) and getattr(type(x), "_fields", None) == ("reduction_axis", "output_axis")


def _is_none(x: Any) -> bool:
    return x is None


def _dims_or_none(x: Any) -> bool:
    return x is None or is_dimension_numbers(x)


DimensionNumbers = MuonDimensionNumbers | PyTree | Callable[[PyTree], PyTree] | None


def leaf_dimension_numbers(spec: DimensionNumbers, tree: PyTree, name: str = "muon_weight_dimension_numbers") -> PyTree:
    """A tree with `tree`'s structure holding each leaf's `MuonDimensionNumbers`, or `None` (not a matrix leaf).

    `spec` is `None` (every 2-d leaf is a matrix `(0, 1)`, the others are not), one
    `MuonDimensionNumbers` for every leaf, a tree of them (`None` where a leaf is not a
    matrix; a prefix of the parameters' structure applies to whole subtrees), or a function
    `tree -> such a tree`. `None` leaves of `tree` stay `None`.
    """
    if spec is None:
        return jax.tree.map(lambda x: MuonDimensionNumbers() if jnp.ndim(x) == 2 else None, tree)
    dims = spec(tree) if callable(spec) and not is_dimension_numbers(spec) else spec
    if is_dimension_numbers(dims):
        return jax.tree.map(lambda _: dims, tree)
    try:
        out = jax.tree.map(lambda d, sub: jax.tree.map(lambda _: d, sub), dims, tree, is_leaf=_dims_or_none)
    except (ValueError, TypeError):
        raise ValueError(
            f"{lead('muon')}: {name} does not match the parameters' structure: give a tree of "
            "MuonDimensionNumbers (None for the leaves that are not matrices) with the parameters' structure "
            "or a prefix of it, or a function params -> such a tree."
        ) from None
    for d in jax.tree.leaves(dims, is_leaf=_dims_or_none):
        if d is not None and not is_dimension_numbers(d):
            raise TypeError(f"{lead('muon')}: {name} holds {d!r}; expected MuonDimensionNumbers or None.")
    return out


def _axes(value: Sequence[int] | int, ndim: int, shape: tuple) -> tuple[int, ...]:
    axes = (value,) if isinstance(value, int) else tuple(value)
    if not axes or any(not isinstance(a, int) or not -ndim <= a < ndim for a in axes):
        raise ValueError(f"{lead('muon')}: dimension numbers {value!r} do not fit a leaf of shape {shape}.")
    return tuple(a % ndim for a in axes)


def matrix_axes(shape: tuple, dims: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """`(batch, reduction, output)` axes of a leaf of `shape` under `dims`, checked."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"{lead('muon')}: a leaf of shape {shape} has dimension numbers {dims!r}, but only leaves of rank >= 2 "
            "are matrices; give it None (it then goes to AdamW)."
        )
    red, out = _axes(dims.reduction_axis, ndim, shape), _axes(dims.output_axis, ndim, shape)
    if set(red) & set(out) or len(set(red)) != len(red) or len(set(out)) != len(out):
        raise ValueError(f"{lead('muon')}: dimension numbers {dims!r} repeat an axis (leaf of shape {shape}).")
    batch = tuple(sorted(set(range(ndim)) - set(red) - set(out)))
    return batch, red, out


def fan_in_out(shape: tuple, dims: Any) -> tuple[int, int]:
    """The matrix's rows (fan in) and columns (fan out): products of the reduction and output axes."""
    _, red, out = matrix_axes(shape, dims)
    return math.prod(shape[a] for a in red), math.prod(shape[a] for a in out)


def as_matrices(x: jax.Array, dims: Any) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
    """`x` as a stack `(batch, fan_in, fan_out)` of matrices, and the function that undoes it."""
    batch, red, out = matrix_axes(x.shape, dims)
    order = batch + red + out
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    sizes = [math.prod(x.shape[a] for a in axes) for axes in (batch, red, out)]
    moved = tuple(x.shape[a] for a in order)
    return x.transpose(order).reshape(sizes), lambda m: m.reshape(moved).transpose(inverse)


def gathered(x: jax.Array) -> tuple[jax.Array, Any]:
    """`x` replicated, and its explicit sharding spec to return to (`None` where the types carry no sharding).

    Matrix products over a leaf sharded along its contracted axes are ambiguous where shardings are
    explicit in the types (`AxisType.Explicit` meshes): the leaf is gathered, its matrix math runs on every
    device, and the result is sliced back to the leaf's sharding (`jax.sharding.reshard`). On other meshes
    XLA's propagation places the collectives itself.
    """
    sharding = getattr(jax.typeof(x), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or not getattr(mesh, "_any_axis_explicit", False) or all(a is None for a in sharding.spec):
        return x, None
    return jax.sharding.reshard(x, jax.sharding.PartitionSpec()), sharding.spec


def scattered(x: jax.Array, spec: Any) -> jax.Array:
    """`x` (replicated) back in the sharding `gathered` took it from."""
    return x if spec is None else jax.sharding.reshard(x, spec)


def _ns_step(x: jax.Array, c: jax.Array) -> jax.Array:
    r"""$X \leftarrow aX + (bA + cA^2)X$ with $A = XX^H$."""
    a = x @ x.T.conj()
    return c[0] * x + (c[1] * a + c[2] * a @ a) @ x


def _ns_first_step(x: jax.Array, c: jax.Array, how: str, eps: jax.Array) -> jax.Array:
    """The first step of the 'aol' and 'schatten' preconditionings: $A$ rescaled before the quintic."""
    a = x @ x.T.conj()
    if how == "aol":  # Almost Orthogonal Layer rescaling (Boissin et al. 2025)
        s = jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps))[:, None]
        x, a = x * s, a * s * s.T
    else:  # Schatten-4 rescaling (Grishina et al. 2025)
        s = jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a, ord="fro"), min=eps))
        x, a = x * s, a * s**2
    return c[0] * x + (c[1] * a + c[2] * a @ a) @ x


def newton_schulz(x: jax.Array, coeffs: jax.Array, preconditioning: str = "frobenius", eps: Any = 1e-8) -> jax.Array:
    r"""Orthogonalizes one matrix: $X \approx UV^H$ for $X = U\Sigma V^H$, by the quintic Newton-Schulz iteration.

    $$X_0 = \frac{X}{\lVert X\rVert + \epsilon}, \qquad
    X_{k+1} = a_k X_k + \left(b_k A_k + c_k A_k^2\right) X_k, \quad A_k = X_k X_k^H$$

    over the shorter side (a tall matrix is transposed first, as optax and torch). The
    coefficients `coeffs` (one row $(a_k, b_k, c_k)$ per step) push the singular values of
    $X_0 \in (0, 1]$ towards an interval around 1 (for the default coefficients roughly
    $[0.7, 1.2]$, not exactly 1: the price of a steep slope at 0). The norm is the Frobenius norm
    (`"frobenius"`), the spectral norm (`"spectral"`), or none with a rescaled first step
    (`"aol"`, `"schatten"`). Computed in `x`'s dtype.
    """
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    eps = jnp.asarray(eps, real_dtype(x.dtype))
    if preconditioning == "frobenius":
        x = x / (jnp.linalg.norm(x, ord="fro") + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2) + eps)
    coeffs = coeffs.astype(real_dtype(x.dtype))
    for k in range(coeffs.shape[0]):
        if k == 0 and preconditioning in ("aol", "schatten"):
            x = _ns_first_step(x, coeffs[k], preconditioning, eps)
        else:
            x = _ns_step(x, coeffs[k])
    return x.T if tall else x


def ns_coefficients(who: str, ns_coeffs: Any, ns_steps: int) -> tuple[tuple[float, float, float], ...]:
    """The coefficients of each of `ns_steps` steps, from one triple, one triple per step, or a preset name.

    One triple is used for every step; a sequence of triples must have at least `ns_steps` rows, and
    its last `ns_steps` are used (optax's rule).
    """
    validate_int(who, "ns_steps", ns_steps, 1, what="Newton-Schulz steps")
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_PRESETS:
            presets = sorted(NS_PRESETS)
            raise ValueError(f"{lead(who)}: ns_coeffs={ns_coeffs!r} is not a preset; the presets are {presets}.")
        ns_coeffs = NS_PRESETS[ns_coeffs]
    try:
        arr = [[float(v) for v in row] for row in ns_coeffs] if _nested(ns_coeffs) else [[float(v) for v in ns_coeffs]]
    except (TypeError, ValueError):
        arr = None
    if arr is None or any(len(r) != 3 for r in arr) or not all(math.isfinite(v) for r in arr for v in r):
        raise ValueError(
            f"{lead(who)}: ns_coeffs={ns_coeffs!r} must be three finite numbers (a, b, c), a sequence of such "
            "triples (one per step), or a preset name ('standard', 'dion')."
        )
    if len(arr) == 1 and not _nested(ns_coeffs):
        return tuple(tuple(arr[0]) for _ in range(ns_steps))
    if len(arr) < ns_steps:
        raise ValueError(f"{lead(who)}: ns_coeffs has {len(arr)} triples, fewer than ns_steps={ns_steps}.")
    return tuple(tuple(r) for r in arr[-ns_steps:])


def _nested(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], (list, tuple))


def orthogonalize(
    ns_coeffs: Any = NS_COEFFS,
    ns_steps: int = 5,
    preconditioning: str = "frobenius",
    eps: Hyperparameter = 1e-8,
    dimension_numbers: DimensionNumbers = None,
    adaptive: bool = False,
) -> GradientTransformation:
    r"""Replaces each matrix of the update by its Newton-Schulz orthogonalization (`newton_schulz`).

    $$U \leftarrow \mathrm{NS}(U) \approx \mathrm{polar}(U), \qquad
    \text{adaptive: } U \leftarrow \langle U, \mathrm{NS}(U)\rangle\,\mathrm{NS}(U)$$

    Each leaf is reshaped to a stack of matrices by its dimension numbers, and each matrix
    orthogonalized on its own. With `adaptive`, the orthogonal matrix is scaled by the
    update's dual norm (Bernstein et al. 2024). Stateless.

    Args:
      ns_coeffs: $(a, b, c)$, a sequence of triples (one per step), or a preset name.
      ns_steps: the number of steps (>= 1).
      preconditioning: `"frobenius"`, `"spectral"`, `"aol"` or `"schatten"`.
      eps: $\epsilon \ge 0$ of the first normalization.
      dimension_numbers: which leaves are matrices and which of their axes are rows and columns
        (see `leaf_dimension_numbers`); a leaf with `None` passes through unchanged.
      adaptive: scale by the dual norm.
    """
    who = "orthogonalize"
    coeffs = ns_coefficients(who, ns_coeffs, ns_steps)
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(f"{lead(who)}: preconditioning={preconditioning!r} is not one of {PRECONDITIONINGS}.")
    validate(who, "eps", eps, NONNEGATIVE)
    validate_bool(who, "adaptive", adaptive)

    def init(params):
        check_inexact(params, who)
        return EmptyState()

    def update(updates, state, params, count, extra_args):
        dims = leaf_dimension_numbers(dimension_numbers, updates)
        e = resolve(eps, count, "eps")

        def one(u, d):
            if u is None or d is None:
                return u
            u = u.astype(compute_dtype(u.dtype))
            if u.size == 0:
                return u
            u, spec = gathered(u)
            stack, back = as_matrices(u, d)
            c = jnp.asarray(coeffs, real_dtype(u.dtype))
            o = jax.vmap(lambda m: newton_schulz(m, c, preconditioning, e.astype(real_dtype(u.dtype))))(stack)
            o = back(o)
            if adaptive:
                o = jnp.sum(u.conj() * o) * o
            return scattered(o, spec)

        return jax.tree.map(one, updates, dims, is_leaf=_is_none), state

    return make_block(who, init, update, stateless=True, per_leaf=True)


def scale_by_shape(dimension_numbers: DimensionNumbers = None, consistent_rms: Hyperparameter | None = None):
    r"""Scales each matrix of the update by a factor of its shape (optax's `scale_by_shape`).

    $$\begin{aligned}
    U &\leftarrow \sqrt{\max\left(1, \tfrac{n_{out}}{n_{in}}\right)}\,U \qquad\text{or, with consistent RMS } r, \\
    U &\leftarrow r\sqrt{\max(n_{in}, n_{out})}\,U
    \end{aligned}$$

    where $n_{in}$ and $n_{out}$ are the matrix's rows and columns (Jordan's width scaling;
    Liu et al. 2025's RMS matching, $r = 0.2$ matching AdamW's). Leaves that are not matrices
    pass through. Stateless.

    Args:
      dimension_numbers: as for `orthogonalize`.
      consistent_rms: `None` (width scaling) or $r > 0$.
    """
    who = "scale_by_shape"
    if consistent_rms is not None:
        validate(who, "consistent_rms", consistent_rms, POSITIVE)

    def init(params):
        check_inexact(params, who)
        return EmptyState()

    def update(updates, state, params, count, extra_args):
        dims = leaf_dimension_numbers(dimension_numbers, updates)
        r = None if consistent_rms is None else resolve(consistent_rms, count, "consistent_rms")

        def one(u, d):
            if u is None or d is None:
                return u
            fan_in, fan_out = fan_in_out(u.shape, d)
            if u.size == 0:  # an empty matrix: nothing to scale (and no ratio of its sides)
                return u.astype(compute_dtype(u.dtype))
            rt = real_dtype(compute_dtype(u.dtype))
            if r is None:
                factor = jnp.sqrt(jnp.asarray(max(1.0, fan_out / fan_in), rt))
            else:
                factor = jnp.sqrt(jnp.asarray(max(fan_in, fan_out), rt)) * r.astype(rt)
            return tree_scale(factor, u.astype(compute_dtype(u.dtype)))

        return jax.tree.map(one, updates, dims, is_leaf=_is_none), state

    return make_block(who, init, update, stateless=True, per_leaf=True)
