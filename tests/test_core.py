"""chain, identity, stateless, apply_updates and interoperability with optax both ways."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradxform as gx
from tests.helpers import grad_stream, make_tree, max_rel_err


def test_chain_applies_in_order_and_identity_passes_through():
    tx = gx.chain(gx.scale(2.0), gx.identity(), gx.add_eps(1.0), gx.scale(3.0))
    u, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
    np.testing.assert_allclose(u, [9.0])  # ((1*2) + 1) * 3, not (1*3 + 1) * 2


def test_stateless():
    tx = gx.stateless(lambda u, p: jax.tree.map(lambda a, b: a * b, u, p))
    p = {"x": jnp.array([2.0, 3.0])}
    u, s = tx.update({"x": jnp.array([1.0, -1.0])}, tx.init(p), p)
    np.testing.assert_allclose(u["x"], [2.0, -3.0])
    assert s == gx.EmptyState()


def test_apply_updates_keeps_dtypes_and_none():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32), "c": None}
    updates = {"a": jnp.full(3, 0.5, jnp.float32), "b": jnp.full(2, 0.25, jnp.float32), "c": None}
    new = gx.apply_updates(params, updates)
    assert new["a"].dtype == jnp.bfloat16 and new["b"].dtype == jnp.float32 and new["c"] is None
    np.testing.assert_allclose(np.asarray(new["a"], np.float32), 1.5)
    np.testing.assert_allclose(new["b"], 1.25)


def _trajectory(tx, apply, steps=50, dtype=jnp.float32):
    params = make_tree(dtype)
    grads = grad_stream(dtype, steps)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for i in range(steps):
        u, state = update(jax.tree.map(lambda x: x[i], grads), state, params)
        params = apply(params, u)
    return params


def test_gradxform_transform_inside_optax_chain():
    ours = optax.chain(optax.clip_by_global_norm(1.0), gx.ema(0.9), gx.scale_by_learning_rate(0.1))
    ref = optax.chain(optax.clip_by_global_norm(1.0), optax.ema(0.9, debias=False), optax.scale(-0.1))
    a = _trajectory(ours, optax.apply_updates)
    b = _trajectory(ref, optax.apply_updates)
    assert max_rel_err(a, b) <= 1e-6


def test_optax_transform_inside_gradxform_chain():
    ours = gx.chain(optax.clip_by_global_norm(1.0), gx.adam(0.01))
    ref = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01))
    a = _trajectory(ours, gx.apply_updates)
    b = _trajectory(ref, optax.apply_updates)
    assert max_rel_err(a, b) <= 1e-5


def test_extra_args_reach_transforms_that_take_them_only():
    seen = {}

    def init(params):
        return gx.EmptyState()

    def update(updates, state, params=None, **extra_args):
        seen.update(extra_args)
        return updates, state

    probe = gx.GradientTransformation(init, update)
    plain = optax.scale(2.0)  # its update takes no **extra_args
    tx = gx.chain(plain, probe, gx.ratio(probe, gx.scale(4.0)))
    u, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)), value=jnp.array(3.0))
    np.testing.assert_allclose(u, [0.25])  # (1 * 2) / ((1 * 2) * 4)
    assert float(seen["value"]) == 3.0


def test_gradxform_chain_works_with_optax_extra_args_transforms():
    # optax's polyak_sgd needs the loss value through extra args.
    params = jnp.array([3.0, -1.0])
    loss = lambda p: jnp.sum(p**2)  # noqa: E731
    ours = gx.chain(gx.identity(), optax.polyak_sgd(max_learning_rate=1.0))
    ref = optax.polyak_sgd(max_learning_rate=1.0)
    s1, s2 = ours.init(params), ref.init(params)
    v, g = jax.value_and_grad(loss)(params)
    u1, _ = ours.update(g, s1, params, value=v)
    u2, _ = ref.update(g, s2, params, value=v)
    np.testing.assert_allclose(u1, u2, rtol=1e-7)
    assert float(loss(params + u1)) < float(loss(params))


def test_seed_ema_momentum_equals_heavy_ball_with_scaled_learning_rate():
    # Seeds 002/003: v = b v + (1 - b) g, W -= a v. Same path as v = b v + g, W -= a (1 - b) v.
    b, a = 0.9, 0.1
    with jax.enable_x64(True):
        seed_form = gx.chain(gx.ema(b), gx.scale_by_learning_rate(a))
        p1 = _trajectory(seed_form, gx.apply_updates, dtype=jnp.float64)
        p2 = _trajectory(gx.momentum(a * (1 - b), beta=b), gx.apply_updates, dtype=jnp.float64)
    assert max_rel_err(p1, p2) <= 1e-12
