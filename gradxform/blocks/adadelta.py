"""Adadelta's feedback: scaling by the RMS of the past outgoing updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradxform.blocks.base import elementwise, storage
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import NONNEGATIVE, UNIT
from gradxform.hyper.values import Hyperparameter
from gradxform.numerics.tree_math import abs_sq

PyTree = Any


@per_param("delta_sq")
class UpdateRmsState(NamedTuple):
    """`delta_sq`: the moving average of the squared outgoing updates."""

    delta_sq: PyTree


def scale_by_update_rms(
    rho: Hyperparameter = 0.9, eps: Hyperparameter = 1e-6, state_dtype: Any = None
) -> GradientTransformation:
    r"""Multiplies by the RMS of past outputs, then folds this output into it.

    $$\Delta_t = \sqrt{w_{t-1} + \epsilon}\;u_t, \qquad
    w_t = \rho\,w_{t-1} + (1-\rho)\,|\Delta_t|^2, \qquad \text{output } \Delta_t$$

    Chained after `ratio(None, chain(ema_sq(rho), add_eps(eps), sqrt()))` it is
    Adadelta: $\Delta_t = \frac{\sqrt{w_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}} g_t$.

    Args:
      rho: $\rho \in [0, 1)$.
      eps: $\epsilon \ge 0$.
      state_dtype: the dtype $w$ is stored in (default: the parameter's real dtype).
    """

    def fn(h, u, w):
        # |Delta|^2 = (w + eps)|u|^2, written without the root so that XLA does not materialize
        # sqrt(w + eps) for two consumers.
        return jnp.sqrt(w + h.eps) * u, h.rho * w + (1 - h.rho) * (w + h.eps) * abs_sq(u)

    return elementwise(
        "scale_by_update_rms",
        fn,
        hyper={"rho": (rho, UNIT), "eps": (eps, NONNEGATIVE)},
        state=UpdateRmsState,
        rules={"delta_sq": storage("scale_by_update_rms", state_dtype, real=True)},
    )


@per_param("nu", "delta_sq")
class AdadeltaState(NamedTuple):
    """`nu`: the moving average of squared gradients; `delta_sq`: of squared outgoing updates."""

    nu: PyTree
    delta_sq: PyTree


def scale_by_adadelta(
    rho: Hyperparameter = 0.9, eps: Hyperparameter = 1e-6, state_dtype: Any = None
) -> GradientTransformation:
    r"""Adadelta's scaling in one block: both running averages and the rescaled gradient.

    $$
    \begin{aligned}
    &v_t = \rho v_{t-1} + (1-\rho)|g_t|^2, \\
    &\Delta_t = \sqrt{\frac{w_{t-1}+\epsilon}{v_t+\epsilon}}\;g_t, \\
    &w_t = \rho w_{t-1} + (1-\rho)\,\frac{(w_{t-1}+\epsilon)\,|g_t|^2}{v_t+\epsilon}
    \end{aligned}
    $$

    (the last is $\rho w_{t-1} + (1-\rho)|\Delta_t|^2$), output $\Delta_t$. The same
    math as `chain(ratio(None, chain(ema_sq(rho), add_eps(eps), sqrt())),
    scale_by_update_rms(rho, eps))` (tested equal), fused because XLA then computes
    each output from the inputs it reads instead of materializing shared
    intermediates: see the performance page.

    $\Delta_t$ is computed from the *new* $w_t$, by the identity

    $$\frac{w_{t-1}+\epsilon}{v_t+\epsilon} = \frac{w_t + \rho\epsilon}{\rho(v_t+\epsilon) + (1-\rho)|g_t|^2}$$

    (all terms nonnegative, so nothing cancels; a few ulp from the direct form). Then no
    kernel reads the old $w$ after the one that overwrites it in place, and under plain
    `jax.jit` with donation XLA needs no copy of it (the direct form needs one unless
    region-based copy insertion, `gradxform.CPU_COMPILER_OPTIONS`, is on). Where the
    denominator is 0 ($g_t = 0$ with $\rho = 0$, or with $v_t + \epsilon = 0$) the ratio
    is taken as 0: $\Delta_t = 0$. This form is used where $w$ is stored in the dtype it is
    computed in (float32 and float64 state); a lower-precision $w$ (e.g. bfloat16) keeps the
    direct form, since the parameters' loop would otherwise need the unrounded $w_t$ as a
    temporary.

    Args:
      rho: $\rho \in [0, 1)$.
      eps: $\epsilon \ge 0$.
      state_dtype: the dtype $v$ and $w$ are stored in (default: the parameter's real dtype).
    """

    def fn(h, g, v, w, dtypes):
        g_sq = abs_sq(g)
        v = h.rho * v + (1 - h.rho) * g_sq
        w_new = h.rho * w + (1 - h.rho) * (w + h.eps) * g_sq / (v + h.eps)
        if dtypes[1] != w_new.dtype:  # w rounded to storage: the direct form
            return g * jnp.sqrt((w + h.eps) / (v + h.eps)), v, w_new
        den = h.rho * (v + h.eps) + (1 - h.rho) * g_sq
        return g * jnp.where(den > 0, jnp.sqrt((w_new + h.rho * h.eps) / den), 0), v, w_new

    rule = storage("scale_by_adadelta", state_dtype, real=True)
    return elementwise(
        "scale_by_adadelta",
        fn,
        hyper={"rho": (rho, UNIT), "eps": (eps, NONNEGATIVE)},
        state=AdadeltaState,
        rules={"nu": rule, "delta_sq": rule},
        dtypes=True,
    )
