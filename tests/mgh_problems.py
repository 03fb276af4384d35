"""Unconstrained test problems of Moré, Garbow and Hillstrom (1981), at their standard starting points.

J. J. Moré, B. S. Garbow, K. E. Hillstrom, "Testing unconstrained optimization
software", ACM TOMS 7(1), 17-41. Each problem is a sum of squares
:math:`f(x) = \\sum_i f_i(x)^2`; the numbers below are the paper's (problem
number, :math:`n`, :math:`m`, :math:`x_0`, and the minimum values it reports).
Written with ``jax.numpy`` for float64 (enable x64 before calling).

``MGH[name] = Problem(fun, x0, minima)``: ``minima`` lists the values of the
minima the paper reports (local ones too), for telling which one a run found.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class Problem(NamedTuple):
    fun: object
    x0: np.ndarray
    minima: tuple


def _sumsq(r):
    return jnp.sum(r**2)


# 1
def rosenbrock(x):
    return _sumsq(jnp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]]))


# 2
def freudenstein_roth(x):
    f1 = -13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1]
    f2 = -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1]
    return f1**2 + f2**2


# 3
def powell_badly_scaled(x):
    f1 = 1e4 * x[0] * x[1] - 1.0
    f2 = jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001
    return f1**2 + f2**2


# 4
def brown_badly_scaled(x):
    return (x[0] - 1e6) ** 2 + (x[1] - 2e-6) ** 2 + (x[0] * x[1] - 2.0) ** 2


# 5
def beale(x):
    y = jnp.array([1.5, 2.25, 2.625])
    i = jnp.arange(1, 4)
    return _sumsq(y - x[0] * (1.0 - x[1] ** i))


# 6
def jennrich_sampson(x):
    i = jnp.arange(1, 11, dtype=x.dtype)
    return _sumsq(2.0 + 2.0 * i - (jnp.exp(i * x[0]) + jnp.exp(i * x[1])))


# 7
def helical_valley(x):
    theta = jnp.arctan(x[1] / x[0]) / (2 * jnp.pi) + jnp.where(x[0] < 0, 0.5, 0.0)
    f1 = 10.0 * (x[2] - 10.0 * theta)
    f2 = 10.0 * (jnp.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0)
    return f1**2 + f2**2 + x[2] ** 2


# 8
_BARD_Y = np.array([0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39])


def bard(x):
    u = jnp.arange(1.0, 16.0)
    v = 16.0 - u
    w = jnp.minimum(u, v)
    return _sumsq(jnp.asarray(_BARD_Y) - (x[0] + u / (v * x[1] + w * x[2])))


# 9
_GAUSS_Y = np.array(
    [0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989, 0.3521, 0.2420, 0.1295, 0.0540, 0.0175,
     0.0044, 0.0009]
)  # fmt: skip


def gaussian(x):
    t = (8.0 - jnp.arange(1.0, 16.0)) / 2.0
    return _sumsq(x[0] * jnp.exp(-x[1] * (t - x[2]) ** 2 / 2.0) - jnp.asarray(_GAUSS_Y))


# 11
def gulf(x):
    m = 99
    t = jnp.arange(1.0, m + 1) / 100.0
    y = 25.0 + (-50.0 * jnp.log(t)) ** (2.0 / 3.0)
    return _sumsq(jnp.exp(-(jnp.abs(y - x[1]) ** x[2]) / x[0]) - t)


# 12
def box3(x):
    t = 0.1 * jnp.arange(1.0, 11.0)
    r = jnp.exp(-t * x[0]) - jnp.exp(-t * x[1]) - x[2] * (jnp.exp(-t) - jnp.exp(-10.0 * t))
    return _sumsq(r)


# 13
def powell_singular(x):
    return (x[0] + 10.0 * x[1]) ** 2 + 5.0 * (x[2] - x[3]) ** 2 + (x[1] - 2.0 * x[2]) ** 4 + 10.0 * (x[0] - x[3]) ** 4


# 14
def wood(x):
    return (
        100.0 * (x[1] - x[0] ** 2) ** 2
        + (1.0 - x[0]) ** 2
        + 90.0 * (x[3] - x[2] ** 2) ** 2
        + (1.0 - x[2]) ** 2
        + 10.0 * (x[1] + x[3] - 2.0) ** 2
        + 0.1 * (x[1] - x[3]) ** 2
    )


# 15
_KO_Y = np.array([0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246])
_KO_U = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])


def kowalik_osborne(x):
    u = jnp.asarray(_KO_U)
    return _sumsq(jnp.asarray(_KO_Y) - x[0] * (u**2 + u * x[1]) / (u**2 + u * x[2] + x[3]))


# 16
def brown_dennis(x):
    t = jnp.arange(1.0, 21.0) / 5.0
    return _sumsq((x[0] + t * x[1] - jnp.exp(t)) ** 2 + (x[2] + x[3] * jnp.sin(t) - jnp.cos(t)) ** 2)


# 17
_OSB1_Y = np.array(
    [0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718, 0.685, 0.658, 0.628, 0.603,
     0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411,
     0.406]
)  # fmt: skip


def osborne1(x):
    t = 10.0 * jnp.arange(33.0)
    return _sumsq(jnp.asarray(_OSB1_Y) - (x[0] + x[1] * jnp.exp(-t * x[3]) + x[2] * jnp.exp(-t * x[4])))


# 18
def biggs_exp6(x):
    t = 0.1 * jnp.arange(1.0, 14.0)
    y = jnp.exp(-t) - 5.0 * jnp.exp(-10.0 * t) + 3.0 * jnp.exp(-4.0 * t)
    return _sumsq(x[2] * jnp.exp(-t * x[0]) - x[3] * jnp.exp(-t * x[1]) + x[5] * jnp.exp(-t * x[4]) - y)


# 20
def watson(x):
    n = x.shape[0]
    t = jnp.arange(1.0, 30.0) / 29.0
    j = jnp.arange(n, dtype=x.dtype)
    powers = t[:, None] ** j[None, :]  # t^(j-1) for j = 1..n
    s1 = powers[:, : n - 1] @ (j[1:] * x[1:])  # sum_{j>=2} (j-1) x_j t^(j-2)
    s2 = powers @ x
    r = s1 - s2**2 - 1.0
    return _sumsq(r) + x[0] ** 2 + (x[1] - x[0] ** 2 - 1.0) ** 2


# 21
def extended_rosenbrock(x):
    odd, even = x[0::2], x[1::2]
    return jnp.sum(100.0 * (even - odd**2) ** 2 + (1.0 - odd) ** 2)


# 22
def extended_powell(x):
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    return jnp.sum((a + 10.0 * b) ** 2 + 5.0 * (c - d) ** 2 + (b - 2.0 * c) ** 4 + 10.0 * (a - d) ** 4)


# 23
def penalty1(x):
    return 1e-5 * jnp.sum((x - 1.0) ** 2) + (jnp.sum(x**2) - 0.25) ** 2


# 24
def penalty2(x):
    n = x.shape[0]
    a = 1e-5
    i = jnp.arange(2.0, n + 1)
    y = jnp.exp(i / 10.0) + jnp.exp((i - 1.0) / 10.0)
    r1 = jnp.exp(x[1:] / 10.0) + jnp.exp(x[:-1] / 10.0) - y
    r2 = jnp.exp(x[1:] / 10.0) - jnp.exp(-0.1)
    w = jnp.arange(n, 0, -1, dtype=x.dtype)
    return (x[0] - 0.2) ** 2 + a * (jnp.sum(r1**2) + jnp.sum(r2**2)) + (jnp.sum(w * x**2) - 1.0) ** 2


# 25
def variably_dimensioned(x):
    j = jnp.arange(1, x.shape[0] + 1, dtype=x.dtype)
    s = jnp.sum(j * (x - 1.0))
    return jnp.sum((x - 1.0) ** 2) + s**2 + s**4


# 26
def trigonometric(x):
    n = x.shape[0]
    i = jnp.arange(1, n + 1, dtype=x.dtype)
    return _sumsq(n - jnp.sum(jnp.cos(x)) + i * (1.0 - jnp.cos(x)) - jnp.sin(x))


# 27
def brown_almost_linear(x):
    n = x.shape[0]
    r = x[:-1] + jnp.sum(x) - (n + 1.0)
    return _sumsq(r) + (jnp.prod(x) - 1.0) ** 2


# 28
def discrete_boundary_value(x):
    n = x.shape[0]
    h = 1.0 / (n + 1)
    t = h * jnp.arange(1, n + 1, dtype=x.dtype)
    xp = jnp.concatenate([jnp.zeros(1, x.dtype), x, jnp.zeros(1, x.dtype)])
    return _sumsq(2.0 * x - xp[:-2] - xp[2:] + h**2 * (x + t + 1.0) ** 3 / 2.0)


# 30
def broyden_tridiagonal(x):
    xp = jnp.concatenate([jnp.zeros(1, x.dtype), x, jnp.zeros(1, x.dtype)])
    return _sumsq((3.0 - 2.0 * x) * x - xp[:-2] - 2.0 * xp[2:] + 1.0)


def _t(n):
    return np.arange(1, n + 1) / (n + 1)


MGH = {
    "rosenbrock": Problem(rosenbrock, np.array([-1.2, 1.0]), (0.0,)),
    "freudenstein_roth": Problem(freudenstein_roth, np.array([0.5, -2.0]), (0.0, 48.9842)),
    "powell_badly_scaled": Problem(powell_badly_scaled, np.array([0.0, 1.0]), (0.0,)),
    "brown_badly_scaled": Problem(brown_badly_scaled, np.array([1.0, 1.0]), (0.0,)),
    "beale": Problem(beale, np.array([1.0, 1.0]), (0.0,)),
    "jennrich_sampson": Problem(jennrich_sampson, np.array([0.3, 0.4]), (124.362,)),
    "helical_valley": Problem(helical_valley, np.array([-1.0, 0.0, 0.0]), (0.0,)),
    "bard": Problem(bard, np.array([1.0, 1.0, 1.0]), (8.21487e-3, 17.4286)),
    "gaussian": Problem(gaussian, np.array([0.4, 1.0, 0.0]), (1.12793e-8,)),
    "gulf": Problem(gulf, np.array([5.0, 2.5, 0.15]), (0.0,)),
    "box3": Problem(box3, np.array([0.0, 10.0, 20.0]), (0.0, 0.0)),
    "powell_singular": Problem(powell_singular, np.array([3.0, -1.0, 0.0, 1.0]), (0.0,)),
    "wood": Problem(wood, np.array([-3.0, -1.0, -3.0, -1.0]), (0.0,)),
    "kowalik_osborne": Problem(kowalik_osborne, np.array([0.25, 0.39, 0.415, 0.39]), (3.07505e-4, 1.02734e-3)),
    "brown_dennis": Problem(brown_dennis, np.array([25.0, 5.0, -5.0, -1.0]), (85822.2,)),
    "osborne1": Problem(osborne1, np.array([0.5, 1.5, -1.0, 0.01, 0.02]), (5.46489e-5,)),
    "biggs_exp6": Problem(biggs_exp6, np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0]), (5.65565e-3, 0.0)),
    "watson6": Problem(watson, np.zeros(6), (2.28767e-3,)),
    "extended_rosenbrock10": Problem(extended_rosenbrock, np.tile([-1.2, 1.0], 5), (0.0,)),
    "extended_powell8": Problem(extended_powell, np.tile([3.0, -1.0, 0.0, 1.0], 2), (0.0,)),
    "penalty1_4": Problem(penalty1, np.arange(1.0, 5.0), (2.24997e-5,)),
    "penalty2_4": Problem(penalty2, np.full(4, 0.5), (9.37629e-6,)),
    "variably_dimensioned10": Problem(variably_dimensioned, 1.0 - np.arange(1, 11) / 10, (0.0,)),
    "trigonometric10": Problem(trigonometric, np.full(10, 0.1), (0.0, 2.79506e-5)),
    "brown_almost_linear10": Problem(brown_almost_linear, np.full(10, 0.5), (0.0, 1.0)),
    "discrete_boundary_value10": Problem(discrete_boundary_value, _t(10) * (_t(10) - 1.0), (0.0,)),
    "broyden_tridiagonal10": Problem(broyden_tridiagonal, np.full(10, -1.0), (0.0,)),
}


# --------------------------------------------------------------------------- gradxform against scipy on MGH

TOL = 1e-8  # gradient tolerance, for both
MAX_STEPS = 5000  # iterations, for both

# ours -> (scipy's method, the norm of both stopping tests): scipy's BFGS and CG test the largest gradient
# entry (their default norm=inf), L-BFGS-B the largest projected-gradient entry (no bounds: the gradient),
# trust-ncg the Euclidean norm; gradxform's minimize is given the same norm.
SCIPY_METHOD = {
    "bfgs": ("BFGS", float("inf")),
    "lbfgs": ("L-BFGS-B", float("inf")),
    "conjugate_gradient": ("CG", float("inf")),
    "newton_cg_trust": ("trust-ncg", 2.0),
}


# The problems tests/test_curvature.py runs for bfgs, lbfgs and conjugate_gradient (through shared_runs: one
# compiled program per method; benchmarks/curvature_vs_scipy.py runs all 27 standalone and checks the same
# targets), and the four it runs standalone for newton_cg_trust.
TEST_SET = (
    "rosenbrock",
    "freudenstein_roth",
    "beale",
    "helical_valley",
    "bard",
    "box3",
    "powell_singular",
    "wood",
    "kowalik_osborne",
    "biggs_exp6",
    "extended_rosenbrock10",
    "penalty2_4",
)
TRUST_TEST_SET = ("rosenbrock", "beale", "wood", "biggs_exp6")


def _x64():
    """``jax.enable_x64(True)`` unless it is on already (leaving its context would turn it off)."""
    import contextlib

    import jax

    return contextlib.nullcontext() if jax.config.read("jax_enable_x64") else jax.enable_x64(True)


class Run(NamedTuple):
    """One run: where it ended, whether it met the gradient tolerance, and its counts."""

    x: np.ndarray
    value: float
    grad_norm: float
    solved: bool
    iterations: int
    evals: int  # gradxform: value-and-gradient evaluations; scipy: nfev (objective values)
    grad_evals: int  # gradxform: the same; scipy: njev
    hvps: int  # Hessian-vector products (trust-ncg): ours num_hvps, scipy nhev


def _grad_norm(name, x, norm):
    import jax

    g = np.asarray(jax.grad(MGH[name].fun)(jnp.asarray(x)))
    return float(np.max(np.abs(g)) if norm == float("inf") else np.linalg.norm(g))


_cache: dict = {}


def scipy_run(method: str, name: str) -> Run:
    """scipy.optimize.minimize with our objective's value, gradient (and Hessian-vector product) as callables."""
    key = ("scipy", method, name)
    if key in _cache:
        return _cache[key]
    import jax
    import scipy.optimize

    with _x64():
        p = MGH[name]
        sp, norm = SCIPY_METHOD[method]
        fun = jax.jit(p.fun)
        jac = jax.jit(jax.grad(p.fun))
        kw = {"jac": lambda x: np.asarray(jac(x))}
        options = {"gtol": TOL, "maxiter": MAX_STEPS}
        if sp in ("BFGS", "CG"):
            options["norm"] = np.inf
        if sp == "L-BFGS-B":
            options.update(ftol=0.0, maxfun=100 * MAX_STEPS)  # stop on the gradient test only
        if sp == "trust-ncg":
            hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(p.fun), (x,), (v,))[1])
            kw["hessp"] = lambda x, v: np.asarray(hvp(x, v))
        r = scipy.optimize.minimize(lambda x: float(fun(x)), p.x0, method=sp, options=options, **kw)
        gn = _grad_norm(name, r.x, norm)
        out = Run(r.x, float(r.fun), gn, gn <= TOL, int(r.nit), int(r.nfev), int(r.njev), int(r.get("nhev", 0)))
    _cache[key] = out
    return out


