"""Adafactor's factored second moment: a row and a column statistic in place of a full matrix of them.

For a leaf of shape $(\\dots, n, m)$ (its two largest axes), Adafactor (Shazeer & Stern
2018) keeps moving averages of $g^2$'s means along each of them, $R$ (one per row) and
$C$ (one per column), and estimates the second moment by their rank-1 product
$\\hat V = R\\,C / \\operatorname{mean}(R)$: $n + m$ numbers instead of $nm$.

**Layouts.** The state keeps optax's layout: `v_row`, `v_col` and `v` hold one leaf
per parameter each; a factored parameter has `v_row` (its shape without the largest
axis), `v_col` (without the second largest) and a 1-element placeholder `v`; any other
has the full `v` and placeholders for the factors. Each field's `Layout` says which
parameter axes its leaf keeps, so a factor of a sharded parameter is sharded along the
axes it keeps, and placeholders are replicated.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.blocks.base import storage, stored
from gradxform.core.state import Layout, per_param
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, validate, validate_bool, validate_int
from gradxform.hyper.values import Hyperparameter, resolve
from gradxform.numerics.checks import check_inexact
from gradxform.numerics.dtypes import compute_dtype, dtype_of, real_dtype, shape_of
from gradxform.numerics.tree_math import abs_sq, full_like

PyTree = Any


def factored_dims(shape: tuple, factored: bool, min_dim_size_to_factor: int) -> tuple[int, int] | None:
    """`(d1, d0)`: the second largest and the largest axis of `shape`, or `None` if the leaf is not factored.

    A leaf is factored when `factored`, it has two axes or more, and its second largest
    axis has at least `min_dim_size_to_factor` entries (optax's rule, ties broken as
    `numpy.argsort` breaks them).
    """
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _largest_two(shape: tuple) -> tuple[int, int] | None:
    if len(shape) < 2:
        return None
    order = np.argsort(shape)
    return int(order[-2]), int(order[-1])


def _without(sharding: Any, param_shape: tuple, axis: int) -> Any:
    """`sharding` with the entry of parameter axis `axis` removed (the leaf keeps the other axes)."""
    spec = tuple(sharding.spec) + (None,) * (len(param_shape) - len(sharding.spec))
    kept = spec[:axis] + spec[axis + 1 :]
    return NamedSharding(sharding.mesh, PartitionSpec(*kept), memory_kind=sharding.memory_kind)


def _replicated(sharding: Any) -> Any:
    return NamedSharding(sharding.mesh, PartitionSpec(), memory_kind=sharding.memory_kind)


def _factor_layout(name: str, which: int) -> Layout:
    """The layout of a factor that drops the parameter's largest (`which=1`) or second largest (`0`) axis."""

    def sharding(param_sharding, param_shape, leaf_shape):
        dims = _largest_two(tuple(param_shape))
        if dims is not None:
            axis = dims[which]
            if tuple(leaf_shape) == tuple(np.delete(np.asarray(param_shape, int), axis)):
                return _without(param_sharding, tuple(param_shape), axis)
        return _replicated(param_sharding)  # a placeholder

    return Layout(name, sharding)


def _full_layout(param_sharding, param_shape, leaf_shape):
    return param_sharding if tuple(leaf_shape) == tuple(param_shape) else _replicated(param_sharding)


ROW_FACTOR = _factor_layout("factored_row", 1)
"""`v_row`: the parameter without its largest axis (sharded along the axes it keeps), or a placeholder."""
COL_FACTOR = _factor_layout("factored_col", 0)
"""`v_col`: the parameter without its second largest axis, or a placeholder."""
FULL_OR_PLACEHOLDER = Layout("full_or_placeholder", _full_layout)
"""`v`: the parameter's shape (sharded like it) where the leaf is not factored, else a replicated placeholder."""


@per_param("v_row", layout=ROW_FACTOR)
@per_param("v_col", layout=COL_FACTOR)
@per_param("v", layout=FULL_OR_PLACEHOLDER)
class FactoredRmsState(NamedTuple):
    """Adafactor's second moment: row and column factors (factored leaves) or the full moment (the others).

    Leaves a parameter does not use hold a 1-element placeholder, as in optax's state.
    """

    v_row: PyTree
    v_col: PyTree
    v: PyTree


def _reduced_zeros(p: Any, axis: int, rule) -> jax.Array:
    """Zeros in `p`'s shape without `axis`, placed along the axes they keep (a sum of zeros placed like `p`)."""
    return jnp.sum(full_like(p, 0, rule), axis=axis)


