"""Per-leaf labels from a mask or label tree (the full parameter structure or a prefix of it)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

from gradxform.numerics import path_str

PyTree = Any


def _is_none(x: Any) -> bool:
    return x is None


def _first_mismatch(labels: PyTree, tree: PyTree) -> str:
    l_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(labels)[0]]
    t_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]]
    for lp in l_paths:
        if not any(tp[: len(lp)] == lp for tp in t_paths):
            return f"the {{kind}} has an entry at {path_str(lp)} that the parameters do not have"
    for tp in t_paths:
        if not any(tp[: len(lp)] == lp for lp in l_paths):
            return f"the parameter at {path_str(tp)} has no entry in the {{kind}}"
    return "their structures differ"


def leaf_labels(
    who: str, kind: str, labels: PyTree | Callable, tree: PyTree, check: Callable[[Any], str | None]
) -> list:
    """One label per (non-None) leaf of `tree`, in flattening order.

    `labels` is a tree with the structure of `tree` or a prefix of it (a
    label on a subtree applies to all its leaves), or a function of `tree`
    returning one. `check(label)` returns an error text for a bad label.
    """
    if callable(labels):
        labels = labels(tree)
    label_leaves, label_def = jax.tree_util.tree_flatten_with_path(labels)
    for path, lab in label_leaves:
        problem = check(lab)
        if problem is not None:
            raise TypeError(f"{who}: the {kind} entry at {path_str(path)} is {lab!r}; {problem}.")
    try:
        subtrees = label_def.flatten_up_to(tree)
    except (ValueError, TypeError):
        why = _first_mismatch(labels, tree).format(kind=kind)
        raise ValueError(
            f"{who}: the {kind} does not match the parameters: {why}. Give the {kind} the parameters' "
            "structure (or a prefix of it), or a function params -> " + kind + "."
        ) from None
    out: list = []
    for (_, lab), sub in zip(label_leaves, subtrees):
        out.extend([lab] * len(jax.tree.leaves(sub)))
    return out


def bool_label(x: Any) -> str | None:
    if isinstance(x, (bool, np.bool_)):
        return None
    return "mask entries must be Python bools (True: the leaf is selected)"


def hashable_label(x: Any) -> str | None:
    if isinstance(x, Hashable) and not isinstance(x, jax.Array):
        return None
    return "labels must be hashable values such as strings"


def select(tree: PyTree, flat_labels: list, label: Any) -> PyTree:
    """`tree` with the leaves whose label is not `label` replaced by `None` (an empty subtree)."""
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, [x if lab == label else None for x, lab in zip(leaves, flat_labels)])


def merge(tree: PyTree, flat_labels: list, parts: dict) -> PyTree:
    """`tree`'s structure, each leaf taken from `parts[its label]` (a selected tree) in order."""
    _, treedef = jax.tree.flatten(tree)
    iters = {lab: iter(jax.tree.leaves(part)) for lab, part in parts.items()}
    return jax.tree.unflatten(treedef, [next(iters[lab]) for lab in flat_labels])
