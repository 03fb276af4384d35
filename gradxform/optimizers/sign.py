"""Sign methods: signSGD, Signum, Lion, Rprop.

Each steps by the sign of something: the gradient (signSGD), its moving average
(Signum), an interpolation of the two (Lion); Rprop by the sign of the gradient
with a per-element step size. None is defined for complex parameters.
"""

from __future__ import annotations

from typing import Any

from gradxform.blocks import (
    add_decayed_weights,
    ema,
    interpolated_ema,
    scale,
    scale_by_learning_rate,
    scale_by_rprop,
    sign,
)
from gradxform.blocks.sign import ETA_MINUS, ETA_PLUS
from gradxform.core import GradientTransformation, chain, public
from gradxform.errors import lead
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, is_concrete, validate, validate_dtype
from gradxform.hyper.validate import CLOSED_UNIT


@public
def sign_sgd(learning_rate: Hyperparameter) -> GradientTransformation:
    r"""signSGD: a step of fixed size against the sign of each gradient element (Bernstein et al. 2018).

    $$\Delta\theta_t = -\eta\,\mathrm{sign}(g_t)$$

    Chain: `sign()`, `scale_by_learning_rate(learning_rate)`. With a constant $\eta$ it ends
    oscillating within $\eta$ of a minimum: decay $\eta$ with a schedule to converge.

    Args:
      learning_rate: $\eta \ge 0$.
    """
    validate("sign_sgd", "learning_rate", learning_rate, NONNEGATIVE)
    return chain(sign(), scale_by_learning_rate(learning_rate))


@public
def signum(
    learning_rate: Hyperparameter, beta: Hyperparameter = 0.9, accumulator_dtype: Any = None
) -> GradientTransformation:
    r"""Signum: signSGD on the gradient's moving average (Bernstein et al. 2018).

    $$\mu_t = \beta\mu_{t-1} + (1-\beta)g_t, \qquad \Delta\theta_t = -\eta\,\mathrm{sign}(\mu_t)$$

    Chain: `ema(beta)`, `sign()`, `scale_by_learning_rate(learning_rate)`. No bias correction:
    it would not change the sign.

    Args:
      learning_rate: $\eta \ge 0$.
      beta: $\beta \in [0, 1)$.
      accumulator_dtype: the dtype $\mu$ is stored in (default: the parameter's).
    """
    validate("signum", "learning_rate", learning_rate, NONNEGATIVE)
    validate("signum", "beta", beta, UNIT)
    validate_dtype("signum", "accumulator_dtype", accumulator_dtype)
    return chain(ema(beta, accumulator_dtype), sign(), scale_by_learning_rate(learning_rate))


@public
def lion(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.99,
    mu_dtype: Any = None,
    weight_decay: Hyperparameter = 1e-3,
    mask: Any = None,
) -> GradientTransformation:
    r"""Lion: the sign of an interpolated momentum, with decoupled weight decay (Chen et al. 2023).

    $$\begin{aligned}
    c_t &= \beta_1\mu_{t-1} + (1-\beta_1)g_t, \\
    \Delta\theta_t &= -\eta\left(\mathrm{sign}(c_t) + \lambda\,\theta_{t-1}\right), \\
    \mu_t &= \beta_2\mu_{t-1} + (1-\beta_2)g_t
    \end{aligned}$$

    Chain: `interpolated_ema(b1, b2)`, `sign()`, `add_decayed_weights(weight_decay, mask)`,
    `scale_by_learning_rate(learning_rate)`. Every element moves by $\eta$: the paper takes
    $\eta$ 3-10 times smaller than AdamW's and $\lambda$ as many times larger.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1]$, the weight of the momentum in the step's direction.
      b2: $\beta_2 \in [0, 1)$, the momentum's decay.
      mu_dtype: the dtype $\mu$ is stored in (default: the parameter's).
      weight_decay: $\lambda \ge 0$.
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("lion", "learning_rate", learning_rate, NONNEGATIVE)
    validate("lion", "b1", b1, CLOSED_UNIT)
    validate("lion", "b2", b2, UNIT)
    validate("lion", "weight_decay", weight_decay, NONNEGATIVE)
    validate_dtype("lion", "mu_dtype", mu_dtype)
    return chain(
        interpolated_ema(b1, b2, mu_dtype),
        sign(),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def check_rprop(
    who: str,
    learning_rate,
    eta_minus,
    eta_plus,
    min_step_size,
    max_step_size,
    lr_name: str = "learning_rate",
    names: tuple[str, str, str, str] = ("eta_minus", "eta_plus", "min_step_size", "max_step_size"),
) -> None:
    """Rprop's ranges: $\\eta^- \\in (0, 1)$, $\\eta^+ > 1$, $0 \\le \\Delta_{\\min} \\le \\Delta_{\\max}$."""
    if callable(learning_rate):
        raise TypeError(f"{lead(who)}: {lr_name} is the first step size, used once at init; it cannot be a schedule.")
    validate(who, lr_name, learning_rate, NONNEGATIVE)
    n_minus, n_plus, n_min, n_max = names
    validate(who, n_minus, eta_minus, ETA_MINUS)
    validate(who, n_plus, eta_plus, ETA_PLUS)
    validate(who, n_min, min_step_size, NONNEGATIVE)
    validate(who, n_max, max_step_size, NONNEGATIVE)
    if is_concrete(min_step_size) and is_concrete(max_step_size) and float(min_step_size) > float(max_step_size):
        raise ValueError(
            f"{lead(who)}: {n_min}={min_step_size!r} is above {n_max}={max_step_size!r}; allowed: {n_min} <= {n_max}."
        )


@public
def rprop(
    learning_rate: Hyperparameter,
    eta_minus: Hyperparameter = 0.5,
    eta_plus: Hyperparameter = 1.2,
    min_step_size: Hyperparameter = 1e-6,
    max_step_size: Hyperparameter = 50.0,
) -> GradientTransformation:
    r"""Rprop: per-element step sizes that grow while the gradient's sign holds (Riedmiller & Braun 1993).

    $$\begin{aligned}
    s_t &= \mathrm{sign}(g_t)\,\mathrm{sign}(u_{t-1}), \\
    \Delta_t &= \begin{cases}
    \mathrm{clip}(\eta^+\Delta_{t-1}) & s_t > 0\\
    \mathrm{clip}(\eta^-\Delta_{t-1}) & s_t < 0\\
    \Delta_{t-1} & s_t = 0
    \end{cases}, \\
    u_t &= \begin{cases} 0 & s_t < 0\\ \Delta_t\,\mathrm{sign}(g_t) & \text{else}\end{cases}, \\
    \Delta\theta_t &= -u_t
    \end{aligned}$$

    with $\Delta_0$ = `learning_rate` and clip to $[\Delta_{\min}, \Delta_{\max}]$ (Igel & Hüsken's
    Rprop-: a reversal skips its step, not reverting the last one). Chain:
    `scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)`, `scale(-1)`.
    This is torch.optim's Rprop; optax 0.2.8's `rprop` returns each update one step late (its first
    update is zero), which gradxform does not copy (see docs/conventions.md).

    Args:
      learning_rate: $\Delta_0 \ge 0$, the first step size (a number, used once at init: not a schedule).
      eta_minus: $\eta^- \in (0, 1)$.
      eta_plus: $\eta^+ > 1$.
      min_step_size: $\Delta_{\min} \ge 0$.
      max_step_size: $\Delta_{\max} \ge \Delta_{\min}$.
    """
    check_rprop("rprop", learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, "learning_rate")
    return chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size), scale(-1.0))
