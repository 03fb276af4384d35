"""Schedules against their closed forms, optax, Keras' and seed 001's definitions; schedules as any hyperparameter."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import schedules as S

STEPS = np.arange(0, 2500)
F32_RTOL = 4e-7  # a couple of float32 ulps: the schedules compute in float32
# Where a schedule adds two terms (I - E) * f + E, float32 rounding is a few ulps of the larger term,
# so near the end value the error is absolute: F32_ATOL * max(|I|, |E|).
F32_ATOL = 2.4e-7


def values(schedule, steps=STEPS):
    """The schedule at each step, one jitted vmap call (an int32 step, as the blocks pass)."""
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps, jnp.int32)), np.float64)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))


# ---------------------------------------------------------------- closed forms (float64 numpy references)


def test_constant():
    np.testing.assert_array_equal(values(S.constant_schedule(0.25)), np.full(STEPS.shape, 0.25))


@pytest.mark.parametrize("power", [1, 2, 0.5, 3.7])
def test_polynomial_closed_form(power):
    I, E, T, B = 1.0, 0.01, 1000, 50
    t = np.clip(STEPS - B, 0, T)
    want = (I - E) * (1 - t / T) ** power + E
    np.testing.assert_allclose(values(S.polynomial_schedule(I, E, power, T, B)), want, rtol=2e-6, atol=F32_ATOL)
    got = values(S.polynomial_schedule(I, E, power, T, B))
    assert got[0] == pytest.approx(I) and got[B] == pytest.approx(I) and got[B + T] == pytest.approx(E)


def test_linear_closed_form_and_momentum_annealing_values():
    # seed 000: momentum initialised at 0.5 and annealed to 0.9.
    got = values(S.linear_schedule(0.5, 0.9, 1000))
    want = 0.5 + np.minimum(STEPS, 1000) / 1000 * 0.4
    np.testing.assert_allclose(got, want, rtol=F32_RTOL)
    assert got[0] == np.float32(0.5) and got[500] == pytest.approx(0.7, rel=1e-7)


def test_linear_transition_begin():
    got = values(S.linear_schedule(2.0, 0.0, 100, transition_begin=30))
    want = 2.0 * (1 - np.clip(STEPS - 30, 0, 100) / 100)
    np.testing.assert_allclose(got, want, rtol=F32_RTOL, atol=1e-7)


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_closed_form(staircase):
    I, T, r, B = 0.1, 100, 0.7, 25
    p = (STEPS - B) / T
    p = np.floor(p) if staircase else p
    want = np.where(STEPS - B <= 0, I, I * r**p)
    np.testing.assert_allclose(values(S.exponential_decay(I, T, r, B, staircase)), want, rtol=2e-6)


def test_exponential_decay_end_value_bounds_both_ways():
    down = values(S.exponential_decay(1.0, 10, 0.5, end_value=0.1))
    np.testing.assert_allclose(down, np.maximum(0.5 ** (STEPS / 10), 0.1), rtol=2e-6)
    up = values(S.exponential_decay(1.0, 10, 2.0, end_value=8.0))
    np.testing.assert_allclose(up, np.minimum(2.0 ** (STEPS / 10), 8.0), rtol=2e-6)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_closed_form(staircase):
    lr0, r, T = 0.3, 0.5, 40
    p = np.floor(STEPS / T) if staircase else STEPS / T
    want = lr0 / (1 + r * p)
    np.testing.assert_allclose(values(S.inverse_time_decay(lr0, r, T, staircase)), want, rtol=F32_RTOL)


def test_inverse_time_decay_seed_001_formulas():
    # Seed 001, "learning rate decay": alpha = alpha0 / (1 + decay_rate * epoch_num), one step per epoch.
    alpha0, decay_rate = 0.2, 1.0
    epochs = np.arange(0, 500)
    got = values(S.inverse_time_decay(alpha0, decay_rate, decay_steps=1), epochs)
    np.testing.assert_allclose(got, [alpha0 / (1 + decay_rate * e) for e in epochs], rtol=F32_RTOL)
    assert got[0] == np.float32(alpha0) and got[1] == np.float32(0.1) and got[3] == np.float32(0.05)
    # "scheduled learning rate decay": alpha0 / (1 + decay_rate * int(epoch_num / time_interval)).
    time_interval = 7
    got = values(S.inverse_time_decay(alpha0, decay_rate, decay_steps=time_interval, staircase=True), epochs)
    want = [alpha0 / (1 + decay_rate * int(e / time_interval)) for e in epochs]
    np.testing.assert_allclose(got, want, rtol=F32_RTOL)
    # With several optimizer steps per epoch, epoch_num = step // steps_per_epoch.
    spe = 13
    got = values(S.inverse_time_decay(alpha0, decay_rate, decay_steps=spe, staircase=True))
    np.testing.assert_allclose(got, [alpha0 / (1 + decay_rate * (s // spe)) for s in STEPS], rtol=F32_RTOL)


def keras_inverse_time_decay(initial_learning_rate, decay_steps, decay_rate, staircase, step):
    """Keras' ``InverseTimeDecay.__call__`` written out (keras/src/optimizers/schedules/learning_rate_schedule.py)."""
    global_step_recomp = np.float64(step)
    p = global_step_recomp / decay_steps
    if staircase:
        p = np.floor(p)
    const = np.float64(1)
    denom = const + decay_rate * p
    return initial_learning_rate / denom


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_matches_keras_definition(staircase):
    # Keras' argument order is (initial_learning_rate, decay_steps, decay_rate); ours is optax-style
    # (init_value, decay_rate, decay_steps): same schedule, check the values.
    want = [keras_inverse_time_decay(0.1, 1000, 0.5, staircase, s) for s in STEPS]
    got = values(S.inverse_time_decay(0.1, 0.5, 1000, staircase))
    np.testing.assert_allclose(got, want, rtol=F32_RTOL)
    # Keras' docstring example: decay_steps=1.0, decay_rate=0.5 gives 0.1 / (1 + 0.5 * step).
    np.testing.assert_allclose(values(S.inverse_time_decay(0.1, 0.5, 1)), 0.1 / (1 + 0.5 * STEPS), rtol=F32_RTOL)


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_cosine_decay_closed_form(exponent):
    I, T, a = 0.1, 1000, 0.05
    t = np.minimum(STEPS, T)
    want = I * ((1 - a) * (0.5 * (1 + np.cos(np.pi * t / T))) ** exponent + a)
    np.testing.assert_allclose(values(S.cosine_decay_schedule(I, T, a, exponent)), want, rtol=2e-6)


