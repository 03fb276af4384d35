"""Line searches: the conditions they claim hold on every accepted step; formulas; extra args; vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize._dcsrch import DCSRCH

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


@pytest.mark.parametrize(
    "make", [linesearch.backtracking, linesearch.zoom, linesearch.more_thuente, linesearch.hager_zhang]
)
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


@pytest.mark.parametrize("make", [linesearch.zoom, linesearch.more_thuente, linesearch.hager_zhang])
def test_vmap_over_points_equals_separate_calls(make):
    tx = make()
    xs = jnp.array([[-1.2, 1.0], [0.3, 0.2], [2.0, -1.0]])

    @jax.jit
    def one(x):
        v, g = jax.value_and_grad(rosenbrock)(x)
        return tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=rosenbrock)

    ub, sb = jax.jit(jax.vmap(one))(xs)
    for i, x in enumerate(xs):
        u, s = one(x)
        np.testing.assert_allclose(np.asarray(ub[i]), np.asarray(u), rtol=1e-12)
        assert int(sb.num_evals[i]) == int(s.num_evals) > 0


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
    with pytest.raises(ValueError, match=r"^linesearch.more_thuente: c2=1.5 is out of range; allowed: \(0.0001, 1\)"):
        linesearch.more_thuente(c2=1.5)
    with pytest.raises(ValueError, match=r"^linesearch.more_thuente: xtol=-1.0 is out of range; allowed: \[0, 1\)"):
        linesearch.more_thuente(xtol=-1.0)
    with pytest.raises(ValueError, match=r"^linesearch.more_thuente: max_step_size=0.0 is out of range"):
        linesearch.more_thuente(max_step_size=0.0)
    with pytest.raises(ValueError, match=r"^linesearch.more_thuente: rounding_ulps=-1 is out of range"):
        linesearch.more_thuente(rounding_ulps=-1)
    with pytest.raises(ValueError, match=r"^linesearch.hager_zhang: c1=0.5 is out of range; allowed: \(0, 0.5\)"):
        linesearch.hager_zhang(c1=0.5)
    with pytest.raises(ValueError, match=r"^linesearch.hager_zhang: c2=0.05 is out of range; allowed: \[0.1, 1\)"):
        linesearch.hager_zhang(c2=0.05)
    with pytest.raises(ValueError, match=r"^linesearch.hager_zhang: initial_step='big' is not known"):
        linesearch.hager_zhang(initial_step="big")
    with pytest.raises(ValueError, match=r"^linesearch.hager_zhang: max_steps=0 must be an int >= 1"):
        linesearch.hager_zhang(max_steps=0)
    with pytest.raises(TypeError, match=r"^linesearch.more_thuente: update needs value, grad"):
        t = linesearch.more_thuente()
        t.update(x, t.init(x), x, value_fn=rosenbrock)


# --------------------------------------------------------------------------- More-Thuente, Hager-Zhang


def _quartic_exp(x):
    return jnp.sum(x**4) + jnp.sum(jnp.exp(x))


def _scipy_dcsrch(f, x, d, a0, c1, c2, xtol=1e-14):
    """scipy's DCSRCH on phi(a) = f(x + a d): (accepted step or None, evaluations, task)."""
    vg = jax.jit(jax.value_and_grad(f))
    n = [0]

    def phi(a):
        n[0] += 1
        return float(vg(x + a * d)[0])

    def dphi(a):
        return float(vg(x + a * d)[1] @ d)

    f0, g0 = vg(x)
    stp, _, _, task = DCSRCH(phi, dphi, c1, c2, xtol, 0.0, 1e10)(a0, phi0=float(f0), derphi0=float(g0 @ d))
    return stp, n[0], task


@pytest.mark.parametrize("a0, c2", [(1.0, 0.9), (0.01, 0.1)])
@pytest.mark.parametrize("f, x0", [(rosenbrock, [-1.2, 1.0]), (_quartic_exp, [1.0, 2.0, -1.0])])
def test_more_thuente_is_scipys_dcsrch(f, x0, a0, c2):
    """Same trial steps as scipy's DCSRCH (the port): the same accepted step, in the same evaluations."""
    x = jnp.asarray(x0)
    tx = linesearch.more_thuente(c2=c2, initial_step=a0, rounding_ulps=0.0)
    step = jax.jit(lambda x, d: tx.update(d, tx.init(x), x, value=f(x), grad=jax.grad(f)(x), value_fn=f))
    g = np.asarray(jax.grad(f)(x))
    rng = np.random.default_rng(0)
    directions = [-g * 10.0**e for e in (-4, -2, 0, 1)] + [rng.standard_normal(x.shape) for _ in range(4)]
    for d in directions:
        d = jnp.asarray(d if g @ d < 0 else -d)
        stp, n, task = _scipy_dcsrch(f, x, d, a0, 1e-4, c2)
        assert task.startswith(b"CONV"), task
        _, st = step(x, d)
        assert not bool(st.failed)
        np.testing.assert_allclose(float(st.step_size), stp, rtol=1e-10)
        assert int(st.num_evals) == n


