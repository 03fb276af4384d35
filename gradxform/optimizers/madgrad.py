"""MADGRAD: momentumized, adaptive, dual-averaged gradient."""

from __future__ import annotations

from gradxform.blocks import add_decayed_weights, scale_by_madgrad
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, is_zero, validate


@public
def madgrad(
    learning_rate: Hyperparameter,
    momentum: Hyperparameter = 0.9,
    weight_decay: Hyperparameter = 0.0,
    eps: Hyperparameter = 1e-6,
) -> GradientTransformation:
    r"""MADGRAD (Defazio & Jelassi 2021), with L2 weight decay on the gradient (optax's and the paper's code).

    $$\begin{aligned}
    g_k &\leftarrow g_k + \lambda x_k, \quad c_k = (\eta + \epsilon)\sqrt{k+1}, \quad
    G_{k+1} = G_k + c_k g_k^2, \quad s_{k+1} = s_k + c_k g_k,\\
    z_{k+1} &= x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon}, \quad
    x_{k+1} = (1-\beta)\,z_{k+1} + \beta\,x_k
    \end{aligned}$$

    Chain: `add_decayed_weights(weight_decay)` (left out for the number 0),
    `scale_by_madgrad(learning_rate, momentum, eps)`. `update` needs `params`; $x_0$ is
    the parameters at the first update.

    Args:
      learning_rate: $\eta \ge 0$.
      momentum: $\beta \in [0, 1)$.
      weight_decay: $\lambda \ge 0$ (coupled: added to the gradient).
      eps: $\epsilon \ge 0$.
    """
    validate("madgrad", "learning_rate", learning_rate, NONNEGATIVE)
    validate("madgrad", "momentum", momentum, UNIT)
    validate("madgrad", "weight_decay", weight_decay, NONNEGATIVE)
    validate("madgrad", "eps", eps, NONNEGATIVE)
    return chain(
        identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate, momentum, eps),
    )
