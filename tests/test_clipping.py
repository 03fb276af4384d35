"""Clipping: parity with optax's clip, clip_by_global_norm and clip_by_block_rms, and the norms reached."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx


def _tree(seed=0, scale=3.0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return {
        "w": scale * jax.random.normal(k1, (4, 5)),
        "b": scale * jax.random.normal(k2, (5,)),
        "nested": [scale * jax.random.normal(k3, (3,)), jnp.zeros((0, 2))],
    }


def _run(tx, updates, steps=1):
    state = tx.init(updates)
    out = None
    for _ in range(steps):
        out, state = tx.update(updates, state)
    return out


def _norm(tree):
    return float(np.sqrt(sum(np.sum(np.abs(np.asarray(x, np.float64)) ** 2) for x in jax.tree.leaves(tree))))


def test_clip_matches_optax_bitwise():
    g = _tree()
    ours, ref = _run(gx.clip(1.5), g), _run(optax.clip(1.5), g)
    jax.tree.map(np.testing.assert_array_equal, ours, ref)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(ours) if x.size) == 1.5


def test_clip_complex_bounds_modulus_and_keeps_phase():
    z = jnp.array([3 + 4j, 0.3 - 0.4j, -6j], jnp.complex64)
    out = _run(gx.clip(1.0), z)
    np.testing.assert_allclose(np.abs(out), [1.0, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.angle(out), np.angle(z), rtol=1e-6)
    assert out.dtype == jnp.complex64


@pytest.mark.parametrize("max_norm", [0.5, 4.0, 1e3])
def test_clip_by_global_norm_matches_optax(max_norm):
    g = _tree()
    ours, ref = _run(gx.clip_by_global_norm(max_norm), g), _run(optax.clip_by_global_norm(max_norm), g)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=0), ours, ref)
    n = _norm(g)
    if n > max_norm:
        assert abs(_norm(ours) - max_norm) <= 1e-5 * max_norm
    else:
        jax.tree.map(np.testing.assert_array_equal, ours, g)


def test_clip_by_block_norm_matches_optax_block_rms_per_leaf():
    g = _tree()
    c = 2.0
    ours = _run(gx.clip_by_block_norm(c), g)
    for path_leaf, ref_leaf in zip(jax.tree.leaves(g), jax.tree.leaves(ours)):
        if path_leaf.size == 0:
            assert ref_leaf.shape == path_leaf.shape
            continue
        want = _run(optax.clip_by_block_rms(c / np.sqrt(path_leaf.size)), path_leaf)
        np.testing.assert_allclose(ref_leaf, want, rtol=2e-6)
        assert np.linalg.norm(np.asarray(ref_leaf)) <= c * (1 + 1e-6)


def test_bfloat16_norm_is_computed_in_float32():
    g = jax.tree.map(lambda x: x.astype(jnp.bfloat16), _tree(scale=40.0))
    ours = _run(gx.clip_by_global_norm(1.0), g)
    g32 = jax.tree.map(lambda x: x.astype(jnp.float32), g)
    n = _norm(g32)
    want = jax.tree.map(lambda x: (x / n).astype(jnp.bfloat16), g32)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(want)):
        assert a.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=2**-7)


def test_max_norm_schedule_sees_count_before_update():
    g = {"x": jnp.array([3.0, 4.0])}  # norm 5
    tx = gx.clip_by_global_norm(lambda count: 1.0 + count)
    state = tx.init(g)
    norms = []
    for _ in range(3):
        out, state = tx.update(g, state)
        norms.append(_norm(out))
    np.testing.assert_allclose(norms, [1.0, 2.0, 3.0], rtol=1e-6)


def test_clip_inside_jit_equals_eager():
    g = _tree(1)
    tx = gx.chain(gx.clip_by_global_norm(1.0), gx.clip(0.2))
    s = tx.init(g)
    eager = tx.update(g, s)[0]
    jitted = jax.jit(tx.update)(g, s)[0]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), eager, jitted)
