"""accumulate with a schedule of k, against optax.MultiSteps(every_k_schedule=...)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests.helpers import grad_stream, make_tree
from tests.refs import rel_err

STEPS = 300


def _scan(tx, params, grads, apply=gx.apply_updates):
    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = apply(p, u)
        return (p, s), p

    (_, s), seen = jax.jit(lambda p, g: jax.lax.scan(body, (p, tx.init(p)), g))(params, grads)
    return seen, s


def _growing(step):
    """1, 2, 3, ... micro-steps per window, capped at 6, by the number of inner steps taken."""
    return jnp.minimum(step + 1, 6)


@pytest.mark.parametrize(
    "inner, ref",
    [
        (lambda: gx.adam(0.05, b1=0.8), lambda: optax.adam(0.05, b1=0.8)),
        (lambda: gx.sgd(0.1, momentum=0.9), lambda: optax.sgd(0.1, momentum=0.9)),  # reads no count of its own
    ],
    ids=["adam", "sgd-momentum"],
)
def test_accumulate_with_a_schedule_of_k_equals_optax_multisteps(inner, ref):
    with jax.enable_x64(True):
        params, grads = make_tree(jnp.float64, seed=0), grad_stream(jnp.float64, STEPS, seed=1)
        ours, state = _scan(gx.accumulate(inner(), every_k_schedule=_growing), params, grads)
        # optax accumulates in float32 unless told otherwise; ours in the compute dtype (float64 here)
        multi = optax.MultiSteps(ref(), every_k_schedule=_growing, accumulator_dtype=jnp.float64)
        theirs, ref_state = _scan(multi, params, grads, optax.apply_updates)
        worst = rel_err(ours, theirs)
        print(f"accumulate(every_k_schedule) vs optax.MultiSteps: {worst:.2e}")
        assert worst <= 1e-12
        # windows of 1, 2, ..., 6, 6, ...: 15 micro-steps for the first five inner steps, then one per 6
        inner_steps = 5 + (STEPS - 15) // 6
        assert int(gx.tree_get(state, "count")) == int(ref_state.gradient_step) == inner_steps
        assert int(gx.tree_get(state, "micro_step")) == int(ref_state.mini_step)
        assert rel_err(_step_last(ours), params) > 1e-3


def _step_last(seen):
    return jax.tree.map(lambda x: x[-1], seen)


def test_an_int_every_k_schedule_is_k():
    params, grads = make_tree(jnp.float32), grad_stream(jnp.float32, 12)
    a, _ = _scan(gx.accumulate(gx.adam(0.1), every_k_schedule=3), params, grads)
    b, _ = _scan(gx.accumulate(gx.adam(0.1), k=3), params, grads)
    assert rel_err(a, b) == 0.0


def test_accumulate_refuses_both_or_neither_and_bad_schedules():
    with pytest.raises(TypeError, match=r"^accumulate: pass exactly one of k"):
        gx.accumulate(gx.adam(0.1))
    with pytest.raises(TypeError, match=r"^accumulate: pass exactly one of k"):
        gx.accumulate(gx.adam(0.1), 2, every_k_schedule=lambda s: 2)
    with pytest.raises(ValueError, match=r"^accumulate: every_k_schedule=0 must be an int >= 1"):
        gx.accumulate(gx.adam(0.1), every_k_schedule=0)
    tx = gx.accumulate(gx.adam(0.1), every_k_schedule=lambda s: jnp.ones(2, jnp.int32))
    p = {"w": jnp.ones(2)}
    state = tx.init(p)
    with pytest.raises(ValueError, match=r"^accumulate: every_k_schedule returned shape \[2\]"):
        tx.update(p, state, p)
    np.testing.assert_array_equal(gx.tree_get(state, "acc")["w"], 0.0)
