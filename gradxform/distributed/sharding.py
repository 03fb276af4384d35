"""Optimizer state on a device mesh: sharded like the parameters, or ZeRO-1 across data parallelism.

Every elementwise block computes leaf by leaf, so a moment sharded like its
parameter stays so through `update` with no communication. What the library has
to get right is *where state is born*:

* `init` on sharded arrays, on `jax.ShapeDtypeStruct`s carrying a sharding, and
  under plain `jax.jit(tx.init)` builds each moment with its parameter's sharding
  (`gradxform.numerics.full_like`);
* `state_sharding` computes the state's shardings for `out_shardings` (moments:
  their parameter's sharding, through the field's layout; step counts and other
  scalars: replicated) and `init_sharded` uses them, on arrays or on bare shapes.

Which state leaf belongs to which parameter is declared, not guessed: a state
class marks its per-parameter fields (`gradxform.core.state.per_param`), each with
a layout that maps the parameter's sharding to the leaf's. States made by foreign
(optax) transforms carry no marks; for them, and only for them, a subtree with
the parameters' tree structure and shapes, of float leaves, is taken as
per-parameter.

`zero1` wraps any transform so that its state, and the update computation, are
split across a data-parallel mesh axis (ZeRO stage 1): each device holds `1/N` of
every moment whose parameter has a dimension divisible by `N`; the only
communication is one all-gather of each outgoing update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.core import GradientTransformation, block_of, make_block, public
from gradxform.core.state import LIKE, Layout, param_fields
from gradxform.errors import lead
from gradxform.numerics import dtype_of, shape_of
from gradxform.numerics.quantize import is_quantized
from gradxform.numerics.tree_math import fitted

PyTree = Any

__all__ = ["init_sharded", "map_state", "state_sharding", "zero1", "zero1_sharding"]


def _is_sharding(x: Any) -> bool:
    return isinstance(x, jax.sharding.Sharding)


def _named_leaves(param_sharding: PyTree, who: str) -> list[NamedSharding]:
    leaves = jax.tree.leaves(param_sharding, is_leaf=_is_sharding)
    for s in leaves:
        if not isinstance(s, NamedSharding):
            raise TypeError(
                f"{who}: expected jax.sharding.NamedSharding for every parameter, got {type(s).__name__}. "
                "Place parameters with NamedSharding(mesh, PartitionSpec(...))."
            )
    if not leaves:
        raise ValueError(f"{who}: the parameter tree has no leaves to take a mesh from.")
    return leaves


def _params_like(params: PyTree) -> Callable[[Any], bool]:
    """For foreign states only: is this subtree shaped like the parameter tree (float leaves)?

    `None` entries (parameters a `masked` or `partition` left out) match anything; at
    least one leaf must be an array.
    """
    leaves, treedef = jax.tree.flatten(params, is_leaf=_is_none)

    def is_params_like(x: Any) -> bool:
        x_leaves, x_def = jax.tree.flatten(x, is_leaf=_is_none)
        if x_def != treedef:
            return False
        pairs = [(y, p) for y, p in zip(x_leaves, leaves) if y is not None]
        return bool(pairs) and all(
            p is not None and shape_of(y) == shape_of(p) and jnp.issubdtype(dtype_of(y), jnp.inexact) for y, p in pairs
        )

    return is_params_like


def _is_none(x: Any) -> bool:
    return x is None


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _is_own(cls: type) -> bool:
    """One of gradxform's own state classes (whose unmarked leaf fields are never per-parameter)."""
    return cls.__module__.split(".")[0] == "gradxform"


def map_state(
    state: PyTree,
    params: PyTree,
    on_params: Callable[[Layout, PyTree], PyTree],
    on_other: Callable[[Any], Any],
) -> PyTree:
    """Rebuilds `state`: `on_params(layout, subtree)` for each per-parameter subtree, `on_other(leaf)` elsewhere.

    Per-parameter subtrees are the marked fields of state classes
    (`gradxform.core.state.per_param`). A field of a marked class, or a leaf field of
    one of gradxform's own state classes, that is not marked is never per-parameter,
    whatever its shape (a scalar statistic is not a scalar parameter's moment). Only
    for foreign (e.g. optax) states, which carry no marks, is a subtree shaped like
    `params` taken as per-parameter (see `_params_like`): the root, the children of
    foreign NamedTuples and of plain dicts, lists and tuples, and the nested states
    that gradxform's unmarked wrapper states hold.
    """
    is_p = _params_like(params)

    def walk(node: Any, candidate: bool) -> Any:
        marks = param_fields(node)
        if marks:
            return type(node)(
                *(
                    on_params(marks[f], getattr(node, f)) if f in marks else walk(getattr(node, f), False)
                    for f in node._fields
                )
            )
        if candidate and is_p(node):
            return on_params(LIKE, node)
        if _is_named_tuple(node):
            own = _is_own(type(node))
            return type(node)(*(walk(v, not own or not _is_leaf_value(v)) for v in node))
        if isinstance(node, dict):
            return type(node)((k, walk(v, True)) for k, v in node.items())
        if isinstance(node, (list, tuple)):
            return type(node)(walk(v, True) for v in node)
        return jax.tree.map(on_other, node)

    return walk(state, True)


