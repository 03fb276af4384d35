"""Speed and memory: flat parameters, donated training steps, state size."""

from gradxform.perf.flat import FlatLayout, FlatParams, flat_offsets, flatten_params, unflatten_params
from gradxform.perf.train_step import (
    CPU_COMPILER_OPTIONS,
    jit_step,
    make_train_step,
    state_bytes_per_param,
    state_nbytes,
)

__all__ = [
    "CPU_COMPILER_OPTIONS",
    "FlatLayout",
    "FlatParams",
    "flat_offsets",
    "flatten_params",
    "jit_step",
    "make_train_step",
    "state_bytes_per_param",
    "state_nbytes",
    "unflatten_params",
]
