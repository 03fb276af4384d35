"""The seed optimizers, each a short chain of blocks whose lines read like its equations.

Notation: :math:`g_t` the gradient at step :math:`t = 1, 2, \\dots`,
:math:`\\eta` the learning rate, :math:`\\theta` the parameters. Every
optimizer returns the update :math:`\\Delta\\theta_t`; apply it with
:func:`gradxform.apply_updates`. Defaults, and how they compare with optax,
torch.optim and Keras, are in ``docs/conventions.md``.
"""

from __future__ import annotations

from typing import Any

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
    scale_by_adadelta,
    scale_by_learning_rate,
    sqrt,
    sum_sq,
    trace,
)
from gradxform.core import GradientTransformation, chain, identity
from gradxform.hyper import Hyperparameter, validate, validate_dtype

_UNIT = dict(low=0.0, high=1.0, high_open=True)


def _lr(who: str, learning_rate: Hyperparameter) -> None:
    validate(who, "learning_rate", learning_rate, 0.0)


def sgd(
    learning_rate: Hyperparameter,
    momentum: Hyperparameter | None = None,
    nesterov: bool = False,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum.

    .. math:: v_t = \mu v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,v_t
              \;(\text{Nesterov: } -\eta\,(g_t + \mu v_t))

    Chain: ``trace(momentum, nesterov)`` (if ``momentum`` is not None),
    ``scale_by_learning_rate(learning_rate)``. Without momentum:
    :math:`\Delta\theta_t = -\eta g_t`.
    """
    _lr("sgd", learning_rate)
    validate("sgd", "momentum", momentum, **_UNIT, allow_none=True)
    if nesterov and momentum is None:
        raise ValueError("sgd: nesterov=True needs a momentum (e.g. momentum=0.9).")
    validate_dtype("sgd", "state_dtype", state_dtype)
    return chain(
        identity() if momentum is None else trace(momentum, nesterov, state_dtype),
        scale_by_learning_rate(learning_rate),
    )


def momentum(
    learning_rate: Hyperparameter, beta: Hyperparameter = 0.9, nesterov: bool = False, state_dtype: Any = None
) -> GradientTransformation:
    r"""Gradient descent with heavy-ball momentum (seed 000, seed 003).

    .. math:: v_t = \beta v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,v_t

    Chain: ``trace(beta, nesterov)``, ``scale_by_learning_rate(learning_rate)``.
    The seeds' EMA form :math:`v_t = \beta v_{t-1} + (1-\beta) g_t` is
    ``chain(ema(beta), scale_by_learning_rate(lr))``, the same trajectory
    as this one with learning rate :math:`(1-\beta)\eta` (for constant
    :math:`\beta`).
    """
    validate("momentum", "beta", beta, **_UNIT)
    _lr("momentum", learning_rate)
    return sgd(learning_rate, beta, nesterov, state_dtype)


def nesterov(
    learning_rate: Hyperparameter, beta: Hyperparameter = 0.9, state_dtype: Any = None
) -> GradientTransformation:
    r"""Nesterov momentum (Sutskever et al. 2013, in the optax/torch form).

    .. math:: v_t = \beta v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,(g_t + \beta v_t)

    Chain: ``trace(beta, nesterov=True)``, ``scale_by_learning_rate(learning_rate)``.
    """
    validate("nesterov", "beta", beta, **_UNIT)
    _lr("nesterov", learning_rate)
    return sgd(learning_rate, beta, True, state_dtype)


def rmsprop(
    learning_rate: Hyperparameter,
    decay: Hyperparameter = 0.9,
    eps: Hyperparameter = 1e-8,
    centered: bool = False,
    momentum: Hyperparameter | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    eps_in_sqrt: bool = False,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""RMSProp (Hinton's lecture 6e; seeds 000, 001, 003).

    .. math:: \nu_t = \rho\nu_{t-1} + (1-\rho)g_t^2, \qquad
              \Delta\theta_t = -\eta\,\frac{g_t}{\sqrt{\nu_t} + \epsilon}

    ``eps`` sits outside the root by default, as in the seeds and torch.optim
    (``eps_in_sqrt=True`` gives optax's :math:`g/\sqrt{\nu+\epsilon}`).
    ``centered`` replaces :math:`\nu_t` by :math:`\nu_t - \mu_t^2` (the
    variance); ``bias_correction`` divides :math:`\nu_t` by
    :math:`1-\rho^t` (seed 001); ``momentum`` adds a heavy-ball trace after
    the learning rate, as optax and torch.optim do.

    Chain: ``ratio(None, chain(ema_sq(decay) | ema_var(decay),
    [bias_correction(decay)], sqrt(), add_eps(eps)))`` (eps and sqrt swapped
    for ``eps_in_sqrt``), ``scale_by_learning_rate``, ``[trace(momentum)]``.
    """
    who = "rmsprop"
    _lr(who, learning_rate)
    validate(who, "decay", decay, **_UNIT)
    validate(who, "eps", eps, 0.0)
    validate(who, "momentum", momentum, **_UNIT, allow_none=True)
    if nesterov and momentum is None:
        raise ValueError("rmsprop: nesterov=True needs a momentum (e.g. momentum=0.9).")
    stat = ema_var(decay, state_dtype) if centered else ema_sq(decay, state_dtype)
    root = (add_eps(eps), sqrt()) if eps_in_sqrt else (sqrt(), add_eps(eps))
    debias = bias_correction_block(decay) if bias_correction else identity()
    return chain(
        ratio(None, chain(stat, debias, *root)),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(momentum, nesterov, state_dtype),
    )


bias_correction_block = bias_correction  # rmsprop's argument shadows the block's name


def _adam_validate(who: str, learning_rate, b1, b2, eps, eps_root) -> None:
    _lr(who, learning_rate)
    validate(who, "b1", b1, **_UNIT)
    validate(who, "b2", b2, **_UNIT)
    validate(who, "eps", eps, 0.0)
    validate(who, "eps_root", eps_root, 0.0)


def _adam_denominator(b2, eps, eps_root, nu_dtype, amsgrad: bool = False) -> GradientTransformation:
    """``sqrt(nu_hat + eps_root) + eps`` with ``nu_hat`` the bias-corrected EMA of ``g^2``."""
    return chain(
        ema_sq(b2, nu_dtype),
        bias_correction(b2),
        running_max(nu_dtype) if amsgrad else identity(),
        add_eps(eps_root),
        sqrt(),
        add_eps(eps),
    )


def adam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam (Kingma & Ba 2015; seeds 000, 001, 003).

    .. math::
        \mu_t = \beta_1\mu_{t-1} + (1-\beta_1)g_t, \quad
        \nu_t = \beta_2\nu_{t-1} + (1-\beta_2)g_t^2, \\
        \hat\mu_t = \frac{\mu_t}{1-\beta_1^t}, \quad
        \hat\nu_t = \frac{\nu_t}{1-\beta_2^t}, \quad
        \Delta\theta_t = -\eta\,\frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon}

    Chain: ``ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2),
    bias_correction(b2), add_eps(eps_root), sqrt(), add_eps(eps)))``,
    ``scale_by_learning_rate(learning_rate)``. ``mu_dtype``/``nu_dtype``
    store the moments in another dtype (e.g. bfloat16); math runs in at
    least float32.
    """
    _adam_validate("adam", learning_rate, b1, b2, eps, eps_root)
    return chain(
        ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), _adam_denominator(b2, eps, eps_root, nu_dtype)),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 1e-4,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    .. math:: \Delta\theta_t = -\eta\left(\frac{\hat\mu_t}{\sqrt{\hat\nu_t+\epsilon_{root}}+\epsilon}
              + \lambda\,\theta_{t-1}\right)

    Chain: Adam's ratio, ``add_decayed_weights(weight_decay)``,
    ``scale_by_learning_rate(learning_rate)``. The default
    :math:`\lambda = 10^{-4}` is optax's (torch.optim's is ``0.01``).
    """
    _adam_validate("adamw", learning_rate, b1, b2, eps, eps_root)
    validate("adamw", "weight_decay", weight_decay, 0.0)
    return chain(
        ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), _adam_denominator(b2, eps, eps_root, nu_dtype)),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NAdam: Adam with a Nesterov look-ahead on the first moment (Dozat 2016).

    .. math:: \Delta\theta_t = -\eta\,\frac{\beta_1\frac{\mu_t}{1-\beta_1^{t+1}}
              + (1-\beta_1)\frac{g_t}{1-\beta_1^t}}{\sqrt{\hat\nu_t+\epsilon_{root}}+\epsilon}

    Chain: ``ratio(nesterov_ema(b1), <adam's denominator>)``,
    ``scale_by_learning_rate``. This is optax's form; torch.optim's NAdam
    adds a momentum-decay schedule (``momentum_decay=4e-3``).
    """
    _adam_validate("nadam", learning_rate, b1, b2, eps, eps_root)
    return chain(
        ratio(nesterov_ema(b1, mu_dtype), _adam_denominator(b2, eps, eps_root, nu_dtype)),
        scale_by_learning_rate(learning_rate),
    )


def amsgrad(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AMSGrad: Adam whose denominator never shrinks (Reddi et al. 2018).

    .. math:: \bar\nu_t = \max(\bar\nu_{t-1}, \hat\nu_t), \qquad
              \Delta\theta_t = -\eta\,\frac{\hat\mu_t}{\sqrt{\bar\nu_t+\epsilon_{root}}+\epsilon}

    Chain: Adam's, with ``running_max()`` after ``bias_correction(b2)``: the
    maximum of *bias-corrected* second moments, as optax. torch.optim takes
    the maximum of the raw moments and corrects after; that is
    ``chain(ema_sq(b2), running_max(), bias_correction(b2), ...)``.
    """
    _adam_validate("amsgrad", learning_rate, b1, b2, eps, eps_root)
    return chain(
        ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), _adam_denominator(b2, eps, eps_root, nu_dtype, True)),
        scale_by_learning_rate(learning_rate),
    )


