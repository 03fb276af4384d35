"""Adadelta: the gradient rescaled by the ratio of two running RMS values."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import scale_by_adadelta, scale_by_learning_rate
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_dtype


@public
def adadelta(
    learning_rate: Hyperparameter = 1.0,
    rho: Hyperparameter = 0.9,
    eps: Hyperparameter = 1e-6,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Adadelta (Zeiler 2012).

    $$\begin{aligned}
    v_t &= \rho v_{t-1} + (1-\rho)g_t^2, &
    \Delta_t &= \frac{\sqrt{w_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}\,g_t,\\
    w_t &= \rho w_{t-1} + (1-\rho)\Delta_t^2, & \Delta\theta_t &= -\eta\,\Delta_t
    \end{aligned}$$

    Chain: `scale_by_adadelta(rho, eps)`, `scale_by_learning_rate`; the block is, in
    one, the same math as `ratio(None, chain(ema_sq(rho), add_eps(eps), sqrt()))`
    then `scale_by_update_rms(rho, eps)`. The default `learning_rate=1.0` is Zeiler's
    and torch.optim's; it always descends (optax's `adadelta()` with
    `learning_rate=None` does not flip the sign and climbs).

    Args:
      learning_rate: $\eta \ge 0$.
      rho: $\rho \in [0, 1)$.
      eps: $\epsilon \ge 0$, inside both roots.
      state_dtype: the dtype $v$ and $w$ are stored in (default: the parameter's real dtype).
    """
    validate("adadelta", "learning_rate", learning_rate, NONNEGATIVE)
    validate("adadelta", "rho", rho, UNIT)
    validate("adadelta", "eps", eps, NONNEGATIVE)
    validate_dtype("adadelta", "state_dtype", state_dtype)
    return chain(scale_by_adadelta(rho, eps, state_dtype), scale_by_learning_rate(learning_rate))
