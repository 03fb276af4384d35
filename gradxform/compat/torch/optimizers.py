"""torch.optim's optimizers with torch's argument names, defaults and numerics.

Each constructor returns a `gradxform.GradientTransformation` built as a
chain of gradxform blocks, whose trajectory matches `torch.optim`'s (tested
to 1e-6 in float64 over 500 steps against torch itself). There is no
`params` argument: call `tx.init(params)` as with every gradxform
optimizer. torch's implementation selectors (`foreach`, `fused`,
`capturable`, `differentiable`) have no meaning here and are not accepted.

The torch-specific numerics, and where they differ from `gradxform.adam` and
friends (see `docs/torch.md`):

* `weight_decay` is L2 added to the gradient (coupled) everywhere except
  `AdamW` (and `decoupled_weight_decay=True`), where the parameters are
  shrunk by $1 - \\eta\\lambda$ before the step;
* SGD's momentum buffer starts at the first gradient, undampened;
* RMSprop and Adagrad put eps outside the square root; Adadelta inside;
* AMSGrad takes the maximum of the raw second moments, then bias-corrects;
* NAdam uses the momentum-decay schedule $\\mu_t = \\beta_1(1 - 0.5 \\cdot 0.96^{t\\psi})$;
* the momentum of RMSprop is applied *before* the learning rate (it
  accumulates $g/(\\sqrt{v}+\\epsilon)$), as torch does.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.blocks import (
    add_decayed_weights,
    add_eps,
    bias_correction,
    ema,
    ema_sq,
    ema_var,
    nesterov_ema,
    ratio,
    running_max,
    scale,
    scale_by_adadelta,
    scale_by_learning_rate,
    sqrt,
    sum_sq,
    trace,
)
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import Hyperparameter, is_concrete, is_zero, resolve, validate, validate_bool

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "ASGD"]


def _nonzero(value: Hyperparameter) -> bool:
    """True only for a concrete non-zero number (a live or traced value is not known to be non-zero)."""
    return not callable(value) and is_concrete(value) and float(np.asarray(value)) != 0.0


def _front(who: str, weight_decay: Hyperparameter, maximize: bool) -> tuple[GradientTransformation, ...]:
    """torch's first two lines: `g <- -g` if maximizing, then coupled L2 `g <- g + wd * p`."""
    validate(who, "weight_decay", weight_decay, 0.0)
    out = (scale(-1.0),) if maximize else ()
    if not is_zero(weight_decay):
        out += (add_decayed_weights(weight_decay),)
    return out


def _betas(who: str, betas: Sequence[Hyperparameter]) -> tuple[Hyperparameter, Hyperparameter]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}.")
    b1, b2 = betas
    validate(who, "betas[0]", b1, 0.0, 1.0, high_open=True)
    validate(who, "betas[1]", b2, 0.0, 1.0, high_open=True)
    return b1, b2


def _lr(who: str, lr: Hyperparameter) -> Hyperparameter:
    return validate(who, "lr", lr, 0.0)


@public
def SGD(
    lr: Hyperparameter = 1e-3,
    momentum: Hyperparameter = 0.0,
    dampening: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.SGD`.

    .. math::
        g \leftarrow g + \lambda\theta, \quad
        b_1 = g_1,\; b_t = \mu b_{t-1} + (1-\tau) g_t, \quad
        \Delta\theta = -\eta\,(b_t \text{ or, Nesterov, } g_t + \mu b_t)

    Chain: `[add_decayed_weights(weight_decay)]`, `[trace(momentum, nesterov,
    dampening=dampening)]` (when `momentum != 0`), `scale_by_learning_rate(lr)`.
    The first step is not dampened, as in torch.
    """
    who = "SGD"
    _lr(who, lr)
    validate(who, "momentum", momentum, 0.0, 1.0, high_open=True)
    validate(who, "dampening", dampening, 0.0, 1.0)
    if nesterov and (is_zero(momentum) or _nonzero(dampening)):
        raise ValueError(
            f"SGD: nesterov=True needs momentum > 0 and dampening == 0 (got momentum={momentum!r}, "
            f"dampening={dampening!r}), as in torch.optim.SGD."
        )
    use_momentum = not is_zero(momentum)
    return chain(
        *_front(who, weight_decay, maximize),
        trace(momentum, nesterov, dampening=dampening) if use_momentum else identity(),
        scale_by_learning_rate(lr),
    )


def _adam(
    who: str,
    lr: Hyperparameter,
    betas: Sequence[Hyperparameter],
    eps: Hyperparameter,
    weight_decay: Hyperparameter,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> GradientTransformation:
    _lr(who, lr)
    b1, b2 = _betas(who, betas)
    validate(who, "eps", eps, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    numerator = chain(ema(b1), bias_correction(b1))
    # torch: max over the RAW second moment, then divide its root by sqrt(1 - b2^t), then add eps.
    denominator = chain(ema_sq(b2), running_max() if amsgrad else identity(), bias_correction(b2), sqrt(), add_eps(eps))
    return chain(
        *_front(who, 0.0 if decoupled else weight_decay, maximize),
        ratio(numerator, denominator),
        add_decayed_weights(weight_decay) if decoupled else identity(),
        scale_by_learning_rate(lr),
    )


@public
def Adam(
    lr: Hyperparameter = 1e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adam`: weight decay is coupled L2 unless `decoupled_weight_decay`.

    .. math::
        g \leftarrow g + \lambda\theta, \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2, \\
        \bar v_t = \max(\bar v_{t-1}, v_t) \text{ (amsgrad, raw moments)}, \quad
        \Delta\theta = -\eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{\bar v_t/(1-\beta_2^t)} + \epsilon}

    Chain: `[add_decayed_weights]`, `ratio(chain(ema(b1), bias_correction(b1)),
    chain(ema_sq(b2), [running_max()], bias_correction(b2), sqrt(), add_eps(eps)))`,
    `scale_by_learning_rate(lr)`.
    """
    return _adam("Adam", lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)


@public
def AdamW(
    lr: Hyperparameter = 1e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.AdamW`: decoupled decay, default `weight_decay=0.01`.

    .. math:: \theta \leftarrow \theta(1 - \eta\lambda) - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}

    Chain: Adam's ratio, `add_decayed_weights(weight_decay)`, `scale_by_learning_rate(lr)`
    (that is $-\eta(\text{ratio} + \lambda\theta)$, the same step).
    """
    return _adam("AdamW", lr, betas, eps, weight_decay, amsgrad, maximize, True)