def test_warmup_cosine_closed_form():
    I, P, W, D, E = 0.0, 0.1, 100, 1000, 1e-3
    t = STEPS
    warm = I + t / W * (P - I)
    cos = E + (P - E) * 0.5 * (1 + np.cos(np.pi * np.minimum(t - W, D - W) / (D - W)))
    want = np.where(t < W, warm, cos)
    np.testing.assert_allclose(values(S.warmup_cosine_decay_schedule(I, P, W, D, E)), want, rtol=2e-6, atol=1e-9)


def test_piecewise_constant_closed_form():
    got = values(S.piecewise_constant_schedule(0.1, {500: 0.5, 100: 0.2}))
    want = 0.1 * np.where(STEPS >= 100, 0.2, 1.0) * np.where(STEPS >= 500, 0.5, 1.0)
    np.testing.assert_allclose(got, want, rtol=F32_RTOL)


def test_join_schedules_each_part_sees_steps_since_its_boundary():
    a, b, c = S.constant_schedule(1.0), S.linear_schedule(2.0, 0.0, 10), S.inverse_time_decay(3.0, 1.0, 1)
    got = values(S.join_schedules([a, b, c], [5, 20]))
    want = np.where(
        STEPS < 5,
        1.0,
        np.where(STEPS < 20, 2.0 * (1 - np.clip(STEPS - 5, 0, 10) / 10), 3.0 / (1 + np.maximum(STEPS - 20, 0))),
    )
    np.testing.assert_allclose(got, want, rtol=F32_RTOL)


# ---------------------------------------------------------------- parity with optax


