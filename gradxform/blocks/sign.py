"""Sign methods: the sign of the update, and Rprop's per-element step sizes.

Both look only at signs, which complex numbers do not have: they refuse complex parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradxform.blocks.base import elementwise, storage
from gradxform.blocks.moments import _init_only
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import NONNEGATIVE, Range
from gradxform.hyper.values import Hyperparameter

PyTree = Any

_NO_SIGN = "it steps by the sign of each element, and a complex number has none"

ETA_MINUS = Range(0.0, 1.0, low_open=True, high_open=True)
ETA_PLUS = Range(1.0, low_open=True)


def sign() -> GradientTransformation:
    r"""The elementwise sign of the updates: $u \leftarrow \mathrm{sign}(u) \in \{-1, 0, 1\}$.

    signSGD's step (Bernstein et al. 2018), Lion's and Signum's after their momentum. Defined for
    real parameters only (`init` refuses complex leaves).
    """
    return elementwise("sign", lambda h, u: jnp.sign(u), real_only=_NO_SIGN)


@per_param("step_sizes", "prev_updates")
class RpropState(NamedTuple):
    """`step_sizes`: each element's step $\\Delta_t$; `prev_updates`: the last step taken (0 after a reversal)."""

    step_sizes: PyTree
    prev_updates: PyTree


def scale_by_rprop(
    learning_rate: Hyperparameter,
    eta_minus: Hyperparameter = 0.5,
    eta_plus: Hyperparameter = 1.2,
    min_step_size: Hyperparameter = 1e-6,
    max_step_size: Hyperparameter = 50.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Rprop's per-element step sizes, adapted by sign agreement (Riedmiller & Braun 1993; Igel & Hüsken's Rprop-).

    With $s_t = \mathrm{sign}(g_t)\,\mathrm{sign}(u_{t-1})$ (the last step $u_{t-1}$, $u_0 = 0$):

    $$\begin{aligned}
    \Delta_t &= \begin{cases}
    \mathrm{clip}(\eta^+\Delta_{t-1},\ \Delta_{\min},\ \Delta_{\max}) & s_t > 0\\
    \mathrm{clip}(\eta^-\Delta_{t-1},\ \Delta_{\min},\ \Delta_{\max}) & s_t < 0\\
    \Delta_{t-1} & s_t = 0
    \end{cases}, \\
    u_t &= \begin{cases}
    0 & s_t < 0\\
    \Delta_t\,\mathrm{sign}(g_t) & \text{else}
    \end{cases}, \qquad \Delta_0 = \text{learning_rate}
    \end{aligned}$$

    output $u_t$ (chain `scale(-1)` to descend). The gradient's size never enters: a sign that
    holds grows the step by $\eta^+$ up to $\Delta_{\max}$, a reversal shrinks it by $\eta^-$ down to
    $\Delta_{\min}$ and skips that step, so the next one sees $s = 0$ and keeps the step size. This is
    torch.optim's Rprop, and optax's with its update taken at the step it is computed (optax 0.2.8
    returns the previous step's: its updates lag one step behind).

    Args:
      learning_rate: $\Delta_0 \ge 0$, every element's first step size (a number: used once, at init).
      eta_minus: $\eta^- \in (0, 1)$, the factor after a reversal.
      eta_plus: $\eta^+ > 1$, the factor while the sign holds.
      min_step_size: $\Delta_{\min} \ge 0$.
      max_step_size: $\Delta_{\max} \ge \Delta_{\min}$.
      state_dtype: the dtype both state trees are stored in (default: the parameter's).
    """
    _init_only("scale_by_rprop", "learning_rate", learning_rate)
    hyper = {
        "learning_rate": (learning_rate, NONNEGATIVE),
        "eta_minus": (eta_minus, ETA_MINUS),
        "eta_plus": (eta_plus, ETA_PLUS),
        "min_step_size": (min_step_size, NONNEGATIVE),
        "max_step_size": (max_step_size, NONNEGATIVE),
    }

    def fn(h, g, step, prev):
        s = jnp.sign(g) * jnp.sign(prev)
        factor = jnp.where(s > 0, h.eta_plus, h.eta_minus)
        step = jnp.where(s == 0, step, jnp.clip(step * factor, h.min_step_size, h.max_step_size))
        u = jnp.where(s < 0, jnp.zeros_like(g), step * jnp.sign(g))
        return u, step, u

    rule = storage("scale_by_rprop", state_dtype)
    return elementwise(
        "scale_by_rprop",
        fn,
        hyper=hyper,
        state=RpropState,
        rules={"step_sizes": rule, "prev_updates": rule},
        initial={"step_sizes": learning_rate},
        real_only=_NO_SIGN,
    )
