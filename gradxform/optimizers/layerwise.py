"""Layer-wise methods: each leaf (a layer's weights) is scaled by what its own norm says.

LARS and LAMB scale each leaf's step by the trust ratio $\\|\\theta_\\ell\\| / \\|u_\\ell\\|$;
Fromage is the trust ratio with a step that keeps the parameters' norm; NovoGrad keeps
one second moment per leaf (the moving average of $\\|g_\\ell\\|^2$) instead of one per
element. None of them is elementwise: on `gradxform.FlatParams` they would mix layers,
so they refuse it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradxform.blocks import add_decayed_weights, bias_correction, ema, ratio, scale_by_learning_rate, trace
from gradxform.blocks.layerwise import add_scaled_params, scale_by_novograd, scale_by_trust_ratio
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import (
    NONNEGATIVE,
    UNIT,
    Hyperparameter,
    is_schedule,
    resolve,
    validate,
    validate_bool,
    validate_dtype,
)
from gradxform.numerics.dtypes import hyper_dtype
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


@public
def novograd(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.25,
    eps: Hyperparameter = 1e-6,
    eps_root: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""NovoGrad: SGD with momentum on gradients normalised by a per-layer second moment (Ginsburg et al. 2019).

    $$\begin{aligned}
    \nu_{\ell,t} &= \beta_2\nu_{\ell,t-1} + (1-\beta_2)\|g_{\ell,t}\|^2 \quad (\nu_{\ell,1} = \|g_{\ell,1}\|^2), \\
    \mu_{\ell,t} &= \beta_1\mu_{\ell,t-1} + \frac{g_{\ell,t}}{\sqrt{\nu_{\ell,t} + \epsilon_{root}} + \epsilon}
      + \lambda\,\theta_{\ell,t-1} \quad (\mu_{\ell,0} = 0), \qquad
    \Delta\theta_{\ell,t} = -\eta\,\mu_{\ell,t}
    \end{aligned}$$

    with one scalar $\nu_\ell$ per leaf. Chain: `scale_by_novograd(b1, b2, eps, eps_root, weight_decay,
    mu_dtype)`, `scale_by_learning_rate(learning_rate)`, as optax. `update` needs `params`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      weight_decay: $\lambda \ge 0$.
      mu_dtype: the dtype $\mu$ is stored in (default: the parameter's).
    """
    validate("novograd", "learning_rate", learning_rate, NONNEGATIVE)
    validate_dtype("novograd", "mu_dtype", mu_dtype)
    return chain(
        scale_by_novograd(b1, b2, eps, eps_root, weight_decay, mu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@public
def fromage(learning_rate: Hyperparameter, min_norm: Hyperparameter = 1e-6) -> GradientTransformation:
    r"""Fromage: Frobenius-matched gradient descent (Bernstein et al. 2020).

    $$\Delta\theta_{\ell,t} = -\frac{\eta}{\sqrt{1+\eta^2}}\,
      \frac{\max(\|\theta_{\ell,t-1}\|, n_0)}{\max(\|g_{\ell,t}\|, n_0)}\,g_{\ell,t}
      + \Big(\frac{1}{\sqrt{1+\eta^2}} - 1\Big)\theta_{\ell,t-1}$$

    per leaf: a step of relative size $\eta$ in each layer's norm, then a shrink by
    $1/\sqrt{1+\eta^2}$ that keeps the norm from growing. Chain:
    `scale_by_trust_ratio(min_norm)`, `scale_by_learning_rate(learning_rate / sqrt(1 + learning_rate**2))`,
    `add_scaled_params(1 / sqrt(1 + learning_rate**2) - 1)`, as optax. `update` needs `params`.

    Args:
      learning_rate: $\eta \ge 0$, or a schedule.
      min_norm: $n_0 \ge 0$, the floor of both norms.
    """
    validate("fromage", "learning_rate", learning_rate, NONNEGATIVE)
    validate("fromage", "min_norm", min_norm, NONNEGATIVE)

    def factors(lr):
        r"""$\eta/\sqrt{1+\eta^2}$ and $1/\sqrt{1+\eta^2} - 1 = -\eta^2 / (\sqrt{1+\eta^2}(1 + \sqrt{1+\eta^2}))$,
        the second without the cancellation of $m - 1$ (in float32, $m - 1$ for $\eta = 0.02$ is 3e-4 off)."""
        root = jnp.sqrt(1 + lr**2)
        return lr / root, -(lr**2) / (root * (1 + root))

    if is_schedule(learning_rate):
        step: Any = lambda count: factors(resolve(learning_rate, count, "learning_rate"))[0]  # noqa: E731
        shrink: Any = lambda count: factors(resolve(learning_rate, count, "learning_rate"))[1]  # noqa: E731
    else:  # in the hyperparameter dtype, the same arithmetic a live (injected) learning rate gets
        step, shrink = factors(jnp.asarray(learning_rate, hyper_dtype()))
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step),
        add_scaled_params(shrink),
    )