OPTAX_CASES = {
    "constant": ("constant_schedule", (0.3,)),
    "linear": ("linear_schedule", (0.5, 0.9, 1000, 10)),
    "linear_to_zero": ("linear_schedule", (2.0, 0.0, 700)),
    "polynomial": ("polynomial_schedule", (1.0, 0.01, 2, 1000, 50)),
    "polynomial_frac_power": ("polynomial_schedule", (1.0, 0.01, 1.5, 1000, 50)),
    "exponential_decay": ("exponential_decay", (0.1, 100, 0.9)),
    "exponential_decay_staircase": ("exponential_decay", (0.1, 100, 0.9, 5, True, 0.01)),
    "cosine_decay": ("cosine_decay_schedule", (0.1, 1000, 0.1)),
    "cosine_decay_exponent": ("cosine_decay_schedule", (0.1, 1000, 0.1, 2.0)),
    "piecewise_constant": ("piecewise_constant_schedule", (0.1, {100: 0.5, 500: 0.1})),
    "warmup_constant": ("warmup_constant_schedule", (0.0, 0.1, 300)),
    "warmup_cosine_decay": ("warmup_cosine_decay_schedule", (0.0, 0.1, 100, 1000, 0.001)),
    "warmup_exponential_decay": ("warmup_exponential_decay_schedule", (0.0, 0.1, 100, 200, 0.5, 10, False, 0.001)),
    "piecewise_interpolate_linear": (
        "piecewise_interpolate_schedule",
        ("linear", 0.3, {100: 0.1, 400: 5.0, 900: 0.01}),
    ),
    "piecewise_interpolate_cosine": ("piecewise_interpolate_schedule", ("cosine", 0.3, {0: 2.0, 250: 0.1, 251: 3.0})),
    "linear_onecycle": ("linear_onecycle_schedule", (1000, 0.5, 0.25, 0.9, 20.0, 1e3)),
    "cosine_onecycle": ("cosine_onecycle_schedule", (999, 0.3, 0.2, 10.0, 100.0)),
    "sgdr": (
        "sgdr_schedule",
        (
            [
                dict(init_value=0.0, peak_value=1.0, warmup_steps=50, decay_steps=500),
                dict(init_value=0.1, peak_value=0.5, warmup_steps=20, decay_steps=300, end_value=0.01),
                dict(init_value=0.0, peak_value=0.2, warmup_steps=0, decay_steps=700, exponent=2.0),
            ],
        ),
    ),
}


def _ok(theirs):
    # optax 0.2.8's polynomial_schedule with a fractional power is NaN under jit once the transition
    # ends (XLA folds 1 - T/T to a tiny negative number, and x**1.5 of it is NaN): compare elsewhere.
    return np.isfinite(theirs)


@pytest.mark.parametrize("case", sorted(OPTAX_CASES))
def test_parity_with_optax(case):
    """The same formula as optax (float64: relative 1e-12 at every 7th step), and in float32 as accurate as
    optax or more: within 2 ulps of the scale and 1.2e-6 relative of the exact value at every step where the
    value is at least 1e-3 of the scale. (optax's own float32 values near the end of a cosine are up to 1e-5
    off: it computes (1 + cos) / 2, which cancels there; ours cos^2 or sin^2 of half the angle.)"""
    name, args = OPTAX_CASES[case]
    with jax.enable_x64(True):
        exact = np.asarray(jax.vmap(getattr(S, name)(*args))(jnp.asarray(STEPS, jnp.int64)))
        theirs64 = np.asarray([float(getattr(optax, name)(*args)(int(t))) for t in STEPS[::7]])
    ok = _ok(theirs64)
    assert rel_err(exact[::7][ok], theirs64[ok]) <= 1e-12
    ours = values(getattr(S, name)(*args))
    theirs = values(lambda t: jnp.broadcast_to(getattr(optax, name)(*args)(t), jnp.shape(t)))
    assert np.all(np.isfinite(ours))
    scale = np.max(np.abs(exact))
    big = np.abs(exact) >= 1e-3 * scale
    assert np.max(np.abs(ours - exact)) / scale <= 2.4e-7
    assert rel_err(ours[big], exact[big]) <= 1.2e-6
    ok = _ok(theirs)
    assert np.max(np.abs(ours - exact)[ok]) <= max(np.max(np.abs(theirs - exact)[ok]), 2.4e-7 * scale)


@pytest.mark.parametrize("power", [0.5, 1.5, 2.5])
def test_polynomial_fractional_power_is_finite_and_exact_at_the_end_under_jit(power):
    got = values(S.polynomial_schedule(1.0, 0.01, power, 1000, 50))
    assert np.all(np.isfinite(got)) and np.all(got[1050:] == np.float32(0.01)) and np.all(got[:51] == 1.0)


