"""The seeds' ideas, one block each. Every block is a :class:`GradientTransformation`."""

from gradxform.blocks._common import CountState
from gradxform.blocks.adadelta import AdadeltaState, UpdateRmsState, scale_by_adadelta, scale_by_update_rms
from gradxform.blocks.correction import NesterovEmaState, bias_correction, nesterov_ema
from gradxform.blocks.moments import (
    EmaSqState,
    EmaState,
    EmaVarState,
    RunningMaxState,
    SumSqState,
    ema,
    ema_sq,
    ema_var,
    running_max,
    sum_sq,
)
from gradxform.blocks.momentum import TraceState, trace
from gradxform.blocks.ratio import RatioState, ratio
from gradxform.blocks.scaling import add_eps, scale, scale_by_learning_rate, sqrt
from gradxform.blocks.weight_decay import add_decayed_weights

__all__ = [
    "AdadeltaState",
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
    "scale_by_adadelta",
    "scale_by_update_rms",
    "sqrt",
    "sum_sq",
    "trace",
]
