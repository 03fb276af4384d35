r"""Schedules: hyperparameters as pure functions of the step count.

A schedule is a function `step -> value`. Pass one wherever a
hyperparameter is accepted (learning rate, momentum, `b1`, weight decay,
RMSProp's `decay`, ...): every block resolves it with its *own* step count
through `gradxform.hyper.resolve`.

**Which step the first update sees.** A block evaluates its schedules at its
count *before* the update, so the first update sees step `0`, the second
step `1`, and so on (as in optax and Keras). `schedule(0)` is the value
used by the first update.

**Dtype.** Every schedule here returns a scalar of
`gradxform.numerics.hyper_dtype` (float32, float64 under `jax_enable_x64`),
computed in that dtype whatever the dtype of the step or of the parameters:
a bfloat16 model still gets a float32 `0.999`.

**Pure, jit and vmap safe.** A schedule has no state and never branches in
Python on the step, so it runs under `jit`, `vmap` and `grad`. Its
*numeric* arguments (`init_value`, `decay_rate`, `end_value`, `alpha`,
`power`, ...) may be traced JAX scalars, so a sweep can `vmap` over them.
Concrete arguments are validated when the schedule is built (`ValueError`
naming the argument, its value and the allowed range); traced ones are not.
Structural arguments (`staircase`, the boundaries of
`piecewise_constant_schedule` and `join_schedules`) must be
concrete.

Names and arguments are optax's where optax has the same schedule, so
`optax.<name>(...)` ports by changing the module. `inverse_time_decay`
(the learning-rate decay $\alpha_0/(1 + r\,\text{epoch})$ of Andrew Ng's deep-learning course
and its staircase form, Keras' `InverseTimeDecay`) has no optax counterpart.
"""

from gradxform.schedules.cyclic import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
    piecewise_interpolate_schedule,
    sgdr_schedule,
)
from gradxform.schedules.decay import cosine_decay_schedule, exponential_decay, inverse_time_decay
from gradxform.schedules.piecewise import join_schedules, piecewise_constant_schedule
from gradxform.schedules.polynomial import constant_schedule, linear_schedule, polynomial_schedule
from gradxform.schedules.warmup import (
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from gradxform.schedules.wsd import warmup_stable_decay_schedule

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
]