def _is_leaf_value(x: Any) -> bool:
    """An array (or other pytree leaf) or `None`, as opposed to a container of them."""
    return x is None or jax.tree_util.treedef_is_leaf(jax.tree.structure(x))


def _leafwise(layout: Layout, sub: PyTree, params: PyTree, param_sharding: PyTree) -> PyTree:
    """Each leaf of a per-parameter subtree mapped to its sharding through `layout` (`None` stays `None`).

    A quantized moment (`gradxform.quantized`) gets its parameter's sharding on its codes and its
    scales (blocks run along the last axis; see `_quantized_sharding`).
    """

    def one(path, leaf, p, s):
        if leaf is None:
            return None
        if is_quantized(leaf):
            return _quantized_sharding(path, leaf, layout.sharding(s, shape_of(p), shape_of(p)))
        return layout.sharding(s, shape_of(p), shape_of(leaf))

    return jax.tree_util.tree_map_with_path(
        one, sub, params, param_sharding, is_leaf=lambda x: x is None or is_quantized(x)
    )


def _quantized_sharding(path: tuple, q: Any, s: NamedSharding) -> Any:
    """The shardings of a quantized moment's codes and scales: the parameter's, so no block straddles a shard.

    Blocks run along the last axis; when that axis is split over `k` devices, each device's `n / k` entries
    must be whole blocks, else a block would straddle two devices (and quantizing it would communicate).
    """
    shape = q.shape
    spec = tuple(s.spec) + (None,) * (len(shape) - len(s.spec))
    if shape and spec[-1] is not None:
        names = spec[-1] if isinstance(spec[-1], tuple) else (spec[-1],)
        ways = 1
        for a in names:
            ways *= s.mesh.shape[a]
        n = shape[-1]
        per = n // ways if n % ways == 0 else None
        if ways > 1 and (per is None or per % min(q.block_size, n) or (q.code.bits == 4 and per % 2)):
            raise ValueError(
                f"{lead('state_sharding')}: the quantized moment at {jax.tree_util.keystr(path) or '<root>'} "
                f"has blocks of {min(q.block_size, n)} along a last axis of {n} split {ways} ways; "
                f"a block would straddle two devices. Choose a block_size that divides {n // ways if per else n}, "
                "or shard another axis."
            )
    return type(q)(fitted(s, shape_of(q.codes)), fitted(s, shape_of(q.scales)), q.code, q.block_size, q.n)


def _sharding_of(params: PyTree, who: str) -> PyTree:
    def one(x):
        s = getattr(x, "sharding", None)
        if s is None:
            raise ValueError(
                f"{who}: a parameter leaf ({dtype_of(x)}{list(shape_of(x))}) has no sharding; pass "
                "param_sharding=, or give jax.ShapeDtypeStruct(shape, dtype, sharding=...) leaves."
            )
        return s

    return jax.tree.map(one, params)


def zero1_sharding(param_sharding: PyTree, params: PyTree, axis: str = "data") -> PyTree:
    """Each parameter's sharding, further split over mesh `axis` (ZeRO-1 placement of its moments).

    The first dimension that is not sharded and whose size divides by the axis
    size takes `axis`; failing that, the first sharded dimension whose size
    divides by the product of its axes and `axis` adds it. A leaf with no
    such dimension (a scalar, an odd-sized bias) keeps its sharding, replicated
    over `axis`: it is small. A leaf already sharded over `axis` is kept.

    Args:
      param_sharding: the parameters' shardings.
      params: the parameters (for their shapes).
      axis: the mesh axis to add.

    Returns:
      A tree of shardings, the parameters' structure.
    """
    _named_leaves(param_sharding, "zero1_sharding")

    def one(s: NamedSharding, x: Any) -> NamedSharding:
        if axis not in s.mesh.axis_names:
            raise ValueError(f"zero1_sharding: axis={axis!r} is not a mesh axis; the mesh has {s.mesh.axis_names}.")
        shape = shape_of(x)
        spec = list(s.spec) + [None] * (len(shape) - len(s.spec))
        used = {a for p in spec if p is not None for a in (p if isinstance(p, tuple) else (p,))}
        if axis in used:
            return s
        n = s.mesh.shape[axis]
        for i, p in enumerate(spec):
            if p is None and shape[i] % n == 0:
                spec[i] = axis
                return NamedSharding(s.mesh, PartitionSpec(*spec), memory_kind=s.memory_kind)
        for i, p in enumerate(spec):
            names = p if isinstance(p, tuple) else (p,)
            if p is not None:
                size = n
                for a in names:
                    size *= s.mesh.shape[a]
                if shape[i] % size == 0:
                    spec[i] = (*names, axis)
                    return NamedSharding(s.mesh, PartitionSpec(*spec), memory_kind=s.memory_kind)
        return s

    return jax.tree.map(one, param_sharding, params, is_leaf=_is_sharding)


