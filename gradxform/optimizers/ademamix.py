"""AdEMAMix: Adam whose numerator mixes a fast and a slow moving average."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_decayed_weights, bias_correction, ema, plus, ratio, scale, scale_by_learning_rate
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, is_zero, validate, validate_dtype
from gradxform.optimizers.adam import adam_denominator


@public
def ademamix(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    b3: Hyperparameter = 0.9999,
    alpha: Hyperparameter = 5.0,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    weight_decay: Hyperparameter = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""AdEMAMix (Pagliardini et al. 2024): a bias-corrected fast EMA plus $\alpha$ times a slow one.

    $$\begin{aligned}
    m^{(1)}_t &= \beta_1 m^{(1)}_{t-1} + (1-\beta_1)g_t, \\
    m^{(2)}_t &= \beta_3 m^{(2)}_{t-1} + (1-\beta_3)g_t, \\
    \nu_t &= \beta_2\nu_{t-1} + (1-\beta_2)g_t^2,\\
    \Delta\theta_t &= -\eta\left(\frac{\hat m^{(1)}_t + \alpha\, m^{(2)}_t}{\sqrt{\hat\nu_t + \epsilon_{root}}
    + \epsilon} + \lambda\theta_{t-1}\right)
    \end{aligned}$$

    The slow EMA is not bias-corrected (it is meant to fill slowly). `b3` and `alpha`
    may be schedules (the paper warms both up).

    Chain: `ratio(plus(chain(ema(b1), bias_correction(b1)), chain(ema(b3), scale(alpha))),
    <adam's denominator>)`, `add_decayed_weights(weight_decay, mask)` (left out for the number 0),
    `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$, of the fast EMA.
      b2: $\beta_2 \in [0, 1)$, of the second moment.
      b3: $\beta_3 \in [0, 1)$, of the slow EMA.
      alpha: $\alpha \ge 0$, the slow EMA's weight.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      mu_dtype: the dtype all three moments are stored in (optax's meaning).
      weight_decay: $\lambda \ge 0$.
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    who = "ademamix"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        validate(who, name, value, UNIT)
    validate(who, "alpha", alpha, NONNEGATIVE)
    validate(who, "eps", eps, NONNEGATIVE)
    validate(who, "eps_root", eps_root, NONNEGATIVE)
    validate(who, "weight_decay", weight_decay, NONNEGATIVE)
    validate_dtype(who, "mu_dtype", mu_dtype)
    return chain(
        ratio(
            plus(chain(ema(b1, mu_dtype), bias_correction(b1)), chain(ema(b3, mu_dtype), scale(alpha))),
            adam_denominator(b2, eps, eps_root, mu_dtype),
        ),
        identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
