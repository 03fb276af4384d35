"""Named state: the optimizer's step count, per-parameter marks, and access to state by name.

**The step count.** An optimizer keeps one int32 count, in a `StepState`
at the top of its state, and only if one of its blocks reads it (bias correction,
a schedule); its blocks keep none. `count` is the number of updates taken.

**Per-parameter marks.** A state class marks the fields that hold one leaf per
parameter with `per_param`, so sharding, ZeRO-1, checkpoints and quantized
storage find a parameter's moments by this declaration, never by matching shapes.
A field's *layout* says how its leaf relates to the parameter: `LIKE` (the
parameter's shape) for every elementwise moment; factored and matrix states
declare their own.

**By name.** `tree_get`, `tree_set` and `tree_map_params` have
the names and meaning of `optax.tree_utils`' functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from gradxform.errors import lead

PyTree = Any
KeyPath = tuple


class StepState(NamedTuple):
    """The state of an optimizer that reads its step count: `count` updates taken, and its blocks' state."""

    count: jax.Array
    inner_state: Any


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a marked state leaf relates to its parameter.

    `name` identifies the layout; `sharding(param_sharding, param_shape, leaf_shape)`
    returns the leaf's sharding given its parameter's (the identity for `LIKE`).
    """

    name: str
    sharding: Callable[[Any, tuple, tuple], Any]


LIKE = Layout("like", lambda sharding, param_shape, leaf_shape: sharding)
"""The leaf has its parameter's shape and is sharded like it (every elementwise moment)."""

_MARK = "__gradxform_per_param__"


