"""gradxform: composable, pure gradient transformations for JAX.

An optimizer is a `GradientTransformation`, a pair of pure functions
`init(params) -> state` and `update(updates, state, params=None) -> (updates,
state)`, built as a short chain of blocks that each state one line of math.
"""

# isort: skip_file
# core: the transform type, combinators, named state
from gradxform.core import (
    EmptyState,
    GradientTransformation,
    StepState,
    apply_updates,
    chain,
    eval_params,
    identity,
    stateless,
    tree_get,
    tree_get_all_with_path,
    tree_map_params,
    tree_set,
)
from gradxform.hyper import Hyperparameter, Schedule
from gradxform.numerics import global_norm

# blocks: one idea each
from gradxform.blocks import (
    AdadeltaState,
    EmaSqState,
    EmaState,
    EmaVarState,
    NesterovEmaState,
    RatioState,
    ReduceOnPlateauState,
    RunningMaxState,
    SumSqState,
    TraceState,
    UpdateRmsState,
    add_decayed_weights,
    add_eps,
    bias_correction,
    clip,
    clip_by_block_norm,
    clip_by_global_norm,
    ema,
    ema_sq,
    ema_var,
    nesterov_ema,
    ratio,
    reduce_on_plateau,
    running_max,
    scale,
    scale_by_adadelta,
    scale_by_learning_rate,
    scale_by_update_rms,
    sqrt,
    sum_sq,
    trace,
)

# optimizers, and the registry that declares them
from gradxform.optimizers import (
    adadelta,
    adagrad,
    adam,
    adamw,
    amsgrad,
    momentum,
    nadam,
    nesterov,
    registry,
    rmsprop,
    schedule_free_adamw,
    schedule_free_sgd,
    sgd,
)
from gradxform import compat  # gradxform.compat.torch: torch.optim's names, defaults and numerics

# schedules and live hyperparameters
from gradxform import schedules
from gradxform.hyper import InjectHyperparamsState, inject_hyperparams, set_hyperparams

# wrappers
from gradxform.wrappers import (
    AccumulateState,
    MaskedState,
    PartitionState,
    SkipNonfiniteState,
    EmaParamsState,
    LookaheadState,
    ScheduleFreeState,
    SwaState,
    accumulate,
    all_finite,
    ema_params,
    freeze,
    lookahead,
    masked,
    partition,
    schedule_free,
    skip_nonfinite,
    swa,
)

# loops
from gradxform.solve import Run, run, sweep, train_step
from gradxform.solve.minimize import MinimizeResult, minimize

# curvature methods and line searches
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

# performance: flat parameters, donated steps, state size
from gradxform.perf import (
    CPU_COMPILER_OPTIONS,
    FlatLayout,
    FlatParams,
    flat_offsets,
    flatten_params,
    jit_step,
    make_train_step,
    state_bytes_per_param,
    state_nbytes,
    unflatten_params,
)

# distributed state, checkpoints
from gradxform.distributed import init_sharded, state_sharding, zero1, zero1_sharding
from gradxform.io import checkpoint

__version__ = "0.2.0"

__all__ = [
    # core
    "EmptyState",
    "GradientTransformation",
    "Hyperparameter",
    "Schedule",
    "StepState",
    "apply_updates",
    "chain",
    "eval_params",
    "identity",
    "stateless",
    "tree_get",
    "tree_get_all_with_path",
    "tree_map_params",
    "tree_set",
    # blocks
    "add_decayed_weights",
    "add_eps",
    "bias_correction",
    "clip",
    "clip_by_block_norm",
    "clip_by_global_norm",
    "ema",
    "ema_sq",
    "ema_var",
    "global_norm",
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
    # block states
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
    # optimizers and their registry
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "amsgrad",
    "compat",
    "momentum",
    "nadam",
    "nesterov",
    "registry",
    "rmsprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
    # schedules, live hyperparameters
    "InjectHyperparamsState",
    "inject_hyperparams",
    "schedules",
    "set_hyperparams",
    # wrappers
    "AccumulateState",
    "MaskedState",
    "PartitionState",
    "SkipNonfiniteState",
    "EmaParamsState",
    "LookaheadState",
    "ScheduleFreeState",
    "SwaState",
    "accumulate",
    "all_finite",
    "ema_params",
    "freeze",
    "lookahead",
    "masked",
    "partition",
    "schedule_free",
    "skip_nonfinite",
    "swa",
    # loops
    "MinimizeResult",
    "Run",
    "minimize",
    "run",
    "sweep",
    "train_step",
    # curvature
    "BfgsState",
    "ConjugateGradientState",
    "LbfgsState",
    "NewtonCgState",
    "NewtonState",
    "bfgs",
    "conjugate_gradient",
    "lbfgs",
    "linesearch",
    "newton",
    "newton_cg",
    "scale_by_bfgs",
    "scale_by_conjugate_gradient",
    "scale_by_lbfgs",
    "scale_by_newton_cg",
    "newton_cg_trust",
    "NewtonCgTrustState",
    # performance
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
    # distributed, checkpoints
    "checkpoint",
    "init_sharded",
    "state_sharding",
    "zero1",
    "zero1_sharding",
]