def test_linear_transition_never_overshoots_its_ends():
    # Under jit XLA folds (E - I) * (t / T) into t * ((E - I) / T); the ends must still be exact.
    for I, E, T in [(0.0, 0.1, 100), (2.0, 0.0, 700), (0.5, 0.9, 1000), (1.0, 0.0, 3)]:
        got = values(S.linear_schedule(I, E, T))
        assert got[0] == np.float32(I) and got[T] == np.float32(E) and got[-1] == np.float32(E)
        assert np.all(got >= min(I, E)) and np.all(got <= np.float32(max(I, E)))
        got = values(S.warmup_cosine_decay_schedule(I, max(E, I) + 0.1, 10, 100, 0.0))
        assert got[0] == np.float32(I) and np.all(got >= 0)


# ---------------------------------------------------------------- dtype, jit/vmap, validation


ALL = [
    S.constant_schedule(0.999),
    S.linear_schedule(0.5, 0.999, 100),
    S.polynomial_schedule(0.999, 0.0, 2, 100),
    S.exponential_decay(0.999, 10, 0.5),
    S.inverse_time_decay(0.999, 0.5, 10, True),
    S.cosine_decay_schedule(0.999, 100),
    S.piecewise_constant_schedule(0.999, {10: 0.5}),
    S.warmup_cosine_decay_schedule(0.0, 0.999, 10, 100),
]


@pytest.mark.parametrize("i", range(len(ALL)))
def test_float32_whatever_the_step_or_value_dtype(i):
    sched = ALL[i]
    want = sched(0)
    assert want.dtype == jnp.float32
    for step in (jnp.int32(0), jnp.int8(0), jnp.int32([0])[0], jnp.bfloat16(0.0)):
        out = sched(step)
        assert out.dtype == jnp.float32 and out == want
    # 0.999 stays float32's 0.999 (bfloat16 would round it to 1.0)
    assert values(sched, [0, 1])[0] in (np.float32(0.999), 0.0, 0.5)


def test_bfloat16_values_are_computed_in_float32():
    s = S.linear_schedule(jnp.bfloat16(0.5), 0.999, 100)
    assert s(100).dtype == jnp.float32 and float(s(100)) == float(np.float32(0.999))
    assert float(S.constant_schedule(0.999)(jnp.bfloat16(3.0))) == float(np.float32(0.999)) != 1.0


def test_float64_under_x64():
    with jax.enable_x64(True):
        out = S.inverse_time_decay(0.1, 0.5, 3)(jnp.int32(7))
        assert out.dtype == jnp.float64
        assert float(out) == 0.1 / (1 + 0.5 * 7 / 3)  # exact in float64
        assert S.cosine_decay_schedule(0.1, 10)(3).dtype == jnp.float64


def test_vmap_over_schedule_parameters_equals_separate_builds():
    lrs, rates = jnp.array([0.1, 0.3, 1.0]), jnp.array([0.0, 0.5, 2.0])
    steps = jnp.arange(50)

    def curve(lr, r):
        return jax.vmap(S.inverse_time_decay(lr, r, 10))(steps)

    batched = jax.jit(jax.vmap(jax.vmap(curve, (None, 0)), (0, None)))(lrs, rates)
    for i, lr in enumerate([0.1, 0.3, 1.0]):
        for j, r in enumerate([0.0, 0.5, 2.0]):
            # traced vs constant arguments: XLA folds constants differently, so up to 1 float32 ulp
            sep = values(S.inverse_time_decay(lr, r, 10), np.arange(50))
            np.testing.assert_allclose(batched[i, j], sep, rtol=2.4e-7, atol=0)
    # exponential and cosine with traced rate / alpha
    ex = jax.vmap(lambda r: S.exponential_decay(1.0, 10, r)(jnp.int32(25)))(jnp.array([0.5, 0.9]))
    np.testing.assert_allclose(ex, [0.5**2.5, 0.9**2.5], rtol=2e-6)
    co = jax.vmap(lambda a: S.cosine_decay_schedule(1.0, 10, a)(jnp.int32(10)))(jnp.array([0.0, 0.25]))
    np.testing.assert_allclose(co, [0.0, 0.25], atol=1e-7)


