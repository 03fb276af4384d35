"""Sweeps: one compilation for a grid, and every vmapped run equal to the same run made alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import schedules as S
from tests._compile_count import count_compiles

A = jnp.array([1.0, 10.0, 0.3])


def quad(p):
    """An ill-conditioned quadratic: 0.5 * sum(a_i x_i^2) plus a coupling term."""
    return 0.5 * jnp.sum(A * p["x"] ** 2) + 0.1 * jnp.sum(p["x"][:2] * p["y"]) + 0.5 * jnp.sum(p["y"] ** 2)


P0 = {"x": jnp.array([1.0, -1.0, 2.0]), "y": jnp.array([0.5, -0.5])}


def alone(tx, steps):
    """The loss curve of one run with concrete hyperparameters, a jitted step called from Python."""
    p, s = P0, tx.init(P0)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(quad)(p)
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s, loss

    out = []
    for _ in range(steps):
        p, s, loss = step(p, s)
        out.append(float(loss))
    return np.array(out), p


def momentum_tx(learning_rate, beta):
    return gx.momentum(learning_rate, beta)


def test_16_setting_sweep_compiles_once_and_reuses_the_program():
    grid = {"learning_rate": [1e-3, 1e-2, 3e-2, 1e-1], "beta": [0.0, 0.5, 0.9, 0.95]}

    def make_tx(learning_rate, beta):  # a fresh function: no program cached by another test
        return gx.momentum(learning_rate, beta)

    with count_compiles() as compiles:
        losses = gx.sweep(make_tx, quad, P0, grid, steps=60)
        losses.block_until_ready()
    assert losses.shape == (4, 4, 60)
    assert len(compiles) == 1, compiles  # the whole 16-run sweep is one XLA program
    # a second grid of the same shape, other values: nothing new to compile
    with count_compiles() as again:
        losses2 = gx.sweep(make_tx, quad, P0, {"learning_rate": [2e-3, 2e-2, 5e-2, 0.2], "beta": grid["beta"]}, 60)
        losses2.block_until_ready()
    assert again == []
    assert not np.allclose(losses, losses2)
    # each curve is the run made alone (the corners and the diagonal; the other points in the tests below)
    for i, j in [(0, 0), (0, 3), (3, 0), (1, 1), (2, 2), (3, 3)]:
        want, _ = alone(gx.momentum(grid["learning_rate"][i], grid["beta"][j]), 60)
        np.testing.assert_allclose(losses[i, j], want, rtol=2e-6, atol=1e-7)


def test_curves_make_sense_higher_lr_and_momentum_converge_faster_on_the_quadratic():
    losses = np.asarray(gx.sweep(momentum_tx, quad, P0, {"learning_rate": [1e-3, 1e-2], "beta": [0.0, 0.9]}, 100))
    assert losses[0, 0, -1] > losses[1, 0, -1] > losses[1, 1, -1]
    assert losses[:, :, 0].tolist() == [[float(quad(P0))] * 2] * 2  # loss before the first update


def _swept_vs_alone(make_tx, grid, steps=40):
    losses, final = gx.sweep(make_tx, quad, P0, grid, steps, return_params=True)
    names = list(grid)
    worst = 0.0
    for idx in np.ndindex(*[len(v) for v in grid.values()]):
        point = {n: grid[n][k] for n, k in zip(names, idx)}
        want, p = alone(make_tx(**point), steps)
        np.testing.assert_allclose(losses[idx], want, rtol=1e-6, atol=1e-7, err_msg=str(point))
        for k in p:
            np.testing.assert_allclose(final[k][idx], p[k], rtol=2e-6, atol=1e-7, err_msg=str(point))
        worst = max(worst, float(np.max(np.abs(np.asarray(losses[idx]) - want) / np.maximum(np.abs(want), 1e-30))))
    return worst


@pytest.mark.parametrize(
    "make_tx, grid",
    [
        (lambda learning_rate: gx.adam(learning_rate), {"learning_rate": [1e-3, 1e-2, 1e-1]}),
        (lambda b1, b2: gx.adam(0.05, b1=b1, b2=b2), {"b1": [0.0, 0.5, 0.9], "b2": [0.9, 0.999]}),
        (lambda eps: gx.adam(0.05, eps=eps), {"eps": [1e-8, 1e-3, 1e-1]}),
        (lambda decay: gx.rmsprop(0.01, decay=decay), {"decay": [0.5, 0.9, 0.99]}),
        (lambda rho, eps: gx.adadelta(0.5, rho=rho, eps=eps), {"rho": [0.9, 0.95], "eps": [1e-6, 1e-4]}),
        (lambda weight_decay: gx.adamw(0.05, weight_decay=weight_decay), {"weight_decay": [0.0, 0.1, 1.0]}),
        # schedule parameters: seed 001's inverse-time decay and momentum annealing end points
        (
            lambda lr0, decay_rate: gx.sgd(S.inverse_time_decay(lr0, decay_rate, 5)),
            {"lr0": [0.01, 0.05], "decay_rate": [0.0, 0.5, 2.0]},
        ),
        (lambda end: gx.momentum(0.01, S.linear_schedule(0.5, end, 20)), {"end": [0.5, 0.9, 0.99]}),
        (lambda peak: gx.adam(S.warmup_cosine_decay_schedule(0.0, peak, 5, 40)), {"peak": [0.01, 0.1]}),
    ],
    ids=["lr", "b1xb2", "eps", "rmsprop_decay", "adadelta_rho_eps", "weight_decay", "inverse_time", "anneal", "warmup"],
)
def test_vmap_over_hyperparameters_equals_separate_runs(make_tx, grid):
    worst = _swept_vs_alone(make_tx, grid)
    assert worst <= 1e-6  # measured: at most 3.3e-7 (bitwise for lr, eps, weight decay, adadelta, schedules of lr)


def test_data_batches_are_fed_one_per_step():
    # loss_fn(params, batch): least squares on a fresh batch each step; SGD's first step is closed form.
    steps = 5
    xs = jax.random.normal(jax.random.PRNGKey(0), (steps, 8, 2))
    ys = xs @ jnp.array([1.0, -2.0])

    def lsq(p, batch):
        x, y = batch
        return 0.5 * jnp.mean((x @ p - y) ** 2)

    losses, final = gx.sweep(
        lambda learning_rate: gx.sgd(learning_rate),
        lsq,
        jnp.zeros(2),
        {"learning_rate": [0.1, 0.2]},
        steps,
        data=(xs, ys),
        return_params=True,
    )
    for i, lr in enumerate([0.1, 0.2]):
        p, want = np.zeros(2), []
        for t in range(steps):
            x, y = np.asarray(xs[t], np.float64), np.asarray(ys[t], np.float64)
            want.append(0.5 * np.mean((x @ p - y) ** 2))
            p = p - lr * x.T @ (x @ p - y) / len(y)
        np.testing.assert_allclose(losses[i], want, rtol=1e-5)
        np.testing.assert_allclose(final[i], p, rtol=1e-5)


def test_bad_input_is_refused_before_compiling():
    with count_compiles() as compiles:
        with pytest.raises(ValueError, match="learning_rate=-0.1"):
            gx.sweep(momentum_tx, quad, P0, {"learning_rate": [0.1, -0.1], "beta": [0.9]}, 10)
        with pytest.raises(ValueError, match="steps"):
            gx.sweep(momentum_tx, quad, P0, {"learning_rate": [0.1], "beta": [0.9]}, 0)
        with pytest.raises(ValueError, match="non-empty"):
            gx.sweep(momentum_tx, quad, P0, {"learning_rate": [], "beta": [0.9]}, 10)
        with pytest.raises(ValueError, match="non-empty dict"):
            gx.sweep(momentum_tx, quad, P0, {}, 10)
        with pytest.raises(ValueError, match="non-finite"):
            gx.sweep(momentum_tx, quad, P0, {"learning_rate": [float("nan")], "beta": [0.9]}, 10)
        with pytest.raises(TypeError, match="transformation"):
            gx.sweep(lambda learning_rate: gx.sgd, quad, P0, {"learning_rate": [0.1]}, 10)
        with pytest.raises(ValueError, match="leading axis"):
            gx.sweep(
                lambda learning_rate: gx.sgd(learning_rate), quad, P0, {"learning_rate": [0.1]}, 3, data=jnp.ones(4)
            )
    assert [c for c in compiles if "run" in c] == []
