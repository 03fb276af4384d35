"""Parity with the registry's references: optax (core and contrib) and torch.optim, at non-default settings.

For every case of every registry entry (`gradxform.registry`), 300 steps of fresh
random gradients on a tree of matrices, vectors, a scalar, a 3-d leaf and a
0-size leaf, in one compiled scan:

* against optax, float64 and float32: parameters, the last updates, and every
  state field the case names (through `tree_get` on both states);
* against torch.optim, float64: the parameters after every step.

Tolerances, max over leaves of |ours - ref| / (1 + |ref|):
* float64: 1e-12 against optax, 1e-10 against torch (torch accumulates in its own order);
* float32: 1e-5 on parameters and updates, 5e-5 on state. The float32 gap is deliberate:
  we compute `1 - b` from the float32 `b`, optax rounds `b` and `1 - b` separately
  from Python doubles (docs/conventions.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests.helpers import SHAPES, fit_ranks, grad_stream, make_tree
from tests.refs import cases, masked_as_none, reference, rel_err, scan_trajectory, torch_trajectory

STEPS = 300
OPTAX_TOL = {"float32": (1e-5, 5e-5), "float64": (1e-12, 1e-12)}
TORCH_TOL = 1e-10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("entry, case", cases("optax"))
def test_parity_with_optax(entry, case, dtype):
    p_tol, s_tol = (case.tolerance or OPTAX_TOL)[dtype]
    with jax.enable_x64(dtype == "float64"):
        params = make_tree(jnp.dtype(dtype), seed=0)
        grads = grad_stream(jnp.dtype(dtype), STEPS, seed=1)
        ours = entry.factory(**case.kwargs)
        theirs = reference(case, entry.extra_args)
        p1, u1, s1 = scan_trajectory(ours, params, grads)
        p2, u2, s2 = scan_trajectory(theirs, params, grads)
        for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
            assert a.dtype == b.dtype == jnp.dtype(dtype) and a.shape == b.shape
        assert rel_err(p1, p2) <= p_tol
        assert rel_err(u1, u2) <= p_tol
        for mine, name in case.reference.state.items():
            a, b = gx.tree_get(s1, mine), masked_as_none(gx.tree_get(s2, name))  # optax's MaskedNode: our None
            assert a is not None and b is not None, (mine, name)
            assert jax.tree.structure(a) == jax.tree.structure(b)
            assert rel_err(a, b) <= s_tol, (mine, rel_err(a, b))
        assert rel_err(p1, params) > 1e-3  # the parameters moved: not two optimizers standing still


def _flat(tree):
    leaves = jax.tree.leaves(tree)
    return {str(i): np.asarray(x, np.float64) for i, x in enumerate(leaves)}


@pytest.mark.parametrize("entry, case", cases("torch"))
def test_parity_with_torch_optim(entry, case):
    with jax.enable_x64(True):
        # An optimizer that takes only matrices (torch.optim.Muon) gets the tree's leaves as matrices.
        params = fit_ranks(make_tree(jnp.float64, seed=0), entry.param_ranks)
        grads = fit_ranks(grad_stream(jnp.float64, STEPS, seed=1), entry.param_ranks, lead=1)
        # Gradient scales that wander from step to step, so running maxima and lr decay matter.
        scales = np.exp(np.random.default_rng(2).normal(size=STEPS))
        grads = jax.tree.map(lambda g: g * scales.reshape((STEPS,) + (1,) * (g.ndim - 1)), grads)
        _, _, _, seen = scan_trajectory(entry.factory(**case.kwargs), params, grads, record=True)
        theirs = torch_trajectory(
            case.reference.target,
            dict(case.reference.kwargs),
            _flat(params),
            [_flat(jax.tree.map(lambda g, i=i: g[i], grads)) for i in range(STEPS)],
        )
        worst = max(rel_err(_flat(jax.tree.map(lambda x, i=i: x[i], seen)), t) for i, t in enumerate(theirs))
        print(f"{entry.name}[{case.label}]: max relative difference over {STEPS} steps = {worst:.3e}")
        assert worst <= (case.tolerance or {}).get("float64", (TORCH_TOL,))[0]
        assert rel_err(_flat(jax.tree.map(lambda x: x[-1], seen)), _flat(params)) > 1e-3


def test_the_tree_has_every_kind_of_leaf():
    """The parity tree holds matrices, vectors, a scalar, a 3-d leaf and a 0-size leaf."""
    ndims = sorted(len(s) for s in jax.tree.leaves(SHAPES, is_leaf=lambda x: isinstance(x, tuple)))
    assert ndims == [0, 1, 1, 1, 2, 3]
    assert (0,) in jax.tree.leaves(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
