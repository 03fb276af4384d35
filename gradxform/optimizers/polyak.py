"""Polyak SGD: gradient descent with the Polyak step size, from the loss's gap to its minimum."""

from __future__ import annotations

from gradxform.blocks import scale_by_learning_rate, scale_by_polyak
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import ANY, NONNEGATIVE, Hyperparameter, validate


@public
def polyak_sgd(
    max_learning_rate: Hyperparameter = 1.0,
    scaling: Hyperparameter = 1.0,
    f_min: Hyperparameter = 0.0,
    eps: Hyperparameter = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    r"""SGD with the Polyak step size (Polyak 1987; Loizou et al. 2021's SPS$_{\max}$; Berrada et al. 2020).

    $$d_t = -s\,g_t, \qquad
    \Delta\theta_t = \min\left(\frac{f(\theta_t) - f^*}{\|d_t\|^2 + \epsilon},\ \gamma_{\max}\right) d_t$$

    (0 where $\|d_t\|^2 + \epsilon$ vanishes; `variant="sps+"` clips the gap at 0). For
    interpolating problems ($f^* = 0$ reachable) it needs no learning-rate tuning. `update`
    needs the loss: `tx.update(grads, state, params, value=loss)` (`gradxform.train_step`
    and `gradxform.run` pass it).

    Chain: `scale_by_learning_rate(scaling)`, `scale_by_polyak(max_learning_rate, f_min, eps, variant)`
    (optax's order: the norm is of the scaled step).

    Args:
      max_learning_rate: $\gamma_{\max} \ge 0$.
      scaling: $s \ge 0$, the direction's scale (optax's `sgd(learning_rate=scaling)`).
      f_min: $f^*$, a lower bound on the loss.
      eps: $\epsilon \ge 0$.
      variant: `"sps"` or `"sps+"`.
    """
    validate("polyak_sgd", "max_learning_rate", max_learning_rate, NONNEGATIVE)
    validate("polyak_sgd", "scaling", scaling, NONNEGATIVE)
    validate("polyak_sgd", "f_min", f_min, ANY)
    validate("polyak_sgd", "eps", eps, NONNEGATIVE)
    return chain(scale_by_learning_rate(scaling), scale_by_polyak(max_learning_rate, f_min, eps, variant))
