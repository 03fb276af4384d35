"""Line searches: the conditions they claim hold on every accepted step; formulas; extra args; vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import linesearch
from tests._problems import QUAD_A, beale, quadratic20, rosenbrock

pytestmark = pytest.mark.usefixtures("x64")


@pytest.fixture(scope="module")
def x64():
    with jax.enable_x64(True):
        yield


def _run(tx, f, x, steps):
    """Runs tx on f for ``steps`` steps; yields (x, f(x), g(x), update, state) per step."""
    state = tx.init(x)
    step = jax.jit(lambda g, s, x, v: tx.update(g, s, x, value=v, grad=g, value_fn=f))
    out = []
    for _ in range(steps):
        v, g = jax.value_and_grad(f)(x)
        u, state = step(g, state, x, v)
        out.append((x, v, g, u, state))
        x = gx.apply_updates(x, u)
    return out


@pytest.mark.parametrize("f, x0", [(rosenbrock, [-1.2, 1.0]), (beale, [1.0, 1.0])])
def test_backtracking_armijo_on_every_accepted_step(f, x0):
    c1 = 1e-4
    tx = gx.chain(gx.scale(-1.0), linesearch.backtracking(c1=c1, decrease_factor=0.5))
    accepted = 0
    for x, v, g, u, st in _run(tx, f, jnp.array(x0), 40):
        ls = gx.tree_get(st, "BacktrackingState")
        a = float(ls.step_size)
        d = -g
        if bool(ls.failed):
            assert a == 0.0 and np.all(np.asarray(u) == 0)
            continue
        accepted += 1
        assert a > 0
        np.testing.assert_allclose(np.asarray(u), a * np.asarray(d), rtol=1e-15)
        f_new = float(f(x + u))
        assert f_new <= float(v) + c1 * a * float(g @ d)
        # backtracking: the step before (a / 0.5) failed Armijo, unless a is the initial step
        if a < 1.0:
            assert float(f(x + 2 * a * d)) > float(v) + c1 * 2 * a * float(g @ d)
    assert accepted == 40


@pytest.mark.parametrize("c2", [0.9, 0.1])
@pytest.mark.parametrize("f, x0", [(rosenbrock, [-1.2, 1.0]), (beale, [1.0, 1.0])])
def test_zoom_strong_wolfe_on_every_accepted_step(f, x0, c2):
    c1 = 1e-4
    tx = gx.chain(gx.scale_by_bfgs(), gx.scale(-1.0), linesearch.zoom(c1=c1, c2=c2))
    for x, v, g, u, st in _run(tx, f, jnp.array(x0), 12):
        ls = gx.tree_get(st, "ZoomState")
        assert not bool(ls.failed)
        a = float(ls.step_size)
        d = np.asarray(u) / a
        f_new, g_new = jax.value_and_grad(f)(x + u)
        s0 = float(g @ d)
        assert s0 < 0
        assert float(f_new) <= float(v) + c1 * a * s0  # Armijo
        assert abs(float(g_new @ d)) <= c2 * abs(s0) * (1 + 1e-12)  # strong curvature condition
        # the state hands back f and grad at the new point
        np.testing.assert_allclose(float(ls.value), float(f_new), rtol=1e-12, atol=1e-16)  # x + a d vs x + u
        np.testing.assert_allclose(np.asarray(ls.grad), np.asarray(g_new), rtol=1e-12, atol=1e-14)


def test_exact_quadratic_step_formula():
    x = jnp.linspace(-1.0, 1.0, 20)
    v, g = jax.value_and_grad(quadratic20)(x)
    d = -g
    tx = linesearch.exact_quadratic()
    u, st = tx.update(d, tx.init(x), x, value=v, grad=g, value_fn=quadratic20)
    expected = -float(g @ d) / float(d @ (jnp.asarray(QUAD_A) @ d))
    np.testing.assert_allclose(float(st.step_size), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(u), expected * np.asarray(d), rtol=1e-12)


@pytest.mark.parametrize("make", [linesearch.backtracking, linesearch.zoom])
def test_ascent_direction_falls_back_to_steepest_descent(make):
    x = jnp.array([-1.2, 1.0])
    v, g = jax.value_and_grad(rosenbrock)(x)
    tx = make()
    u, st = tx.update(g, tx.init(x), x, value=v, grad=g, value_fn=rosenbrock)  # +g: uphill
    a = float(st.step_size)
    assert a > 0
    np.testing.assert_allclose(np.asarray(u), -a * np.asarray(g), rtol=1e-14)
    assert float(rosenbrock(x + u)) < float(v)


def test_extra_args_reach_value_fn():
    """Extra arguments that value_fn names are passed to it; others are ignored."""
    data = jnp.array([3.0, -2.0])

    def f(p, target):
        return jnp.sum((p - target) ** 4)

    x = jnp.zeros(2)
    v, g = jax.value_and_grad(f)(x, data)
    tx = linesearch.zoom()
    u1, s1 = tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=f, target=data, unrelated=1.0)
    closure = lambda p: f(p, data)  # noqa: E731
    u2, s2 = tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=closure)
    np.testing.assert_allclose(np.asarray(u1), np.asarray(u2), rtol=1e-15)
    assert int(s1.num_evals) == int(s2.num_evals) > 0


def test_vmap_over_points_equals_separate_calls():
    tx = linesearch.zoom()
    xs = jnp.array([[-1.2, 1.0], [0.3, 0.2], [2.0, -1.0]])

    def one(x):
        v, g = jax.value_and_grad(rosenbrock)(x)
        return tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=rosenbrock)

    ub, sb = jax.vmap(one)(xs)
    for i, x in enumerate(xs):
        u, s = one(x)
        np.testing.assert_allclose(np.asarray(ub[i]), np.asarray(u), rtol=1e-12)
        assert int(sb.num_evals[i]) == int(s.num_evals)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="c2=0.0001"):
        linesearch.zoom(c1=1e-4, c2=1e-4)
    with pytest.raises(ValueError, match="decrease_factor=1.5"):
        linesearch.backtracking(decrease_factor=1.5)
    with pytest.raises(ValueError, match="initial_step='big'"):
        linesearch.zoom(initial_step="big")
    with pytest.raises(ValueError, match="max_steps=0"):
        linesearch.backtracking(max_steps=0)
    tx = linesearch.zoom()
    x = jnp.zeros(2)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(x, tx.init(x), x, value=0.0, grad=x)
