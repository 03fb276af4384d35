"""Matrix-aware optimizers: Muon's blocks and leaf routing (and torch.optim's Muon); their formulas and errors.

The registry suites cover parity over 300 steps, low precision, properties, jit/vmap/grad, inject,
checkpoints and sharding; this file tests what is new: the Newton-Schulz iteration's algebra, which
leaves Muon takes and how (dimension numbers), and the errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import MuonDimensionNumbers as OD

import gradxform as gx
from gradxform.blocks.orthogonal import NS_COEFFS, as_matrices, newton_schulz
from tests.refs import rel_err

D = gx.MuonDimensionNumbers


def _quintic(s, steps=5, coeffs=NS_COEFFS):
    a, b, c = coeffs
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return s


@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (16, 16), (40, 9)])
def test_newton_schulz_keeps_singular_vectors_and_maps_singular_values_by_the_quintic(shape):
    """NS(M) = U p(S / |M|_F) V^T: the scalar quintic applied to each singular value (float64, 1e-10)."""
    with jax.enable_x64(True):
        m = np.random.default_rng(0).normal(size=shape)
        out = np.asarray(newton_schulz(jnp.asarray(m), jnp.asarray([NS_COEFFS] * 5), eps=0.0))
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        want = u @ np.diag(_quintic(s / np.linalg.norm(m))) @ vt
        np.testing.assert_allclose(out, want, atol=1e-10)
        # optax's coefficients put every singular value in a band around 1 (not exactly 1)
        sv = np.linalg.svd(out, compute_uv=False)
        assert sv.min() > 0.6 and sv.max() < 1.25, sv
        # and it is optax's iteration
        ref = optax.contrib._muon.orthogonalize_via_newton_schulz(jnp.asarray(m), jnp.asarray(NS_COEFFS), 5, eps=0.0)
        np.testing.assert_allclose(out, np.asarray(ref), rtol=1e-12, atol=1e-14)


def test_orthogonal_input_keeps_its_direction_up_to_the_fixed_point():
    """An orthogonal Q has one singular value, 1/sqrt(n) after the normalization: NS(Q) = p(1/sqrt(n)) Q."""
    with jax.enable_x64(True):
        q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
        out = np.asarray(newton_schulz(jnp.asarray(q), jnp.asarray([NS_COEFFS] * 5), eps=0.0))
        scale = _quintic(1 / np.sqrt(8))
        np.testing.assert_allclose(out, scale * q, atol=1e-12)
        assert 0.6 < scale < 1.25
        # many more steps: the iteration's fixed points are where p(s) = s; Q only changes scale
        many = np.asarray(newton_schulz(jnp.asarray(q), jnp.asarray([NS_COEFFS] * 50), eps=0.0))
        np.testing.assert_allclose(many / many[0, 0] * q[0, 0], q, atol=1e-10)
        fixed = _quintic(1 / np.sqrt(8), steps=50)
        assert abs(_quintic(fixed, 2) - fixed) < 0.6  # it cycles in the band, it does not converge to 1
        # with classic Newton-Schulz coefficients (1.5, -0.5, 0) the fixed point is exactly 1: Q itself
        exact = np.asarray(newton_schulz(jnp.asarray(q), jnp.asarray([(1.5, -0.5, 0.0)] * 40), eps=0.0))
        np.testing.assert_allclose(exact, q, atol=1e-10)


def test_dimension_numbers_reshape_to_stacks_of_matrices():
    x = jnp.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    stack, back = as_matrices(x, D((0, 1, 2), 3))  # a conv kernel (h, w, c_in, c_out)
    assert stack.shape == (1, 24, 5)
    np.testing.assert_array_equal(back(stack), x)
    stack, back = as_matrices(x, D(1, 3))  # batch axes 0 and 2
    assert stack.shape == (8, 3, 5)
    np.testing.assert_array_equal(back(stack), x)
    np.testing.assert_array_equal(stack[1], x[0, :, 1, :])


def _real_tree(dtype=jnp.float64, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"dense": (6, 4), "tall": (9, 2), "stacked": (3, 4, 5), "conv": (3, 3, 2, 4), "bias": (4,), "s": ()}
    return {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in shapes.items()}


def _dims(cls):
    def fn(p):
        table = {"dense": cls(), "tall": cls(), "stacked": cls(1, 2), "conv": cls((0, 1, 2), 3)}
        return {k: table.get(k) for k in p}

    return fn


def _run(tx, params, steps=20, seed=3):
    rng = np.random.default_rng(seed)
    p, s = params, tx.init(params)
    step = jax.jit(tx.update)
    for _ in range(steps):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), p)
        u, s = step(g, s, p)
        p = gx.apply_updates(p, u)
    return p, s


def test_muon_on_a_real_tree_dense_tall_stacked_conv_and_vectors_matches_optax():
    """Stacked layers (1, 2) and a conv kernel ((0, 1, 2), 3) by dimension numbers, the rest AdamW: optax's
    numbers (float64, 1e-12), and the routing is what the dimension numbers say."""
    with jax.enable_x64(True):
        params = _real_tree()
        kw = dict(learning_rate=0.02, weight_decay=0.05, adam_learning_rate=0.003)
        p1, s1 = _run(gx.muon(**kw, muon_weight_dimension_numbers=_dims(D)), params)
        p2, s2 = _run(optax.contrib.muon(**kw, muon_weight_dimension_numbers=_dims(OD)), params)
        assert rel_err(p1, p2) <= 1e-12
        nu = gx.tree_get(s1, "nu")  # AdamW's second moment: only on the leaves Muon does not take
        assert {k for k, v in nu.items() if v is not None} == {"bias", "s"}
        mu_muon = gx.tree_get(s1, "muon")  # the Muon branch's momentum, beside optax's MuonState.mu
        theirs = s2.inner_states["muon"].inner_state[0].mu
        for k in ("dense", "tall", "stacked", "conv"):
            np.testing.assert_allclose(mu_muon.mu[k], theirs[k], rtol=1e-12, atol=1e-15)
        # By default (no dimension numbers) only the 2-d leaves are matrices; the stacked and conv go to AdamW.
        _, s3 = _run(gx.muon(0.02), params, steps=1)
        nu = gx.tree_get(s3, "nu")
        assert {k for k, v in nu.items() if v is not None} == {"stacked", "conv", "bias", "s"}


def test_a_stacked_leaf_is_each_layer_orthogonalized_on_its_own():
    with jax.enable_x64(True):
        g = jnp.asarray(np.random.default_rng(4).normal(size=(3, 4, 5)))
        tx = gx.orthogonalize(dimension_numbers=D(1, 2))
        out, _ = tx.update({"w": g}, tx.init({"w": g}))
        for i in range(3):
            alone, _ = gx.orthogonalize().update({"w": g[i]}, gx.orthogonalize().init({"w": g[i]}))
            np.testing.assert_allclose(out["w"][i], alone["w"], rtol=1e-13, atol=1e-15)


def test_vector_leaves_take_adamw_with_their_own_learning_rate():
    """Where no leaf is a matrix (the race's 2-d surfaces), Muon is optax's AdamW with Nesterov (NAdamW);
    a zero Muon learning rate leaves the matrices where they are."""
    with jax.enable_x64(True):
        params = {"v": jnp.asarray([1.0, -2.0]), "b": jnp.asarray([0.5, 0.1, 0.3])}
        p1, _ = _run(gx.muon(0.02, adam_learning_rate=0.1, adam_weight_decay=0.01), params)
        p2, _ = _run(optax.adamw(0.1, eps=1e-8, weight_decay=0.01, nesterov=True), params)
        assert rel_err(p1, p2) <= 1e-13
        params = _real_tree()
        p3, _ = _run(gx.muon(0.0, adam_learning_rate=0.1), params, steps=3)
        np.testing.assert_array_equal(p3["dense"], params["dense"])
        assert not np.allclose(p3["bias"], params["bias"])


def test_width_and_rms_scaling():
    g = {"w": jnp.asarray(np.random.default_rng(5).normal(size=(2, 8)), jnp.float32)}
    out, _ = gx.scale_by_shape().update(g, gx.scale_by_shape().init(g))
    np.testing.assert_allclose(out["w"], 2.0 * g["w"], rtol=1e-6)  # sqrt(max(1, 8 / 2))
    out, _ = gx.scale_by_shape(consistent_rms=0.2).update(g, gx.scale_by_shape().init(g))
    np.testing.assert_allclose(out["w"], 0.2 * np.sqrt(8.0) * g["w"], rtol=1e-6)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: gx.muon(0.02, ns_steps=0), r"^muon: ns_steps=0 must be an int >= 1"),
        (lambda: gx.muon(0.02, ns_coeffs=(1.0, 2.0)), r"^muon: ns_coeffs=\(1.0, 2.0\) must be three finite numbers"),
        (lambda: gx.muon(0.02, ns_coeffs="polar"), r"^muon: ns_coeffs='polar' is not a preset"),
        (lambda: gx.muon(0.02, ns_coeffs=gx.blocks.orthogonal.DION_NS_COEFFS, ns_steps=6), r"^muon: ns_coeffs has 5"),
        (lambda: gx.muon(0.02, preconditioning="svd"), r"^muon: preconditioning='svd' is not one of"),
        (lambda: gx.muon(0.02, beta=1.0), r"^muon: beta=1.0 is out of range; allowed: \[0, 1\)"),
        (lambda: gx.muon(-1.0), r"^muon: learning_rate=-1.0 is out of range"),
        (lambda: gx.muon(0.02, adam_learning_rate=-1.0), r"^muon: adam_learning_rate=-1.0 is out of range"),
        (lambda: gx.muon(0.02, consistent_rms=0.0), r"^muon: consistent_rms=0.0 is out of range"),
        (lambda: gx.muon(0.02, nesterov="yes"), r"^muon: nesterov='yes' must be True or False"),
    ],
)
def test_bad_arguments_are_refused_by_name(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_bad_dimension_numbers_are_refused_at_init_and_change_nothing():
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(4)}
    with pytest.raises(ValueError, match=r"^muon: a leaf of shape \(4,\) has dimension numbers"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(), "b": D()}).init(params)
    with pytest.raises(ValueError, match=r"^muon: dimension numbers .* do not fit a leaf of shape \(3, 4\)"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(0, 2), "b": None}).init(params)
    with pytest.raises(ValueError, match=r"^muon: dimension numbers .* repeat an axis"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(0, 0), "b": None}).init(params)
    with pytest.raises(ValueError, match=r"^muon: muon_weight_dimension_numbers does not match"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(), "x": None}).init(params)
    # a bad update (gradients of another shape) is refused before anything is computed; the state still works
    tx = gx.muon(0.02)
    state = tx.init(params)
    before = jax.tree.map(np.asarray, state)
    with pytest.raises(ValueError, match=r"^muon: "):
        tx.update({"w": jnp.ones((4, 3)), "b": jnp.ones(4)}, state, params)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


def test_flat_params_are_refused_by_name():
    flat = gx.flatten_params({"w": jnp.ones((3, 4)), "b": jnp.ones(4)})
    with pytest.raises(TypeError, match=r"^muon: this transform looks at whole leaves"):
        gx.muon(0.02).init(flat)
