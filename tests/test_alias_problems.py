"""optax's own alias-test problems, for every registry entry that declares optax's settings for them.

The parabola $\\sum |x - x^*|^2$ from (-1, 10, 1) to (1, -1, 1) and Rosenbrock from (0, 0) to (a, a^2),
10,000 steps (one compiled scan) at optax's learning rates, float32 and complex64 (for optimizers defined
on complex parameters; complex gradients conjugated, as optax's test does), must end within 3e-2 of the
minimum (rtol and atol, as optax's test). Also as optax: `tree_map_params` on the state is a no-op that
works, and the second update call compiles nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests._compile_count import count_compiles
from tests.refs import ENTRIES


def parabola(dtype):
    x0 = jnp.array([-1.0, 10.0, 1.0], dtype)
    xs = jnp.array([1.0, -1.0, 1.0], dtype)
    if jnp.iscomplexobj(x0):
        xs = xs * (1 + 1j)
    return x0, xs, lambda x: jnp.sum(gx.numerics.abs_sq(x - xs))


def rosenbrock(dtype):
    a = (1 + 1j) if jnp.issubdtype(dtype, jnp.complexfloating) else 1.0
    x0 = jnp.array([0.0, 0.0], dtype)
    xs = jnp.array([a, a**2], dtype)
    return x0, xs, lambda x: gx.numerics.abs_sq(a - x[0]) + 100.0 * gx.numerics.abs_sq(x[1] - x[0] ** 2)


TARGETS = {"parabola": parabola, "rosenbrock": rosenbrock}
CASES = [
    pytest.param(e, dict(kw), t, dt, id=f"{e.name}-{i}-{t}-{dt}")
    for e in ENTRIES
    for i, kw in enumerate(e.alias_kwargs)
    for t in e.alias_targets
    for dt in e.alias_dtypes
    if e.supports_complex or not dt.startswith("complex")
]


@pytest.mark.parametrize("entry, kwargs, target, dtype", CASES)
def test_optax_alias_problem(entry, kwargs, target, dtype):
    x0, xs, f = TARGETS[target](jnp.dtype(dtype))
    tx = gx.registry.entry(entry.name).factory(**kwargs)  # the real one: given the problem's own loss

    def grad_fn(x):
        return jax.tree.map(jnp.conj, jax.grad(f)(x))

    def step(x, s):
        value, g = jax.value_and_grad(f)(x)
        given = dict(value=value, value_fn=f, grad_fn=grad_fn)
        u, s = tx.update(grad_fn(x), s, x, **{k: given[k] for k in gx.core.block_of(tx).extra_args})
        return gx.apply_updates(x, u), s

    state = gx.tree_map_params(tx, lambda v: v, tx.init(x0))  # a no-op that works
    run = jax.jit(lambda x, s: jax.lax.scan(lambda c, _: (step(*c), None), (x, s), None, length=10_000)[0])
    x, _ = run(x0, state)
    np.testing.assert_allclose(np.asarray(x), np.asarray(xs), rtol=3e-2, atol=3e-2)
    jitted = jax.jit(step)
    p, s = jitted(x0, tx.init(x0))
    with count_compiles() as compiles:
        jitted(p, s)
    assert [c for c in compiles if "step" in c] == []
