"""Layer-wise methods: each leaf (a layer's weights) is scaled by what its own norm says.

LARS and LAMB scale each leaf's step by the trust ratio $\\|\\theta_\\ell\\| / \\|u_\\ell\\|$;
Fromage is the trust ratio with a step that keeps the parameters' norm; NovoGrad keeps
one second moment per leaf (the moving average of $\\|g_\\ell\\|^2$) instead of one per
element. None of them is elementwise: on `gradxform.FlatParams` they would mix layers,
so they refuse it.
"""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_decayed_weights, bias_correction, ema, ratio, scale_by_learning_rate, trace
from gradxform.blocks.layerwise import scale_by_trust_ratio
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_bool
from gradxform.optimizers.adam import adam_denominator
from gradxform.wrappers import masked


def _mask_or_all(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """`inner` where `mask` says (optax's mask: a tree of bools, a prefix, a function); `True`: everywhere."""
    if mask is True:
        return inner
    return masked(inner, mask)


@public
def lars(
    learning_rate: Hyperparameter,
    weight_decay: Hyperparameter = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: Hyperparameter = 0.001,
    eps: Hyperparameter = 0.0,
    trust_ratio_mask: Any = True,
    momentum: Hyperparameter = 0.9,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""LARS: SGD with momentum whose step for each layer is scaled by its trust ratio (You et al. 2017).

    $$\begin{aligned}
    d_{\ell,t} &= g_{\ell,t} + \lambda\,\theta_{\ell,t-1}, \\
    r_{\ell,t} &= \frac{c\,\|\theta_{\ell,t-1}\|}{\|d_{\ell,t}\| + \epsilon}
      \quad (1 \text{ if either norm is } 0), \\
    v_{\ell,t} &= \mu\,v_{\ell,t-1} - \eta\,r_{\ell,t}\,d_{\ell,t}, \qquad
    \Delta\theta_{\ell,t} = v_{\ell,t} \;\;(\text{Nesterov: } \mu v_{\ell,t} - \eta r_{\ell,t} d_{\ell,t})
    \end{aligned}$$

    per leaf $\ell$. Chain: `add_decayed_weights(weight_decay, weight_decay_mask)`,
    `masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask)`,
    `scale_by_learning_rate(learning_rate)`, `trace(momentum, nesterov)`: optax's order
    (the learning rate before the momentum). `update` needs `params`.

    Args:
      learning_rate: $\eta \ge 0$.
      weight_decay: $\lambda \ge 0$.
      weight_decay_mask: which leaves decay: `True` (all), a tree of bools (or a prefix), or a
        function `params -> tree` (optax's meaning).
      trust_coefficient: $c \ge 0$.
      eps: $\epsilon \ge 0$, added to the update's norm.
      trust_ratio_mask: which leaves are scaled by their trust ratio (same forms as the decay mask);
        the others take plain SGD steps (biases and norms, often).
      momentum: $\mu \in [0, 1)$.
      nesterov: use Nesterov's look-ahead.
    """
    validate("lars", "learning_rate", learning_rate, NONNEGATIVE)
    validate("lars", "weight_decay", weight_decay, NONNEGATIVE)
    validate("lars", "trust_coefficient", trust_coefficient, NONNEGATIVE)
    validate("lars", "eps", eps, NONNEGATIVE)
    validate("lars", "momentum", momentum, UNIT)
    validate_bool("lars", "nesterov", nesterov)
    return chain(
        _mask_or_all(add_decayed_weights(weight_decay), weight_decay_mask),
        _mask_or_all(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov),
    )


@public
def lamb(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-6,
    eps_root: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""LAMB: Adam's direction, plus decoupled weight decay, scaled per layer by its trust ratio (You et al. 2020).

    $$\begin{aligned}
    d_{\ell,t} &= \frac{\hat\mu_{\ell,t}}{\sqrt{\hat\nu_{\ell,t} + \epsilon_{root}} + \epsilon}
      + \lambda\,\theta_{\ell,t-1}, \\
    \Delta\theta_{\ell,t} &= -\eta\,\frac{\|\theta_{\ell,t-1}\|}{\|d_{\ell,t}\|}\,d_{\ell,t}
      \quad (\text{ratio } 1 \text{ if either norm is } 0)
    \end{aligned}$$

    with Adam's bias-corrected moments $\hat\mu, \hat\nu$. Chain: Adam's
    `ratio(chain(ema(b1), bias_correction(b1)), <adam's denominator>)`,
    `add_decayed_weights(weight_decay, mask)`, `scale_by_trust_ratio()`,
    `scale_by_learning_rate(learning_rate)`, as optax. `update` needs `params`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      weight_decay: $\lambda \ge 0$.
      mask: which leaves decay: `None` (all), a tree of bools (or a prefix), or a function
        `params -> tree` (optax's meaning).
    """
    validate("lamb", "learning_rate", learning_rate, NONNEGATIVE)
    validate("lamb", "b1", b1, UNIT)
    validate("lamb", "b2", b2, UNIT)
    validate("lamb", "eps", eps, NONNEGATIVE)
    validate("lamb", "eps_root", eps_root, NONNEGATIVE)
    validate("lamb", "weight_decay", weight_decay, NONNEGATIVE)
    return chain(
        ratio(chain(ema(b1), bias_correction(b1)), adam_denominator(b2, eps, eps_root, None)),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )
