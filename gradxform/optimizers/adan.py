"""Adan: adaptive Nesterov momentum from the gradient and its difference."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_decayed_weights, scale_by_adan, scale_by_learning_rate
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, is_zero, validate


@public
def adan(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.98,
    b2: Hyperparameter = 0.92,
    b3: Hyperparameter = 0.99,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""Adan (Xie et al. 2022), optax's form: decoupled weight decay added to the update.

    $$\begin{aligned}
    \Delta_t &= g_t - g_{t-1}\ (\Delta_1 = 0), \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)g_t, \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\Delta_t,\\
    n_t &= \beta_3 n_{t-1} + (1-\beta_3)\,(g_t + (1-\beta_2)\Delta_t)^2,\\
    \Delta\theta_t &= -\eta\left(\frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}
    + \lambda\theta_{t-1}\right)
    \end{aligned}$$

    each moment bias-corrected by its own $1-\beta^t$.

    Chain: `scale_by_adan(b1, b2, b3, eps, eps_root)`, `add_decayed_weights(weight_decay, mask)`
    (left out when `weight_decay` is the number 0, so `update` then needs no `params`),
    `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      b3: $\beta_3 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      weight_decay: $\lambda \ge 0$.
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("adan", "learning_rate", learning_rate, NONNEGATIVE)
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        validate("adan", name, value, UNIT)
    validate("adan", "eps", eps, NONNEGATIVE)
    validate("adan", "eps_root", eps_root, NONNEGATIVE)
    validate("adan", "weight_decay", weight_decay, NONNEGATIVE)
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root),
        identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
