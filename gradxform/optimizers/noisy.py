"""Noisy SGD: gradient descent with annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_noise, scale_by_learning_rate
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, Hyperparameter, validate


@public
def noisy_sgd(
    learning_rate: Hyperparameter, eta: Hyperparameter = 0.01, gamma: Hyperparameter = 0.55, key: Any = 0
) -> GradientTransformation:
    r"""SGD with annealed Gaussian gradient noise (Neelakantan et al. 2015).

    $$\Delta\theta_t = -\eta_{lr}\left(g_t + \sqrt{\eta / t^{\gamma}}\;\xi_t\right), \qquad
    \xi_t \sim \mathcal N(0, I)$$

    The PRNG key is in the state: the same key gives the same noise, and optax's
    noise (its key scheme is kept).

    Chain: `add_noise(eta, gamma, key)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta_{lr} \ge 0$.
      eta: $\eta \ge 0$, the noise variance at the first step.
      gamma: $\gamma \ge 0$, its annealing exponent.
      key: an integer seed or a JAX PRNG key (`jax.random.key(seed)`).
    """
    validate("noisy_sgd", "learning_rate", learning_rate, NONNEGATIVE)
    validate("noisy_sgd", "eta", eta, NONNEGATIVE)
    validate("noisy_sgd", "gamma", gamma, NONNEGATIVE)
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))
