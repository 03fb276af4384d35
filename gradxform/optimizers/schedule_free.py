"""Schedule-free SGD and AdamW (Defazio et al. 2024, "The Road Less Scheduled").

Each is `gradxform.wrappers.schedule_free` around a base optimizer without
momentum; evaluate at `gradxform.eval_params(state, params)`.
"""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_decayed_weights, add_eps, bias_correction, ema_sq, ratio, scale_by_learning_rate, sqrt
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, is_zero, validate, validate_dtype, validate_int
from gradxform.optimizers.sgd import sgd
from gradxform.schedules import warmup_constant_schedule
from gradxform.wrappers.averaging import schedule_free


def _warmup(learning_rate: Hyperparameter, warmup_steps: int | None) -> Hyperparameter:
    """optax's warmup: linear from 0 to `learning_rate` over `warmup_steps`, then constant."""
    if warmup_steps is None:
        return learning_rate
    return warmup_constant_schedule(init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps)


def _check(who: str, learning_rate, warmup_steps, weight_decay, weight_lr_power, state_dtype) -> None:
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate_int(who, "warmup_steps", warmup_steps, 1, allow_none=True, what="the length of the linear warmup")
    validate(who, "weight_decay", weight_decay, NONNEGATIVE, allow_none=True)
    validate(who, "weight_lr_power", weight_lr_power, NONNEGATIVE)
    validate_dtype(who, "state_dtype", state_dtype)


@public
def schedule_free_sgd(
    learning_rate: Hyperparameter = 1.0,
    warmup_steps: int | None = None,
    b1: Hyperparameter = 0.9,
    weight_decay: Hyperparameter | None = None,
    weight_lr_power: Hyperparameter = 2.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Schedule-free SGD.

    $$\begin{aligned}
    z_{t+1} &= z_t - \gamma_t\,(g_t + \lambda y_t), \qquad
    c_{t+1} = \frac{\gamma_{\max,t}^{\,p}}{\sum_{i\le t}\gamma_{\max,i}^{\,p}},\\
    x_{t+1} &= (1 - c_{t+1})\,x_t + c_{t+1}\,z_{t+1}, \qquad
    y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1)\,z_{t+1}
    \end{aligned}$$

    The gradient $g_t$ is taken at the parameters $y_t$; evaluate at $x_t$,
    `gradxform.eval_params(state, params)`. $\gamma_t$ warms up linearly from 0 over
    `warmup_steps`, then stays constant (no decay schedule: that is the point).

    Chain: `schedule_free(chain(add_decayed_weights(weight_decay), sgd(learning_rate)),
    learning_rate, b1, weight_lr_power)`; optax's arguments and defaults
    (`optax.contrib.schedule_free_sgd`).

    Args:
      learning_rate: $\gamma \ge 0$.
      warmup_steps: steps of linear warmup, an int >= 1, or `None` for none.
      b1: $\beta_1 \in (0, 1]$, the interpolation weight.
      weight_decay: $\lambda \ge 0$, added to the gradient (so multiplied by the learning rate), or `None`.
      weight_lr_power: $p \ge 0$: iterates are averaged with weights $\gamma_{\max}^p$.
      state_dtype: the dtype $z$ is stored in (default: the parameter's).
    """
    _check("schedule_free_sgd", learning_rate, warmup_steps, weight_decay, weight_lr_power, state_dtype)
    lr = _warmup(learning_rate, warmup_steps)
    base = chain(
        identity() if weight_decay is None else add_decayed_weights(weight_decay),
        sgd(lr),
    )
    return schedule_free(base, lr, b1, weight_lr_power, state_dtype)


@public
def schedule_free_adamw(
    learning_rate: Hyperparameter = 0.0025,
    warmup_steps: int | None = None,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    weight_lr_power: Hyperparameter = 2.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Schedule-free AdamW: AdamW without momentum as the base optimizer of schedule-free learning.

    $$\begin{aligned}
    \nu_t &= \beta_2\nu_{t-1} + (1-\beta_2)\,g_t^2, \qquad
    z_{t+1} = z_t - \gamma_t\left(\frac{g_t}{\sqrt{\nu_t/(1-\beta_2^t)} + \epsilon} + \lambda y_t\right),\\
    x_{t+1} &= (1 - c_{t+1})\,x_t + c_{t+1}\,z_{t+1}, \qquad
    y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1)\,z_{t+1}
    \end{aligned}$$

    with $c_{t+1} = \gamma_{\max,t}^{\,p} / \sum_{i\le t}\gamma_{\max,i}^{\,p}$, the gradient
    taken at $y_t$ (the parameters), evaluation at $x_t$ (`gradxform.eval_params`).

    Chain: `schedule_free(chain(ratio(None, chain(ema_sq(b2), bias_correction(b2), sqrt(),
    add_eps(eps))), add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate)),
    learning_rate, b1, weight_lr_power)`; optax's arguments and defaults
    (`optax.contrib.schedule_free_adamw`).

    Args:
      learning_rate: $\gamma \ge 0$.
      warmup_steps: steps of linear warmup, an int >= 1, or `None` for none.
      b1: $\beta_1 \in (0, 1]$, the interpolation weight (there is no first moment).
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      weight_decay: $\lambda \ge 0$, decoupled (added after the scaling).
      weight_lr_power: $p \ge 0$.
      state_dtype: the dtype $z$ is stored in (default: the parameter's).
    """
    _check("schedule_free_adamw", learning_rate, warmup_steps, weight_decay, weight_lr_power, state_dtype)
    validate("schedule_free_adamw", "weight_decay", weight_decay, NONNEGATIVE)
    validate("schedule_free_adamw", "b2", b2, UNIT)
    validate("schedule_free_adamw", "eps", eps, NONNEGATIVE)
    lr = _warmup(learning_rate, warmup_steps)
    base = chain(
        ratio(None, chain(ema_sq(b2), bias_correction(b2), sqrt(), add_eps(eps))),
        identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay),
        scale_by_learning_rate(lr),
    )
    return schedule_free(base, lr, b1, weight_lr_power, state_dtype)
