r"""The training loop, once: one step, and many steps as one compiled `lax.scan`.

$$
\begin{aligned}
&(\ell_t, g_t) = (L(\theta_t, b_t), \nabla_\theta L(\theta_t, b_t)), \\
&(u_t, s_{t+1}) = \mathrm{tx.update}(g_t, s_t, \theta_t),\quad \theta_{t+1} = \theta_t + u_t
\end{aligned}
$$

`train_step` is that step as a pure function; `run` scans it over `steps`
updates without returning to Python. `gradxform.sweep`, `gradxform.make_train_step`
and the race are built on these two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from gradxform.core import GradientTransformation, apply_updates, block_of
from gradxform.numerics import PyTree, compute_dtype
from gradxform.wrappers.loss_scale import find_loss_scale


def train_step(loss_fn: Callable[..., Any], tx: GradientTransformation, *, has_aux: bool = False) -> Callable:
    """`step(params, state, *batch) -> (params, state, loss)` (`(..., loss, aux)` with `has_aux`).

    Args:
      loss_fn: `loss_fn(params, *batch) -> scalar` (or `(scalar, aux)` with `has_aux`).
      tx: the optimizer.
      has_aux: `loss_fn` also returns auxiliary data.

    The extra arguments the optimizer reads (`gradxform.Block.extra_args`) are passed
    for the current batch: `value=` the loss at `params`, `value_fn=` the loss as a
    function of the parameters, `grad_fn=` its gradient.

    When the state holds a loss scale (`gradxform.loss_scale`, anywhere in it), the step
    differentiates the loss, taken to at least float32, times `gradxform.loss_scale_value(state)`,
    and the optimizer unscales the gradients; the loss it returns (and passes as `value=`) is the
    unscaled one.
    """
    value_and_grad = jax.value_and_grad(loss_fn, has_aux=has_aux)
    needs = block_of(tx, "train_step").extra_args

    def scaled_value_and_grad(scale, params, *batch):
        def scaled(p, *b):
            out = loss_fn(p, *b)
            loss = out[0] if has_aux else out
            return loss.astype(compute_dtype(loss.dtype)) * scale, out

        (_, out), grads = jax.value_and_grad(scaled, has_aux=True)(params, *batch)
        return out, grads

    def step(params, state, *batch):
        scale = find_loss_scale(state, "train_step")  # at trace time: the state's structure says whether it holds one
        if scale is None:
            out, grads = value_and_grad(params, *batch)
        else:
            out, grads = scaled_value_and_grad(scale, params, *batch)
        loss = out[0] if has_aux else out

        def value_fn(p):
            v = loss_fn(p, *batch)
            return v[0] if has_aux else v

        given = dict(value=loss, value_fn=value_fn, grad_fn=jax.grad(value_fn))
        updates, state = tx.update(grads, state, params, **{k: given[k] for k in needs})
        params = apply_updates(params, updates)
        return (params, state, *out) if has_aux else (params, state, out)

    return step


class Run(NamedTuple):
    """What `run` returns: the final `params` and `state`, `losses[t]` (the loss before update `t`),
    and `measured`: `measure(params)` before each update and after the last (length `steps + 1`), or `None`."""

    params: PyTree
    state: Any
    losses: jax.Array
    measured: Any


def run(
    loss_fn: Callable[..., Any],
    tx: GradientTransformation,
    params: PyTree,
    steps: int,
    *,
    state: Any = None,
    data: PyTree | None = None,
    measure: Callable[[PyTree], Any] | None = None,
) -> Run:
    """`steps` updates of `tx` on `loss_fn` from `params`, as one `lax.scan` (call it under `jax.jit`).

    Args:
      loss_fn: `loss_fn(params)`, or `loss_fn(params, batch)` when `data` is given.
      tx: the optimizer.
      params: the starting parameters.
      steps: the number of updates.
      state: the starting state (default `tx.init(params)`).
      data: a tree whose leaves have a leading axis of length `steps`; update `t` sees `data[t]`.
      measure: `measure(params) -> tree`, recorded before each update and after the last.
    """
    step = train_step(loss_fn, tx)
    state = tx.init(params) if state is None else state

    def body(carry, batch):
        p, s = carry
        seen = None if measure is None else measure(p)
        p, s, loss = step(p, s) if data is None else step(p, s, batch)
        return (p, s), (loss, seen)

    (params, state), (losses, seen) = jax.lax.scan(body, (params, state), data, length=steps)
    if measure is not None:
        last = measure(params)
        seen = jax.tree.map(lambda xs, x: jax.numpy.concatenate([xs, x[None]]), seen, last)
    return Run(params, state, losses, seen)
