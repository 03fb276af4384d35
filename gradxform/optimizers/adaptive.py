"""Adam's relatives: RAdam, AdaMax, AdaMaxW, Yogi, AdaBelief.

Each is Adam's ratio with one piece changed: a rectified denominator (RAdam), an
infinity-norm moment (AdaMax), an additive second moment (Yogi), the moving average
of the prediction error (AdaBelief).
"""

from __future__ import annotations

from typing import Any

from gradxform.blocks import (
    add_decayed_weights,
    add_eps,
    belief_sq,
    bias_correction,
    ema,
    ema_sq,
    infinity_moment,
    nesterov_ema,
    ratio,
    rectification,
    scale_by_learning_rate,
    sqrt,
    yogi_sq,
)
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, Range, validate, validate_bool


def _check(who: str, learning_rate, b1, b2, eps) -> None:
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "b1", b1, UNIT)
    validate(who, "b2", b2, UNIT)
    validate(who, "eps", eps, NONNEGATIVE)


def _first_moment(b1: Hyperparameter, nesterov: bool) -> GradientTransformation:
    r"""$\hat\mu_t$, or with `nesterov` NAdam's look-ahead (`nesterov_ema`)."""
    return nesterov_ema(b1) if nesterov else chain(ema(b1), bias_correction(b1))


