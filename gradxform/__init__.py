"""gradxform: composable, pure gradient transformations for JAX.

An optimizer is a :class:`GradientTransformation`, a pair of pure functions
``init(params) -> state`` and ``update(updates, state, params=None) ->
(updates, state)``, built as a short chain of blocks that each state one line
of math.
"""

from gradxform import compat  # gradxform.compat.torch: torch.optim-faithful constructors (issue 8)
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
from gradxform.sharding import init_sharded, state_sharding, zero1, zero1_sharding  # sharding (issue 8)

# isort: split
# schedules, live hyperparameters, sweeps (issue 3)
from gradxform import schedules  # gradxform.schedules.<name>, with optax's names
from gradxform.inject import InjectHyperparamsState, inject_hyperparams, set_hyperparams
from gradxform.sweep import sweep

# isort: split
# robust training (issue 4): clipping, wrappers, checkpoints
from gradxform import checkpoint
from gradxform.clipping import clip, clip_by_block_norm, clip_by_global_norm, global_norm
from gradxform.wrappers import (
    AccumulateState,
    MaskedState,
    PartitionState,
    SkipNonfiniteState,
    accumulate,
    all_finite,
    freeze,
    masked,
    partition,
    skip_nonfinite,
)

# isort: split
# curvature: Newton, Newton-CG, nonlinear CG, BFGS, L-BFGS, line searches, minimize (issue 5)
from gradxform import linesearch
from gradxform.curvature import (
    BfgsState,
    ConjugateGradientState,
    LbfgsState,
    NewtonCgState,
    NewtonCgTrustState,
    NewtonState,
    bfgs,
    conjugate_gradient,
    lbfgs,
    newton,
    newton_cg,
    newton_cg_trust,
    scale_by_bfgs,
    scale_by_conjugate_gradient,
    scale_by_lbfgs,
    scale_by_newton_cg,
)
from gradxform.minimize import MinimizeResult, minimize

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
    # schedules, live hyperparameters, sweeps (issue 3)
    "InjectHyperparamsState",
    "inject_hyperparams",
    "schedules",
    "set_hyperparams",
    "sweep",
    # sharding and torch.optim compatibility (issue 8)
    "compat",
    "init_sharded",
    "state_sharding",
    "zero1",
    "zero1_sharding",
    # robust training (issue 4): clipping, wrappers, checkpoints
    "AccumulateState",
    "MaskedState",
    "PartitionState",
    "SkipNonfiniteState",
    "accumulate",
    "all_finite",
    "checkpoint",
    "clip",
    "clip_by_block_norm",
    "clip_by_global_norm",
    "freeze",
    "global_norm",
    "masked",
    "partition",
    "skip_nonfinite",
    # curvature (issue 5)
    "linesearch",
    "minimize",
    "MinimizeResult",
    "newton",
    "newton_cg",
    "conjugate_gradient",
    "bfgs",
    "lbfgs",
    "scale_by_newton_cg",
    "scale_by_conjugate_gradient",
    "scale_by_bfgs",
    "scale_by_lbfgs",
    "NewtonState",
    "NewtonCgState",
    "ConjugateGradientState",
    "BfgsState",
    "LbfgsState",
    # curvature (issue 19): trust-region Newton-CG
    "newton_cg_trust",
    "NewtonCgTrustState",
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
