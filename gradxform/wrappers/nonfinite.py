"""Skipping steps whose updates contain NaN or Inf."""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation, block_of, make_block, own_step, public
from gradxform.hyper import validate_int
from gradxform.numerics import safe_increment, zero_count

PyTree = Any


class SkipNonfiniteState(NamedTuple):
    """`consecutive`: non-finite steps in a row now (reset by a finite step or by giving up);
    `total`: all non-finite steps seen; `gave_up`: non-finite steps passed through because
    `max_consecutive` was exceeded; `last_finite`: whether the last step was finite."""

    inner_state: Any
    consecutive: jax.Array
    total: jax.Array
    gave_up: jax.Array
    last_finite: jax.Array


def all_finite(tree: PyTree) -> jax.Array:
    """A boolean scalar: True when every element of every leaf is finite (True for an empty tree)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jax.tree.reduce(operator.and_, [jnp.all(jnp.isfinite(x)) for x in leaves])


@public
def skip_nonfinite(inner: GradientTransformation, max_consecutive: int = 5) -> GradientTransformation:
    r"""Skips a step whose updates or new state hold a NaN or Inf; gives up after `max_consecutive` in a row.

    A step is non-finite when the incoming updates, the outgoing updates or the
    inner optimizer's new state hold a NaN or Inf: finite gradients can overflow a
    float16 moment, which would freeze its parameter for good. On a **skipped**
    step the output is exact zeros (so `apply_updates` leaves the parameters
    bitwise as they were) and `inner`'s state, its step count included,
    is returned unchanged; `consecutive` and `total` count the step.

    **Giving up.** The `max_consecutive + 1`-th non-finite step in a row is *not*
    skipped: it goes through `inner` as any step would (so the NaN reaches the
    parameters and the run visibly fails instead of silently stalling), `gave_up`
    counts it, and `consecutive` resets to 0, so the next non-finite steps are
    skipped again. `optax.apply_if_finite` gives up at the same step but never
    resets, so from then on it lets every non-finite step through (its open PR
    #1746). Before the first give-up the two agree step for step.
    `max_consecutive=0` never skips.

    Args:
      inner: the optimizer to protect.
      max_consecutive: non-finite steps in a row to skip before giving up, an int >= 0.
    """
    block = own_step(block_of(inner, "skip_nonfinite (inner)"))
    validate_int(
        "skip_nonfinite",
        "max_consecutive",
        max_consecutive,
        0,
        what="non-finite steps in a row to skip before giving up",
    )

    def init(params):
        return SkipNonfiniteState(block.init(params), zero_count(), zero_count(), zero_count(), jnp.array(True))

    def update(updates, state, params, count, extra_args):
        new_updates, new_inner = block.update(updates, state.inner_state, params, None, extra_args)
        # A finite gradient can still poison the state (a float16 second moment overflowing to inf would
        # freeze its parameter for good): the step counts as non-finite unless what it produces is finite too.
        inexact = [x for x in jax.tree.leaves(new_inner) if jnp.issubdtype(x.dtype, jnp.inexact)]
        finite = all_finite(updates) & all_finite(new_updates) & all_finite(inexact)
        bad_run = safe_increment(state.consecutive)
        give_up = jnp.logical_and(~finite, bad_run > max_consecutive)
        take = jnp.logical_or(finite, give_up)
        out = jax.tree.map(lambda u: jnp.where(take, u, jnp.zeros_like(u)), new_updates)
        kept = jax.tree.map(lambda n, o: jnp.where(take, n, o), new_inner, state.inner_state)
        new_state = SkipNonfiniteState(
            inner_state=kept,
            consecutive=jnp.where(take, zero_count(), bad_run),
            total=jnp.where(finite, state.total, safe_increment(state.total)),
            gave_up=jnp.where(give_up, safe_increment(state.gave_up), state.gave_up),
            last_finite=finite,
        )
        return out, new_state

    return make_block("skip_nonfinite", init, update, per_leaf=block.per_leaf, extra_args=block.extra_args)