def test_grad_through_schedule_parameter():
    # d/dr [v0 / (1 + r t / T)] = -v0 (t/T) / (1 + r t/T)^2
    g = jax.grad(lambda r: S.inverse_time_decay(2.0, r, 4)(jnp.int32(8)))(0.5)
    assert float(g) == pytest.approx(-2.0 * 2 / (1 + 0.5 * 2) ** 2, rel=1e-6)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: S.inverse_time_decay(0.1, -0.5, 10), "decay_rate=-0.5"),
        (lambda: S.inverse_time_decay(0.1, 0.5, 0), "decay_steps=0"),
        (lambda: S.inverse_time_decay(0.1, 0.5, 2.5), "whole number"),
        (lambda: S.inverse_time_decay(0.1, 0.5, 10, staircase="yes"), "staircase"),
        (lambda: S.exponential_decay(0.1, 10, 0.0), "decay_rate=0.0"),
        (lambda: S.exponential_decay(0.1, -1, 0.5), "transition_steps=-1"),
        (lambda: S.linear_schedule(math.nan, 0.9, 10), "init_value=nan"),
        (lambda: S.cosine_decay_schedule(0.1, 0), "decay_steps=0"),
        (lambda: S.piecewise_constant_schedule(0.1, {10: -0.5}), "scale at boundary 10"),
        (lambda: S.join_schedules([S.constant_schedule(1.0)], [3]), "need 0 boundaries"),
        (lambda: S.join_schedules([S.constant_schedule(1.0)] * 3, [5, 3]), "non-decreasing"),
        (lambda: S.warmup_cosine_decay_schedule(0.0, 0.1, 100, 100), "must exceed"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_traced_arguments_are_not_validated():
    # A traced decay_rate has no value at build time; building must not sync or raise.
    out = jax.jit(lambda r: S.inverse_time_decay(1.0, r, 1)(jnp.int32(1)))(jnp.float32(1.0))
    assert float(out) == 0.5


# ---------------------------------------------------------------- any hyperparameter may be a schedule


def quad_grad(x):
    """Gradient of the ill-conditioned quadratic 0.5 * (x0^2 + 10 x1^2)."""
    return x * jnp.array([1.0, 10.0], x.dtype)


def run(tx, x0, steps):
    state = tx.init(x0)

    @jax.jit
    def step(x, state):
        u, state = tx.update(quad_grad(x), state, x)
        return gx.apply_updates(x, u), state

    xs = [x0]
    for _ in range(steps):
        x, state = step(xs[-1], state)
        xs.append(x)
    return np.asarray(xs, np.float64)


def test_first_update_sees_step_zero():
    x0 = jnp.array([1.0, 1.0])
    tx = gx.sgd(S.inverse_time_decay(0.5, 1.0, 1))  # 0.5, 0.25, 0.1667, ...
    xs = run(tx, x0, 3)
    g = np.array([1.0, 10.0])
    x1 = 1 - 0.5 * g
    np.testing.assert_allclose(xs[1], x1, rtol=1e-6)
    np.testing.assert_allclose(xs[2], x1 - 0.25 * x1 * g, rtol=1e-6)


def test_momentum_annealing_trajectory_equals_closed_form():
    """Seed 000: momentum 0.5 annealed to 0.9 over T steps; v_t = m(t-1) v_{t-1} + g_t, x_t = x_{t-1} - lr v_t."""
    lr, T, n = 0.02, 60, 120
    m = S.linear_schedule(0.5, 0.9, T)
    x0 = jnp.array([1.0, -2.0])
    xs = run(gx.momentum(lr, beta=m), x0, n)
    # closed-form recurrence in float64, with m(k) = 0.5 + 0.4 min(k, T)/T evaluated at the pre-update count
    x, v, want = np.array([1.0, -2.0]), np.zeros(2), [np.array([1.0, -2.0])]
    for k in range(n):
        g = x * np.array([1.0, 10.0])
        v = (0.5 + 0.4 * min(k, T) / T) * v + g
        x = x - lr * v
        want.append(x)
    np.testing.assert_allclose(xs, np.asarray(want), rtol=2e-5, atol=1e-6)
    # and the annealing changes the trajectory: constant 0.5 and constant 0.9 both differ
    for beta in (0.5, 0.9):
        other = run(gx.momentum(lr, beta=beta), x0, n)
        assert np.max(np.abs(other - xs)) > 1e-2


def test_adam_b1_schedule_matches_closed_form_and_optax_inject():
    b1 = S.linear_schedule(0.5, 0.9, 30)
    lr, n = 0.05, 60
    x0 = jnp.array([1.0, -2.0])
    xs = run(gx.adam(lr, b1=b1), x0, n)
    # optax injects b1's value at the pre-update count into scale_by_adam (bias correction 1 - b1(t-1)^t)
    ox = run(optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=optax.linear_schedule(0.5, 0.9, 30)), x0, n)
    np.testing.assert_allclose(xs, ox, rtol=1e-5, atol=1e-6)
    # closed form
    x, mu, nu, want = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2), [np.array([1.0, -2.0])]
    for k in range(n):
        g = x * np.array([1.0, 10.0])
        b = 0.5 + 0.4 * min(k, 30) / 30
        mu = b * mu + (1 - b) * g
        nu = 0.999 * nu + 0.001 * g * g
        x = x - lr * (mu / (1 - b ** (k + 1))) / (np.sqrt(nu / (1 - 0.999 ** (k + 1))) + 1e-8)
        want.append(x)
    np.testing.assert_allclose(xs, np.asarray(want), rtol=2e-5, atol=1e-5)


