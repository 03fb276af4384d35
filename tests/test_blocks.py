"""Each block against its equation, and the seeds' worked numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform.numerics import INT32_MAX


def _steps(tx, grads, params=None):
    """Runs ``tx`` over a list of gradient arrays; returns the outputs, the final state."""
    params = jnp.zeros_like(grads[0]) if params is None else params
    state = tx.init(params)
    outs = []
    for g in grads:
        u, state = tx.update(g, state, params)
        outs.append(np.asarray(u))
    return outs, state


def test_seed003_momentum_worked_example():
    # Seed 003: gamma = 0.5, V1 = b1, V2 = 0.5 b1 + b2, V3 = 0.25 b1 + 0.5 b2 + b3.
    b = [jnp.array([1.0, -2.0]), jnp.array([3.0, 5.0]), jnp.array([-7.0, 11.0])]
    v, _ = _steps(gx.trace(0.5), b)
    np.testing.assert_allclose(v[0], b[0], rtol=0, atol=0)
    np.testing.assert_allclose(v[1], 0.5 * b[0] + b[1], rtol=1e-7)
    np.testing.assert_allclose(v[2], 0.25 * b[0] + 0.5 * b[1] + b[2], rtol=1e-7)


def test_trace_nesterov_output():
    b = [jnp.array([1.0, -2.0]), jnp.array([3.0, 5.0])]
    out, state = _steps(gx.trace(0.5, nesterov=True), b)
    # v1 = b1, out1 = b1 + 0.5 v1; v2 = 0.5 b1 + b2, out2 = b2 + 0.5 v2.
    np.testing.assert_allclose(out[0], 1.5 * b[0], rtol=1e-7)
    np.testing.assert_allclose(out[1], b[1] + 0.5 * (0.5 * b[0] + b[1]), rtol=1e-7)
    np.testing.assert_allclose(state.trace, 0.5 * b[0] + b[1], rtol=1e-7)


def test_seed001_ema_weights():
    # Seed 001: v_100 = 0.1 * 0.9^99 theta_1 + 0.1 * 0.9^98 theta_2 + ... + 0.1 theta_100.
    rng = np.random.default_rng(0)
    theta = rng.normal(size=100)
    v, _ = _steps(gx.ema(0.9), [jnp.float32(t) for t in theta])
    weights = 0.1 * 0.9 ** np.arange(99, -1, -1)
    np.testing.assert_allclose(v[-1], np.dot(weights, theta), rtol=2e-5, atol=1e-6)


def test_seed001_bias_correction_removes_the_startup_bias():
    # For a constant signal theta the EMA is theta (1 - b^t): biased towards 0 early.
    # Divided by 1 - b^t (seed 001) it is theta at every step.
    theta, b = 5.0, 0.9
    raw, _ = _steps(gx.ema(b), [jnp.float32(theta)] * 30)
    corrected, _ = _steps(gx.chain(gx.ema(b), gx.bias_correction(b)), [jnp.float32(theta)] * 30)
    t = np.arange(1, 31)
    np.testing.assert_allclose(raw, theta * (1 - b**t), rtol=1e-6)
    assert raw[0] == pytest.approx(0.5, rel=1e-6)  # 90% low on the first step
    np.testing.assert_allclose(corrected, theta, rtol=1e-6)  # float32 rounding over 30 steps (8 ulp)


def test_bias_correction_exact_for_constant_gradients_with_b2():
    # 1 - b2 is computed from the float32 b2, so the weights sum to 1 - b2^t exactly (in
    # real arithmetic). Rounding b2 and 1 - b2 separately, as optax does, would leave the
    # corrected estimate 1.3e-5 high; ours is within float32 rounding (a few ulp).
    out, _ = _steps(gx.chain(gx.ema_sq(0.999), gx.bias_correction(0.999)), [jnp.float32(3.0)] * 50)
    np.testing.assert_allclose(out, 9.0, rtol=2e-6)


def test_ema_sq_and_sum_sq_formulas():
    g = [jnp.array([1.0, -2.0]), jnp.array([3.0, 0.5]), jnp.array([-1.0, 4.0])]
    nu, _ = _steps(gx.ema_sq(0.8), g)
    ref = np.zeros(2)
    for gi, n in zip(g, nu):
        ref = 0.8 * ref + 0.2 * np.asarray(gi) ** 2
        np.testing.assert_allclose(n, ref, rtol=1e-6)
    s, _ = _steps(gx.sum_sq(0.1), g)
    np.testing.assert_allclose(s[-1], 0.1 + sum(np.asarray(x) ** 2 for x in g), rtol=1e-6)


def test_ema_sq_of_complex_is_real_modulus():
    g = jnp.array([3.0 + 4.0j, 1.0j], jnp.complex64)
    tx = gx.ema_sq(0.5)
    state = tx.init(g)
    nu, state = tx.update(g, state)
    assert nu.dtype == jnp.float32 and state.nu.dtype == jnp.float32
    np.testing.assert_allclose(nu, [12.5, 0.5], rtol=1e-7)


def test_ema_var_is_variance_estimate():
    g = [jnp.array([1.0]), jnp.array([3.0])]
    var, _ = _steps(gx.ema_var(0.5), g)
    # mu = 0.5*1 -> 0.25 + 1.5 = 1.75; nu = 0.5 -> 0.25 + 4.5 = 4.75; var = 4.75 - 1.75^2.
    np.testing.assert_allclose(var[-1], [4.75 - 1.75**2], rtol=1e-7)


def test_nesterov_ema_formula():
    b1 = 0.9
    g = [jnp.array([1.0, 2.0]), jnp.array([-3.0, 0.5])]
    out, _ = _steps(gx.nesterov_ema(b1), g)
    mu = np.zeros(2)
    for t, (gi, o) in enumerate(zip(g, out), start=1):
        gi = np.asarray(gi)
        mu = b1 * mu + (1 - b1) * gi
        ref = b1 * mu / (1 - b1 ** (t + 1)) + (1 - b1) * gi / (1 - b1**t)
        np.testing.assert_allclose(o, ref, rtol=1e-6)


def test_running_max_and_ratio_and_eps_blocks():
    g = [jnp.array([1.0, 4.0]), jnp.array([3.0, 2.0])]
    m, _ = _steps(gx.running_max(), g)
    np.testing.assert_allclose(m[-1], [3.0, 4.0])
    # ratio(None, sqrt then +eps) and (+eps then sqrt): eps outside vs inside the root.
    outside, _ = _steps(gx.ratio(None, gx.chain(gx.sqrt(), gx.add_eps(1.0))), [jnp.array([4.0])])
    inside, _ = _steps(gx.ratio(None, gx.chain(gx.add_eps(5.0), gx.sqrt())), [jnp.array([4.0])])
    np.testing.assert_allclose(outside[0], [4.0 / 3.0], rtol=1e-7)
    np.testing.assert_allclose(inside[0], [4.0 / 3.0], rtol=1e-7)


def test_scale_by_update_rms_is_adadelta_feedback():
    rho, eps = 0.9, 1e-2
    u = [jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0])]
    out, state = _steps(gx.scale_by_update_rms(rho, eps), u)
    w = np.zeros(2)
    for ui, o in zip(u, out):
        d = np.sqrt(w + eps) * np.asarray(ui)
        np.testing.assert_allclose(o, d, rtol=1e-6)
        w = rho * w + (1 - rho) * d**2
    np.testing.assert_allclose(state.delta_sq, w, rtol=1e-6)


def test_scale_by_adadelta_against_its_equations_and_at_a_zero_denominator():
    """The update from the new w equals the direct form sqrt((w + eps) / (v + eps)) g; 0 where that ratio is 0/0."""
    rho, eps = 0.9, 1e-2
    g = [jnp.array([1.0, -2.0, 0.0]), jnp.array([0.5, 3.0, 0.0]), jnp.array([-1e-3, 1e3, 0.0])]
    out, state = _steps(gx.scale_by_adadelta(rho, eps), g)
    v, w = np.zeros(3), np.zeros(3)
    for gi, o in zip(g, out):
        gi = np.asarray(gi, np.float64)
        v = rho * v + (1 - rho) * gi**2
        d = np.sqrt((w + eps) / (v + eps)) * gi
        np.testing.assert_allclose(o, d, rtol=1e-6)
        w = rho * w + (1 - rho) * d**2
    np.testing.assert_allclose(state.nu, v, rtol=1e-6)
    np.testing.assert_allclose(state.delta_sq, w, rtol=1e-6)
    # rho = 0 and a zero gradient: the denominator rho (v + eps) + (1 - rho) g^2 is 0, the update 0 (not NaN)
    (o,), _ = _steps(gx.scale_by_adadelta(0.0, eps), [jnp.array([0.0, 2.0])])
    np.testing.assert_array_equal(o[0], 0.0)
    np.testing.assert_allclose(o[1], 2.0 * np.sqrt(eps / (4.0 + eps)), rtol=1e-6)
    # a non-finite gradient still gives a non-finite update
    (o,), _ = _steps(gx.scale_by_adadelta(rho, eps), [jnp.array([jnp.nan, jnp.inf])])
    assert not np.isfinite(o).any()


def test_scale_learning_rate_and_weight_decay():
    p = jnp.array([2.0, -4.0])
    g = jnp.array([1.0, 1.0])
    (u,), _ = _steps(gx.scale_by_learning_rate(0.1), [g], p)
    np.testing.assert_allclose(u, [-0.1, -0.1], rtol=1e-7)
    (u,), _ = _steps(gx.scale_by_learning_rate(0.1, flip_sign=False), [g], p)
    np.testing.assert_allclose(u, [0.1, 0.1], rtol=1e-7)
    (u,), _ = _steps(gx.add_decayed_weights(0.5), [g], p)
    np.testing.assert_allclose(u, [2.0, -1.0], rtol=1e-7)
    (u,), _ = _steps(gx.scale(3.0), [g], p)
    np.testing.assert_allclose(u, [3.0, 3.0], rtol=1e-7)


def test_scheduled_hyperparameter_sees_count_from_zero():
    seen = []
    lr = lambda count: 1.0 / (1.0 + count)  # noqa: E731
    out, state = _steps(gx.scale_by_learning_rate(lr), [jnp.array(1.0)] * 4)
    np.testing.assert_allclose(np.ravel(out), [-1.0, -1 / 2, -1 / 3, -1 / 4], rtol=1e-7)
    assert int(state.count) == 4
    del seen


def test_counts_are_int32_and_saturate():
    tx = gx.chain(gx.ema(0.9), gx.bias_correction(0.9))
    p = jnp.ones(3)
    state = tx.init(p)
    assert gx.tree_get(state, "count").dtype == jnp.int32  # one count, the chain's: bias_correction reads it
    state = gx.tree_set(state, count=jnp.int32(INT32_MAX))
    u, state = jax.jit(tx.update)(p, state)
    assert int(gx.tree_get(state, "count")) == INT32_MAX
    assert np.all(np.isfinite(np.asarray(u)))


def test_bfloat16_params_keep_b2():
    # A bfloat16 0.999 would be 1.0 and the second moment would never move.
    g = jnp.ones(4, jnp.bfloat16)
    tx = gx.ema_sq(0.999)
    state = tx.init(g)
    nu, state = tx.update(g, state)
    assert state.nu.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(state.nu, np.float32), float(jnp.bfloat16(0.001)), rtol=0)


def test_low_precision_moments_are_computed_in_float32():
    # mu stored in bfloat16, math in float32: each step is
    #   mu_32 = b * float32(mu_bf16) + (1 - b) * g;  stored = bfloat16(mu_32);  output = mu_32.
    rng = np.random.default_rng(3)
    g = [jnp.asarray(rng.normal(size=6), jnp.float32) for _ in range(20)]
    tx = gx.ema(0.9, state_dtype=jnp.bfloat16)
    out, state = _steps(tx, g)
    mu = np.zeros(6, np.float32)
    b = np.float32(0.9)
    for gi, o in zip(g, out):
        mu32 = b * mu + (np.float32(1) - b) * np.asarray(gi)
        np.testing.assert_allclose(o, mu32, rtol=1e-6, atol=1e-7)
        mu = np.asarray(jnp.asarray(mu32).astype(jnp.bfloat16).astype(jnp.float32))
    assert state.mu.dtype == jnp.bfloat16 and out[-1].dtype == np.float32
    np.testing.assert_array_equal(np.asarray(state.mu, np.float32), mu)


def test_adam_bfloat16_moments_take_four_bytes_per_parameter():
    p = {"a": jnp.zeros((10, 10)), "b": jnp.zeros(7)}
    state = gx.adam(1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16).init(p)
    moments = [x for x in jax.tree.leaves(state) if x.ndim > 0]
    assert sum(x.nbytes for x in moments) == 4 * 107
