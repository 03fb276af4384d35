"""A jitted training step with the parameters' and the state's buffers donated, and state size.

Donation lets XLA write the new parameters and moments into the memory of the
old ones: no allocation per step and, on CPU, about half the memory traffic
of copying into fresh buffers. The step it builds is

$$
(\\ell, g) = (L(\\theta, b), \\nabla_\\theta L(\\theta, b)),\\quad
(u, s) = \\mathrm{tx.update}(g, s, \\theta),\\quad \\theta \\leftarrow \\theta + u
$$

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gradxform.core import GradientTransformation, require_transform
from gradxform.numerics import PyTree
from gradxform.perf.flat import FlatParams, flat_offsets
from gradxform.solve.loop import train_step as pure_step

#: XLA options `jit_step` passes on CPU. Region-based copy insertion lets XLA see that a
#: fusion reading an old (donated) moment can run before the fusion that overwrites it in place,
#: instead of copying the moment first (GPU backends use region analysis by default). It did so
#: for Adadelta's block until the block computed its update from the new moment, which needs no
#: copy either way; it still does for steps written that way (docs/performance.md).
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_copy_insertion_use_region_analysis": True}


def jit_step(
    fn: Callable[..., Any], donate_argnums: tuple[int, ...] = (0, 1), compiler_options: dict | None = None
) -> Callable[..., Any]:
    """`jax.jit(fn, donate_argnums=...)` plus `CPU_COMPILER_OPTIONS` when the default backend is CPU.

    For hand-written steps `step(params, state, ...)`: the arrays passed at
    `donate_argnums` are donated (do not reuse them). `compiler_options`
    replaces the defaults (pass `{}` for none).

    Args:
      fn: the step, `fn(params, state, ...)`.
      donate_argnums: the positions of the arguments to donate.
      compiler_options: XLA options; `None` means `CPU_COMPILER_OPTIONS` on CPU.

    Returns:
      The jitted `fn`.
    """
    if compiler_options is None:
        compiler_options = dict(CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else {}
    return jax.jit(fn, donate_argnums=donate_argnums, compiler_options=compiler_options or None)


def make_train_step(
    loss_fn: Callable[..., Any],
    tx: GradientTransformation,
    *,
    has_aux: bool = False,
    donate: bool = True,
    compiler_options: dict | None = None,
) -> Callable[..., tuple]:
    """Builds `step(params, state, *batch) -> (params, state, loss)`, jitted.

    `loss_fn(params, *batch)` returns a scalar (or `(scalar, aux)` with
    `has_aux=True`, then the step returns `(params, state, loss, aux)`).
    `params` may be any tree, or `gradxform.FlatParams` for the fast
    path of trees with many leaves: the step then passes the leaves' offsets
    as jit arguments (`FlatParams.with_offsets`), so `flat.unravel()`
    in the loss compiles one slice kernel per leaf shape, not per leaf. With `donate=True` (the default) the
    arrays passed as `params` and `state` are donated: do not use them
    after the call, use the returned ones. It is jitted by `jit_step`
    (`compiler_options` as there).

    Args:
      loss_fn: `loss_fn(params, *batch)`.
      tx: the optimizer.
      has_aux: `loss_fn` returns `(loss, aux)`.
      donate: donate `params` and `state`.
      compiler_options: as in `jit_step`.

    Returns:
      The jitted step.
    """
    if not callable(loss_fn):
        raise TypeError(f"make_train_step: loss_fn must be a function (params, *batch) -> loss, got {loss_fn!r}.")
    tx = require_transform(tx, "make_train_step (tx)")

    def step(params, state, offsets, *batch):
        def loss(p, *b):
            return loss_fn(p.with_offsets(offsets) if offsets else p, *b)

        return pure_step(loss, tx, has_aux=has_aux)(params, state, *batch)

    jitted = jit_step(step, (0, 1) if donate else (), compiler_options)

    def train_step(params, state, *batch):
        offsets = flat_offsets(params) if isinstance(params, FlatParams) else ()
        return jitted(params, state, offsets, *batch)

    train_step.jitted = jitted  # jitted(params, state, offsets, *batch), e.g. for .lower(...).compile()
    return train_step


def state_nbytes(tree: PyTree) -> int:
    """Bytes held by the arrays of a tree (e.g. an optimizer state); scalars count too.

    Args:
      tree: any pytree (arrays, numbers, `ShapeDtypeStruct`s).

    Returns:
      The number of bytes.
    """
    return int(sum(np.dtype(x.dtype).itemsize * int(np.prod(x.shape)) for x in jax.tree.leaves(tree)))


def state_bytes_per_param(state: PyTree, params: PyTree) -> float:
    """`state_nbytes(state)` divided by the number of parameters (Adam in float32: 8.0).

    Args:
      state: an optimizer state.
      params: the parameters it was built for.

    Returns:
      Bytes of state per parameter, a float.
    """
    n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    if n == 0:
        raise ValueError("state_bytes_per_param: params has no elements.")
    return state_nbytes(state) / n