def state_sharding(
    tx: GradientTransformation, params: PyTree, param_sharding: PyTree | None = None, *, zero1_axis: str | None = None
) -> PyTree:
    """The sharding of every leaf of `tx.init(params)`: a tree of `NamedSharding` for `out_shardings`.

    Parameter-shaped state leaves get their parameter's sharding (further split
    over `zero1_axis` if given, see `zero1_sharding`); every other leaf
    (step counts, scalar products) is replicated over the mesh. `params` may
    be arrays or `jax.ShapeDtypeStruct` s; `param_sharding` defaults to
    their `.sharding`. Nothing is computed: it traces `tx.init` abstractly.

    Args:
      tx: the optimizer.
      params: the parameters, arrays or `jax.ShapeDtypeStruct`s.
      param_sharding: their shardings; `None` means their `.sharding`.
      zero1_axis: a mesh axis to split the moments over further (ZeRO-1), or `None`.

    Returns:
      A tree of `NamedSharding`, the state's structure.
    """
    who = "state_sharding"
    param_sharding = _sharding_of(params, who) if param_sharding is None else param_sharding
    mesh = _named_leaves(param_sharding, who)[0].mesh
    if zero1_axis is not None:
        param_sharding = zero1_sharding(param_sharding, params, zero1_axis)
    shapes = jax.eval_shape(tx.init, params)
    replicated = NamedSharding(mesh, PartitionSpec())
    return map_state(
        shapes, params, lambda layout, sub: _leafwise(layout, sub, params, param_sharding), lambda leaf: replicated
    )


def init_sharded(
    tx: GradientTransformation, params: PyTree, param_sharding: PyTree | None = None, *, zero1_axis: str | None = None
) -> PyTree:
    """`tx.init(params)` compiled with `state_sharding` as its `out_shardings`.

    Each device builds only its own shard of each moment. `params` may be
    `jax.ShapeDtypeStruct` s (an abstract model: nothing is materialised; the
    transform's `init` must then need only shapes, as every block here does).

    Args:
      tx: the optimizer.
      params: the parameters, arrays or `jax.ShapeDtypeStruct`s.
      param_sharding: their shardings; `None` means their `.sharding`.
      zero1_axis: a mesh axis to split the moments over further (ZeRO-1), or `None`.

    Returns:
      The state, each leaf placed by `state_sharding`.
    """
    shardings = state_sharding(tx, params, param_sharding, zero1_axis=zero1_axis)
    leaves = jax.tree.leaves(params)
    if all(isinstance(x, jax.Array) for x in leaves):
        return jax.jit(tx.init, out_shardings=shardings)(params)
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(shape_of(x), dtype_of(x)), params)
    return jax.jit(lambda: tx.init(shapes), out_shardings=shardings)()


def _constrain(tree: PyTree, shardings: PyTree) -> PyTree:
    """Places each leaf on its sharding: `reshard` on Explicit mesh axes, a sharding constraint on Auto ones."""

    def one(x, s):
        if x is None:
            return None
        if any(t == jax.sharding.AxisType.Explicit for t in s.mesh.axis_types):
            return jax.sharding.reshard(x, s)
        return jax.lax.with_sharding_constraint(x, s)

    return jax.tree.map(one, tree, shardings, is_leaf=lambda x: x is None)


@public
def zero1(tx: GradientTransformation, param_sharding: PyTree, axis: str = "data") -> GradientTransformation:
    """ZeRO-1: `tx` with its state, and its update computation, split over the data-parallel `axis`.

    The wrapped `update` takes each device's slice of the (all-reduced) gradients
    and parameters (no communication), updates its slice of every moment, and
    all-gathers the outgoing updates back to `param_sharding`; results equal
    `tx`'s. Use it under `jax.jit`; `jax.jit(zero1_tx.init)` or `init_sharded` with
    `zero1_axis` builds each moment on its slice, so no device ever holds a whole
    moment.

    Args:
      tx: the optimizer.
      param_sharding: the parameters' sharding, a tree of `NamedSharding`
        (parameters are replicated over `axis`, as in data parallelism).
      axis: the data-parallel mesh axis.
    """
    block = block_of(tx, "zero1 (tx)")
    mesh = _named_leaves(param_sharding, "zero1")[0].mesh
    if axis not in mesh.axis_names:
        raise ValueError(f"{lead('zero1')}: axis={axis!r} is not a mesh axis; the mesh has {mesh.axis_names}.")

    def place_state(state: PyTree, params: PyTree, split: PyTree) -> PyTree:
        # Moments are split; scalars (step counts) are left to jit, which replicates them.
        return map_state(
            state, params, lambda layout, sub: _constrain(sub, _leafwise(layout, sub, params, split)), lambda x: x
        )

    def init(params):
        split = zero1_sharding(param_sharding, params, axis)
        return place_state(block.init(_constrain(params, split)), params, split)

    def update(updates, state, params, count, extra_args):
        split = zero1_sharding(param_sharding, updates, axis)
        g = _constrain(updates, split)
        p = None if params is None else _constrain(params, split)
        out, state = block.update(g, state, p, count, extra_args)
        return _constrain(out, param_sharding), place_state(state, updates, split)

    return make_block(
        "zero1", init, update, needs_step=block.needs_step, per_leaf=block.per_leaf, extra_args=block.extra_args
    )
