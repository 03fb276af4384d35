"""Wrappers that change *when* or *to which leaves* a transform applies.

`skip_nonfinite` (NaN/Inf steps), `masked` / `partition` / `freeze` (per-leaf
choice of transform), `accumulate` (gradient accumulation).
"""

from gradxform.wrappers.accumulate import AccumulateState, accumulate
from gradxform.wrappers.masking import MaskedState, PartitionState, freeze, masked, partition
from gradxform.wrappers.nonfinite import SkipNonfiniteState, all_finite, skip_nonfinite

__all__ = [
    "AccumulateState",
    "MaskedState",
    "PartitionState",
    "SkipNonfiniteState",
    "accumulate",
    "all_finite",
    "freeze",
    "masked",
    "partition",
    "skip_nonfinite",
]
