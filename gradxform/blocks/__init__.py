"""Blocks: one idea each, every one a `GradientTransformation`.

Modules by idea:

- `moments` (moving averages, sums, maxima), `correction` (bias correction, Nesterov look-ahead, RAdam's
  rectification), `sign` (the sign, Rprop's step sizes), `momentum` (heavy-ball trace), `scaling` (factor,
  learning rate, eps, square root), `weight_decay`, `ratio` (one branch divided by another; `plus`, branches
  added), `adadelta` (the feedback of past updates), `clipping`;
- `adan` (Adan's three moments), `lagged` (the previous gradient, the previous second moment),
  `dual_averaging` (MADGRAD), `noise` (annealed gradient noise), `averaging` (averaged iterates),
  `polyak` (the Polyak step size), `sm3` (cover-set accumulators);
- `layerwise` (trust ratio, centralization, unit-wise and RMS clipping: whole-leaf ideas);
- `factored` (Adafactor's second moment);
- `orthogonal` (Muon's matrix blocks);
- `eigenbasis` (SOAP's Kronecker factors, eigenbases and rotation);
- `lr_free` (distance estimates and coin betting: learning-rate-free step sizes);
- `plateau` (the step reduced when the loss stops improving);
- `base`, the skeleton they are built on.
"""

from gradxform.blocks.adadelta import AdadeltaState, UpdateRmsState, scale_by_adadelta, scale_by_update_rms
from gradxform.blocks.adan import AdanState, scale_by_adan
from gradxform.blocks.averaging import AverageState, iterate_average
from gradxform.blocks.clipping import clip, clip_by_block_norm, clip_by_global_norm
from gradxform.blocks.correction import NesterovEmaState, bias_correction, nesterov_ema, rectification
from gradxform.blocks.dual_averaging import MadgradState, scale_by_madgrad
from gradxform.blocks.eigenbasis import EigenbasisState, in_eigenbasis, normalize_by_rms
from gradxform.blocks.factored import FactoredRmsState, scale_by_factored_rms
from gradxform.blocks.lagged import OptimisticState, PreviousRmsState, optimistic_gradient, scale_by_previous_rms
from gradxform.blocks.layerwise import (
    NovogradState,
    adaptive_grad_clip,
    add_scaled_params,
    centralize,
    clip_by_block_rms,
    normalize_by_update_norm,
    scale_by_novograd,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
)
from gradxform.blocks.lr_free import (
    COCOBState,
    DAdaptAdamWState,
    DoGState,
    DoWGState,
    MechanicState,
    MomoAdamState,
    MomoState,
    ProdigyState,
    d_estimate,
    max_distance_from_start,
    momo_step,
    scale_by_cocob,
    scale_by_dadapt_adam,
    scale_by_dog,
    scale_by_dowg,
    scale_by_mechanic,
    scale_by_momo,
    scale_by_momo_adam,
    scale_by_prodigy,
)
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
from gradxform.blocks.noise import NoiseState, add_noise
from gradxform.blocks.orthogonal import MuonDimensionNumbers, newton_schulz, orthogonalize, scale_by_shape
from gradxform.blocks.plateau import ReduceOnPlateauState, reduce_on_plateau
from gradxform.blocks.polyak import scale_by_polyak
from gradxform.blocks.ratio import PlusState, RatioState, plus, ratio
from gradxform.blocks.scaling import add_eps, scale, scale_by_learning_rate, sqrt
from gradxform.blocks.sign import RpropState, scale_by_rprop, sign
from gradxform.blocks.sm3 import Sm3State, scale_by_sm3
from gradxform.blocks.weight_decay import add_decayed_weights

__all__ = [
    "AdadeltaState",
    "COCOBState",
    "DAdaptAdamWState",
    "DoGState",
    "DoWGState",
    "AdanState",
    "AverageState",
    "EmaSqState",
    "EmaState",
    "EmaVarState",
    "MadgradState",
    "MuonDimensionNumbers",
    "FactoredRmsState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "BeliefSqState",
    "InfinityMomentState",
    "InterpolatedEmaState",
    "NesterovEmaState",
    "ProdigyState",
    "NoiseState",
    "OptimisticState",
    "PlusState",
    "PreviousRmsState",
    "RatioState",
    "RpropState",
    "ReduceOnPlateauState",
    "RunningMaxState",
    "Sm3State",
    "SumSqState",
    "TraceState",
    "UpdateRmsState",
    "NovogradState",
    "adaptive_grad_clip",
    "YogiSqState",
    "add_decayed_weights",
    "add_scaled_params",
    "add_eps",
    "add_noise",
    "belief_sq",
    "bias_correction",
    "centralize",
    "clip",
    "clip_by_block_norm",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "d_estimate",
    "ema",
    "ema_sq",
    "ema_var",
    "max_distance_from_start",
    "momo_step",
    "infinity_moment",
    "interpolated_ema",
    "nesterov_ema",
    "normalize_by_update_norm",
    "iterate_average",
    "nesterov_ema",
    "optimistic_gradient",
    "plus",
    "newton_schulz",
    "orthogonalize",
    "in_eigenbasis",
    "normalize_by_rms",
    "EigenbasisState",
    "ratio",
    "rectification",
    "reduce_on_plateau",
    "running_max",
    "scale",
    "scale_by_adadelta",
    "scale_by_cocob",
    "scale_by_dadapt_adam",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_factored_rms",
    "scale_by_learning_rate",
    "scale_by_novograd",
    "scale_by_param_block_rms",
    "scale_by_trust_ratio",
    "scale_by_mechanic",
    "scale_by_momo",
    "scale_by_momo_adam",
    "scale_by_prodigy",
    "scale_by_adan",
    "scale_by_learning_rate",
    "scale_by_madgrad",
    "scale_by_polyak",
    "scale_by_previous_rms",
    "scale_by_shape",
    "scale_by_sm3",
    "scale_by_rprop",
    "scale_by_update_rms",
    "sign",
    "sqrt",
    "sum_sq",
    "trace",
    "yogi_sq",
]
