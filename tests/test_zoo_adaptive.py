"""The zoo's adaptive and sign blocks against their closed forms and the papers' numbers.

RAdam's rectification (rho_t, its threshold, r_t), AdaMax's infinity moment, Yogi's additive
second moment, AdaBelief's prediction error, Lion's interpolated momentum, the sign block,
Rprop's step sizes and bounds (and optax 0.2.8's one-step lag), and the errors of bad input.
The registry suites cover parity, dtypes, transforms and the rest for every optimizer.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform.compat import torch as gxt
from tests.helpers import grad_stream, make_tree
from tests.refs import rel_err


def _run(tx, grads, params=None):
    """The updates of `tx` for a list of gradient arrays (one leaf), and the final state."""
    p = jnp.zeros_like(grads[0]) if params is None else params
    s = tx.init(p)
    out = []
    for g in grads:
        u, s = tx.update(g, s, p)
        out.append(np.asarray(u))
    return np.array(out), s


def _rho(b2: float, t: int) -> Fraction:
    """rho_t in exact arithmetic (the float form cancels: rho_6 = 1999 - 1993.0...)."""
    b = Fraction(b2)
    rho_inf = 2 / (1 - b) - 1
    return rho_inf - 2 * t * b**t / (1 - b**t)


def _r(b2: float, t: int) -> float:
    rho_inf, rho = 2 / (1 - Fraction(b2)) - 1, _rho(b2, t)
    return math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))


# RAdam's rectification ------------------------------------------------------------------------------


def test_rho_t_crosses_the_threshold_at_step_6_for_the_default_b2():
    # Liu et al.: rho_t is the length of the approximated simple moving average; with b2 = 0.999 it is
    # 1, 2, 3, 4, 5 (just below) for t <= 5, and the first rectified step (rho_t >= 5) is t = 6.
    assert [round(float(_rho(0.999, t)), 2) for t in range(1, 7)] == [1.0, 2.0, 3.0, 4.0, 5.0, 5.99]
    assert _rho(0.999, 5) < 5 <= _rho(0.999, 6)
    with jax.enable_x64(True):
        out, _ = _run(gx.rectification(0.999, 5.0), [jnp.full(3, 2.0)] * 8)
    np.testing.assert_array_equal(out[:5], 1.0)  # before the threshold the denominator is 1: plain momentum
    for t in range(6, 9):
        np.testing.assert_allclose(out[t - 1], 2.0 / _r(0.999, t), rtol=1e-12)
    np.testing.assert_allclose(_r(0.999, 6), 0.025821, rtol=1e-4)  # r_6: the first adaptive step is damped 40x


def test_rectification_tends_to_one_and_strict_excludes_the_threshold():
    assert _r(0.999, 10_000) == pytest.approx(1.0, abs=1e-3)
    with jax.enable_x64(True):
        (late,), _ = _run(gx.chain(gx.scale(1.0), gx.rectification(0.9, 4.0)), [jnp.ones(2)])
        np.testing.assert_array_equal(late, 1.0)  # t = 1: rho_1 = 1 < 4
        # b2 = 0: rho_inf = 1, rho_t = 1 - 0 = 1 < threshold at every step; the step is always momentum
        out, _ = _run(gx.rectification(0.0, 4.0), [jnp.ones(2)] * 3)
        np.testing.assert_array_equal(out, 1.0)
    # The threshold itself: torch's rule (strict) rectifies only above it. At t = 6 for b2 = 0.999,
    # rho_6 = 5.994...: a threshold of exactly that value separates the two rules.
    with jax.enable_x64(True):
        rho6 = gx.rectification(0.999, 4.0)  # read rho_6 back from r_6 through the closed form
        out, _ = _run(rho6, [jnp.ones(1)] * 6)
        np.testing.assert_allclose(out[5], 1 / _r(0.999, 6), rtol=1e-12)
        threshold = float(_rho(0.999, 6)) + 1e-9
        loose, _ = _run(gx.rectification(0.999, threshold), [jnp.ones(1)] * 7)
        strict, _ = _run(gx.rectification(0.999, threshold, strict=True), [jnp.ones(1)] * 7)
        assert loose[5] == strict[5] == 1.0 and loose[6] != 1.0 and strict[6] != 1.0


def test_radam_takes_momentum_steps_then_the_rectified_adam_step():
    with jax.enable_x64(True):
        g = [jnp.asarray([0.5, -2.0]) * (1 + 0.1 * k) for k in range(8)]
        out, _ = _run(gx.radam(0.1), g)
        mom, _ = _run(gx.chain(gx.ema(0.9), gx.bias_correction(0.9), gx.scale_by_learning_rate(0.1)), g)
        adam, _ = _run(gx.adam(0.1), g)
        np.testing.assert_allclose(out[:5], mom[:5], rtol=1e-13)
        for t in (6, 7, 8):
            np.testing.assert_allclose(out[t - 1], _r(0.999, t) * adam[t - 1], rtol=1e-12)


def test_torch_radam_divides_the_uncorrected_root_plus_eps():
    # compat.torch.RAdam: sqrt(1 - b2^t) / (sqrt(v_t) + eps); with a large eps the two forms differ.
    with jax.enable_x64(True):
        g = [jnp.asarray([1e-3, 2.0])] * 7
        theirs, _ = _run(gxt.RAdam(lr=1.0, eps=1e-2), g)
        t = 7
        v = (1 - 0.999**t) * g[0] ** 2
        want = -_r(0.999, t) * math.sqrt(1 - 0.999**t) / (np.sqrt(v) + 1e-2) * g[0]
        np.testing.assert_allclose(theirs[-1], want, rtol=1e-12)


def test_bias_correction_power_one_half():
    with jax.enable_x64(True):
        out, _ = _run(gx.bias_correction(0.99, power=0.5), [jnp.ones(1)] * 3)
    np.testing.assert_allclose(out[:, 0], [1 / math.sqrt(1 - 0.99**t) for t in (1, 2, 3)], rtol=1e-13)
    with pytest.raises(ValueError, match=r"bias_correction: power=2.0 must be 1.0 or 0.5"):
        gx.bias_correction(0.9, power=2.0)


# AdaMax, Yogi, AdaBelief, Lion -----------------------------------------------------------------------


def test_infinity_moment_is_the_weighted_maximum():
    rng = np.random.default_rng(0)
    gs = rng.normal(size=(20, 5))
    b, eps = 0.9, 1e-3
    with jax.enable_x64(True):
        out, _ = _run(gx.infinity_moment(b, eps), [jnp.asarray(g) for g in gs])
    for t in range(1, 21):
        want = np.max([b ** (t - k) * (np.abs(gs[k - 1]) + eps) for k in range(1, t + 1)], axis=0)
        np.testing.assert_allclose(out[t - 1], want, rtol=1e-13)
    # AdaMax's first step is -lr * sign(g) * |g| / (|g| + eps): bias correction makes mu_hat_1 = g
    with jax.enable_x64(True):
        (first,), _ = _run(gx.adamax(0.1, eps=1e-8), [jnp.asarray([3.0, -0.5])])
    np.testing.assert_allclose(first, [-0.1 * 3 / (3 + 1e-8), 0.1 * 0.5 / (0.5 + 1e-8)], rtol=1e-14)


def test_yogi_moves_its_second_moment_by_at_most_one_minus_b_g2():
    rng = np.random.default_rng(1)
    gs = rng.normal(size=(30, 6)) * np.exp(rng.normal(size=(30, 1)))
    b = 0.9
    with jax.enable_x64(True):
        out, _ = _run(gx.yogi_sq(b, 1e-6), [jnp.asarray(g) for g in gs])
    prev = np.full(6, 1e-6)
    for g, nu in zip(gs, out):
        np.testing.assert_allclose(nu, prev - (1 - b) * np.sign(prev - g**2) * g**2, rtol=1e-13)
        assert np.all(np.abs(nu - prev) <= (1 - b) * g**2 * (1 + 1e-12) + 1e-15 * prev)
        assert np.all(nu >= b * prev * (1 - 1e-12)) and np.all(nu > 0)
        prev = nu
    # Yogi's first moment starts at 1e-6 too (optax, the paper's code)
    state = gx.yogi(0.1).init(jnp.zeros(3))
    np.testing.assert_array_equal(gx.tree_get(state, "mu"), np.float32(1e-6))
    np.testing.assert_array_equal(gx.tree_get(state, "nu"), np.float32(1e-6))


def test_adabelief_first_step_closed_form_and_prediction_error():
    b1, b2, eps_root, lr = 0.9, 0.999, 1e-16, 0.1
    g = np.array([2.0, -0.25])
    with jax.enable_x64(True):
        (u,), s = _run(gx.adabelief(lr, eps=0.0), [jnp.asarray(g)])
    # mu_1 = (1-b1) g; the prediction error is g - mu_1 = b1 g; s_1 = (1-b2) b1^2 g^2 + eps_root
    np.testing.assert_allclose(gx.tree_get(s, "nu"), (1 - b2) * (b1 * g) ** 2 + eps_root, rtol=1e-13)
    np.testing.assert_allclose(u, -lr * g / np.sqrt((b1 * g) ** 2 + eps_root / (1 - b2)), rtol=1e-12)
    # A constant gradient is believed: its prediction error shrinks, so the step grows past Adam's.
    with jax.enable_x64(True):
        belief, _ = _run(gx.adabelief(lr), [jnp.asarray(g)] * 20)
        adam, _ = _run(gx.adam(lr), [jnp.asarray(g)] * 20)
    assert np.all(np.abs(belief[-1]) > 2 * np.abs(adam[-1]))


def test_ratio_residual_needs_a_moving_average():
    tx = gx.ratio(None, gx.belief_sq(0.9), residual=True)
    with pytest.raises(ValueError, match=r"ratio: residual=True needs a numerator whose state holds `mu`"):
        tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
    with pytest.raises(TypeError, match=r"ratio: residual='yes' must be True or False"):
        gx.ratio(gx.ema(0.9), gx.belief_sq(0.9), residual="yes")


def test_interpolated_ema_is_ema_one_step_late_when_the_decays_agree():
    rng = np.random.default_rng(2)
    gs = [jnp.asarray(g) for g in rng.normal(size=(10, 4))]
    with jax.enable_x64(True):
        lion_c, s = _run(gx.interpolated_ema(0.7, 0.7), gs)
        mu, _ = _run(gx.ema(0.7), gs)
    # c_t = b mu_{t-1} + (1-b) g_t = mu_t when b1 = b2: the kept average is ema's
    np.testing.assert_allclose(lion_c, mu, rtol=1e-13)
    np.testing.assert_allclose(gx.tree_get(s, "mu"), mu[-1], rtol=1e-13)
    # with the default decays the step's direction weighs g_t by 0.1, the kept average by 0.01
    with jax.enable_x64(True):
        c, s = _run(gx.interpolated_ema(0.9, 0.99), [jnp.ones(1), -jnp.ones(1)])
    np.testing.assert_allclose(c[:, 0], [0.1, 0.9 * 0.01 - 0.1], rtol=1e-13)
    np.testing.assert_allclose(gx.tree_get(s, "mu"), [0.99 * 0.01 - 0.01], rtol=1e-13)


def test_lion_every_element_moves_by_the_learning_rate():
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        out, _ = _run(gx.lion(1e-3, weight_decay=0.0), [jnp.asarray(g) for g in rng.normal(size=(5, 7))])
    np.testing.assert_allclose(np.abs(out), 1e-3, rtol=1e-15)


# Sign methods and Rprop -----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [gx.sign_sgd, gx.signum, gx.lion, gx.rprop], ids=lambda f: f.__name__)
def test_sign_methods_refuse_complex_parameters(make):
    tx = make(0.1)
    with pytest.raises(TypeError, match=rf"^{make.__name__}: the leaf at \['z'\] has dtype complex64; it steps by "):
        tx.init({"w": jnp.zeros(2), "z": jnp.zeros(2, jnp.complex64)})


def test_sign_block_outputs_minus_one_zero_one():
    (out,), _ = _run(gx.sign(), [jnp.asarray([-3.0, 0.0, 1e-30, 5.0])])
    np.testing.assert_array_equal(out, [-1.0, 0.0, 1.0, 1.0])


def test_rprop_steps_grow_shrink_skip_and_match_the_worked_example():
    # grads 1, 1, 1, -1, 1 with step 0.1, eta = (0.5, 1.2): the steps 0.1, 0.12, 0.144, a skipped reversal
    # (step size 0.072), then 0.072 (s = 0 after the skip: the step size is kept).
    with jax.enable_x64(True):
        out, s = _run(gx.rprop(0.1), [jnp.asarray([g]) for g in (1.0, 1.0, 1.0, -1.0, 1.0)])
    np.testing.assert_allclose(out[:, 0], [-0.1, -0.12, -0.144, 0.0, -0.072], rtol=1e-14)
    np.testing.assert_allclose(gx.tree_get(s, "step_sizes"), [0.072], rtol=1e-14)


def test_rprop_step_sizes_stay_within_their_bounds():
    with jax.enable_x64(True):
        grow, s = _run(gx.rprop(0.1, eta_plus=2.0, max_step_size=1.0), [jnp.ones(1)] * 10)
        np.testing.assert_allclose(-grow[:, 0], [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], rtol=1e-14)
        flip = [jnp.asarray([(-1.0) ** k]) for k in range(40)]  # every other step reverses, then s = 0
        _, s = _run(gx.rprop(0.1, eta_minus=0.1, min_step_size=1e-4), flip)
        np.testing.assert_allclose(gx.tree_get(s, "step_sizes"), [1e-4], rtol=1e-14)
        # the first step is learning_rate * sign(g) whatever |g|: the gradient's size never enters
        (first,), _ = _run(gx.rprop(0.3), [jnp.asarray([1e-9, -7.0, 0.0])])
        np.testing.assert_array_equal(first, [-0.3, 0.3, 0.0])


def test_rprop_is_optax_rprop_one_step_earlier():
    """optax 0.2.8 computes the same step sizes and steps but returns each update one step late."""
    with jax.enable_x64(True):
        params = make_tree(jnp.float64, seed=0)
        grads = grad_stream(jnp.float64, 300, seed=1)
        kw = dict(learning_rate=0.02, eta_minus=0.4, eta_plus=1.3, min_step_size=1e-4, max_step_size=0.5)
        ours, theirs = gx.rprop(**kw), optax.rprop(**kw)

        def run(tx):
            def body(s, g):
                u, s = tx.update(g, s, params)
                return s, (u, s)

            return jax.lax.scan(body, tx.init(params), grads)[1]

        (u1, s1), (u2, s2) = jax.jit(lambda: run(ours))(), jax.jit(lambda: run(theirs))()
        assert rel_err(gx.tree_get(s1, "step_sizes"), s2[0].step_sizes) == 0.0  # every step's state, exactly
        assert rel_err(gx.tree_get(s1, "prev_updates"), s2[0].prev_updates) == 0.0
        # optax's update at t + 1 is ours at t, zeroed where the sign reverses at t + 1
        prev = gx.tree_get(s1, "prev_updates")  # the step taken at each t, before scale(-1)
        reversed_next = jax.tree.map(lambda g, u: (jnp.sign(g[1:]) * jnp.sign(u[:-1])) < 0, grads, prev)
        shifted = jax.tree.map(lambda u, r: jnp.where(r, 0.0, u[:-1]), u1, reversed_next)
        assert rel_err(shifted, jax.tree.map(lambda u: u[1:], u2)) == 0.0
        assert all(not jnp.any(u[0]) for u in jax.tree.leaves(u2))  # optax's first update is zero
        assert all(float(jnp.min(jnp.abs(u[0]))) > 0.0 for u in jax.tree.leaves(u1) if u[0].size)


def test_torch_rprop_clamps_its_first_step_size():
    with jax.enable_x64(True):
        out, s = _run(gxt.Rprop(lr=1.0, step_sizes=(1e-3, 0.2)), [jnp.ones(1)] * 2)
    np.testing.assert_allclose(out[:, 0], [-0.2, -0.2], rtol=1e-15)


# Bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, kind, message",
    [
        (lambda: gx.rprop(0.1, eta_minus=1.5), ValueError, r"^rprop: eta_minus=1.5 is out of range; allowed: \(0, 1\)"),
        (lambda: gx.rprop(0.1, eta_plus=1.0), ValueError, r"^rprop: eta_plus=1.0 is out of range; allowed: \(1, inf\)"),
        (
            lambda: gx.rprop(0.1, min_step_size=1.0, max_step_size=0.5),
            ValueError,
            r"^rprop: min_step_size=1.0 is above max_step_size=0.5",
        ),
        (lambda: gx.rprop(lambda c: 0.1), TypeError, r"^rprop: learning_rate is the first step size, used once"),
        (lambda: gxt.Rprop(etas=(0.5,)), ValueError, r"^Rprop: etas must be a pair"),
        (lambda: gxt.Rprop(etas=(0.5, 0.9)), ValueError, r"^Rprop: etas\[1\]=0.9 is out of range; allowed: \(1, inf\)"),
        (
            lambda: gx.radam(0.1, threshold=3.0),
            ValueError,
            r"^radam: threshold=3.0 is out of range; allowed: \[4, inf\)",
        ),
        (lambda: gx.radam(0.1, nesterov=1), TypeError, r"^radam: nesterov=1 must be True or False"),
        (lambda: gx.adamax(0.1, b2=1.0), ValueError, r"^adamax: b2=1.0 is out of range; allowed: \[0, 1\)"),
        (lambda: gx.adamaxw(0.1, weight_decay=-1.0), ValueError, r"^adamaxw: weight_decay=-1.0 is out of range"),
        (lambda: gx.nadamw(0.1, eps=-1.0), ValueError, r"^nadamw: eps=-1.0 is out of range"),
        (lambda: gx.yogi(0.1, b1=-0.1), ValueError, r"^yogi: b1=-0.1 is out of range"),
        (lambda: gx.adabelief(0.1, eps_root=-1e-16), ValueError, r"^adabelief: eps_root=-1e-16 is out of range"),
        (lambda: gx.lion(0.1, b1=1.5), ValueError, r"^lion: b1=1.5 is out of range; allowed: \[0, 1\]"),
        (lambda: gx.lion(0.1, mu_dtype=jnp.int8), TypeError, r"^lion: mu_dtype"),
        (lambda: gx.signum(0.1, beta=1.0), ValueError, r"^signum: beta=1.0 is out of range"),
        (lambda: gx.sign_sgd(-1.0), ValueError, r"^sign_sgd: learning_rate=-1.0 is out of range"),
        (lambda: gxt.RAdam(betas=(0.9, 1.0)), ValueError, r"^RAdam: betas\[1\]=1.0 is out of range"),
        (lambda: gxt.Adamax(eps=-1.0), ValueError, r"^Adamax: eps=-1.0 is out of range"),
        (lambda: gx.ema(0.9, initial=lambda c: 0.1), TypeError, r"^ema: initial is used once, at init"),
    ],
)
def test_bad_input_is_refused_with_the_optimizers_name(build, kind, message):
    with pytest.raises(kind, match=message):
        build()


def test_a_refused_update_changes_nothing():
    tx = gx.rprop(0.1)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    before = jax.tree.map(np.asarray, state)
    with pytest.raises(ValueError, match=r"^rprop: .*\['w'\] has shape \[4\]"):
        tx.update({"w": jnp.zeros(4)}, state, params)
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, state))