@public
def radam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    threshold: Hyperparameter = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""RAdam: Adam whose adaptive step is rectified while its variance is large (Liu et al. 2020).

    $$\rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \qquad
    r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}$$

    $$\Delta\theta_t = \begin{cases}
    -\eta\,r_t\,\dfrac{\hat\mu_t}{\sqrt{\hat\nu_t+\epsilon_{root}}+\epsilon} & \rho_t \ge \text{threshold}\\[1ex]
    -\eta\,\hat\mu_t & \text{else (plain momentum)}
    \end{cases}$$

    Chain: `ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2), bias_correction(b2),
    add_eps(eps_root), sqrt(), add_eps(eps), rectification(b2, threshold)))`,
    `scale_by_learning_rate(learning_rate)`; with `nesterov`, the numerator is `nesterov_ema(b1)`
    (NAdam's). The paper's threshold is 4; optax's and torch.optim's 5 (the default here).

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      threshold: $\ge 4$: the $\rho_t$ from which the adaptive step is taken ($r_t$ is real from 4).
      nesterov: use NAdam's look-ahead numerator.
    """
    _check("radam", learning_rate, b1, b2, eps)
    validate("radam", "eps_root", eps_root, NONNEGATIVE)
    validate("radam", "threshold", threshold, Range(4.0))
    validate_bool("radam", "nesterov", nesterov)
    denominator = chain(
        ema_sq(b2), bias_correction(b2), add_eps(eps_root), sqrt(), add_eps(eps), rectification(b2, threshold)
    )
    return chain(ratio(_first_moment(b1, nesterov), denominator), scale_by_learning_rate(learning_rate))


def _adamax_ratio(b1: Hyperparameter, b2: Hyperparameter, eps: Hyperparameter) -> GradientTransformation:
    return ratio(chain(ema(b1), bias_correction(b1)), infinity_moment(b2, eps))


@public
def adamax(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
) -> GradientTransformation:
    r"""AdaMax: Adam with the infinity norm in place of the root mean square (Kingma & Ba 2015, §7).

    $$\begin{aligned}
    \mu_t &= \beta_1\mu_{t-1} + (1-\beta_1)g_t, \qquad u_t = \max(\beta_2 u_{t-1},\ |g_t| + \epsilon), \\
    \Delta\theta_t &= -\eta\,\frac{\mu_t / (1-\beta_1^t)}{u_t}
    \end{aligned}$$

    Chain: `ratio(chain(ema(b1), bias_correction(b1)), infinity_moment(b2, eps))`,
    `scale_by_learning_rate(learning_rate)`. $u_t$ needs no bias correction: it is a maximum,
    not an average. $\epsilon$ sits inside the maximum, as in optax and torch.optim.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$, the decay of the weighted maximum.
      eps: $\epsilon \ge 0$.
    """
    _check("adamax", learning_rate, b1, b2, eps)
    return chain(_adamax_ratio(b1, b2, eps), scale_by_learning_rate(learning_rate))


@public
def adamaxw(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 1e-4,
    mask: Any = None,
) -> GradientTransformation:
    r"""AdaMaxW: AdaMax with decoupled weight decay (Loshchilov & Hutter 2019).

    $$\Delta\theta_t = -\eta\left(\frac{\mu_t / (1-\beta_1^t)}{u_t} + \lambda\,\theta_{t-1}\right)$$

    Chain: AdaMax's ratio, `add_decayed_weights(weight_decay, mask)`,
    `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$.
      weight_decay: $\lambda \ge 0$.
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    _check("adamaxw", learning_rate, b1, b2, eps)
    validate("adamaxw", "weight_decay", weight_decay, NONNEGATIVE)
    return chain(
        _adamax_ratio(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@public
def yogi(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-3,
) -> GradientTransformation:
    r"""Yogi: Adam with an additive second moment, which grows the effective step slowly (Zaheer et al. 2018).

    $$\nu_t = \nu_{t-1} - (1-\beta_2)\,\mathrm{sign}(\nu_{t-1} - g_t^2)\,g_t^2, \qquad
    \Delta\theta_t = -\eta\,\frac{\hat\mu_t}{\sqrt{\hat\nu_t} + \epsilon}, \qquad \mu_0 = \nu_0 = 10^{-6}$$

    Chain: `ratio(chain(ema(b1, initial=1e-6), bias_correction(b1)), chain(yogi_sq(b2, 1e-6),
    bias_correction(b2), sqrt(), add_eps(eps)))`, `scale_by_learning_rate(learning_rate)`.
    Both moments start at $10^{-6}$ and are bias-corrected as Adam's, as in the paper's code and optax.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root (the paper's $10^{-3}$).
    """
    _check("yogi", learning_rate, b1, b2, eps)
    return chain(
        ratio(
            chain(ema(b1, initial=1e-6), bias_correction(b1)),
            chain(yogi_sq(b2, 1e-6), bias_correction(b2), sqrt(), add_eps(eps)),
        ),
        scale_by_learning_rate(learning_rate),
    )


@public
def adabelief(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-16,
    eps_root: Hyperparameter = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdaBelief: Adam whose second moment is the moving average of the prediction error (Zhuang et al. 2020).

    $$\begin{aligned}
    \mu_t &= \beta_1\mu_{t-1} + (1-\beta_1)g_t, \\
    s_t &= \beta_2 s_{t-1} + (1-\beta_2)(g_t - \mu_t)^2 + \epsilon_{root}, \\
    \Delta\theta_t &= -\eta\,\frac{\hat\mu_t}{\sqrt{s_t/(1-\beta_2^t)} + \epsilon}
    \end{aligned}$$

    Chain: `ratio(chain(ema(b1), bias_correction(b1)), chain(belief_sq(b2, eps_root),
    bias_correction(b2), sqrt(), add_eps(eps)), residual=True)`,
    `scale_by_learning_rate(learning_rate)`: `residual` feeds the denominator $g_t - \mu_t$.
    With `nesterov`, the numerator is `nesterov_ema(b1)`. The defaults are optax's; the
    paper's are $\epsilon = 10^{-8}$, $\epsilon_{root} = 0$.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, added to $s_t$ at every step.
      nesterov: use NAdam's look-ahead numerator.
    """
    _check("adabelief", learning_rate, b1, b2, eps)
    validate("adabelief", "eps_root", eps_root, NONNEGATIVE)
    validate_bool("adabelief", "nesterov", nesterov)
    denominator = chain(belief_sq(b2, eps_root), bias_correction(b2), sqrt(), add_eps(eps))
    return chain(ratio(_first_moment(b1, nesterov), denominator, residual=True), scale_by_learning_rate(learning_rate))