def decay_rate_pow(count: jax.Array, decay_rate: jax.Array, step_offset: int) -> jax.Array:
    """$\\hat\\beta_{2,t} = 1 - t^{-c}$, $t$ the step number less `step_offset`, in float32 (as optax)."""
    t = (count - step_offset + 1).astype(jnp.float32)
    return 1.0 - t ** (-decay_rate.astype(jnp.float32))


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: Hyperparameter = 0.8,
    step_offset: int = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: Hyperparameter = 1e-30,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Divides the updates by Adafactor's (factored) root-mean-square estimate (Shazeer & Stern 2018).

    With $\hat\beta_{2,t} = 1 - t^{-c}$ and $G_t = g_t^2 + \epsilon_1$, for a factored leaf
    of largest axes $(n, m)$:

    $$\begin{aligned}
    R_t &= \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\,\operatorname{mean}_m(G_t), \qquad
    C_t = \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\,\operatorname{mean}_n(G_t), \\
    \hat V_t &= \frac{R_t\,C_t}{\operatorname{mean}_n(R_t)}, \qquad u_t = \frac{g_t}{\sqrt{\hat V_t}}
    \end{aligned}$$

    and for any other leaf $V_t = \hat\beta_{2,t} V_{t-1} + (1-\hat\beta_{2,t}) G_t$,
    $u_t = g_t/\sqrt{V_t}$. $\hat\beta_{2,t}$ is computed in float32, as optax does.
    `optax.scale_by_factored_rms`'s formulas and state.

    Args:
      factored: factor the second moment of leaves with two axes or more (else keep it whole).
      decay_rate: $c \ge 0$ of the decay schedule $1 - t^{-c}$.
      step_offset: an int $\ge 0$ subtracted from the step number (to restart the schedule when fine-tuning).
      min_dim_size_to_factor: factor only leaves whose second largest axis has at least this many entries.
      epsilon: $\epsilon_1 \ge 0$, added to $g^2$.
      state_dtype: the dtype the statistics are stored in (default: the parameter's real dtype).
    """
    who = "scale_by_factored_rms"
    validate_bool(who, "factored", factored)
    validate(who, "decay_rate", decay_rate, NONNEGATIVE)
    validate_int(who, "step_offset", step_offset, 0)
    validate_int(who, "min_dim_size_to_factor", min_dim_size_to_factor, 0)
    validate(who, "epsilon", epsilon, NONNEGATIVE)
    rule = storage(who, state_dtype, real=True)

    def dims(p):
        return factored_dims(tuple(shape_of(p)), factored, min_dim_size_to_factor)

    def shapes(shape):
        """The shapes of `(v_row, v_col, v)` for a leaf of `shape`."""
        d = factored_dims(tuple(shape), factored, min_dim_size_to_factor)
        if d is None:
            return (1,), (1,), tuple(shape)
        d1, d0 = d
        return tuple(int(n) for n in np.delete(shape, d0)), tuple(int(n) for n in np.delete(shape, d1)), (1,)

    def init(params):
        check_inexact(params, who)

        def one(p):
            dt = rule(dtype_of(p))

            def placeholder():  # a buffer of its own each time: any state can be donated
                return jnp.zeros((1,), dt)

            d = dims(p)
            if d is None:
                return placeholder(), placeholder(), full_like(p, 0, rule)
            d1, d0 = d
            return _reduced_zeros(p, d0, rule), _reduced_zeros(p, d1, rule), placeholder()

        triples = jax.tree.map(one, params)
        return FactoredRmsState(*(jax.tree.map(lambda _, t, i=i: t[i], params, triples) for i in range(3)))

    def update(updates, state, params, count, extra_args):
        rate = decay_rate_pow(count, resolve(decay_rate, count, "decay_rate"), step_offset)
        eps = resolve(epsilon, count, "epsilon")

        def one(g, v_row, v_col, v):
            want = shapes(shape_of(g))
            if (shape_of(v_row), shape_of(v_col), shape_of(v)) != want:
                raise ValueError(
                    f"{lead(who)}: the state's factors have shapes {list(shape_of(v_row))}, {list(shape_of(v_col))}, "
                    f"{list(shape_of(v))} for an update of shape {list(shape_of(g))} (expected "
                    f"{', '.join(str(list(w)) for w in want)}); use the state this optimizer's init made."
                )
            ct = compute_dtype(g.dtype, v.dtype)
            rt = real_dtype(ct)
            g = g.astype(ct)
            beta = rate.astype(rt)
            one_minus = (1.0 - rate).astype(rt)
            if not g.size:  # an empty leaf: no statistic to average (a mean over no entries is NaN)
                return g, v_row, v_col, v
            g_sq = abs_sq(g) + eps.astype(rt)
            d = dims(g)
            if d is None:
                new_v = beta * v.astype(rt) + one_minus * g_sq
                return g * new_v**-0.5, v_row, v_col, new_v
            d1, d0 = d
            new_row = beta * v_row.astype(rt) + one_minus * jnp.mean(g_sq, axis=d0)
            new_col = beta * v_col.astype(rt) + one_minus * jnp.mean(g_sq, axis=d1)
            reduced_d1 = d1 - 1 if d1 > d0 else d1
            row_factor = (new_row / jnp.mean(new_row, axis=reduced_d1, keepdims=True)) ** -0.5
            col_factor = new_col**-0.5
            out = g * jnp.expand_dims(row_factor, d0) * jnp.expand_dims(col_factor, d1)
            return out, new_row, new_col, v

        results = jax.tree.map(one, updates, state.v_row, state.v_col, state.v)
        pick = [jax.tree.map(lambda _, r, i=i: r[i], updates, results) for i in range(4)]
        new = FactoredRmsState(stored(pick[1], state.v_row), stored(pick[2], state.v_col), stored(pick[3], state.v))
        return pick[0], new

    return make_block(who, init, update, needs_step=True, per_leaf=True)
