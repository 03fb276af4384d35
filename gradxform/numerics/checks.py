"""Trace-time checks of trees: leaf dtypes, and an update tree against the state or the parameters.

The checks read only static shapes and dtypes, so they cost nothing at run time
and fire while a function is traced, before anything is computed. Each message
is led by the name of the function the user called (`gradxform.errors.lead`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradxform.errors import lead
from gradxform.numerics.dtypes import compute_dtype, dtype_of, shape_of

PyTree = Any


def path_str(path: tuple) -> str:
    """A key path as the user would index it, e.g. `['layers'][0].w`; `<root>` if empty."""
    return jax.tree_util.keystr(path) or "<root>"


def _describe(x: Any) -> str:
    return f"{dtype_of(x)}{list(shape_of(x))}"


def check_inexact(tree: PyTree, who: str, what: str = "params") -> None:
    """Raises `TypeError` naming the first leaf that is not a float or complex array.

    `what` is `"params"` (at init) or `"updates"` (the gradients given to update).
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = dtype_of(leaf)
        if jnp.issubdtype(dtype, jnp.inexact):
            continue
        if what == "updates":
            raise TypeError(
                f"{lead(who)}: the update at {path_str(path)} has dtype {dtype}; gradients must be float or "
                "complex (an integer gradient would give a zero update). Differentiate a float loss with "
                "respect to float parameters."
            )
        raise TypeError(
            f"{lead(who)}: the leaf at {path_str(path)} has dtype {dtype}; optimizers need float "
            "or complex leaves. Keep integer and boolean leaves out of the tree you optimize "
            "(split them off, or wrap the optimizer so it does not see them)."
        )


def check_real(tree: PyTree, who: str, why: str) -> None:
    """Raises `TypeError` naming the first complex leaf: `who` is defined for real parameters only (`why`)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = dtype_of(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"{lead(who)}: the leaf at {path_str(path)} has dtype {dtype}; {why}, so it is defined for real "
                "parameters only. Optimize the real and imaginary parts as two real leaves."
            )


def check_match(
    updates: PyTree,
    reference: PyTree,
    who: str,
    dtype_rule: Callable[[jnp.dtype], Any] | None = None,
    against: str = "state",
) -> None:
    """Raises `ValueError` at the first path where `updates` differs from `reference`.

    `against` is `"state"` or `"params"`, for the message. Structure and shapes
    must be equal. If `dtype_rule` is given, each `reference` leaf must compute in
    the same dtype as `dtype_rule(updates leaf dtype)`: updates flow between blocks
    in the compute dtype, so a bfloat16 moment meets float32 updates, while a
    float64 gradient for float32 state is an error.
    """
    who = lead(who)
    if against == "params":
        what, leaf = "the parameters", "the parameter"
    else:
        what = leaf = "the state made by init"
    from gradxform.numerics.quantize import Quantized, Storage

    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates)
    r_leaves, r_def = jax.tree_util.tree_flatten_with_path(reference, is_leaf=lambda x: isinstance(x, Quantized))
    if u_def != r_def:
        u_paths = [path_str(p) for p, _ in u_leaves]
        r_paths = [path_str(p) for p, _ in r_leaves]
        missing = [p for p in r_paths if p not in set(u_paths)]
        extra = [p for p in u_paths if p not in set(r_paths)]
        if missing and extra:
            diff = f"the updates have {extra[0]} where it has {missing[0]}"
        elif missing:
            diff = f"the updates lack {missing[0]}, which it has"
        elif extra:
            diff = f"the updates have {extra[0]}, which it lacks"
        else:
            diff = f"the containers differ (updates {u_def}, {what} {r_def})"
        raise ValueError(
            f"{who}: the update tree does not match {what}: {diff}. "
            "Pass gradients for the same parameters that were given to init."
        )
    for (path, u), (_, r) in zip(u_leaves, r_leaves):
        if shape_of(u) != shape_of(r):
            raise ValueError(
                f"{who}: the update at {path_str(path)} has shape {list(shape_of(u))} but {leaf} has "
                f"shape {list(shape_of(r))}."
            )
        if dtype_rule is not None:
            rule = dtype_rule(dtype_of(u))
            if isinstance(rule, Storage) or isinstance(r, Quantized):
                if not (isinstance(rule, Storage) and rule.matches(r)):
                    raise ValueError(
                        f"{who}: the update at {path_str(path)} is {_describe(u)} but {leaf} holds "
                        f"{r!r}; init and update must see the same storage (call init again)."
                    )
                continue
            want = jnp.dtype(rule)
            if dtype_of(r) != want and compute_dtype(dtype_of(r)) != compute_dtype(want):
                raise ValueError(
                    f"{who}: the update at {path_str(path)} is {_describe(u)} but {leaf} holds "
                    f"{_describe(r)}; init and update must see the same dtypes "
                    "(cast the gradients, or call init again)."
                )
