"""Blocks: one idea each, every one a `GradientTransformation`.

Modules by idea: `moments` (moving averages, sums, maxima), `correction` (bias
correction, Nesterov look-ahead, RAdam's rectification), `sign` (the sign, Rprop's step
sizes), `momentum` (heavy-ball trace), `scaling` (factor, learning rate, eps, square
root), `weight_decay`, `ratio` (one branch divided by another), `adadelta` (the feedback
of past updates), `clipping`; and
`base`, the skeleton they are built on.
"""

from gradxform.blocks.adadelta import AdadeltaState, UpdateRmsState, scale_by_adadelta, scale_by_update_rms
from gradxform.blocks.clipping import clip, clip_by_block_norm, clip_by_global_norm
from gradxform.blocks.correction import NesterovEmaState, bias_correction, nesterov_ema, rectification
from gradxform.blocks.moments import (
    BeliefSqState,
    EmaSqState,
    EmaState,
    EmaVarState,
    InfinityMomentState,
    InterpolatedEmaState,
    RunningMaxState,
    SumSqState,
    YogiSqState,
    belief_sq,
    ema,
    ema_sq,
    ema_var,
    infinity_moment,
    interpolated_ema,
    running_max,
    sum_sq,
    yogi_sq,
)
from gradxform.blocks.momentum import TraceState, trace
from gradxform.blocks.ratio import RatioState, ratio
from gradxform.blocks.scaling import add_eps, scale, scale_by_learning_rate, sqrt
from gradxform.blocks.sign import RpropState, scale_by_rprop, sign
from gradxform.blocks.weight_decay import add_decayed_weights

__all__ = [
    "AdadeltaState",
    "BeliefSqState",
    "EmaSqState",
    "EmaState",
    "EmaVarState",
    "InfinityMomentState",
    "InterpolatedEmaState",
    "NesterovEmaState",
    "RatioState",
    "RpropState",
    "RunningMaxState",
    "SumSqState",
    "TraceState",
    "UpdateRmsState",
    "YogiSqState",
    "add_decayed_weights",
    "add_eps",
    "belief_sq",
    "bias_correction",
    "clip",
    "clip_by_block_norm",
    "clip_by_global_norm",
    "ema",
    "ema_sq",
    "ema_var",
    "infinity_moment",
    "interpolated_ema",
    "nesterov_ema",
    "ratio",
    "rectification",
    "running_max",
    "scale",
    "scale_by_adadelta",
    "scale_by_learning_rate",
    "scale_by_rprop",
    "scale_by_update_rms",
    "sign",
    "sqrt",
    "sum_sq",
    "trace",
    "yogi_sq",
]
