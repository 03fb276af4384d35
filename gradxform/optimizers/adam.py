"""The Adam family: Adam, AdamW, NAdam, NAdamW, AMSGrad.

Each is a ratio of a bias-corrected first moment over the root of a
bias-corrected second moment, then the learning rate.
"""

from __future__ import annotations

from typing import Any

from gradxform.blocks import (
    add_decayed_weights,
    add_eps,
    bias_correction,
    ema,
    ema_sq,
    nesterov_ema,
    ratio,
    running_max,
    scale_by_learning_rate,
    sqrt,
)
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_dtype


def _check(who: str, learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype) -> None:
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "b1", b1, UNIT)
    validate(who, "b2", b2, UNIT)
    validate(who, "eps", eps, NONNEGATIVE)
    validate(who, "eps_root", eps_root, NONNEGATIVE)
    validate_dtype(who, "mu_dtype", mu_dtype)
    validate_dtype(who, "nu_dtype", nu_dtype)


def adam_denominator(
    b2: Hyperparameter, eps: Hyperparameter, eps_root: Hyperparameter, nu_dtype: Any, amsgrad: bool = False
) -> GradientTransformation:
    r"""$\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon$, with $\hat\nu_t$ the bias-corrected EMA of $g^2$.

    With `amsgrad`, $\hat\nu_t$ is replaced by its running maximum.
    """
    return chain(
        ema_sq(b2, nu_dtype),
        bias_correction(b2),
        running_max(nu_dtype) if amsgrad else identity(),
        add_eps(eps_root),
        sqrt(),
        add_eps(eps),
    )


@public
def adam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam (Kingma & Ba 2015).

    $$\begin{aligned}
    \mu_t &= \beta_1\mu_{t-1} + (1-\beta_1)g_t, & \nu_t &= \beta_2\nu_{t-1} + (1-\beta_2)g_t^2,\\
    \hat\mu_t &= \frac{\mu_t}{1-\beta_1^t}, & \hat\nu_t &= \frac{\nu_t}{1-\beta_2^t},\\
    \Delta\theta_t &= -\eta\,\frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon}
    \end{aligned}$$

    Chain: `ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2),
    bias_correction(b2), add_eps(eps_root), sqrt(), add_eps(eps)))`,
    `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      mu_dtype: the dtype $\mu$ is stored in (e.g. bfloat16); math runs in at least float32.
      nu_dtype: the dtype $\nu$ is stored in.
    """
    _check("adam", learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    return chain(
        ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), adam_denominator(b2, eps, eps_root, nu_dtype)),
        scale_by_learning_rate(learning_rate),
    )


@public
def adamw(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 1e-4,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    mask: Any = None,
) -> GradientTransformation:
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    $$\Delta\theta_t = -\eta\left(\frac{\hat\mu_t}{\sqrt{\hat\nu_t+\epsilon_{root}}+\epsilon}
    + \lambda\,\theta_{t-1}\right)$$

    Chain: Adam's ratio, `add_decayed_weights(weight_decay)`,
    `scale_by_learning_rate(learning_rate)`. The default $\lambda = 10^{-4}$ is
    optax's (torch.optim's is `0.01`).

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      weight_decay: $\lambda \ge 0$.
      mu_dtype: the dtype $\mu$ is stored in.
      nu_dtype: the dtype $\nu$ is stored in.
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    _check("adamw", learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    validate("adamw", "weight_decay", weight_decay, NONNEGATIVE)
    return chain(
        ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), adam_denominator(b2, eps, eps_root, nu_dtype)),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@public
def nadam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NAdam: Adam with a Nesterov look-ahead on the first moment (Dozat 2016).

    $$\Delta\theta_t = -\eta\,\frac{\beta_1\frac{\mu_t}{1-\beta_1^{t+1}}
    + (1-\beta_1)\frac{g_t}{1-\beta_1^t}}{\sqrt{\hat\nu_t+\epsilon_{root}}+\epsilon}$$

    Chain: `ratio(nesterov_ema(b1), <adam's denominator>)`, `scale_by_learning_rate`.
    This is optax's form; torch.optim's NAdam adds a momentum-decay schedule
    (`gradxform.compat.torch.NAdam`).

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      mu_dtype: the dtype $\mu$ is stored in.
      nu_dtype: the dtype $\nu$ is stored in.
    """
    _check("nadam", learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    return chain(
        ratio(nesterov_ema(b1, state_dtype=mu_dtype), adam_denominator(b2, eps, eps_root, nu_dtype)),
        scale_by_learning_rate(learning_rate),
    )


@public
def amsgrad(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AMSGrad: Adam whose denominator never shrinks (Reddi et al. 2018).

    $$\bar\nu_t = \max(\bar\nu_{t-1}, \hat\nu_t), \qquad
    \Delta\theta_t = -\eta\,\frac{\hat\mu_t}{\sqrt{\bar\nu_t+\epsilon_{root}}+\epsilon}$$

    Chain: Adam's, with `running_max()` after `bias_correction(b2)`: the maximum of
    *bias-corrected* second moments, as optax. torch.optim takes the maximum of the
    raw moments and corrects after (`gradxform.compat.torch.Adam(amsgrad=True)`).

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      mu_dtype: the dtype $\mu$ is stored in.
      nu_dtype: the dtype $\nu$ and its maximum are stored in.
    """
    _check("amsgrad", learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    return chain(
        ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), adam_denominator(b2, eps, eps_root, nu_dtype, True)),
        scale_by_learning_rate(learning_rate),
    )


@public
def nadamw(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 1e-4,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    mask: Any = None,
) -> GradientTransformation:
    r"""NAdamW: NAdam with decoupled weight decay (Dozat 2016; Loshchilov & Hutter 2019).

    $$\Delta\theta_t = -\eta\left(\frac{\beta_1\frac{\mu_t}{1-\beta_1^{t+1}}
    + (1-\beta_1)\frac{g_t}{1-\beta_1^t}}{\sqrt{\hat\nu_t+\epsilon_{root}}+\epsilon}
    + \lambda\,\theta_{t-1}\right)$$

    Chain: `ratio(nesterov_ema(b1), <adam's denominator>)`, `add_decayed_weights(weight_decay, mask)`,
    `scale_by_learning_rate(learning_rate)`: NAdam's ratio, then AdamW's decay. optax's
    `nadamw` (its `adamw(nesterov=True)`), with optax's default $\lambda = 10^{-4}$.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      weight_decay: $\lambda \ge 0$.
      mu_dtype: the dtype $\mu$ is stored in.
      nu_dtype: the dtype $\nu$ is stored in.
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    _check("nadamw", learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    validate("nadamw", "weight_decay", weight_decay, NONNEGATIVE)
    return chain(
        ratio(nesterov_ema(b1, state_dtype=mu_dtype), adam_denominator(b2, eps, eps_root, nu_dtype)),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