@pytest.mark.parametrize("c2", [0.9, 0.1])
@pytest.mark.parametrize("f, x0", [(rosenbrock, [-1.2, 1.0]), (beale, [1.0, 1.0])])
def test_more_thuente_strong_wolfe_on_every_accepted_step(f, x0, c2):
    c1 = 1e-4
    tx = gx.chain(gx.scale_by_bfgs(), gx.scale(-1.0), linesearch.more_thuente(c1=c1, c2=c2, initial_step="quadratic"))
    for x, v, g, u, st in _run(tx, f, jnp.array(x0), 12):
        ls = gx.tree_get(st, "MoreThuenteState")
        assert not bool(ls.failed)
        a = float(ls.step_size)
        d = np.asarray(u) / a
        f_new, g_new = jax.value_and_grad(f)(x + u)
        s0 = float(g @ d)
        assert float(f_new) <= float(v) + c1 * a * s0  # Armijo
        assert abs(float(g_new @ d)) <= c2 * abs(s0) * (1 + 1e-12)  # strong curvature condition
        # the state hands back f and grad at the new point
        np.testing.assert_allclose(float(ls.value), float(f_new), rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(np.asarray(ls.grad), np.asarray(g_new), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("f, x0", [(rosenbrock, [-1.2, 1.0]), (beale, [1.0, 1.0])])
def test_hager_zhang_wolfe_or_approximate_wolfe_on_every_accepted_step(f, x0):
    delta, sigma, eps = 0.1, 0.9, 1e-6
    tx = gx.chain(gx.scale_by_conjugate_gradient("hager_zhang"), gx.scale(-1.0), linesearch.hager_zhang())
    for x, v, g, u, st in _run(tx, f, jnp.array(x0), 15):
        ls = gx.tree_get(st, "HagerZhangState")
        assert not bool(ls.failed)
        a = float(ls.step_size)
        d = np.asarray(u) / a
        f_new, g_new = jax.value_and_grad(f)(x + u)
        s0, s1 = float(g @ d), float(g_new @ d)
        assert s0 < 0 and s1 >= sigma * s0 * (1 + 1e-12)  # curvature, both variants
        wolfe = float(f_new) - float(v) <= delta * a * s0
        approx = (2 * delta - 1) * s0 >= s1 and float(f_new) <= float(v) + eps * abs(float(v))
        assert wolfe or approx
        np.testing.assert_allclose(float(ls.value), float(f_new), rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(np.asarray(ls.grad), np.asarray(g_new), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [linesearch.more_thuente, linesearch.hager_zhang])
def test_search_recovers_from_non_finite_values(make):
    """f is NaN beyond x = 2 along the line; the first trial (a = 10) lands there. The search shrinks back."""

    def f(x):
        return jnp.where(x[0] < 2.0, (x[0] - 1.0) ** 2, jnp.nan)

    x = jnp.zeros(1)
    v, g = jax.value_and_grad(f)(x)
    tx = make(initial_step=10.0)
    u, st = jax.jit(lambda x: tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=f))(x)
    assert np.isfinite(float(st.value)) and float(st.value) < float(v)
    assert 0 < float(x[0] + u[0]) < 2.0
    assert int(st.num_evals) <= 10


def test_first_step_rules():
    """'quasi_newton': 1/||d|| at the first call, then 1; 'quadratic': min(1, 2.02 (f_k - f_{k-1}) / phi'(0));
    'hager_zhang': 0.01 ||x||_inf / ||d||_inf first, then twice the last step."""
    x = jnp.array([3.0, -4.0])
    d = jnp.array([-6.0, 8.0])
    g = -d
    common = dict(f0=jnp.float64(5.0), prev_value=jnp.float64(5.5), slope0=jnp.float64(-100.0), d=d, grad=g,
                  params=x, dtype=jnp.float64)  # fmt: skip
    fs = linesearch.first_step
    assert float(fs("quasi_newton", count=0, prev_step=jnp.float64(0.0), **common)) == pytest.approx(0.1)
    assert float(fs("quasi_newton", count=3, prev_step=jnp.float64(0.3), **common)) == 1.0
    assert float(fs("quadratic", count=3, prev_step=jnp.float64(0.3), **common)) == pytest.approx(2.02 * 0.5 / 100)
    first = dict(common, prev_value=jnp.float64(jnp.nan))  # before the first step f_{k-1} = f_k + ||g|| / 2
    # f_{k-1} = 5 + 10 / 2: 2.02 (5 - 10) / -100
    assert float(fs("quadratic", count=0, prev_step=jnp.float64(0.0), **first)) == pytest.approx(2.02 * 5 / 100)
    assert float(fs("hager_zhang", count=0, prev_step=jnp.float64(0.0), **common)) == pytest.approx(0.01 * 4 / 8)
    assert float(fs("hager_zhang", count=2, prev_step=jnp.float64(0.3), **common)) == pytest.approx(0.6)
    assert float(fs("one", count=2, prev_step=jnp.float64(0.3), **common)) == 1.0


def test_more_thuente_needs_fewer_evaluations_than_zoom():
    """The point of the Moré-Thuente block: the same BFGS directions in fewer evaluations than zoom's
    bracketing (the minimize loop hands off the accepted point in both)."""
    x0 = jnp.array([-1.2, 1.0])
    mt = gx.minimize(rosenbrock, x0, gx.bfgs(), tol=1e-10)
    zm = gx.minimize(rosenbrock, x0, gx.bfgs(linesearch.zoom(initial_step="quadratic")), tol=1e-10)
    assert bool(mt.converged) and bool(zm.converged)
    assert int(mt.num_evals) == 41  # scipy's BFGS: nfev 41 (test_curvature compares the MGH set)
    assert int(mt.num_evals) < int(zm.num_evals)
