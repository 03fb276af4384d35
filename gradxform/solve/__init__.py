"""The loops: a training step, a compiled run of many steps, sweeps over hyperparameters, minimize."""

from gradxform.solve.loop import Run, run, train_step
from gradxform.solve.minimize import MinimizeResult, minimize
from gradxform.solve.sweep import sweep

__all__ = ["MinimizeResult", "Run", "minimize", "run", "sweep", "train_step"]
