"""Wrappers that change *when* or *to which leaves* a transform applies.

`skip_nonfinite` (NaN/Inf steps), `masked` / `partition` / `freeze` (per-leaf
choice of transform), `accumulate` (gradient accumulation), `loss_scale` (dynamic
loss scaling for float16); `averaging`: wrappers whose weights to evaluate differ
from the trained ones (`schedule_free`, `ema_params`, `swa`, `lookahead`; read with `gradxform.eval_params`); `sam`
(sharpness-aware minimization, reading `grad_fn=`).
"""

from gradxform.wrappers.accumulate import AccumulateState, accumulate
from gradxform.wrappers.averaging import (
    EmaParamsState,
    LookaheadState,
    ScheduleFreeState,
    SwaState,
    ema_params,
    lookahead,
    schedule_free,
    swa,
)
from gradxform.wrappers.loss_scale import LossScaleState, loss_scale, loss_scale_value
from gradxform.wrappers.masking import MaskedState, PartitionState, freeze, masked, partition
from gradxform.wrappers.nonfinite import SkipNonfiniteState, all_finite, skip_nonfinite
from gradxform.wrappers.sam import sam

__all__ = [
    "AccumulateState",
    "EmaParamsState",
    "LookaheadState",
    "LossScaleState",
    "MaskedState",
    "PartitionState",
    "ScheduleFreeState",
    "SkipNonfiniteState",
    "SwaState",
    "accumulate",
    "all_finite",
    "ema_params",
    "freeze",
    "lookahead",
    "loss_scale",
    "loss_scale_value",
    "masked",
    "partition",
    "sam",
    "schedule_free",
    "skip_nonfinite",
    "swa",
]
