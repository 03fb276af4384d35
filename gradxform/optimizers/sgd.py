"""Gradient descent, with heavy-ball or Nesterov momentum.

Notation for every optimizer: $g_t$ the gradient at step $t = 1, 2, \\dots$,
$\\eta$ the learning rate, $\\theta$ the parameters; an optimizer returns the
update $\\Delta\\theta_t$ (apply it with `gradxform.apply_updates`).
"""

from __future__ import annotations

from typing import Any

from gradxform.blocks import scale_by_learning_rate, trace
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_bool, validate_dtype


@public
def sgd(
    learning_rate: Hyperparameter,
    momentum: Hyperparameter | None = None,
    nesterov: bool = False,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum.

    $$v_t = \mu v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,v_t
    \;(\text{Nesterov: } -\eta\,(g_t + \mu v_t))$$

    Without momentum, $\Delta\theta_t = -\eta g_t$.

    Chain: `trace(momentum, nesterov)` (if `momentum` is not None),
    `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      momentum: $\mu \in [0, 1)$, or `None` for none.
      nesterov: use Nesterov's look-ahead (needs a momentum).
      state_dtype: the dtype of the momentum buffer (default: the parameter's).
    """
    validate("sgd", "learning_rate", learning_rate, NONNEGATIVE)
    validate("sgd", "momentum", momentum, UNIT, allow_none=True)
    validate_bool("sgd", "nesterov", nesterov)
    validate_dtype("sgd", "state_dtype", state_dtype)
    if nesterov and momentum is None:
        raise ValueError("sgd: nesterov=True needs a momentum (e.g. momentum=0.9).")
    return chain(
        identity() if momentum is None else trace(momentum, nesterov, state_dtype),
        scale_by_learning_rate(learning_rate),
    )


@public
def momentum(
    learning_rate: Hyperparameter, beta: Hyperparameter = 0.9, nesterov: bool = False, state_dtype: Any = None
) -> GradientTransformation:
    r"""Gradient descent with heavy-ball momentum.

    $$v_t = \beta v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,v_t$$

    Many courses (Andrew Ng's deep-learning course among them) write momentum as a moving average,
    $v_t = \beta v_{t-1} + (1-\beta) g_t$: that is
    `chain(ema(beta), scale_by_learning_rate(lr))`, the same trajectory as this one
    with learning rate $(1-\beta)\eta$ (for constant $\beta$).

    Chain: `trace(beta, nesterov)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      beta: $\beta \in [0, 1)$.
      nesterov: use Nesterov's look-ahead.
      state_dtype: the dtype of the momentum buffer (default: the parameter's).
    """
    validate("momentum", "beta", beta, UNIT)
    return sgd(learning_rate, beta, nesterov, state_dtype)


@public
def nesterov(
    learning_rate: Hyperparameter, beta: Hyperparameter = 0.9, state_dtype: Any = None
) -> GradientTransformation:
    r"""Nesterov momentum (Sutskever et al. 2013, in the optax/torch form).

    $$v_t = \beta v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,(g_t + \beta v_t)$$

    Chain: `trace(beta, nesterov=True)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      beta: $\beta \in [0, 1)$.
      state_dtype: the dtype of the momentum buffer (default: the parameter's).
    """
    validate("nesterov", "beta", beta, UNIT)
    return sgd(learning_rate, beta, True, state_dtype)
