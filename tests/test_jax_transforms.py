"""Every registry entry under jax.vmap (a sweep over the learning rate) and jax.grad (through 10 steps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests.helpers import grad_stream, make_tree, max_rel_err
from tests.refs import registry_entries

FACTORIES = {e.name: e.build for e in registry_entries()}
LR_INVARIANT = {e.name for e in registry_entries() if e.lr_invariant}
READS_VALUE = {e.name for e in registry_entries() if "value" in e.extra_args}


def _train(make, lr, params, grads, steps):
    tx = make(lr)

    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        return (gx.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (params, tx.init(params)), grads, length=steps)
    return p


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_vmap_over_learning_rate_equals_separate_runs(name):
    # Entries that reduce whole leaves (norms: elementwise=False) are checked in float64: XLA may sum a batched
    # reduction in another order than the unbatched one, and that last-bit float32 difference, amplified over 30
    # steps at lr=0.3 (LAMB's steps grow with the parameters' norm), reaches 1.5e-6.
    dtype = jnp.float32 if gx.registry.entry(name).elementwise else jnp.float64
    with jax.enable_x64(dtype == jnp.float64):
        params, grads = make_tree(dtype), grad_stream(dtype, 30)
        lrs = jnp.array([0.001, 0.01, 0.1, 0.3], dtype)
        batched = jax.jit(jax.vmap(lambda lr: _train(FACTORIES[name], lr, params, grads, 30)))(lrs)
        for i, lr in enumerate([0.001, 0.01, 0.1, 0.3]):
            single = jax.jit(lambda: _train(FACTORIES[name], lr, params, grads, 30))()
            assert max_rel_err(jax.tree.map(lambda x: x[i], batched), single) <= 1e-6


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_grad_through_ten_steps_wrt_learning_rate_matches_finite_differences(name):
    with jax.enable_x64(True):
        params = make_tree(jnp.float64, seed=5)
        target = make_tree(jnp.float64, seed=6)

        def final_loss(lr):
            tx = FACTORIES[name](lr)

            def body(carry, _):
                p, s = carry
                value, g = jax.value_and_grad(
                    lambda q: sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(q), jax.tree.leaves(target)))
                )(p)
                # an optimizer that reads the loss gets this loss (the one its gradient is of)
                u, s = tx.update(g, s, p, **({"value": value} if name in READS_VALUE else {}))
                return (gx.apply_updates(p, u), s), None

            (p, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=10)
            return sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(target)))

        lr, h = 0.05, 1e-6
        analytic = float(jax.jit(jax.grad(final_loss))(lr))
        fd = float((final_loss(lr + h) - final_loss(lr - h)) / (2 * h))
        if name in LR_INVARIANT:  # the registry says the learning rate cannot matter: check that it does not
            assert abs(analytic) <= 1e-6 and abs(fd) <= 1e-6, (analytic, fd)
            return
        assert abs(analytic) > 1e-3  # the learning rate matters to the final loss
        assert analytic == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_vmap_over_b1_and_b2():
    params, grads = make_tree(jnp.float32), grad_stream(jnp.float32, 20)
    b1s, b2s = jnp.array([0.5, 0.9]), jnp.array([0.9, 0.999])
    out = jax.jit(jax.vmap(lambda b1, b2: _train(lambda lr: gx.adam(lr, b1=b1, b2=b2), 0.01, params, grads, 20)))(
        b1s, b2s
    )
    for i, (b1, b2) in enumerate([(0.5, 0.9), (0.9, 0.999)]):
        single = _train(lambda lr: gx.adam(lr, b1=b1, b2=b2), 0.01, params, grads, 20)
        assert max_rel_err(jax.tree.map(lambda x: x[i], out), single) <= 1e-6
    assert not np.allclose(out["w"][0], out["w"][1])
