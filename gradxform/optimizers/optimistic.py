"""Optimistic methods: the step extrapolated with the previous gradient."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import bias_correction, ema, nesterov_ema, optimistic_gradient, ratio, scale_by_learning_rate
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_bool, validate_dtype
from gradxform.optimizers.adam import adam_denominator


@public
def optimistic_gradient_descent(
    learning_rate: Hyperparameter, alpha: Hyperparameter = 1.0, beta: Hyperparameter = 1.0
) -> GradientTransformation:
    r"""Optimistic gradient descent (Popov 1980; Daskalakis et al. 2018; Mokhtari et al. 2020).

    $$\Delta\theta_t = -\eta\left((\alpha + \beta)\,g_t - \beta\,g_{t-1}\right), \qquad g_0 = g_1$$

    For min-max games (GANs, saddle points): the extrapolation with the previous
    gradient damps the rotation plain gradient descent-ascent spirals out on.

    Chain: `optimistic_gradient(alpha, beta)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      alpha: $\alpha \ge 0$, the weight of the current gradient.
      beta: $\beta \ge 0$, the weight of the difference $g_t - g_{t-1}$.
    """
    who = "optimistic_gradient_descent"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "alpha", alpha, NONNEGATIVE)
    validate(who, "beta", beta, NONNEGATIVE)
    return chain(optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))


@public
def optimistic_adam_v2(
    learning_rate: Hyperparameter,
    *,
    alpha: Hyperparameter = 1.0,
    beta: Hyperparameter = 1.0,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> GradientTransformation:
    r"""Optimistic Adam: Adam's (by default Nesterov) step, extrapolated with the previous one.

    $$a_t = \frac{\tilde\mu_t}{\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon}, \qquad
    \Delta\theta_t = -\eta\left((\alpha + \beta)\,a_t - \beta\,a_{t-1}\right), \qquad a_0 = a_1$$

    with $\tilde\mu_t$ NAdam's look-ahead $\beta_1\frac{\mu_t}{1-\beta_1^{t+1}} +
    (1-\beta_1)\frac{g_t}{1-\beta_1^t}$ (`nesterov=True`) or Adam's $\hat\mu_t$.

    Chain: `ratio(nesterov_ema(b1) or chain(ema(b1), bias_correction(b1)), <adam's denominator>)`,
    `optimistic_gradient(alpha, beta)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      alpha: $\alpha \ge 0$.
      beta: $\beta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      mu_dtype: the dtype $\mu$ is stored in.
      nesterov: NAdam's look-ahead numerator (optax's default) rather than Adam's.
    """
    who = "optimistic_adam_v2"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "alpha", alpha, NONNEGATIVE)
    validate(who, "beta", beta, NONNEGATIVE)
    validate(who, "b1", b1, UNIT)
    validate(who, "b2", b2, UNIT)
    validate(who, "eps", eps, NONNEGATIVE)
    validate(who, "eps_root", eps_root, NONNEGATIVE)
    validate_dtype(who, "mu_dtype", mu_dtype)
    nesterov = validate_bool(who, "nesterov", nesterov)
    numerator = nesterov_ema(b1, state_dtype=mu_dtype) if nesterov else chain(ema(b1, mu_dtype), bias_correction(b1))
    return chain(
        ratio(numerator, adam_denominator(b2, eps, eps_root, None)),
        optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )
