"""Every registry entry's state through `gradxform.checkpoint`: saved mid-run, restored against
`jax.eval_shape(tx.init, params)`, bitwise equal, and the run resumed from it equals the run never stopped."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests.helpers import fit_ranks, grad_stream, make_tree
from tests.refs import registry_entries, scan_trajectory

ENTRIES = [pytest.param(e, id=e.name) for e in registry_entries()]


def _leaves_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        if jnp.issubdtype(x.dtype, jnp.inexact):
            np.testing.assert_array_equal(x.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8))  # bitwise
        else:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("entry", ENTRIES)
def test_state_round_trips_bitwise_and_the_run_resumes_from_it(entry, tmp_path):
    tx = entry.build(1e-2)
    params = fit_ranks(make_tree(jnp.float32, seed=3), entry.param_ranks)
    grads = fit_ranks(grad_stream(jnp.float32, 6, seed=4), entry.param_ranks, lead=1)
    first = jax.tree.map(lambda g: g[:3], grads)
    rest = jax.tree.map(lambda g: g[3:], grads)
    p3, _, s3 = scan_trajectory(tx, params, first)
    path = tmp_path / "state.ckpt"
    gx.checkpoint.save(path, {"params": p3, "opt_state": s3})
    template = {"params": params, "opt_state": jax.eval_shape(tx.init, params)}
    back = gx.checkpoint.restore(path, template)
    _leaves_equal(back["opt_state"], s3)
    _leaves_equal(back["params"], p3)

    def resume(p, s, gs):
        def body(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            return (gx.apply_updates(p, u), s), None

        return jax.lax.scan(body, (p, s), gs)[0]

    run = jax.jit(resume)
    _leaves_equal(run(back["params"], back["opt_state"], rest), run(p3, s3, rest))
    p6, _, s6 = scan_trajectory(tx, params, grads)
    np.testing.assert_allclose(  # the whole run, one scan, agrees (XLA may fuse the two scans differently)
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(run(p3, s3, rest)[0])]),
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(p6)]),
        rtol=1e-5,
        atol=1e-6,
    )