def test_weight_decay_schedule_matches_optax_inject():
    wd = S.exponential_decay(0.1, 10, 0.5)
    x0 = jnp.array([1.0, -2.0])
    xs = run(gx.adamw(0.01, weight_decay=wd), x0, 50)
    ox = run(
        optax.inject_hyperparams(optax.adamw)(learning_rate=0.01, weight_decay=optax.exponential_decay(0.1, 10, 0.5)),
        x0,
        50,
    )
    np.testing.assert_allclose(xs, ox, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(run(gx.adamw(0.01, weight_decay=0.1), x0, 50) - xs)) > 1e-3


def test_rmsprop_decay_schedule_matches_closed_form():
    rho = S.linear_schedule(0.5, 0.99, 20)
    lr, n = 0.01, 40
    xs = run(gx.rmsprop(lr, decay=rho), jnp.array([1.0, -2.0]), n)
    x, nu, want = np.array([1.0, -2.0]), np.zeros(2), [np.array([1.0, -2.0])]
    for k in range(n):
        g = x * np.array([1.0, 10.0])
        r = 0.5 + 0.49 * min(k, 20) / 20
        nu = r * nu + (1 - r) * g * g
        x = x - lr * g / (np.sqrt(nu) + 1e-8)
        want.append(x)
    np.testing.assert_allclose(xs, np.asarray(want), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_warmup_stable_decay_closed_form(shape):
    I, P, E, W, S_, D = 0.01, 1.0, 0.05, 100, 1200, 600
    t = STEPS.astype(np.float64)
    p = np.clip((t - W - S_) / D, 0, 1)
    phi = {"linear": 1 - p, "cosine": 0.5 * (1 + np.cos(np.pi * p)), "1-sqrt": 1 - np.sqrt(p)}[shape]
    want = np.where(t < W, I + (P - I) * t / W, np.where(t < W + S_, P, E + (P - E) * phi))
    got = values(S.warmup_stable_decay_schedule(P, W, S_, D, E, I, shape))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=F32_ATOL)
    assert got[0] == np.float32(I) and got[W] == np.float32(P) and got[W + S_ - 1] == np.float32(P)
    assert got[W + S_ + D] == np.float32(E) and got[-1] == np.float32(E)
    assert np.all(np.diff(got[W + S_ :]) <= 0)  # the decay never rises


def test_warmup_stable_decay_refuses_bad_shapes_and_steps():
    with pytest.raises(ValueError, match=r"^warmup_stable_decay_schedule: decay_shape='sqrt' must be one of"):
        S.warmup_stable_decay_schedule(1.0, 10, 10, 10, decay_shape="sqrt")
    with pytest.raises(ValueError, match=r"^warmup_stable_decay_schedule: stable_steps=-1 is out of range"):
        S.warmup_stable_decay_schedule(1.0, 10, -1, 10)
