"""Test problems shared by the curvature and line-search tests (float64: enable x64 before calling)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def beale(x):
    a, b = x[0], x[1]
    return (1.5 - a + a * b) ** 2 + (2.25 - a + a * b**2) ** 2 + (2.625 - a + a * b**3) ** 2


def booth(x):
    return (x[0] + 2 * x[1] - 7) ** 2 + (2 * x[0] + x[1] - 5) ** 2


_rng = np.random.default_rng(0)
_Q, _ = np.linalg.qr(_rng.standard_normal((20, 20)))
QUAD_A = (_Q * np.logspace(0, 3, 20)) @ _Q.T  # eigenvalues 1 .. 1000: condition number 1e3
QUAD_A = (QUAD_A + QUAD_A.T) / 2
QUAD_XSTAR = _rng.standard_normal(20)


def quadratic20(x):
    """:math:`\\tfrac12 (x - x^*)^\\top A (x - x^*)`, :math:`\\kappa(A) = 10^3`, minimum 0 at x*."""
    e = x - jnp.asarray(QUAD_XSTAR)
    return 0.5 * e @ (jnp.asarray(QUAD_A) @ e)


# name: (objective, start, minimizer)
PROBLEMS = {
    "rosenbrock": (rosenbrock, np.array([-1.2, 1.0]), np.array([1.0, 1.0])),
    "beale": (beale, np.array([1.0, 1.0]), np.array([3.0, 0.5])),
    "booth": (booth, np.array([0.0, 0.0]), np.array([1.0, 3.0])),
    "quadratic20": (quadratic20, np.zeros(20), QUAD_XSTAR),
}

_Q2, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((20, 20)))
# eigenvalues spread evenly over 1 .. 1000: finite-precision linear CG keeps its n-step termination here (on
# QUAD_A's logarithmic spectrum it does not: rounding delays it, in numpy's textbook CG just as in ours)
EVEN_A = (_Q2 * np.linspace(1.0, 1000.0, 20)) @ _Q2.T
EVEN_A = (EVEN_A + EVEN_A.T) / 2


def quadratic20_even(x):
    """:math:`\\tfrac12 (x - x^*)^\\top A (x - x^*)` with evenly spread eigenvalues 1..1000, x* = QUAD_XSTAR."""
    e = x - jnp.asarray(QUAD_XSTAR)
    return 0.5 * e @ (jnp.asarray(EVEN_A) @ e)
