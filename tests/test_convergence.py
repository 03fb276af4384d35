"""Convergence on the seeds' surfaces, and heavy-ball momentum's theoretical rate.

Problems (float64):
* ravine: f = (x^2 + 100 y^2) / 2 from (10, 1); converged when f < 1e-8 and stays there.
* rosenbrock: f = (1 - x)^2 + 100 (y - x^2)^2 from (-1.2, 1); converged when
  max(|x - 1|, |y - 1|) < 1e-3 and stays there.
* saddle: f = x^2 - y^2 from (1, 1e-6), just off the ridge y = 0; escaped when f < -1.

Each optimizer's learning rate is the best on the grid 1e-4 ... 1 (other
hyperparameters at their defaults; RMSProp with decay 0.999). The budget is
1.5x the steps measured when the table was made, plus 20: a regression that
slows convergence noticeably fails.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

PROBLEMS = {
    "ravine": (lambda p: 0.5 * (p[0] ** 2 + 100 * p[1] ** 2), (10.0, 1.0)),
    "rosenbrock": (lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2, (-1.2, 1.0)),
    "saddle": (lambda p: p[0] ** 2 - p[1] ** 2, (1.0, 1e-6)),
}
OPTIMIZERS = {
    "sgd": gx.sgd,
    "momentum": lambda lr: gx.momentum(lr, 0.9),
    "nesterov": lambda lr: gx.nesterov(lr, 0.9),
    "rmsprop": lambda lr: gx.rmsprop(lr, decay=0.999),
    "adam": gx.adam,
    "adamw": lambda lr: gx.adamw(lr, weight_decay=0.0),
    "nadam": gx.nadam,
    "amsgrad": gx.amsgrad,
    "adagrad": gx.adagrad,
    "adadelta": gx.adadelta,
}
# (optimizer, problem): (learning rate, steps measured)
TABLE = {
    ("sgd", "ravine"): (0.01, 1111),
    ("momentum", "ravine"): (0.005, 217),
    ("nesterov", "ravine"): (0.003, 182),
    ("rmsprop", "ravine"): (0.3, 6),
    ("adam", "ravine"): (0.005, 5519),
    ("adamw", "ravine"): (0.005, 5519),
    ("nadam", "ravine"): (0.3, 190),
    ("amsgrad", "ravine"): (1.0, 205),
    ("adagrad", "ravine"): (1.0, 336),
    ("adadelta", "ravine"): (0.02, 26333),
    ("sgd", "rosenbrock"): (0.001, 16803),
    ("momentum", "rosenbrock"): (0.003, 500),
    ("nesterov", "rosenbrock"): (0.001, 1592),
    ("rmsprop", "rosenbrock"): (0.001, 13204),
    ("adam", "rosenbrock"): (0.002, 8950),
    ("adamw", "rosenbrock"): (0.002, 8950),
    ("nadam", "rosenbrock"): (0.001, 11437),
    ("amsgrad", "rosenbrock"): (1.0, 4136),
    ("adagrad", "rosenbrock"): (0.5, 8780),
    ("adadelta", "rosenbrock"): (0.005, 29163),
    # The saddle at one common learning rate, 0.1, to compare escapes.
    ("sgd", "saddle"): (0.1, 75),
    ("momentum", "saddle"): (0.1, 35),
    ("nesterov", "saddle"): (0.1, 29),
    ("rmsprop", "saddle"): (0.1, 3),
    ("adam", "saddle"): (0.1, 10),
    ("adamw", "saddle"): (0.1, 10),
    ("nadam", "saddle"): (0.1, 8),
    ("amsgrad", "saddle"): (0.1, 10),
    ("adagrad", "saddle"): (0.1, 42),
    ("adadelta", "saddle"): (0.1, 139),
}


def _metric(problem, f, p):
    if problem == "ravine":
        return f(p)
    if problem == "rosenbrock":
        return jnp.max(jnp.abs(p - 1.0))
    return f(p)


def steps_to_converge(opt: str, problem: str, lr: float, budget: int) -> int | None:
    f, x0 = PROBLEMS[problem]
    tx = OPTIMIZERS[opt](lr)
    x0 = jnp.asarray(x0, jnp.float64)

    def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(f)(p), s, p)
        p = gx.apply_updates(p, u)
        return (p, s), _metric(problem, f, p)

    _, m = jax.jit(lambda: jax.lax.scan(body, (x0, tx.init(x0)), None, length=budget))()
    m = np.asarray(m)
    if problem == "saddle":
        hit = np.nonzero(m < -1.0)[0]
        return int(hit[0]) + 1 if hit.size else None
    tol = 1e-8 if problem == "ravine" else 1e-3
    bad = np.nonzero(~(m < tol))[0]  # converged = under tol from some step on, to the end
    k = int(bad[-1]) + 1 if bad.size else 0
    return k + 1 if k < budget else None


@pytest.mark.parametrize("opt, problem", sorted(TABLE))
def test_reaches_tolerance_within_budget(opt, problem):
    lr, measured = TABLE[(opt, problem)]
    budget = math.ceil(1.5 * measured) + 20
    with jax.enable_x64(True):
        k = steps_to_converge(opt, problem, lr, budget)
    assert k is not None, f"{opt} did not converge on {problem} within {budget} steps"
    assert k <= budget


def test_seed_claims_momentum_beats_sgd_in_the_ravine_and_adam_escapes_the_saddle_faster():
    with jax.enable_x64(True):
        # Seed 000: momentum damps the zig-zag, so it crosses the ravine faster than SGD
        # (each at its best grid learning rate).
        assert steps_to_converge("momentum", "ravine", 0.005, 2000) * 3 < steps_to_converge("sgd", "ravine", 0.01, 2000)
        # Seed 001: momentum and Adam help getting off plateaus and saddles (same learning rate).
        sgd = steps_to_converge("sgd", "saddle", 0.1, 200)
        assert steps_to_converge("momentum", "saddle", 0.1, 200) < sgd
        assert steps_to_converge("adam", "saddle", 0.1, 200) * 5 < sgd


def test_heavy_ball_converges_at_the_theoretical_rate():
    # f = x^T A x / 2 with eigenvalues 1 ... 100 (condition number k = 100). With the optimal
    # step a = 4 / (sqrt(L) + sqrt(mu))^2 and momentum b = ((sqrt(k) - 1) / (sqrt(k) + 1))^2,
    # heavy ball contracts the error by rho = (sqrt(k) - 1) / (sqrt(k) + 1) per step.
    mu, L = 1.0, 100.0
    kappa = L / mu
    rho = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    a = 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    b = rho**2
    with jax.enable_x64(True):
        eig = jnp.linspace(mu, L, 10)
        f = lambda x: 0.5 * jnp.sum(eig * x**2)  # noqa: E731
        tx = gx.momentum(a, beta=b)
        x0 = jnp.ones(10, jnp.float64)

        def body(carry, _):
            x, s = carry
            u, s = tx.update(jax.grad(f)(x), s, x)
            x = gx.apply_updates(x, u)
            return (x, s), jnp.linalg.norm(x)

        _, norms = jax.jit(lambda: jax.lax.scan(body, (x0, tx.init(x0)), None, length=400))()
    t1, t2 = 100, 400
    measured = (float(norms[t2 - 1]) / float(norms[t1 - 1])) ** (1 / (t2 - t1))
    assert measured == pytest.approx(rho, rel=0.015)
    # And plain gradient descent at its optimal step is much slower: (k - 1) / (k + 1) per step.
    assert rho < (kappa - 1) / (kappa + 1) - 0.15