def per_param(*fields: str, layout: Layout = LIKE) -> Callable[[type], type]:
    """Class decorator: these fields of a state NamedTuple hold one leaf per parameter, in `layout`.

    The field's value is a tree with the parameters' structure (`None` where a
    wrapper such as `gradxform.masked` left a parameter out).
    """

    def mark(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise TypeError(f"per_param: {cls!r} is not a NamedTuple class.")
        unknown = [f for f in fields if f not in cls._fields]
        if unknown:
            raise ValueError(f"per_param: {cls.__name__} has no field {unknown[0]!r}; its fields are {cls._fields}.")
        marks = dict(getattr(cls, _MARK, {}))
        marks.update({f: layout for f in fields})
        setattr(cls, _MARK, marks)
        return cls

    return mark


def param_fields(node: Any) -> dict[str, Layout]:
    """The marked fields of a state node (`{}` for anything unmarked)."""
    return dict(getattr(type(node), _MARK, {})) if _is_named_tuple(node) else {}


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(node: Any) -> list[tuple[Any, Any]] | None:
    """`(key entry, child)` for a NamedTuple, dict, list or tuple node; `None` for anything else."""
    if _is_named_tuple(node):
        return [(jax.tree_util.GetAttrKey(f), getattr(node, f)) for f in node._fields]
    if isinstance(node, dict):
        return [(jax.tree_util.DictKey(k), v) for k, v in node.items()]
    if isinstance(node, (list, tuple)):
        return [(jax.tree_util.SequenceKey(i), v) for i, v in enumerate(node)]
    return None


def map_param_subtrees(
    state: PyTree,
    on_param: Callable[[Layout, PyTree], PyTree],
    on_other: Callable[[Any], Any],
) -> PyTree:
    """Rebuilds `state`: `on_param(layout, subtree)` for each marked field, `on_other(leaf)` for other leaves.

    Walks NamedTuples, dicts, lists and tuples; any other pytree node is treated as
    unmarked and its leaves go to `on_other`.
    """

    def walk(node: Any) -> Any:
        marks = param_fields(node)
        if marks:
            return type(node)(
                *(on_param(marks[f], getattr(node, f)) if f in marks else walk(getattr(node, f)) for f in node._fields)
            )
        if _is_named_tuple(node):
            return type(node)(*(walk(getattr(node, f)) for f in node._fields))
        if isinstance(node, dict):
            return type(node)((k, walk(v)) for k, v in node.items())
        if isinstance(node, (list, tuple)):
            return type(node)(walk(v) for v in node)
        return jax.tree.map(on_other, node)

    return walk(state)


def has_marks(state: PyTree) -> bool:
    """True when some node of `state` has marked per-parameter fields."""
    found = []
    map_param_subtrees(state, lambda layout, sub: found.append(1) or sub, lambda x: x)
    return bool(found)


_EVAL = "__gradxform_eval_params__"


def evaluates(fn: Callable[[Any, PyTree], PyTree]) -> Callable[[type], type]:
    """Class decorator: a state node of this class knows the weights to evaluate.

    `fn(node, params) -> params` returns them (an averaged iterate, the slow weights
    of lookahead, schedule-free's interpolation); `eval_params` finds the node.
    """

    def mark(cls: type) -> type:
        setattr(cls, _EVAL, staticmethod(fn))
        return cls

    return mark


def eval_params(state: PyTree, params: PyTree) -> PyTree:
    """The weights to evaluate: those an optimizer keeps for evaluation, else `params` themselves.

    Optimizers that train one set of weights and evaluate another (averaging,
    lookahead, schedule-free) mark their state class with `evaluates`; for every other
    optimizer this returns `params`. If several nodes of the state evaluate, the
    outermost wins (a wrapper's view of its inner optimizer).

    Args:
      state: an optimizer state.
      params: the parameters being trained.
    """
    found: list[Any] = []

    def walk(node: Any) -> None:
        if found:
            return
        if hasattr(type(node), _EVAL):
            found.append(node)
            return
        children = _children(node)
        for _, child in children or ():
            walk(child)

    walk(state)
    return getattr(type(found[0]), _EVAL)(found[0], params) if found else params


def tree_get_all_with_path(
    tree: PyTree, key: Any, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every `(path, value)` in `tree` whose NamedTuple field, dict key or NamedTuple class name is `key`.

    Searched depth first, outer matches before the matches inside them;
    `filtering(path, value)` keeps only the pairs it returns True for.

    Args:
      tree: an optimizer state or any pytree.
      key: the NamedTuple field, dict key or NamedTuple class name to find.
      filtering: `filtering(path, value) -> bool` keeps only the pairs it returns True for.

    Returns:
      A list of `(key_path, value)` pairs.
    """
    found: list[tuple[KeyPath, Any]] = []

    def walk(path: KeyPath, node: Any) -> None:
        if _is_named_tuple(node) and type(node).__name__ == key:
            found.append((path, node))
        children = _children(node)
        if children is None:
            return
        for entry, child in children:
            name = entry.name if isinstance(entry, jax.tree_util.GetAttrKey) else getattr(entry, "key", None)
            if name == key and not (isinstance(node, (list, tuple)) and not _is_named_tuple(node)):
                found.append(((*path, entry), child))
            walk((*path, entry), child)

    walk((), tree)
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def tree_get(
    tree: PyTree, key: Any, default: Any = None, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> Any:
    """The one value of `tree` at the field, dict key or NamedTuple name `key` (`default` if none).

    `tree_get(adam_state, "mu")` is Adam's first moment, `tree_get(state, "count")`
    the optimizer's step count. Raises `KeyError` if `key` occurs more than once
    (narrow it with `filtering(path, value) -> bool`).

    Args:
      tree: an optimizer state or any pytree.
      key: the NamedTuple field, dict key or NamedTuple class name to find.
      default: returned when `key` does not occur.
      filtering: `filtering(path, value) -> bool` keeps only the matches it returns True for.

    Returns:
      The value found, or `default`.
    """
    found = tree_get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(p) or "<root>" for p, _ in found)
        raise KeyError(
            f"{lead('tree_get')}: {key!r} occurs {len(found)} times in the tree, at {paths}; pass filtering=."
        )
    return found[0][1] if found else default


def tree_set(tree: PyTree, filtering: Callable[[KeyPath, Any], bool] | None = None, /, **values: Any) -> PyTree:
    """A copy of `tree` with every field or dict key named in `values` replaced by its value.

    Raises `KeyError` naming a key that does not occur (or that `filtering`
    rejects everywhere). Values are placed as given (no cast).

    Args:
      tree: an optimizer state or any pytree.
      filtering: `filtering(path, value) -> bool`; only matches it accepts are replaced.
      **values: `key=value` for each field or dict key to replace.

    Returns:
      The new tree (`tree` itself is unchanged).
    """
    for key in values:
        if not tree_get_all_with_path(tree, key, filtering):
            raise KeyError(f"{lead('tree_set')}: {key!r} does not occur in the tree.")

    def keep(path: KeyPath, value: Any) -> bool:
        return filtering is None or filtering(path, value)

    def walk(path: KeyPath, node: Any) -> Any:
        if _is_named_tuple(node):
            fields = {}
            for f in node._fields:
                child = getattr(node, f)
                p = (*path, jax.tree_util.GetAttrKey(f))
                fields[f] = values[f] if f in values and keep(p, child) else walk(p, child)
            return type(node)(**fields)
        if isinstance(node, dict):
            out = {}
            for k, child in node.items():
                p = (*path, jax.tree_util.DictKey(k))
                out[k] = values[k] if k in values and keep(p, child) else walk(p, child)
            return type(node)(out) if type(node) is not dict else out
        if isinstance(node, (list, tuple)):
            return type(node)(walk((*path, jax.tree_util.SequenceKey(i)), c) for i, c in enumerate(node))
        return node

    return walk((), tree)


def tree_map_params(
    initable: Any,
    f: Callable[..., Any],
    state: PyTree,
    /,
    *rest: PyTree,
    transform_non_params: Callable[[Any], Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Applies `f` to every parameter-shaped part of an optimizer state (`optax.tree_map_params`' meaning).

    `f(leaf, *rest_leaves)` runs on each leaf of each field marked
    `per_param` (`rest` are trees with the parameters' structure, e.g. their
    partition specs); every other leaf goes to `transform_non_params` (kept as it is
    if that is `None`). `initable` (the optimizer, or its `init`) is accepted
    for optax's signature; the marks make it unnecessary, except for states built by
    foreign (optax) transforms, whose parameter-shaped parts are found by calling
    `initable`'s init on a placeholder, as optax does.

    Args:
      initable: the optimizer (or its `init`), as in optax.
      f: `f(leaf, *rest_leaves)`, applied to the parameter-shaped leaves.
      state: the optimizer state.
      *rest: trees with the parameters' structure, passed to `f` beside each leaf.
      transform_non_params: applied to every other leaf; `None` keeps them.
      is_leaf: as in `jax.tree.map`, for `rest`.

    Returns:
      A state of the same structure.
    """
    if has_marks(state) or initable is None:
        from gradxform.numerics.quantize import is_quantized

        def leaf(x: Any) -> bool:  # a quantized moment is one parameter's leaf (codes and scales together)
            return x is None or is_quantized(x) or (is_leaf is not None and is_leaf(x))

        def on_param(layout: Layout, sub: PyTree) -> PyTree:
            # `None` marks a parameter that `masked` / `partition` left out: it stays `None`,
            # whatever `rest` holds there.
            return jax.tree.map(lambda x, *r: None if x is None else f(x, *r), sub, *rest, is_leaf=leaf)

        other = transform_non_params if transform_non_params is not None else (lambda x: x)
        return map_param_subtrees(state, on_param, other)
    return _placeholder_map(initable, f, state, rest, transform_non_params, is_leaf)


@jax.tree_util.register_pytree_node_class
class _Placeholder:
    """Stands for the whole parameter tree when a foreign init is traced for `tree_map_params`."""

    def tree_flatten(self):
        return (), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls()


def _placeholder_map(initable, f, state, rest, transform_non_params, is_leaf):
    init = initable.init if hasattr(initable, "init") else initable
    with_placeholders = init(_Placeholder())

    def one(marker, value):
        if isinstance(marker, _Placeholder):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return transform_non_params(value) if transform_non_params is not None else value

    return jax.tree.map(one, with_placeholders, state, is_leaf=lambda v: isinstance(v, _Placeholder))
