"""Shared test helpers: a pytree of several shapes and seeded random gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = {"w": (3, 4), "b": (4,), "scalar": (), "empty": (0,), "nested": [(2, 3, 2), (5,)]}


def make_tree(dtype, seed: int = 0, scale: float = 1.0):
    """A pytree of several shapes (incl. a scalar and a 0-size array) filled with normals."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: jnp.asarray(scale * rng.normal(size=s), dtype),
        SHAPES,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def grad_stream(dtype, steps: int, seed: int = 1):
    """``steps`` fresh random gradient trees (one per step) as a stacked tree."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=(steps, *s)), dtype),
        SHAPES,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def fit_ranks(tree, ranks, lead: int = 0):
    """`tree` for an optimizer that takes only parameters of these ranks (registry `param_ranks`; `None`: the
    tree itself): every other leaf reshaped to a matrix, its first axis kept (`(4,)` -> `(4, 1)`, `()` -> `(1, 1)`,
    `(2, 3, 2)` -> `(2, 6)`). `lead` leading axes (a stack of steps) are kept as they are."""
    if ranks is None:
        return tree

    def one(x):
        shape = x.shape[lead:]
        if len(shape) in ranks:
            return x
        rows = shape[0] if shape else 1
        return x.reshape(*x.shape[:lead], rows, int(np.prod(shape[1:], dtype=int)))

    return jax.tree.map(one, tree)


def max_rel_err(a, b) -> float:
    """max over leaves of |a - b| / (1 + |b|), as a float (0 for empty trees/leaves)."""
    errs = [
        float(
            np.max(
                np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)) / (1 + np.abs(np.asarray(y, np.float64)))
            )
        )
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
        if np.size(x)
    ]
    return max(errs, default=0.0)
