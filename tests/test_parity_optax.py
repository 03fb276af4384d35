"""Parity with optax for every optimizer optax also has, at identical settings.

200 steps, fresh random gradients each step, on a pytree of several shapes
(including a scalar and a 0-size array), float32 and float64, jitted and eager.
Parameters, updates and the corresponding state leaves are compared.

Tolerances (max over leaves of |ours - optax| / (1 + |optax|)):
* float64: 1e-12 for parameters and state.
* float32: 1e-5 for parameters, 5e-5 for state. The float32 gap is deliberate:
  we compute ``1 - b`` from the float32 ``b`` (so EMA weights sum to one and
  bias correction is exact for constant gradients), optax rounds ``b`` and
  ``1 - b`` separately from Python doubles; for ``b2 = 0.999`` the two
  ``1 - b2`` differ by 1.3e-5 relative (docs/conventions.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest

import gradxform as gx
from tests.helpers import grad_stream, make_tree, max_rel_err

STEPS = 200
TOL = {"float32": (1e-5, 5e-5), "float64": (1e-12, 1e-12)}

# name -> (ours, optax, [(our state leaf accessor, optax state leaf accessor), ...])
_adam_pairs = [
    (lambda s: s[0].numerator[0].mu, lambda s: s[0].mu),
    (lambda s: s[0].denominator[0].nu, lambda s: s[0].nu),
    (lambda s: s[0].numerator[0].count, lambda s: s[0].count),
]
CASES = {
    "sgd": (lambda: gx.sgd(0.05), lambda: optax.sgd(0.05), []),
    "sgd_momentum": (
        lambda: gx.sgd(0.05, momentum=0.9),
        lambda: optax.sgd(0.05, momentum=0.9),
        [(lambda s: s[0].trace, lambda s: s[0].trace)],
    ),
    "momentum": (
        lambda: gx.momentum(0.05, beta=0.8),
        lambda: optax.sgd(0.05, momentum=0.8),
        [(lambda s: s[0].trace, lambda s: s[0].trace)],
    ),
    "nesterov": (
        lambda: gx.nesterov(0.05, beta=0.9),
        lambda: optax.sgd(0.05, momentum=0.9, nesterov=True),
        [(lambda s: s[0].trace, lambda s: s[0].trace)],
    ),
    "rmsprop": (
        lambda: gx.rmsprop(0.01, decay=0.9, eps=1e-8),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-8, eps_in_sqrt=False),
        [(lambda s: s[0].denominator[0].nu, lambda s: s[0].nu)],
    ),
    "rmsprop_eps_in_sqrt": (
        lambda: gx.rmsprop(0.01, decay=0.95, eps=1e-6, eps_in_sqrt=True),
        lambda: optax.rmsprop(0.01, decay=0.95, eps=1e-6, eps_in_sqrt=True),
        [(lambda s: s[0].denominator[0].nu, lambda s: s[0].nu)],
    ),
    "rmsprop_centered_momentum": (
        lambda: gx.rmsprop(0.01, centered=True, momentum=0.9, eps=1e-4, eps_in_sqrt=True),
        lambda: optax.rmsprop(0.01, centered=True, momentum=0.9, eps=1e-4, eps_in_sqrt=True),
        [
            (lambda s: s[0].denominator[0].mu, lambda s: s[0].mu),
            (lambda s: s[0].denominator[0].nu, lambda s: s[0].nu),
            (lambda s: s[2].trace, lambda s: s[2].trace),
        ],
    ),
    "rmsprop_bias_corrected_nesterov": (
        lambda: gx.rmsprop(0.01, bias_correction=True, momentum=0.5, nesterov=True),
        lambda: optax.rmsprop(0.01, bias_correction=True, momentum=0.5, nesterov=True, eps_in_sqrt=False),
        [(lambda s: s[0].denominator[0].nu, lambda s: s[0].nu), (lambda s: s[2].trace, lambda s: s[2].trace)],
    ),
    "adam": (lambda: gx.adam(0.01), lambda: optax.adam(0.01), _adam_pairs),
    "adam_eps_root": (
        lambda: gx.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
        lambda: optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
        _adam_pairs,
    ),
    "adamw": (
        lambda: gx.adamw(0.01, weight_decay=0.1),
        lambda: optax.adamw(0.01, weight_decay=0.1),
        _adam_pairs,
    ),
    "nadam": (
        lambda: gx.nadam(0.01),
        lambda: optax.nadam(0.01),
        [(lambda s: s[0].numerator.mu, lambda s: s[0].mu), (lambda s: s[0].denominator[0].nu, lambda s: s[0].nu)],
    ),
    "amsgrad": (
        lambda: gx.amsgrad(0.01),
        lambda: optax.amsgrad(0.01),
        _adam_pairs[:2] + [(lambda s: s[0].denominator[2].max, lambda s: s[0].nu_max)],
    ),
    "adagrad": (
        lambda: gx.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-7),
        lambda: optax.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-7),
        [(lambda s: s[0].denominator[0].sum_sq, lambda s: s[0].sum_of_squares)],
    ),
    "adadelta": (
        lambda: gx.adadelta(0.5, rho=0.9, eps=1e-6),
        lambda: optax.adadelta(0.5, rho=0.9, eps=1e-6),
        [
            (lambda s: s[0].nu, lambda s: s[1].e_g),
            (lambda s: s[0].delta_sq, lambda s: s[1].e_x),
        ],
    ),
}


def _run(tx, params, grads, jit):
    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    for i in range(STEPS):
        g = jax.tree.map(lambda x: x[i], grads)
        updates, state = update(g, state, params)
        params = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
    return params, updates, state


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_optax(name, dtype, jit):
    ours, ref, pairs = CASES[name]
    p_tol, s_tol = TOL[dtype]
    with jax.enable_x64(dtype == "float64"):
        params = make_tree(jnp.dtype(dtype), seed=0)
        grads = grad_stream(jnp.dtype(dtype), STEPS, seed=1)
        p1, u1, s1 = _run(ours(), params, grads, jit)
        p2, u2, s2 = _run(ref(), params, grads, jit)
        for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
            assert a.dtype == b.dtype == jnp.dtype(dtype) and a.shape == b.shape
        assert max_rel_err(p1, p2) <= p_tol
        assert max_rel_err(u1, u2) <= p_tol
        for mine, theirs in pairs:
            a, b = mine(s1), theirs(s2)
            assert jax.tree.structure(a) == jax.tree.structure(b)
            assert max_rel_err(a, b) <= s_tol
        # The parameters moved: parity is not two optimizers standing still.
        assert max_rel_err(p1, params) > 1e-3