@public
def RMSprop(
    lr: Hyperparameter = 1e-2,
    alpha: Hyperparameter = 0.99,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    momentum: Hyperparameter = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.RMSprop`: eps outside the root, momentum over $g/\text{avg}$.

    .. math::
        v_t = \alpha v_{t-1} + (1-\alpha) g^2, \quad
        a_t = \sqrt{v_t - \bar g_t^2 \text{ (centered) or } v_t} + \epsilon, \quad
        b_t = \mu b_{t-1} + g/a_t, \quad \Delta\theta = -\eta\,b_t

    Chain: `[add_decayed_weights]`, `ratio(None, chain(ema_sq(alpha) | ema_var(alpha),
    sqrt(), add_eps(eps)))`, `[trace(momentum)]`, `scale_by_learning_rate(lr)`.
    """
    who = "RMSprop"
    _lr(who, lr)
    validate(who, "alpha", alpha, 0.0, 1.0, high_open=True)
    validate(who, "eps", eps, 0.0)
    validate(who, "momentum", momentum, 0.0, 1.0, high_open=True)
    stat = ema_var(alpha) if centered else ema_sq(alpha)
    use_momentum = not is_zero(momentum)
    return chain(
        *_front(who, weight_decay, maximize),
        ratio(None, chain(stat, sqrt(), add_eps(eps))),
        trace(momentum) if use_momentum else identity(),
        scale_by_learning_rate(lr),
    )


@public
def Adagrad(
    lr: Hyperparameter = 1e-2,
    lr_decay: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: Hyperparameter = 1e-10,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adagrad`: eps outside the root, learning rate decayed as $\eta/(1+(t-1)\delta)$.

    .. math::
        s_t = s_{t-1} + g^2, \; s_0 = \text{initial\_accumulator\_value}, \quad
        \Delta\theta = -\frac{\eta}{1 + (t-1)\,\delta}\,\frac{g}{\sqrt{s_t} + \epsilon}

    Chain: `[add_decayed_weights]`, `ratio(None, chain(sum_sq(initial_accumulator_value),
    sqrt(), add_eps(eps)))`, `scale_by_learning_rate(count -> lr / (1 + count * lr_decay))`
    (the schedule sees the count before the step, $t-1$).
    """
    who = "Adagrad"
    _lr(who, lr)
    validate(who, "lr_decay", lr_decay, 0.0)
    validate(who, "initial_accumulator_value", initial_accumulator_value, 0.0)
    validate(who, "eps", eps, 0.0)
    rate = lr
    if not is_zero(lr_decay):

        def rate(count):
            return resolve(lr, count, "lr") / (1 + count * resolve(lr_decay, count, "lr_decay"))

    return chain(
        *_front(who, weight_decay, maximize),
        ratio(None, chain(sum_sq(initial_accumulator_value), sqrt(), add_eps(eps))),
        scale_by_learning_rate(rate),
    )


@public
def Adadelta(
    lr: Hyperparameter = 1.0,
    rho: Hyperparameter = 0.9,
    eps: Hyperparameter = 1e-6,
    weight_decay: Hyperparameter = 0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adadelta` (eps inside both roots, as Zeiler and torch).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) g^2, \quad
        \Delta_t = \frac{\sqrt{w_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}\,g, \quad
        w_t = \rho w_{t-1} + (1-\rho)\Delta_t^2, \quad \Delta\theta = -\eta\Delta_t

    Chain: `[add_decayed_weights]`, `scale_by_adadelta(rho, eps)` (the same block as
    `gradxform.adadelta`), `scale_by_learning_rate(lr)`.
    """
    who = "Adadelta"
    _lr(who, lr)
    validate(who, "rho", rho, 0.0, 1.0, high_open=True)
    validate(who, "eps", eps, 0.0)
    return chain(
        *_front(who, weight_decay, maximize),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(lr),
    )


@public
def NAdam(
    lr: Hyperparameter = 2e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    momentum_decay: Hyperparameter = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.NAdam`, with torch's momentum-decay schedule.

    .. math::
        \mu_t = \beta_1(1 - \tfrac12 0.96^{t\psi}), \quad \Pi_t = \textstyle\prod_{i\le t}\mu_i, \\
        \Delta\theta = -\eta\,\frac{\frac{1-\mu_t}{1-\Pi_t} g_t + \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}} m_t}
        {\sqrt{v_t/(1-\beta_2^t)} + \epsilon}

    Chain: `[add_decayed_weights]`, `ratio(nesterov_ema(b1, momentum=<torch's schedule>),
    chain(ema_sq(b2), bias_correction(b2), sqrt(), add_eps(eps)))`,
    `[add_decayed_weights]` (decoupled), `scale_by_learning_rate(lr)`. The schedule's
    running product $\Pi_t$ is kept in the state (`mu_product`), as torch does.
    """
    who = "NAdam"
    _lr(who, lr)
    b1, b2 = _betas(who, betas)
    validate(who, "eps", eps, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    validate(who, "momentum_decay", momentum_decay, 0.0)
    validate_bool(who, "decoupled_weight_decay", decoupled_weight_decay)
    return chain(
        *_front(who, 0.0 if decoupled_weight_decay else weight_decay, maximize),
        ratio(nesterov_ema(b1, momentum=_nadam_momentum(b1, momentum_decay)), _adam_root(b2, eps)),
        add_decayed_weights(weight_decay) if decoupled_weight_decay else identity(),
        scale_by_learning_rate(lr),
    )


def _adam_root(b2: Hyperparameter, eps: Hyperparameter) -> GradientTransformation:
    """torch's Adam denominator: $\\sqrt{v_t / (1 - \beta_2^t)} + \\epsilon$."""
    return chain(ema_sq(b2), bias_correction(b2), sqrt(), add_eps(eps))


def _nadam_momentum(b1: Hyperparameter, momentum_decay: Hyperparameter):
    """torch's NAdam momentum coefficients as a schedule: `count -> b1 (1 - 0.5 * 0.96**((count + 1) psi))`."""

    def schedule(count: jax.Array) -> jax.Array:
        b = resolve(b1, count, "betas[0]")
        psi = resolve(momentum_decay, count, "momentum_decay")
        t = (count + 1).astype(b.dtype)
        return b * (1 - 0.5 * jnp.asarray(0.96, b.dtype) ** (t * psi))

    return schedule


@public
def ASGD(
    lr: Hyperparameter = 1e-2,
    lambd: Hyperparameter = 1e-4,
    alpha: Hyperparameter = 0.75,
    t0: Hyperparameter = 1e6,
    weight_decay: Hyperparameter = 0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.ASGD`: decayed SGD steps and the average of the iterates from step `t0` on.

    $$\eta_t = \frac{\eta}{(1 + \lambda\eta(t-1))^{\alpha}}, \quad
    \theta_t = \theta_{t-1}(1-\lambda\eta_t) - \eta_t(g_t + w\theta_{t-1}), \quad
    \bar\theta_t = \bar\theta_{t-1} + \frac{\theta_t - \bar\theta_{t-1}}{\max(1, t-1-t_0)}$$

    torch's `state["ax"]` is `gradxform.eval_params(state, params)`. Chain: `[scale(-1)]`
    (maximize), `[add_decayed_weights(weight_decay)]`, the chain of `gradxform.asgd`. `t0`
    must be `>= 0` (with a negative `t0` torch averages in its zero-initialized `ax`).
    """
    from gradxform.optimizers.asgd import asgd_chain

    who = "ASGD"
    _lr(who, lr)
    validate(who, "lambd", lambd, 0.0)
    validate(who, "alpha", alpha, 0.0)
    validate(who, "t0", t0, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    maximize = validate_bool(who, "maximize", maximize)
    return asgd_chain(lr, lambd, alpha, t0, weight_decay, front=(scale(-1.0),) if maximize else ())
