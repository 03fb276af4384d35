"""float16 and bfloat16 parameters: finite updates equal to float32 math rounded once, for every registry entry.

Updates flow between blocks in float32 and are cast to the parameters' dtype once,
at the end of the optimizer, so `eps` (1e-8), `g**2` and square roots neither
underflow nor overflow in between. For each entry, dtype and gradient magnitude
(0, 1e-4, 6e4), the first update of the low-precision run must be finite and
equal to the float32 run on the same (rounded) numbers, rounded once to the
low-precision dtype: relative 2e-2, or one unit in the last place of that dtype
where the value is subnormal. Zero gradients stay finite over 5 steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests.helpers import fit_ranks
from tests.refs import entries

SHAPES = {"w": (4, 3), "b": (3,), "s": ()}


def _tree(dtype, seed, scale):
    rng = np.random.default_rng(seed)
    # magnitudes in [scale/2, scale]: 6e4 stays below float16's largest finite value, 65504
    return {
        k: jnp.asarray(scale * rng.uniform(0.5, 1.0, size=s) * rng.choice([-1, 1], size=s), dtype)
        for k, s in SHAPES.items()
    }


def _first_update(tx, params, grads):
    return jax.jit(lambda p, g: tx.update(g, tx.init(p), p)[0])(params, grads)


@pytest.mark.parametrize("magnitude", [0.0, 1e-4, 6e4])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("entry", entries())
def test_low_precision_equals_float32_rounded_once(entry, dtype, magnitude):
    dt = jnp.dtype(dtype)
    tx = entry.build(1e-2)
    params = fit_ranks(_tree(dt, 0, 1.0), entry.param_ranks)
    grads = fit_ranks(_tree(dt, 1, magnitude), entry.param_ranks)
    low = _first_update(tx, params, grads)
    ref = _first_update(
        tx, jax.tree.map(lambda x: x.astype(jnp.float32), params), jax.tree.map(lambda x: x.astype(jnp.float32), grads)
    )
    for name in SHAPES:
        u = np.asarray(low[name].astype(jnp.float32))
        assert low[name].dtype == dt
        assert np.all(np.isfinite(u)), (name, u)
        want = np.asarray(ref[name].astype(dt).astype(jnp.float32))
        ulp = np.asarray(jnp.finfo(dt).smallest_subnormal, np.float32) if dtype == "float16" else 0.0
        spacing = np.maximum(np.abs(want) * float(jnp.finfo(dt).eps), ulp)
        assert np.all(np.abs(u - want) <= np.maximum(2e-2 * np.abs(want), spacing)), (name, u, want)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("entry", entries())
def test_zero_gradients_stay_finite(entry, dtype):
    dt = jnp.dtype(dtype)
    tx = entry.build(1e-2)
    params = fit_ranks(_tree(dt, 0, 1.0), entry.param_ranks)
    zeros = jax.tree.map(jnp.zeros_like, params)

    @jax.jit
    def five(p):
        s = tx.init(p)
        for _ in range(5):
            u, s = tx.update(zeros, s, p)
            p = jax.tree.map(lambda a, b: (a + b).astype(a.dtype), p, u)
        return p, s

    p, s = five(params)
    for x in jax.tree.leaves((p, s)):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            assert bool(jnp.all(jnp.isfinite(x)))


@pytest.mark.parametrize("magnitude", [1e-4, 300.0])
def test_float16_squares_are_stored_in_float32(magnitude):
    """float16 cannot hold the squares of its own values (1e-4 squares to 0, 300 to inf): the statistics of
    $|g|^2$ default to float32 storage for float16 leaves, so Adam's third step, which reads the moments the
    first two stored, is float32's rounded once; the first moment stays float16, bfloat16 keeps bfloat16."""
    tx = gx.adam(1e-2)
    params, grads = _tree(jnp.float16, 0, 1.0), _tree(jnp.float16, 1, magnitude)

    def third(p, g):
        s = tx.init(p)
        for _ in range(3):
            u, s = tx.update(g, s, p)
        return u, s

    low, state = jax.jit(third)(params, grads)
    ref, _ = jax.jit(third)(*(jax.tree.map(lambda x: x.astype(jnp.float32), t) for t in (params, grads)))
    assert {x.dtype for x in jax.tree.leaves(gx.tree_get(state, "nu"))} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(gx.tree_get(state, "mu"))} == {jnp.dtype(jnp.float16)}
    for k in SHAPES:
        want = np.asarray(ref[k].astype(jnp.float16).astype(np.float32))
        np.testing.assert_allclose(np.asarray(low[k].astype(np.float32)), want, rtol=2e-2)
    bf = jax.eval_shape(tx.init, jax.tree.map(lambda x: x.astype(jnp.bfloat16), params))
    assert {x.dtype for x in jax.tree.leaves(bf)} - {jnp.dtype(jnp.int32)} == {jnp.dtype(jnp.bfloat16)}
