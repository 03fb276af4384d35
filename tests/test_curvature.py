"""Curvature methods against scipy.optimize.minimize: minima reached, evaluation counts, honest counting, jit, vmap."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import gradxform as gx
from tests import mgh_problems
from tests._problems import PROBLEMS, QUAD_A, QUAD_XSTAR, quadratic20, quadratic20_even, rosenbrock

pytestmark = pytest.mark.usefixtures("x64")


@pytest.fixture(scope="module")
def x64():
    with jax.enable_x64(True):
        yield


TOL = 1e-10  # gradient-norm tolerance for ours; scipy gets gtol=1e-10 too (its inf-norm <= our 2-norm)
MAX_STEPS = 1000

# ours -> (factory, the scipy method it is compared with)
METHODS = {
    "bfgs": (gx.bfgs, "BFGS"),
    "lbfgs": (gx.lbfgs, "L-BFGS-B"),
    "conjugate_gradient": (gx.conjugate_gradient, "CG"),
    "newton_cg": (gx.newton_cg, "Newton-CG"),
    "newton": (gx.newton, "trust-exact"),
    "newton_cg_trust": (gx.newton_cg_trust, "trust-ncg"),
}
# the methods whose evaluations are compared with scipy's on the MGH problems (tests/mgh_problems.py);
# the others are compared on the small problems of tests/_problems.py by iterations
ITERATION_METHODS = ("newton_cg", "newton")


@functools.cache
def scipy_result(problem: str, method: str):
    f, x0, _ = PROBLEMS[problem]
    with jax.enable_x64(True):
        fun = jax.jit(f)
        jac = jax.jit(jax.grad(f))
        hess = jax.jit(jax.hessian(f))
        kw = {"jac": lambda x: np.asarray(jac(x))}
        if method in ("Newton-CG", "trust-exact"):
            kw["hess"] = lambda x: np.asarray(hess(x))
        options = {"xtol": 1e-12} if method == "Newton-CG" else {"gtol": TOL}
        if method == "L-BFGS-B":
            options["ftol"] = 0.0
        return scipy.optimize.minimize(lambda x: float(fun(x)), x0, method=method, options=options, **kw)


@functools.cache
def our_result(problem: str, method: str):
    f, x0, _ = PROBLEMS[problem]
    with jax.enable_x64(True):
        return gx.minimize(f, jnp.asarray(x0), METHODS[method][0](), max_steps=MAX_STEPS, tol=TOL)


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("method", ITERATION_METHODS)
def test_reaches_minimum_within_1p5x_scipy_iterations(method, problem):
    _, _, xstar = PROBLEMS[problem]
    ours = our_result(problem, method)
    ref = scipy_result(problem, METHODS[method][1])
    err = float(np.max(np.abs(np.asarray(ours.params) - xstar)))
    assert err < 1e-6, f"{method} on {problem}: parameter error {err:.2e}"
    assert np.max(np.abs(ref.x - xstar)) < 1e-6  # the reference itself got there
    assert int(ours.num_steps) <= 1.5 * ref.nit, (int(ours.num_steps), ref.nit)
    # the trace is f along the run, padded with NaN
    tr = np.asarray(ours.trace)
    k = int(ours.num_steps)
    assert tr.shape == (MAX_STEPS + 1,)
    np.testing.assert_allclose(tr[0], float(PROBLEMS[problem][0](jnp.asarray(PROBLEMS[problem][1]))), rtol=1e-15)
    np.testing.assert_allclose(tr[k], float(ours.value), rtol=1e-15, atol=1e-300)
    assert np.all(np.isnan(tr[k + 1 :]))


@pytest.mark.parametrize("method", ["bfgs", "lbfgs", "conjugate_gradient"])
def test_mgh_evaluations_against_scipy(method):
    """On 12 MGH problems (``TEST_SET``; the benchmark checks all 27): every problem scipy solves is solved
    (to a value no worse), and evaluations (value and gradient at one point) over scipy's nfev have geometric
    mean <= 1 and none above 2. The runs share one compiled program (``shared_runs``)."""
    ours = mgh_problems.shared_runs(method, mgh_problems.TEST_SET)
    c = mgh_problems.compare(method, mgh_problems.TEST_SET, ours)
    assert not c.unsolved_by_us, f"{method}: scipy solves {c.unsolved_by_us}, we do not"
    assert len(c.ratios) >= 11  # scipy's L-BFGS-B and CG stop short on Freudenstein-Roth
    worst = max(c.ratios, key=c.ratios.get)
    assert c.geomean <= 1.0 and c.worst <= 2.0, (c.geomean, worst, c.worst)
    if method == "lbfgs":
        # without bounds L-BFGS-B's direction is the two-loop direction and its line search is more_thuente
        # with (1e-3, 0.9, xtol 0.1): the runs agree iteration for iteration on most problems
        runs = [(ours[n], mgh_problems.scipy_run(method, n)) for n in c.ratios]
        same = [o.iterations == s.iterations and o.evals == s.evals for o, s in runs]
        assert sum(same) >= 0.75 * len(same), same


def test_newton_cg_trust_is_scipys_trust_ncg():
    """Same constants, same Steihaug solves: the runs agree with trust-ncg's evaluation for evaluation, in
    fewer Hessian-vector products (the model value is carried through CG instead of recomputed)."""
    for name in mgh_problems.TRUST_TEST_SET:
        ours, ref = mgh_problems.our_run("newton_cg_trust", name), mgh_problems.scipy_run("newton_cg_trust", name)
        assert ours.solved and ref.solved
        assert ours.evals == ref.evals, (name, ours.evals, ref.evals)
        assert ours.hvps < ref.hvps, (name, ours.hvps, ref.hvps)
        np.testing.assert_allclose(ours.x, ref.x, rtol=1e-6, atol=1e-8)


def _counted(f):
    """``f`` with a host callback recording every point it is evaluated at (forward passes: values,
    gradients, Hessian-vector products all run it once). The points travel as their bits (uint32 pairs):
    the callback runs on a thread where the x64 context is off, which would round float64 arguments."""
    points = []

    def g(x):
        bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
        jax.debug.callback(lambda b: points.append(np.asarray(b).tobytes()), bits)
        return f(x)

    return g, points


@pytest.mark.parametrize("method", ["bfgs", "lbfgs", "conjugate_gradient"])
def test_minimize_counts_every_evaluation_and_repeats_none(method):
    """num_evals is the number of times the objective ran, and no point is evaluated twice."""
    f, points = _counted(rosenbrock)
    r = gx.minimize(f, jnp.array([-1.2, 1.0]), METHODS[method][0](), max_steps=200, tol=1e-10)
    jax.effects_barrier()
    assert bool(r.converged)
    assert len(points) == int(r.num_evals)
    assert len(set(points)) == len(points)
    # the loop evaluated only x0 itself; the rest were line-search trials
    assert int(r.num_evals) == 1 + sum(int(s.num_evals) for s in [gx.tree_get(r.state, "MoreThuenteState")])


def test_minimize_counts_trust_region_and_newton_evaluations():
    """newton_cg_trust: one evaluation per trial plus one linearization of the gradient per update (for the
    Hessian-vector products); newton: one per trial plus one Hessian per update. Trial points are distinct."""
    f, points = _counted(rosenbrock)
    r = gx.minimize(f, jnp.array([-1.2, 1.0]), gx.newton_cg_trust(), max_steps=200, tol=1e-10)
    jax.effects_barrier()
    updates = int(r.state.count)
    assert bool(r.converged) and updates == int(r.num_steps)
    assert len(points) == int(r.num_evals) + updates
    assert len(set(points)) == int(r.num_evals)
    points.clear()
    r = gx.minimize(f, jnp.array([-1.2, 1.0]), gx.newton(), max_steps=200, tol=1e-10)
    jax.effects_barrier()
    assert bool(r.converged)
    assert len(points) == int(r.num_evals) + int(r.state.num_hessians)
    assert len(set(points)) == int(r.num_evals)


def test_minimize_is_one_while_loop():
    """minimize compiles to one jitted call whose body is a single top-level while loop."""
    jaxpr = jax.make_jaxpr(lambda x: gx.minimize(rosenbrock, x, gx.bfgs(), max_steps=50))(jnp.zeros(2))
    (call,) = [e for e in jaxpr.eqns if e.primitive.name in ("pjit", "jit")]
    inner = call.params["jaxpr"].jaxpr
    assert [e.primitive.name for e in inner.eqns].count("while") == 1


def test_line_search_failure_is_a_stall_not_a_step():
    """A line search that finds no decrease returns 0: minimize stops, counts no step, keeps x."""
    x0 = jnp.array([-1.2, 1.0])
    tx = gx.bfgs(gx.linesearch.more_thuente(max_step_size=1e-30))
    r = gx.minimize(rosenbrock, x0, tx, max_steps=10)
    # each step of 1e-30 lowers f by nothing: no sufficient decrease, stalled at once
    assert bool(r.stalled) and int(r.num_steps) == 0
    np.testing.assert_array_equal(np.asarray(r.params), np.asarray(x0))
    assert int(r.num_evals) == 2  # x0, and the one trial


def test_newton_one_step_on_quadratic():
    r = gx.minimize(quadratic20, jnp.zeros(20), gx.newton(), max_steps=50, tol=1e-8)
    assert int(r.num_steps) == 1
    np.testing.assert_allclose(np.asarray(r.params), QUAD_XSTAR, atol=1e-10)


@pytest.mark.parametrize("method", ["polak_ribiere", "fletcher_reeves"])
def test_linear_cg_with_exact_linesearch_ends_in_n_steps(method):
    tx = gx.conjugate_gradient(method, linesearch=gx.linesearch.exact_quadratic())
    r = gx.minimize(quadratic20_even, jnp.zeros(20), tx, max_steps=100, tol=1e-8)
    assert int(r.num_steps) <= 20
    np.testing.assert_allclose(np.asarray(r.params), QUAD_XSTAR, atol=1e-9)


def test_linear_cg_iterates_match_textbook_linear_cg():
    """Nonlinear CG + exact line search on a quadratic = N&W algorithm 5.2, iterate by iterate."""
    A, xstar = QUAD_A, QUAD_XSTAR
    b = A @ xstar
    x = np.zeros(20)
    r = A @ x - b
    p = -r
    ref = []
    for _ in range(5):
        a = (r @ r) / (p @ A @ p)
        x = x + a * p
        r_new = r + a * (A @ p)
        p = -r_new + (r_new @ r_new) / (r @ r) * p
        r = r_new
        ref.append(x.copy())
    tx = gx.conjugate_gradient(linesearch=gx.linesearch.exact_quadratic())
    xs = jnp.zeros(20)
    state = tx.init(xs)
    for k in range(5):
        v, g = jax.value_and_grad(quadratic20)(xs)
        u, state = tx.update(g, state, xs, value=v, grad=g, value_fn=quadratic20)
        xs = gx.apply_updates(xs, u)
        np.testing.assert_allclose(np.asarray(xs), ref[k], rtol=1e-9, atol=1e-12)


def test_newton_damping_keeps_descent_where_hessian_is_indefinite():
    x0 = jnp.array([0.0, 1.0])  # Rosenbrock's Hessian here has eigenvalue < 0
    assert np.linalg.eigvalsh(np.asarray(jax.hessian(rosenbrock)(x0)))[0] < 0
    r = gx.minimize(rosenbrock, x0, gx.newton(), max_steps=100, tol=1e-10)
    tr = np.asarray(r.trace)[: int(r.num_steps) + 1]
    assert np.all(np.diff(tr) < 0)  # every accepted step lowers f
    np.testing.assert_allclose(np.asarray(r.params), [1.0, 1.0], atol=1e-8)
    assert not bool(r.state.failed)


def test_bfgs_secant_equation():
    """After an update, H_k y_k = s_k (N&W eq. 6.14) for the pair just used."""
    tx = gx.scale_by_bfgs()
    x0, x1 = jnp.array([-1.2, 1.0]), jnp.array([-1.0, 1.1])
    g0, g1 = jax.grad(rosenbrock)(x0), jax.grad(rosenbrock)(x1)
    _, st = tx.update(g0, tx.init(x0), x0)
    _, st = tx.update(g1, st, x1)
    np.testing.assert_allclose(np.asarray(st.inv_hessian @ (g1 - g0)), np.asarray(x1 - x0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(st.inv_hessian), np.asarray(st.inv_hessian.T), rtol=1e-14)


def test_bfgs_skips_update_without_positive_curvature():
    tx = gx.scale_by_bfgs()
    x0, x1 = jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0])
    _, st = tx.update(jnp.array([1.0, 0.0]), tx.init(x0), x0)
    u, st = tx.update(jnp.array([0.5, 0.0]), st, x1)  # y.s = -0.5 < 0
    assert int(st.num_updates) == 0
    np.testing.assert_allclose(np.asarray(st.inv_hessian), np.eye(2))
    np.testing.assert_allclose(np.asarray(u), [0.5, 0.0])


def test_lbfgs_direction_matches_optax_scale_by_lbfgs():
    """Same (params, grad) sequence -> same two-loop direction as optax (gamma scaling on)."""
    ours, ref = gx.scale_by_lbfgs(memory_size=3), optax.scale_by_lbfgs(memory_size=3, scale_init_precond=True)
    xs = [jnp.array([-1.2, 1.0]) + 0.1 * k * jnp.array([1.0, 0.3 + 0.05 * k]) for k in range(7)]
    s1, s2 = ours.init(xs[0]), ref.init(xs[0])
    for k, x in enumerate(xs):
        g = jax.grad(rosenbrock)(x)
        u1, s1 = ours.update(g, s1, x)
        u2, s2 = ref.update(g, s2, x)
        if k > 0:  # optax's first direction is g / ||g||, ours g (the line search picks the scale)
            np.testing.assert_allclose(np.asarray(u1), np.asarray(u2), rtol=1e-10, err_msg=f"step {k}")
        else:
            np.testing.assert_allclose(np.asarray(u1), np.asarray(g), rtol=1e-15)


@pytest.mark.parametrize("method", ["bfgs", "lbfgs", "newton", "newton_cg_trust"])
def test_vmap_over_starting_points_equals_separate_runs(method):
    tx = METHODS[method][0]()
    starts = jnp.array([[-1.2, 1.0], [0.5, -0.5], [2.0, 2.0]])
    batched = jax.vmap(lambda x: gx.minimize(rosenbrock, x, tx, max_steps=200, tol=1e-9))(starts)
    for i, x0 in enumerate(starts):
        one = gx.minimize(rosenbrock, x0, tx, max_steps=200, tol=1e-9)
        assert int(batched.num_steps[i]) == int(one.num_steps)
        assert int(batched.num_evals[i]) == int(one.num_evals)
        np.testing.assert_allclose(np.asarray(batched.params[i]), np.asarray(one.params), rtol=1e-12, atol=1e-14)
        # batched matrix products sum in another order: the traces agree to rounding, amplified by Rosenbrock
        np.testing.assert_allclose(np.asarray(batched.trace[i]), np.asarray(one.trace), rtol=1e-6, atol=1e-14)


@pytest.mark.parametrize("method", list(METHODS))
def test_jitted_update_equals_eager(method):
    tx = METHODS[method][0]()
    x = jnp.array([-1.2, 1.0])
    st = tx.init(x)
    step = lambda g, st, x, v: tx.update(g, st, x, value=v, grad=g, value_fn=rosenbrock)  # noqa: E731
    jstep = jax.jit(step)
    se, sj, xe, xj = st, st, x, x
    for _ in range(2):
        v, g = jax.value_and_grad(rosenbrock)(xe)
        ue, se = step(g, se, xe, v)
        uj, sj = jstep(g, sj, xj, v)
        np.testing.assert_allclose(np.asarray(uj), np.asarray(ue), rtol=1e-12, atol=1e-15)
        xe, xj = xe + ue, xj + uj


def test_pytree_params():
    """Methods ravel pytrees: a dict of two leaves gives the same run as the flat vector."""

    def f_tree(p):
        return rosenbrock(jnp.concatenate([p["a"], p["b"]]))

    flat = gx.minimize(rosenbrock, jnp.array([-1.2, 1.0]), gx.bfgs(), tol=1e-10)
    tree = gx.minimize(f_tree, {"a": jnp.array([-1.2]), "b": jnp.array([1.0])}, gx.bfgs(), tol=1e-10)
    assert int(flat.num_steps) == int(tree.num_steps)
    np.testing.assert_allclose(
        np.concatenate([tree.params["a"], tree.params["b"]]), np.asarray(flat.params), rtol=1e-12
    )


def test_bad_input_errors():
    with pytest.raises(ValueError, match="method='steepest'"):
        gx.conjugate_gradient("steepest")
    msg = r"^newton_cg_trust: initial_radius=2000.0 is out of range; allowed: \(0, 1000\)"
    with pytest.raises(ValueError, match=msg):
        gx.newton_cg_trust(initial_radius=2000.0)
    with pytest.raises(ValueError, match=r"^newton_cg_trust: eta=0.3 is out of range"):
        gx.newton_cg_trust(eta=0.3)
    with pytest.raises(ValueError, match=r"^newton_cg_trust: max_tries=0 must be an int >= 1"):
        gx.newton_cg_trust(max_tries=0)
    with pytest.raises(ValueError, match=r"^minimize: norm=1 is not supported; use 2 or jnp.inf"):
        gx.minimize(rosenbrock, jnp.zeros(2), gx.bfgs(), norm=1)
    with pytest.raises(ValueError, match="memory_size=0"):
        gx.lbfgs(memory_size=0)
    with pytest.raises(ValueError, match="increase"):
        gx.newton(increase=1.0)
    with pytest.raises(ValueError, match="max_steps=-1"):
        gx.minimize(rosenbrock, jnp.zeros(2), gx.bfgs(), max_steps=-1)
    with pytest.raises(TypeError, match="gx.bfgs\\(\\)|bfgs\\(\\)"):
        gx.minimize(rosenbrock, jnp.zeros(2), gx.bfgs)
    tx = gx.newton()
    x = jnp.zeros(2)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(jax.grad(rosenbrock)(x), tx.init(x), x)
    tx = gx.newton_cg_trust()
    with pytest.raises(TypeError, match="^newton_cg_trust: update needs the objective"):
        tx.update(jax.grad(rosenbrock)(x), tx.init(x), x)
    with pytest.raises(TypeError, match="params"):
        gx.scale_by_bfgs().update(x, gx.scale_by_bfgs().init(x))
