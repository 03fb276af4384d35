"""A jitted training step with the parameters' and the state's buffers donated, and state size.

Donation lets XLA write the new parameters and moments into the memory of the
old ones: no allocation per step and, on CPU, about half the memory traffic
of copying into fresh buffers. The step it builds is

.. math:: (\\ell, g) = (L(\\theta, b), \\nabla_\\theta L(\\theta, b)),\\quad
          (u, s) = \\mathrm{tx.update}(g, s, \\theta),\\quad \\theta \\leftarrow \\theta + u
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gradxform.core import GradientTransformation, _as_transform, apply_updates
from gradxform.tree import PyTree


def make_train_step(
    loss_fn: Callable[..., Any], tx: GradientTransformation, *, has_aux: bool = False, donate: bool = True
) -> Callable[..., tuple]:
    """Builds ``step(params, state, *batch) -> (params, state, loss)``, jitted.

    ``loss_fn(params, *batch)`` returns a scalar (or ``(scalar, aux)`` with
    ``has_aux=True``, then the step returns ``(params, state, loss, aux)``).
    ``params`` may be any tree, or :class:`gradxform.FlatParams` for the fast
    path of trees with many leaves. With ``donate=True`` (the default) the
    arrays passed as ``params`` and ``state`` are donated: do not use them
    after the call, use the returned ones.
    """
    if not callable(loss_fn):
        raise TypeError(f"make_train_step: loss_fn must be a function (params, *batch) -> loss, got {loss_fn!r}.")
    tx = _as_transform(tx, "make_train_step (tx)")

    def step(params, state, *batch):
        out, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params, *batch)
        updates, state = tx.update(grads, state, params)
        params = apply_updates(params, updates)
        if has_aux:
            return params, state, out[0], out[1]
        return params, state, out

    return jax.jit(step, donate_argnums=(0, 1) if donate else ())


def state_nbytes(tree: PyTree) -> int:
    """Bytes held by the arrays of a tree (e.g. an optimizer state); scalars count too."""
    return int(sum(np.dtype(x.dtype).itemsize * int(np.prod(x.shape)) for x in jax.tree.leaves(tree)))


def state_bytes_per_param(state: PyTree, params: PyTree) -> float:
    """``state_nbytes(state)`` divided by the number of parameters (Adam in float32: 8.0)."""
    n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    if n == 0:
        raise ValueError("state_bytes_per_param: params has no elements.")
    return state_nbytes(state) / n
