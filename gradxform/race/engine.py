"""Trains one optimizer on one problem as a single compiled ``lax.scan``.

The whole run (``steps`` updates, the loss before each one and after the
last, the held-out accuracy, the 2-D trajectory) is one jitted function,
compiled once per optimizer and problem ahead of time so that compile time and
run time are measured apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from gradxform.race.problems import LEARNING_RATES, OPTIMIZERS, Problem


@dataclass
class Result:
    """One runner's race: curves of length ``steps + 1`` (index ``t`` is after ``t`` updates)."""

    problem: str
    optimizer: str
    learning_rate: float
    losses: np.ndarray
    accuracies: np.ndarray | None
    trajectory: np.ndarray | None  # (steps + 1, 2) for 2-D surfaces
    target: float
    compile_s: float
    run_s: float

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def final_accuracy(self) -> float | None:
        return None if self.accuracies is None else float(self.accuracies[-1])

    @property
    def steps_to_target(self) -> int | None:
        """The first step count after which the loss is at or below the target; None if never."""
        hit = np.flatnonzero(self.losses <= self.target)
        return int(hit[0]) if hit.size else None


def train(problem: Problem, optimizer: str, learning_rate: float, steps: int, seed: int) -> Result:
    """Runs ``steps`` updates of ``optimizer`` on ``problem`` and records the curves."""
    tx = OPTIMIZERS[optimizer](learning_rate)
    params0 = problem.init(seed)

    def measure(params):
        acc = problem.accuracy(params) if problem.accuracy is not None else jnp.zeros(())
        return problem.loss(params), acc

    def body(carry, _):
        params, state = carry
        loss, grads = jax.value_and_grad(problem.loss)(params)
        acc = problem.accuracy(params) if problem.accuracy is not None else jnp.zeros(())
        updates, state = tx.update(grads, state, params)
        point = params if problem.surface else jnp.zeros(2)
        return (gx.apply_updates(params, updates), state), (loss, acc, point)

    def run(params):
        (params, _), (losses, accs, points) = jax.lax.scan(body, (params, tx.init(params)), length=steps)
        last_loss, last_acc = measure(params)
        last_point = params if problem.surface else jnp.zeros(2)
        return (
            jnp.append(losses, last_loss),
            jnp.append(accs, last_acc),
            jnp.concatenate([points, last_point[None]]),
        )

    start = time.perf_counter()
    compiled = jax.jit(run).lower(params0).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    losses, accs, points = jax.block_until_ready(compiled(params0))
    run_s = time.perf_counter() - start
    return Result(
        problem=problem.name,
        optimizer=optimizer,
        learning_rate=learning_rate,
        losses=np.asarray(losses, np.float64),
        accuracies=np.asarray(accs, np.float64) if problem.accuracy is not None else None,
        trajectory=np.asarray(points, np.float64) if problem.surface else None,
        target=problem.target,
        compile_s=compile_s,
        run_s=run_s,
    )


def race(
    problems: list[Problem],
    optimizers: list[str],
    steps: int,
    seed: int = 0,
    learning_rate: float | None = None,
    on_done: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Trains every optimizer on every problem; ``learning_rate`` overrides the per-problem table.

    ``on_done`` is called after each run (the CLI's progress bar).
    """
    results = []
    for prob in problems:
        for name in optimizers:
            lr = LEARNING_RATES[prob.name][name] if learning_rate is None else learning_rate
            results.append(train(prob, name, lr, steps, seed))
            if on_done is not None:
                on_done(results[-1])
    return results
