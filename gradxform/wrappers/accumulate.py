"""Gradient accumulation: one inner step every `k` micro-steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradxform.core import GradientTransformation, block_of, make_block, own_step, public
from gradxform.core.state import per_param
from gradxform.errors import lead
from gradxform.hyper import validate_int
from gradxform.numerics import check_match, compute_dtype, zero_count, zeros_like

PyTree = Any


@per_param("acc")
class AccumulateState(NamedTuple):
    """`micro_step` in `0..k-1`; `acc` the running mean of this window's updates
    (the only parameter-sized buffer, stored in at least float32); `inner_state`."""

    micro_step: jax.Array
    acc: PyTree
    inner_state: Any


@public
def accumulate(
    inner: GradientTransformation,
    k: int | None = None,
    *,
    every_k_schedule: int | Callable[[jax.Array], Any] | None = None,
) -> GradientTransformation:
    r"""Averages the updates of `k` micro-steps, then takes one `inner` step on the mean.

    $$
    \begin{aligned}
    &a_j = a_{j-1} + \frac{g_j - a_{j-1}}{j}, \quad j = 1..k, \\
    &\text{output } 0 \text{ for } j < k, \quad \text{inner}(a_k) \text{ for } j = k
    \end{aligned}
    $$

    then $a \leftarrow 0$. The running mean (optax's Welford form) is the only
    parameter-sized buffer, kept in at least float32 (complex stays complex). The
    inner update runs under `lax.cond` only on the `k`-th micro-step; nothing syncs
    with the host. Same trajectory as `optax.MultiSteps(inner, k)`. `inner`'s step
    count, and any schedule in it, advances once per `k` micro-steps.

    **A schedule of k.** With `every_k_schedule`, a function of the number of inner
    steps taken so far (0 for the first window) returning the window's $k$ (at least 1),
    the number of micro-steps varies over training (a growing batch size), as
    `optax.MultiSteps(inner, every_k_schedule=...)`. That number is `inner`'s own step
    count, which it then keeps even if none of its blocks reads it.

    Args:
      inner: the optimizer to feed the mean.
      k: micro-steps per update, an int >= 1.
      every_k_schedule: instead of `k`: an int >= 1, or a function `inner steps taken -> k`.
    """
    if (k is None) == (every_k_schedule is None):
        raise TypeError("accumulate: pass exactly one of k (an int) and every_k_schedule (an int or a function).")
    if every_k_schedule is not None and not callable(every_k_schedule):
        k, every_k_schedule = validate_int("accumulate", "every_k_schedule", every_k_schedule, 1), None
    block = block_of(inner, "accumulate (inner)")
    scheduled = every_k_schedule is not None
    if scheduled:  # the inner count is the gradient step the schedule reads
        block = dataclasses.replace(block, needs_step=True)
    else:
        validate_int("accumulate", "k", k, 1, what="the number of micro-steps per update")
    block = own_step(block)

    def window(state):
        """This window's k: the fixed one, or the schedule at the inner optimizer's count."""
        if not scheduled:
            return k
        out = jnp.asarray(every_k_schedule(state.inner_state.count))
        if out.shape != ():
            raise ValueError(
                f"{lead('accumulate')}: every_k_schedule returned shape {list(out.shape)}; it must return a scalar."
            )
        return jnp.maximum(out.astype(jnp.int32), 1)

    def init(params):
        return AccumulateState(zero_count(), zeros_like(params, compute_dtype), block.init(params))

    def update(updates, state, params, count, extra_args):
        check_match(updates, state.acc, "accumulate", compute_dtype)
        k = window(state)
        j = jnp.clip(state.micro_step, 0, k - 1) + 1  # the micro-step's number in its window, 1..k
        acc = jax.tree.map(lambda g, a: a + (g.astype(a.dtype) - a) / j.astype(a.dtype), updates, state.acc)
        emit = state.micro_step >= k - 1  # >=: a counter restored from elsewhere never stalls the inner optimizer

        def step(mean, inner_state, params):
            return block.update(mean, inner_state, params, None, extra_args)

        def wait(mean, inner_state, params):
            # Zeros with the step's shapes, dtypes and shardings: on an Explicit mesh the two
            # branches of the cond must agree on the sharding too.
            out_shape = jax.eval_shape(step, mean, inner_state, params)[0]
            return zeros_like(out_shape), inner_state

        out, inner_state = lax.cond(emit, step, wait, acc, state.inner_state, params)
        new_acc = jax.tree.map(lambda a: jnp.where(emit, jnp.zeros_like(a), a), acc)
        micro = jnp.where(emit, zero_count(), jnp.clip(state.micro_step, 0, k - 1) + 1)
        return out, AccumulateState(micro, new_acc, inner_state)

    return make_block("accumulate", init, update, per_leaf=block.per_leaf, extra_args=block.extra_args)
