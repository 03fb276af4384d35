"""Trains one optimizer on one problem as a single compiled `lax.scan`.

The whole run (`steps` updates, the loss before each one and after the
last, the held-out accuracy, the 2-D trajectory) is one jitted function,
compiled once per optimizer and problem ahead of time so that compile time and
run time are measured apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from gradxform.race.problems import Problem, build
from gradxform.race.problems import learning_rate as learning_rate_of


@dataclass
class Result:
    """One runner's race: curves of length `steps + 1` (index `t` is after `t` updates)."""

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


def compile_run(problem: Problem, optimizer: str, learning_rate: float, steps: int, seed: int):
    """Compiles the whole run ahead of time; returns `(execute, compile_s)` where `execute()`
    runs it and returns the `Result`."""
    tx = build(optimizer, learning_rate)
    params0 = problem.init(seed)

    def measure(params):
        acc = problem.accuracy(params) if problem.accuracy is not None else jnp.zeros(())
        point = params if problem.surface else jnp.zeros(2)
        return problem.loss(params), acc, point

    def whole_run(params):
        return gx.run(problem.loss, tx, params, steps, measure=measure).measured

    start = time.perf_counter()
    compiled = jax.jit(whole_run).lower(params0).compile()
    compile_s = time.perf_counter() - start

    def execute() -> Result:
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

    return execute, compile_s


def train(problem: Problem, optimizer: str, learning_rate: float, steps: int, seed: int) -> Result:
    """Runs `steps` updates of `optimizer` on `problem` and records the curves."""
    return compile_run(problem, optimizer, learning_rate, steps, seed)[0]()


def race(
    problems: list[Problem],
    optimizers: list[str],
    steps: int,
    seed: int = 0,
    learning_rate: float | None = None,
    on_done: Callable[[Result], None] | None = None,
    compile_threads: int = 2,
) -> list[Result]:
    """Trains every optimizer on every problem; `learning_rate` overrides the per-problem table.

    Each run is compiled once; `compile_threads` compilations overlap (XLA
    compiles without holding the GIL), the runs themselves execute one at a
    time, in order, so their `run_s` are not disturbed by each other.
    `on_done` is called after each run (the CLI's progress bar).
    """
    jobs = [
        (prob, name, learning_rate_of(prob.name, name) if learning_rate is None else learning_rate)
        for prob in problems
        for name in optimizers
    ]
    results = []
    with ThreadPoolExecutor(max_workers=max(1, compile_threads)) as pool:
        futures = [pool.submit(compile_run, prob, name, lr, steps, seed) for prob, name, lr in jobs]
        for future in futures:
            execute, _ = future.result()
            results.append(execute())
            if on_done is not None:
                on_done(results[-1])
    return results
