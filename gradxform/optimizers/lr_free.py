"""Learning-rate-free methods: DoG, DoWG, Prodigy, D-Adaptation AdamW, COCOB, Mechanic.

Each estimates its own step size; the `learning_rate` argument (default 1.0) only scales
it (optax.contrib's names, arguments and defaults). They read whole-tree norms, inner
products or sums, so sharded over devices they all-reduce scalars, and `update` needs the
parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradxform.blocks import add_decayed_weights, scale_by_learning_rate
from gradxform.blocks.lr_free import scale_by_dog, scale_by_dowg
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, Hyperparameter, validate

WeightDecayMask = Any | Callable[[Any], Any] | None


def _decay(who: str, weight_decay: Hyperparameter | None, mask: WeightDecayMask) -> GradientTransformation:
    validate(who, "weight_decay", weight_decay, NONNEGATIVE, allow_none=True)
    return identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)


@public
def dog(
    learning_rate: Hyperparameter = 1.0,
    init_step: tuple[str, Any] = ("heuristic", 1e-6),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter | None = None,
    mask: WeightDecayMask = None,
) -> GradientTransformation:
    r"""DoG, Distance over Gradients (Ivgi et al. 2023): SGD whose step is the distance travelled over the
    root of the summed squared gradient norms.

    $$\begin{aligned}
    \bar r_t &= \max(\bar r_{t-1}, \|x_t - x_0\|), \quad \bar r_0 = r_\epsilon, &
    G_t &= G_{t-1} + \|g_t\|^2,\\
    \Delta x_t &= -\eta\,\frac{\bar r_t}{\sqrt{G_t + \epsilon}}\,g_t
    \end{aligned}$$

    with whole-tree norms and $g_t$ the gradient plus $\lambda x_t$ when `weight_decay` is
    given. The first step is $\eta\,r_\epsilon / \sqrt{\|g_1\|^2 + \epsilon}$: small, by the
    choice of $r_\epsilon$ (`init_step`). The authors recommend averaging the iterates.

    Chain: `add_decayed_weights(weight_decay, mask)` (if `weight_decay` is not None),
    `scale_by_dog(init_step, eps)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$, a factor on the estimated step (1.0: none).
      init_step: `("heuristic", alpha)`: $r_\epsilon = \alpha(1 + \|x_0\|)$ (the paper suggests
        1e-6, 1e-4 with batch normalisation); `("distance", r)`: $r_\epsilon = r$;
        `("learning_rate", eta0)`: the first step size is $\eta_0$.
      eps: $\epsilon > 0$, added to $G_t$.
      weight_decay: $\lambda \ge 0$ or `None` (none).
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("dog", "learning_rate", learning_rate, NONNEGATIVE)
    return chain(
        _decay("dog", weight_decay, mask),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


@public
def dowg(
    learning_rate: Hyperparameter = 1.0,
    init_estim_sq_dist: Hyperparameter | None = None,
    eps: Hyperparameter = 1e-4,
    weight_decay: Hyperparameter | None = None,
    mask: WeightDecayMask = None,
) -> GradientTransformation:
    r"""DoWG, Distance over Weighted Gradients (Khaled et al. 2023): DoG with the gradient norms weighted
    by the squared distance estimate.

    $$\begin{aligned}
    \bar r_t^2 &= \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), &
    v_t &= v_{t-1} + \bar r_t^2\,\|g_t\|^2,\\
    \Delta x_t &= -\eta\,\frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\,g_t
    \end{aligned}$$

    with $\bar r_0^2$ = `init_estim_sq_dist` (default $\epsilon$) and whole-tree norms.

    Chain: `add_decayed_weights(weight_decay, mask)` (if `weight_decay` is not None),
    `scale_by_dowg(init_estim_sq_dist, eps)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$, a factor on the estimated step (1.0: none).
      init_estim_sq_dist: $\bar r_0^2 > 0$, or `None` for $\epsilon$.
      eps: $\epsilon > 0$.
      weight_decay: $\lambda \ge 0$ or `None` (none).
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("dowg", "learning_rate", learning_rate, NONNEGATIVE)
    return chain(
        _decay("dowg", weight_decay, mask),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )
