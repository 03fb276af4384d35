"""Applying updates to parameters."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradxform.numerics.checks import check_match

PyTree = Any


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """$\\theta \\leftarrow \\theta + u$ for each leaf, the result keeping the parameter's dtype.

    `None` leaves in `params` stay `None`. A tree mismatch raises
    `ValueError` naming the first differing path.

    Args:
      params: the parameters.
      updates: the updates, with the parameters' structure and shapes.
    """
    check_match(updates, params, "apply_updates", against="params")
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.result_type(p)),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
