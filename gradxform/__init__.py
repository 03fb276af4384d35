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
# performance (issue 6): flat parameters, donated train step, state size
from gradxform.blocks.adadelta import AdadeltaState, scale_by_adadelta
from gradxform.flat import FlatLayout, FlatParams, flat_offsets, flatten_params, unflatten_params
from gradxform.train_step import CPU_COMPILER_OPTIONS, jit_step, make_train_step, state_bytes_per_param, state_nbytes

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
    # performance (issue 6)
    "AdadeltaState",
    "CPU_COMPILER_OPTIONS",
    "jit_step",
    "scale_by_adadelta",
    "FlatLayout",
    "FlatParams",
    "flat_offsets",
    "flatten_params",
    "make_train_step",
    "state_bytes_per_param",
    "state_nbytes",
    "unflatten_params",
]
