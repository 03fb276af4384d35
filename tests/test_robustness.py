"""What probing the library as a user would turned up, each family fixed at its root (see docs/robustness.md).

Families: values that pass validation but break in the dtype they are used in; inputs a wrapper or block
did not check; finite values that poison state; aliased buffers (tests/test_flat.py: every registry
entry's state is donated). Checkpoints across processes: tests/test_checkpoint.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

S = gx.schedules


# ---------------------------------------------------------------- values in the dtype they are used in


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: gx.adam(1e-3, b2=0.99999999), r"^adam: b2=0.99999999 is 1.0 in float32"),
        (lambda: gx.rmsprop(1e-3, decay=0.999999999), r"^rmsprop: decay=0.999999999 is 1.0 in float32"),
        (lambda: gx.sgd(1e300), r"^sgd: learning_rate=1e\+300 is inf in float32"),
        (lambda: gx.adamw(1e-3, weight_decay=1e300), r"^adamw: weight_decay=1e\+300 is inf in float32"),
        (lambda: gx.adam(1e-3, eps=1e39), r"^adam: eps=1e\+39 is inf in float32"),
        (lambda: gx.adam(1e-3, eps=1e-46), r"^adam: eps=1e-46 is 0.0 in float32.*non-zero"),
    ],
)
def test_values_are_checked_in_the_dtype_they_are_used_in(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_under_x64_float32_leaves_use_one_precision_per_hyperparameter():
    with jax.enable_x64(True):
        p = jnp.ones(3, jnp.float32)
        g = jnp.full(3, 0.5, jnp.float32)
        tx = gx.adam(0.01, b2=0.9999999)  # the EMA and its bias correction both use float32's b2
        np.testing.assert_allclose(tx.update(g, tx.init(p), p)[0], -0.01, rtol=1e-6)
        tx = gx.adam(0.01, b2=0.99999999)  # fine in float64, 1.0 in float32: refused where it is used
        with pytest.raises(ValueError, match=r"^adam: ema_sq's decay=0.99999999 is 1.0 in float32"):
            tx.update(g, tx.init(p), p)
        q = jnp.ones(3, jnp.float64)
        assert np.all(np.isfinite(tx.update(q, tx.init(q), q)[0]))  # and accepted for float64 leaves


# ---------------------------------------------------------------- inputs a wrapper or block did not check


def test_accumulate_checks_gradients_and_recovers_from_a_restored_counter():
    tx = gx.accumulate(gx.sgd(0.1), k=3)
    state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"^accumulate: the update at \['w'\] has shape \[2, 2\]"):
        tx.update({"w": jnp.ones((2, 2))}, state)
    bad = state._replace(micro_step=jnp.int32(7))  # e.g. restored from a run with k = 8
    u, s = tx.update({"w": jnp.ones(2)}, bad)
    # the counter is taken as the window's last micro-step: the step is taken at once, on the running mean of
    # the window (the two earlier micro-steps' mean, acc, is zero here)
    np.testing.assert_allclose(u["w"], -0.1 / 3 * np.ones(2), rtol=1e-6)
    assert int(s.micro_step) == 0


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_traced_hyperparameters_must_be_scalars_under_jit_too(shape):
    def step(lr):
        tx = gx.adam(lr)
        return tx.update(jnp.ones(3), tx.init(jnp.zeros(3)))[0]

    with pytest.raises(ValueError, match=rf"^adam: learning_rate must be a scalar, got shape \[{shape[0]}"):
        jax.jit(step)(jnp.full(shape, 0.1))


def test_integer_and_python_number_inputs():
    tx = gx.sgd(0.1)
    with pytest.raises(TypeError, match=r"^sgd: the leaf at \['n'\] has dtype int32"):
        tx.init({"n": jnp.arange(3)})
    state = tx.init(jnp.zeros(2))
    with pytest.raises(TypeError, match=r"^sgd: the update at <root> has dtype int32; gradients must be float"):
        tx.update(jnp.ones(2, jnp.int32), state)
    u, _ = gx.adam(0.1).update(2.0, gx.adam(0.1).init(1.0), 1.0)  # Python floats work like arrays
    np.testing.assert_allclose(u, -0.1, rtol=1e-6)
    with pytest.raises(TypeError, match=r"^rmsprop: centered='no' must be True or False"):
        gx.rmsprop(0.1, centered="no")
    with pytest.raises(TypeError, match=r"^sgd: learning_rate must be a real number"):
        gx.sgd(0.1 + 0.1j)


# ---------------------------------------------------------------- finite values that poison state


def test_skip_nonfinite_skips_a_step_that_would_overflow_the_state():
    p = {"w": jnp.ones(3, jnp.float16)}
    tx = gx.skip_nonfinite(gx.adam(1e-3, nu_dtype=jnp.float16))  # (float16 parameters' default nu is float32)
    state = tx.init(p)
    g = {"w": jnp.full(3, 1e4, jnp.float16)}  # finite, but (1e4)^2 overflows a float16 nu
    u, new = tx.update(g, state, p)
    np.testing.assert_array_equal(np.asarray(u["w"]), 0)
    jax.tree.map(np.testing.assert_array_equal, new.inner_state, state.inner_state)  # nothing kept
    assert int(new.total) == 1 and int(new.consecutive) == 1 and not bool(new.last_finite)
    # a small gradient afterwards is taken: the parameter is not frozen
    u, new = tx.update({"w": jnp.full(3, 1.0, jnp.float16)}, new, p)
    assert np.all(np.asarray(u["w"], np.float32) < 0) and int(new.consecutive) == 0


def test_norms_neither_overflow_nor_underflow():
    g = {"a": jnp.full(3, 1e20), "b": jnp.full(2, 1e-25)}
    np.testing.assert_allclose(gx.global_norm(g), np.sqrt(3) * 1e20, rtol=1e-6)
    np.testing.assert_allclose(gx.global_norm({"a": jnp.full(3, 1e-25)}), np.sqrt(3) * 1e-25, rtol=1e-6)
    u, _ = gx.clip_by_global_norm(1.0).update(g, gx.clip_by_global_norm(1.0).init(g))
    np.testing.assert_allclose(u["a"], 1 / np.sqrt(3), rtol=1e-6)  # not zeros
    assert np.isinf(float(gx.global_norm({"a": jnp.array([1.0, jnp.inf])})))
    assert np.isnan(float(gx.global_norm({"a": jnp.array([1.0, jnp.nan])})))


def test_schedules_are_exact_past_two_to_the_24_steps():
    boundary = 2**24 + 1
    p = jax.jit(S.piecewise_constant_schedule(1.0, {boundary: 0.1}))
    assert float(p(jnp.int32(boundary - 1))) == 1.0 and float(p(jnp.int32(boundary))) == pytest.approx(0.1)
    lin = jax.jit(S.linear_schedule(0.0, 1.0, 1000, transition_begin=100_000_000))
    values = [float(lin(jnp.int32(100_000_000 + k))) for k in range(4)]
    np.testing.assert_allclose(values, [0.0, 1e-3, 2e-3, 3e-3], rtol=1e-6)
    exp = jax.jit(S.exponential_decay(1.0, 1, 0.5, transition_begin=100_000_000))
    assert float(exp(jnp.int32(100_000_001))) == 0.5
