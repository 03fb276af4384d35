"""The learning-rate-free methods' formulas, checked on small problems worked by hand.

Parity with optax.contrib over 300 steps is in tests/test_parity.py (registry cases); here each estimate is
checked against its paper's definition: DoG's and DoWG's first steps, the running maximum of the distance,
the start point kept apart from the parameters, and bad input refused by the function the user called.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

PARAMS = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.25, -1.0, 2.0])}
GRADS = {"w": jnp.array([[0.3, -0.1], [0.2, 0.4]]), "b": jnp.array([-0.5, 0.1, 0.05])}


def _norm(tree):
    return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree))))


def _sub(a, b):
    return jax.tree.map(lambda x, y: x - y, a, b)


def _close(a, b, rtol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# DoG and DoWG


@pytest.mark.parametrize("r_eps", [1e-3, 0.2])
def test_dog_first_step_size_is_r_eps_over_the_gradient_norm(r_eps):
    tx = gx.dog(init_step=("distance", r_eps), eps=0.0 + 1e-30)
    u, state = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    step = r_eps / _norm(GRADS)
    _close(u, jax.tree.map(lambda g: -step * g, GRADS))
    assert float(state.max_dist) == pytest.approx(r_eps)  # nothing travelled yet: r_bar_1 = r_eps
    assert float(state.sum_sq_norm_grads) == pytest.approx(_norm(GRADS) ** 2)


def test_dog_heuristic_first_distance_is_alpha_one_plus_norm_x0():
    alpha = 1e-3
    state = gx.dog(init_step=("heuristic", alpha)).init(PARAMS)
    assert float(state.max_dist) == pytest.approx(alpha * (1 + _norm(PARAMS)), rel=1e-6)


def test_dog_learning_rate_init_step_sets_the_first_step_only():
    tx = gx.dog(init_step=("learning_rate", 0.05))
    s = tx.init(PARAMS)
    u1, s = tx.update(GRADS, s, PARAMS)
    _close(u1, jax.tree.map(lambda g: -0.05 * g, GRADS))  # r_eps = 0, eta_0 = 0.05
    p1 = gx.apply_updates(PARAMS, u1)
    u2, s = tx.update(GRADS, s, p1)
    # second step: distance travelled (0.05 |g|) over sqrt(2 |g|^2 + eps)
    step = 0.05 * _norm(GRADS) / np.sqrt(2 * _norm(GRADS) ** 2 + 1e-8)
    _close(u2, jax.tree.map(lambda g: -step * g, GRADS), rtol=1e-5)
    assert not bool(s.is_init_step)


def test_dog_distance_estimate_is_a_running_maximum_from_the_start():
    tx = gx.dog(init_step=("distance", 1e-4))
    s = tx.init(PARAMS)
    far = jax.tree.map(lambda x: x + 1.0, PARAMS)
    _, s = tx.update(GRADS, s, far)  # r_bar = |far - x0| = sqrt(7)
    assert float(s.max_dist) == pytest.approx(np.sqrt(7.0), rel=1e-6)
    _, s = tx.update(GRADS, s, PARAMS)  # back at the start: the maximum stays
    assert float(s.max_dist) == pytest.approx(np.sqrt(7.0), rel=1e-6)
    _close(s.init_params, PARAMS, rtol=0)  # x0 is kept as given to init


def test_dowg_first_step_and_weighted_sum():
    r2, eps = 0.04, 1e-4
    tx = gx.dowg(init_estim_sq_dist=r2, eps=eps)
    u, s = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    v = r2 * _norm(GRADS) ** 2
    step = r2 / (np.sqrt(v) + eps)
    _close(u, jax.tree.map(lambda g: -step * g, GRADS))
    assert float(s.weighted_sq_norm_grads) == pytest.approx(v, rel=1e-6)
    # default: the first squared distance is eps
    assert float(gx.dowg(eps=3e-3).init(PARAMS).estim_sq_dist) == pytest.approx(3e-3)


def test_start_point_is_a_copy_so_params_and_state_can_both_be_donated():
    tx = gx.dog()
    state = tx.init(PARAMS)
    for a, b in zip(jax.tree.leaves(state.init_params), jax.tree.leaves(PARAMS)):
        assert a.unsafe_buffer_pointer() != b.unsafe_buffer_pointer()
    step = jax.jit(lambda p, s: tx.update(GRADS, s, p), donate_argnums=(0, 1))
    step(jax.tree.map(jnp.copy, PARAMS), state)  # would raise if a buffer were donated twice


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gx.dog(init_step=("radius", 1e-3)), r"^dog: init_step's tag 'radius' is not one of"),
        (lambda: gx.dog(init_step=1e-3), r"^dog: init_step must be a pair \(tag, value\)"),
        (lambda: gx.dog(init_step=("distance", -1.0)), r"^dog: init_step\[1\] \(distance\)=-1.0 is out of range"),
        (lambda: gx.dog(init_step=("distance", lambda c: 1.0)), r"^dog: init_step's value is used once"),
        (lambda: gx.dog(eps=0.0), r"^dog: eps=0.0 is out of range; allowed: \(0, inf\)"),
        (lambda: gx.dog(weight_decay=-1.0), r"^dog: weight_decay=-1.0 is out of range"),
        (lambda: gx.dog(learning_rate=-1.0), r"^dog: learning_rate=-1.0 is out of range"),
        (lambda: gx.dowg(init_estim_sq_dist=0.0), r"^dowg: init_estim_sq_dist=0.0 is out of range"),
        (lambda: gx.dowg(eps=-1e-4), r"^dowg: eps=-0.0001 is out of range"),
    ],
)
def test_bad_arguments_are_refused_by_name(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize(
    "tx", [gx.dog(), gx.dowg(), gx.prodigy(), gx.dadapt_adamw()], ids=["dog", "dowg", "prodigy", "dadapt_adamw"]
)
def test_update_needs_the_parameters_and_changes_nothing(tx):
    state = tx.init(PARAMS)
    before = jax.tree.map(np.asarray, state)
    with pytest.raises(ValueError, match=r"^(dog|dowg|prodigy|dadapt_adamw): update needs the parameters"):
        tx.update(GRADS, state, None)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, np.asarray(b))


# ---------------------------------------------------------------------------------------------------------
# Prodigy and D-Adaptation


def _np(tree):
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def test_prodigy_first_step_is_adams_and_d_after_two_steps():
    lr, b1, b2, b3, d0, c, eps = 5.0, 0.8, 0.99, 0.9, 1e-2, 2.0, 1e-12
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: x.astype(jnp.float64), PARAMS)
        g1 = jax.tree.map(lambda x: x.astype(jnp.float64), GRADS)
        g2 = jax.tree.map(lambda x: 0.5 * x, g1)
        tx = gx.prodigy(lr, betas=(b1, b2), beta3=b3, eps=eps, estim_lr0=d0, estim_lr_coef=c)
        u1, s = tx.update(g1, tx.init(params), params)
        # the first step is Adam's, scaled by d0: -d0 lr sign(g); nothing travelled, so d stays d0
        _close(u1, jax.tree.map(lambda g: -d0 * lr * jnp.sign(g), g1), rtol=1e-9)
        assert float(s.inner_state.estim_lr) == d0 and float(s.inner_state.numerator_weighted) == 0.0
        p1 = gx.apply_updates(params, u1)
        _, s = tx.update(g2, s, p1)
    dlr1 = d0 * lr * np.sqrt(1 - b2) / (1 - b1)
    dlr2 = d0 * lr * np.sqrt(1 - b2**2) / (1 - b1**2)
    r2 = dlr2 * sum(np.sum(g * (x0 - x)) for g, x0, x in zip(_np(g2), _np(params), _np(p1)))
    s2 = [b3 * dlr1 * a + dlr2 * b for a, b in zip(_np(g1), _np(g2))]
    want = max(d0, c * r2 / sum(np.sum(np.abs(x)) for x in s2))
    assert want > d0  # the estimate did grow
    assert float(s.inner_state.estim_lr) == pytest.approx(want, rel=1e-12)
    for a, b in zip(_np(s.inner_state.grad_sum), s2):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_dadapt_first_step_and_d_after_two_steps():
    lr, b1, b2, d0, eps = 5.0, 0.85, 0.98, 1e-2, 1e-12
    sb2 = np.sqrt(b2)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: x.astype(jnp.float64), PARAMS)
        g1 = jax.tree.map(lambda x: x.astype(jnp.float64), GRADS)
        g2 = jax.tree.map(lambda x: 0.5 * x, g1)
        tx = gx.dadapt_adamw(lr, betas=(b1, b2), eps=eps, estim_lr0=d0)
        u1, s = tx.update(g1, tx.init(params), params)
        _close(u1, jax.tree.map(lambda g: -d0 * lr * jnp.sign(g), g1), rtol=1e-9)
        assert float(s.inner_state.estim_lr) == d0  # s_0 = 0: nothing to estimate from yet
        _, s = tx.update(g2, s, gx.apply_updates(params, u1))
    dlr1 = d0 * lr * np.sqrt(1 - b2) / (1 - b1)
    dlr2 = d0 * lr * np.sqrt(1 - b2**2) / (1 - b1**2)
    s1 = [(1 - sb2) * dlr1 * g for g in _np(g1)]
    v1 = [(1 - b2) * g * g for g in _np(g1)]
    r2 = (1 - sb2) * dlr2 * sum(np.sum(g * a / (np.sqrt(v) + eps)) for g, a, v in zip(_np(g2), s1, v1))
    s2 = [sb2 * a + (1 - sb2) * dlr2 * g for a, g in zip(s1, _np(g2))]
    want = max(d0, r2 / ((1 - sb2) * sum(np.sum(np.abs(x)) for x in s2)))
    assert want > d0
    assert float(s.inner_state.estim_lr) == pytest.approx(want, rel=1e-12)


def test_d_estimate_never_shrinks_and_waits_for_a_nonzero_sum():
    d = jnp.float32(0.5)
    assert float(gx.blocks.d_estimate(d, jnp.float32(2.0), jnp.float32(1.0))) == 2.0
    assert float(gx.blocks.d_estimate(d, jnp.float32(0.1), jnp.float32(1.0))) == 0.5
    assert float(gx.blocks.d_estimate(d, jnp.float32(0.0), jnp.float32(0.0))) == 0.5  # optax: 0/0 = NaN


@pytest.mark.parametrize("make", [gx.prodigy, gx.dadapt_adamw], ids=["prodigy", "dadapt_adamw"])
def test_zero_gradients_keep_the_estimate_finite(make):
    tx = make()
    zeros = jax.tree.map(jnp.zeros_like, GRADS)
    s = tx.init(PARAMS)
    for _ in range(3):
        u, s = tx.update(zeros, s, PARAMS)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((u, s)))
    assert float(s.inner_state.estim_lr) == pytest.approx(1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gx.prodigy(betas=0.9), r"^prodigy: betas must be a pair \(b1, b2\)"),
        (lambda: gx.prodigy(betas=(0.9, 1.0)), r"^prodigy: b2=1.0 is out of range; allowed: \[0, 1\)"),
        (lambda: gx.prodigy(beta3=-0.1), r"^prodigy: beta3=-0.1 is out of range"),
        (lambda: gx.prodigy(estim_lr0=0.0), r"^prodigy: estim_lr0=0.0 is out of range; allowed: \(0, inf\)"),
        (lambda: gx.prodigy(estim_lr0=lambda c: 1e-6), r"^prodigy: estim_lr0 is d's first value"),
        (lambda: gx.prodigy(safeguard_warmup="yes"), r"^prodigy: safeguard_warmup='yes' must be True or False"),
        (lambda: gx.prodigy(learning_rate=-1.0), r"^prodigy: learning_rate=-1.0 is out of range"),
        (lambda: gx.dadapt_adamw(weight_decay=-1.0), r"^dadapt_adamw: weight_decay=-1.0 is out of range"),
        (lambda: gx.dadapt_adamw(betas=(1.5, 0.9)), r"^dadapt_adamw: b1=1.5 is out of range"),
    ],
)
def test_bad_adaptation_arguments_are_refused_by_name(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
