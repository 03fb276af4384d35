"""The loops: a training step, a compiled run of many steps, sweeps over hyperparameters."""

from gradxform.solve.loop import Run, run, train_step
from gradxform.solve.sweep import sweep

__all__ = ["Run", "run", "sweep", "train_step"]