def adagrad(
    learning_rate: Hyperparameter,
    initial_accumulator_value: float = 0.1,
    eps: Hyperparameter = 1e-7,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Adagrad (Duchi et al. 2011; seed 003).

    .. math:: s_t = s_{t-1} + g_t^2, \quad s_0 = \text{initial\_accumulator\_value}, \qquad
              \Delta\theta_t = -\eta\,\frac{g_t}{\sqrt{s_t + \epsilon}}

    eps inside the root, as seed 003, optax and Keras. Chain:
    ``ratio(None, chain(sum_sq(initial_accumulator_value), add_eps(eps),
    sqrt()))``, ``scale_by_learning_rate``.
    """
    _lr("adagrad", learning_rate)
    validate("adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
    validate("adagrad", "eps", eps, 0.0)
    return chain(
        ratio(None, chain(sum_sq(initial_accumulator_value, state_dtype), add_eps(eps), sqrt())),
        scale_by_learning_rate(learning_rate),
    )


def adadelta(
    learning_rate: Hyperparameter = 1.0,
    rho: Hyperparameter = 0.9,
    eps: Hyperparameter = 1e-6,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Adadelta (Zeiler 2012; seed 003).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho)g_t^2, \quad
        \Delta_t = \frac{\sqrt{w_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}\,g_t, \quad
        w_t = \rho w_{t-1} + (1-\rho)\Delta_t^2, \quad
        \Delta\theta_t = -\eta\,\Delta_t

    Chain: ``scale_by_adadelta(rho, eps)``, ``scale_by_learning_rate``;
    ``scale_by_adadelta`` is, in one block, the same math as
    ``ratio(None, chain(ema_sq(rho), add_eps(eps), sqrt()))`` then
    ``scale_by_update_rms(rho, eps)`` (one block so that XLA makes three
    passes over memory instead of five: docs/performance.md). The
    default ``learning_rate=1.0`` is Zeiler's and torch.optim's; it always
    descends (optax's ``adadelta()`` with ``learning_rate=None`` does not
    flip the sign and climbs).
    """
    _lr("adadelta", learning_rate)
    validate("adadelta", "rho", rho, **_UNIT)
    validate("adadelta", "eps", eps, 0.0)
    return chain(scale_by_adadelta(rho, eps, state_dtype), scale_by_learning_rate(learning_rate))