def our_run(method: str, name: str) -> Run:
    """gradxform.minimize with the method's defaults."""
    key = ("ours", method, name)
    if key in _cache:
        return _cache[key]

    import gradxform as gx

    with _x64():
        p = MGH[name]
        _, norm = SCIPY_METHOD[method]
        r = gx.minimize(p.fun, jnp.asarray(p.x0), getattr(gx, method)(), max_steps=MAX_STEPS, tol=TOL, norm=norm)
        hvps = int(r.state.num_hvps) if method == "newton_cg_trust" else 0
        out = Run(
            np.asarray(r.params),
            float(r.value),
            float(r.grad_norm),
            bool(r.converged),
            int(r.num_steps),
            int(r.num_evals),
            int(r.num_evals),
            hvps,
        )
    _cache[key] = out
    return out


def _padded(fun, n, x):
    return fun(x[:n])


def shared_runs(method: str, names) -> dict:
    """gradxform.minimize on several problems through one compiled program (for the test suite's time).

    Each problem is padded to the largest dimension with coordinates it ignores (their gradient is 0, so
    every method leaves them at 0) and picked by ``lax.switch`` on a runtime index: one compilation
    instead of one per problem. The iterates are a standalone run's; the rounding of the compiled program
    differs, and near the end of a few runs that changes the counts a little.
    """
    key = ("shared", method, tuple(names))
    if key in _cache:
        return _cache[key]
    import functools

    import jax

    import gradxform as gx

    with _x64():
        _, norm = SCIPY_METHOD[method]
        dims = [len(MGH[n].x0) for n in names]
        fns = [functools.partial(_padded, MGH[n].fun, d) for n, d in zip(names, dims)]
        tx = getattr(gx, method)()

        @jax.jit
        def run(k, x0):
            return gx.minimize(lambda x: jax.lax.switch(k, fns, x), x0, tx, max_steps=MAX_STEPS, tol=TOL, norm=norm)

        out = {}
        for i, (name, d) in enumerate(zip(names, dims)):
            x0 = np.zeros(max(dims))
            x0[:d] = MGH[name].x0
            r = run(i, jnp.asarray(x0))
            x = np.asarray(r.params)
            assert np.all(x[d:] == 0)
            out[name] = Run(x[:d], float(r.value), float(r.grad_norm), bool(r.converged), int(r.num_steps),
                            int(r.num_evals), int(r.num_evals), 0)  # fmt: skip
    _cache[key] = out
    return out


class Comparison(NamedTuple):
    """Per method: the per-problem ratios of evaluations (ours / scipy's nfev) where scipy solved the problem."""

    ratios: dict  # name -> ratio, problems scipy solved
    unsolved_by_us: list  # problems scipy solved and we did not (or to a worse value)
    geomean: float
    worst: float


def compare(method: str, names=None, ours: dict | None = None) -> Comparison:
    """Ratios and misses over ``names`` (all problems by default); ``ours``: runs to use instead of ``our_run``."""
    ratios, unsolved = {}, []
    for name in names or MGH:
        s = scipy_run(method, name)
        o = ours[name] if ours is not None else our_run(method, name)
        if not s.solved:
            continue
        if not o.solved or o.value > s.value + 1e-6 * (1.0 + abs(s.value)):
            unsolved.append(name)
        ratios[name] = o.evals / s.evals
    logs = np.log(np.array(list(ratios.values())))
    return Comparison(ratios, unsolved, float(np.exp(logs.mean())), float(np.exp(logs.max())))
