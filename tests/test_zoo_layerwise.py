"""The layer-wise blocks' formulas on leaves whose answers are known by hand, and the layer-wise optimizers' errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx


def _apply(tx, u, p=None):
    out, _ = tx.update(u, tx.init(u if p is None else p), p)
    return out


# ---------------------------------------------------------------------------------------------- trust ratio


def test_trust_ratio_on_a_known_leaf():
    p = {"w": jnp.array([[3.0, 4.0]]), "b": jnp.array([0.0, 0.0])}  # ||w|| = 5, ||b|| = 0
    u = {"w": jnp.array([[0.6, 0.8]]), "b": jnp.array([1.0, -1.0])}  # ||u_w|| = 1
    out = _apply(gx.scale_by_trust_ratio(trust_coefficient=0.5), u, p)
    np.testing.assert_allclose(out["w"], 0.5 * 5.0 * np.array([[0.6, 0.8]]), rtol=1e-6)  # c ||p|| / ||u|| = 2.5
    np.testing.assert_array_equal(out["b"], u["b"])  # a zero parameter norm leaves the update unscaled


def test_trust_ratio_zero_update_and_eps_and_min_norm():
    p, u = jnp.array([3.0, 4.0]), jnp.zeros(2)
    np.testing.assert_array_equal(_apply(gx.scale_by_trust_ratio(), u, p), u)  # zero update: ratio 1, no NaN
    u = jnp.array([0.0, 2.0])
    np.testing.assert_allclose(_apply(gx.scale_by_trust_ratio(eps=3.0), u, p), u * 5.0 / (2.0 + 3.0), rtol=1e-6)
    # min_norm floors both norms: ||p|| = 5 -> 10, ||u|| = 2 -> 10, ratio 1
    np.testing.assert_allclose(_apply(gx.scale_by_trust_ratio(min_norm=10.0), u, p), u, rtol=1e-6)
    # with a floor, a zero parameter takes the floor: ratio 10 / ||u|| = 5
    out = _apply(gx.scale_by_trust_ratio(min_norm=10.0), jnp.array([0.0, 20.0]), jnp.zeros(2))
    np.testing.assert_allclose(out, [0.0, 10.0], rtol=1e-6)


def test_trust_ratio_gradient_is_finite_at_zero_leaves():
    def f(scale):
        p = {"w": jnp.zeros(3), "e": jnp.zeros((0,)), "x": jnp.array([1.0, 2.0])}
        u = jax.tree.map(lambda x: scale * jnp.ones_like(x), p)
        return sum(jnp.sum(v) for v in jax.tree.leaves(_apply(gx.scale_by_trust_ratio(), u, p)))

    g = jax.grad(f)(1.0)
    assert np.isfinite(g)
    assert abs(float(g) - 3.0) < 1e-5  # w passes unscaled (3 per unit scale); x's ratio makes its sum constant


def test_trust_ratio_is_refused_on_flat_params():
    flat = gx.flatten_params({"w": jnp.ones((2, 2)), "b": jnp.ones(2)})
    with pytest.raises(TypeError, match="lamb: .*FlatParams"):
        gx.lamb(1e-3).init(flat)


# ---------------------------------------------------------------------------------------------- centralize, AGC


def test_centralize_subtracts_the_mean_over_all_but_the_first_axis():
    u = {"m": jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]]), "v": jnp.array([1.0, 2.0]), "s": jnp.array(3.0)}
    out = _apply(gx.centralize(), u)
    np.testing.assert_allclose(out["m"], [[-1.0, 0.0, 1.0], [-2.0, -1.0, 3.0]])
    np.testing.assert_array_equal(out["v"], u["v"])  # vectors and scalars pass unchanged
    np.testing.assert_array_equal(out["s"], u["s"])
    t = jnp.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_allclose(_apply(gx.centralize(), t), t - t.reshape(2, -1).mean(1)[:, None, None])


def test_adaptive_grad_clip_value():
    p = jnp.array([[3.0, 0.0], [4.0, 0.0]])  # column norms 5 and 0 (floored to eps)
    u = jnp.array([[6.0, 0.3], [8.0, 0.4]])  # column norms 10 and 0.5
    out = _apply(gx.adaptive_grad_clip(0.5, eps=0.1), u, p)
    # column 0: max 0.5 * 5 = 2.5 < 10 -> rescaled to norm 2.5; column 1: max 0.5 * 0.1 = 0.05 < 0.5 -> norm 0.05
    np.testing.assert_allclose(out[:, 0], u[:, 0] * 2.5 / 10.0, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], u[:, 1] * 0.05 / 0.5, rtol=1e-6)
    small = jnp.array([[0.3, 0.0], [0.4, 0.0]])  # column norms 0.5 < 2.5 and 0 < 0.05: unchanged
    np.testing.assert_array_equal(_apply(gx.adaptive_grad_clip(0.5, eps=0.1), small, p), small)
    v = jnp.array([3.0, 4.0])  # a vector is one unit: norm 5 against 0.5 * ||[1, 0]|| = 0.5
    np.testing.assert_allclose(_apply(gx.adaptive_grad_clip(0.5), v, jnp.array([1.0, 0.0])), v * 0.1, rtol=1e-6)


def test_adaptive_grad_clip_names_a_leaf_without_a_default_unit():
    x = jnp.ones((2, 2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="adaptive_grad_clip: a leaf of shape .* pass axis="):
        _apply(gx.adaptive_grad_clip(1.0), x, x)
    np.testing.assert_array_equal(_apply(gx.adaptive_grad_clip(10.0, axis=(0, 1)), x, x), x)


def test_block_rms_clipping_and_parameter_scale():
    u = jnp.array([3.0, 4.0, 0.0, 0.0])  # RMS 2.5
    np.testing.assert_allclose(_apply(gx.clip_by_block_rms(1.0), u), u / 2.5, rtol=1e-6)
    np.testing.assert_array_equal(_apply(gx.clip_by_block_rms(5.0), u), u)
    p = jnp.array([2.0, 2.0, 2.0, 2.0])  # RMS 2
    np.testing.assert_allclose(_apply(gx.scale_by_param_block_rms(), u, p), 2 * u, rtol=1e-6)
    np.testing.assert_allclose(_apply(gx.scale_by_param_block_rms(0.5), u, jnp.zeros(4)), 0.5 * u)  # the floor


def test_normalize_by_update_norm():
    u = {"a": jnp.array([3.0]), "b": jnp.array([[4.0]])}  # global norm 5
    out = _apply(gx.normalize_by_update_norm(scale_factor=-2.0, eps=0.0), u)
    np.testing.assert_allclose(out["a"], [-1.2], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [[-1.6]], rtol=1e-6)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: gx.lars(0.1, trust_coefficient=-1.0), r"lars: trust_coefficient=-1.0 is out of range"),
        (lambda: gx.lars(0.1, momentum=1.0), r"lars: momentum=1.0 is out of range"),
        (lambda: gx.lamb(1e-3, b2=1.5), r"lamb: b2=1.5 is out of range"),
        (lambda: gx.lamb(1e-3, weight_decay=-0.1), r"lamb: weight_decay=-0.1 is out of range"),
        (lambda: gx.clip_by_block_rms(0.0), r"clip_by_block_rms: threshold=0.0 is out of range"),
        (lambda: gx.adaptive_grad_clip(-1.0), r"adaptive_grad_clip: clipping=-1.0 is out of range"),
    ],
)
def test_bad_arguments_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_update_without_params_is_refused_by_name_and_changes_nothing():
    p = {"w": jnp.ones((2, 2))}
    tx = gx.lamb(1e-3)
    state = tx.init(p)
    before = jax.tree.map(np.asarray, state)
    with pytest.raises(ValueError, match="lamb: .*needs the parameters"):
        tx.update(p, state)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state)))
