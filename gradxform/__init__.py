"""gradxform: composable, pure gradient transformations for JAX.

An optimizer is a :class:`GradientTransformation`, a pair of pure functions
``init(params) -> state`` and ``update(updates, state, params=None) ->
(updates, state)``, built as a short chain of blocks that each state one line
of math.
"""

from gradxform.blocks import (
    CountState,
    EmaSqState,
    EmaState,
    EmaVarState,
    NesterovEmaState,
    RatioState,
    RunningMaxState,
    SumSqState,
    TraceState,
    UpdateRmsState,
    add_decayed_weights,
    add_eps,
    bias_correction,
    ema,
    ema_sq,
    ema_var,
    nesterov_ema,
    ratio,
    running_max,
    scale,
    scale_by_learning_rate,
    scale_by_update_rms,
    sqrt,
    sum_sq,
    trace,
)
from gradxform.core import EmptyState, GradientTransformation, apply_updates, chain, identity, stateless
from gradxform.hyper import Hyperparameter, Schedule
from gradxform.optimizers import adadelta, adagrad, adam, adamw, amsgrad, momentum, nadam, nesterov, rmsprop, sgd

# isort: split
# schedules, live hyperparameters, sweeps (issue 3)
from gradxform import schedules  # gradxform.schedules.<name>, with optax's names
from gradxform.inject import InjectHyperparamsState, inject_hyperparams, set_hyperparams
from gradxform.sweep import sweep

__version__ = "0.1.0"

__all__ = [
    # core
    "GradientTransformation",
    "EmptyState",
    "Hyperparameter",
    "Schedule",
    "apply_updates",
    "chain",
    "identity",
    "stateless",
    # blocks
    "add_decayed_weights",
    "add_eps",
    "bias_correction",
    "ema",
    "ema_sq",
    "ema_var",
    "nesterov_ema",
    "ratio",
    "running_max",
    "scale",
    "scale_by_learning_rate",
    "scale_by_update_rms",
    "sqrt",
    "sum_sq",
    "trace",
    # block states
    "CountState",
    "EmaSqState",
    "EmaState",
    "EmaVarState",
    "NesterovEmaState",
    "RatioState",
    "RunningMaxState",
    "SumSqState",
    "TraceState",
    "UpdateRmsState",
    # optimizers
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "amsgrad",
    "momentum",
    "nadam",
    "nesterov",
    "rmsprop",
    "sgd",
    # schedules, live hyperparameters, sweeps (issue 3)
    "InjectHyperparamsState",
    "inject_hyperparams",
    "schedules",
    "set_hyperparams",
    "sweep",
]
