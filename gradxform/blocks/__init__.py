"""Blocks: one idea each, every one a `GradientTransformation`.

Modules by idea: `moments` (moving averages, sums, maxima), `correction` (bias
correction, Nesterov look-ahead), `momentum` (heavy-ball trace), `scaling`
(factor, learning rate, eps, square root), `weight_decay`, `ratio` (one branch
divided by another), `adadelta` (the feedback of past updates), `clipping`,
`plateau` (the step reduced when the loss stops improving); and
`base`, the skeleton they are built on.
"""

from gradxform.blocks.adadelta import AdadeltaState, UpdateRmsState, scale_by_adadelta, scale_by_update_rms
from gradxform.blocks.clipping import clip, clip_by_block_norm, clip_by_global_norm
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
from gradxform.blocks.plateau import ReduceOnPlateauState, reduce_on_plateau
from gradxform.blocks.ratio import RatioState, ratio
from gradxform.blocks.scaling import add_eps, scale, scale_by_learning_rate, sqrt
from gradxform.blocks.weight_decay import add_decayed_weights

__all__ = [
    "AdadeltaState",
    "EmaSqState",
    "EmaState",
    "EmaVarState",
    "NesterovEmaState",
    "RatioState",
    "ReduceOnPlateauState",
    "RunningMaxState",
    "SumSqState",
    "TraceState",
    "UpdateRmsState",
    "add_decayed_weights",
    "add_eps",
    "bias_correction",
    "clip",
    "clip_by_block_norm",
    "clip_by_global_norm",
    "ema",
    "ema_sq",
    "ema_var",
    "nesterov_ema",
    "ratio",
    "reduce_on_plateau",
    "running_max",
    "scale",
    "scale_by_adadelta",
    "scale_by_learning_rate",
    "scale_by_update_rms",
    "sqrt",
    "sum_sq",
    "trace",
]
