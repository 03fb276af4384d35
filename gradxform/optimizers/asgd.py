"""ASGD: SGD with a decaying step and the average of its iterates (torch.optim's ASGD)."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_decayed_weights, iterate_average, scale_by_learning_rate
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, Hyperparameter, is_zero, resolve, validate


def asgd_rate(learning_rate: Hyperparameter, lambd: Hyperparameter, alpha: Hyperparameter) -> Any:
    r"""The schedule $\eta_t = \eta / (1 + \lambda\eta\,(t-1))^{\alpha}$ of the count $t - 1$ (torch's rule)."""

    def rate(count):
        lr = resolve(learning_rate, count, "learning_rate")
        return lr / (1 + resolve(lambd, count, "lambd") * lr * count) ** resolve(alpha, count, "alpha")

    return rate


def asgd_chain(
    learning_rate: Hyperparameter,
    lambd: Hyperparameter,
    alpha: Hyperparameter,
    t0: Hyperparameter,
    weight_decay: Hyperparameter,
    front: tuple = (),
) -> GradientTransformation:
    """ASGD's chain, after `front` (torch's maximize)."""
    return chain(
        *front,
        identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay),  # g + wd θ (L2)
        identity() if is_zero(lambd) else add_decayed_weights(lambd),  # + λθ: the decay term θ(1 - λη)
        scale_by_learning_rate(asgd_rate(learning_rate, lambd, alpha)),
        iterate_average(t0),
    )


@public
def asgd(
    learning_rate: Hyperparameter,
    lambd: Hyperparameter = 1e-4,
    alpha: Hyperparameter = 0.75,
    t0: Hyperparameter = 1e6,
    weight_decay: Hyperparameter = 0.0,
) -> GradientTransformation:
    r"""Averaged SGD (Polyak & Juditsky 1992; the decaying step of Bottou 2012), torch.optim's ASGD.

    $$\begin{aligned}
    \eta_t &= \frac{\eta}{(1 + \lambda\eta\,(t-1))^{\alpha}}, \qquad
    \theta_t = \theta_{t-1}(1 - \lambda\eta_t) - \eta_t\,(g_t + w\,\theta_{t-1}),\\
    \bar\theta_t &= \bar\theta_{t-1} + \mu_t(\theta_t - \bar\theta_{t-1}), \qquad
    \mu_t = \frac{1}{\max(1,\ t - 1 - t_0)}
    \end{aligned}$$

    The parameters follow the decayed SGD steps; the average $\bar\theta_t$ is what
    to evaluate: `gradxform.eval_params(state, params)` returns it (it equals the
    parameters until step $t_0 + 2$).

    Chain: `add_decayed_weights(weight_decay)`, `add_decayed_weights(lambd)` (each left out
    for the number 0), `scale_by_learning_rate(count -> lr / (1 + lambd lr count)^alpha)`,
    `iterate_average(t0)`. `update` needs `params`.

    Args:
      learning_rate: $\eta \ge 0$.
      lambd: $\lambda \ge 0$, the decay term (also slows the step's decay).
      alpha: $\alpha \ge 0$, the power of the step's decay.
      t0: $t_0 \ge 0$, the step after which averaging starts.
      weight_decay: $w \ge 0$, L2 added to the gradient.
    """
    who = "asgd"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "lambd", lambd, NONNEGATIVE)
    validate(who, "alpha", alpha, NONNEGATIVE)
    validate(who, "t0", t0, NONNEGATIVE)
    validate(who, "weight_decay", weight_decay, NONNEGATIVE)
    return asgd_chain(learning_rate, lambd, alpha, t0, weight_decay)
