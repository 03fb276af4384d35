"""RMSProp: the gradient divided by the root of a moving average of its square."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_eps, ema_sq, ema_var, ratio, scale_by_learning_rate, sqrt, trace
from gradxform.blocks import bias_correction as debiased
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_bool, validate_dtype


@public
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
    r"""RMSProp (Hinton's lecture 6e).

    $$\nu_t = \rho\nu_{t-1} + (1-\rho)g_t^2, \qquad
    \Delta\theta_t = -\eta\,\frac{g_t}{\sqrt{\nu_t} + \epsilon}$$

    `eps` sits outside the root by default, as in the notes this library started
    from and torch.optim (`eps_in_sqrt=True` gives optax's $g/\sqrt{\nu+\epsilon}$).
    `centered` replaces $\nu_t$ by $\nu_t - \mu_t^2$ (the variance); `bias_correction`
    divides $\nu_t$ by $1-\rho^t$; `momentum` adds a heavy-ball trace after the
    learning rate, as optax and torch.optim do.

    Chain: `ratio(None, chain(ema_sq(decay) | ema_var(decay), [bias_correction(decay)],
    sqrt(), add_eps(eps)))` (eps and sqrt swapped for `eps_in_sqrt`),
    `scale_by_learning_rate`, `[trace(momentum)]`.

    Args:
      learning_rate: $\eta \ge 0$.
      decay: $\rho \in [0, 1)$.
      eps: $\epsilon \ge 0$.
      centered: divide by the root of the variance instead of the second moment.
      momentum: $\mu \in [0, 1)$ of a trace after the learning rate, or `None`.
      nesterov: Nesterov's form of that trace (needs a momentum).
      bias_correction: divide $\nu_t$ (and $\mu_t$ when centered) by $1-\rho^t$.
      eps_in_sqrt: put $\epsilon$ inside the root.
      state_dtype: the dtype of the moments (default: the parameter's).
    """
    who = "rmsprop"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "decay", decay, UNIT)
    validate(who, "eps", eps, NONNEGATIVE)
    validate(who, "momentum", momentum, UNIT, allow_none=True)
    for flag in ("centered", "nesterov", "bias_correction", "eps_in_sqrt"):
        validate_bool(who, flag, locals()[flag])
    validate_dtype(who, "state_dtype", state_dtype)
    if nesterov and momentum is None:
        raise ValueError("rmsprop: nesterov=True needs a momentum (e.g. momentum=0.9).")
    stat = ema_var(decay, state_dtype) if centered else ema_sq(decay, state_dtype)
    root = (add_eps(eps), sqrt()) if eps_in_sqrt else (sqrt(), add_eps(eps))
    return chain(
        ratio(None, chain(stat, debiased(decay) if bias_correction else identity(), *root)),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(momentum, nesterov, state_dtype),
    )
