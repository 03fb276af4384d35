"""Adadelta's feedback: scaling by the RMS of the past outgoing updates (seed 003)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks._common import cast_like, dtype_rule, leafwise
from gradxform.core import GradientTransformation
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import PyTree, abs_sq, check_inexact, check_match, safe_increment, zero_count, zeros_like


class UpdateRmsState(NamedTuple):
    count: jax.Array
    delta_sq: PyTree


def scale_by_update_rms(
    rho: Hyperparameter = 0.9, eps: Hyperparameter = 1e-6, state_dtype: Any = None
) -> GradientTransformation:
    r"""Multiplies by the RMS of past outputs, then folds this output into it.

    .. math::
        \Delta_t = \sqrt{w_{t-1} + \epsilon}\;u_t, \qquad
        w_t = \rho\,w_{t-1} + (1-\rho)\,|\Delta_t|^2, \qquad \text{output } \Delta_t

    Chained after ``ratio(None, chain(ema_sq(rho), add_eps(eps), sqrt()))`` it
    is Adadelta: :math:`\Delta_t = \frac{\sqrt{w_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}} g_t`.
    Computed in one pass; nothing is recomputed.
    """
    validate("scale_by_update_rms", "rho", rho, 0.0, 1.0, high_open=True)
    validate("scale_by_update_rms", "eps", eps, 0.0)
    rule = dtype_rule("scale_by_update_rms", state_dtype, real=True)

    def init(params):
        check_inexact(params, "scale_by_update_rms")
        return UpdateRmsState(zero_count(), zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.delta_sq, "scale_by_update_rms", rule)
        r = resolve(rho, state.count, "rho")
        e = resolve(eps, state.count, "eps").astype(r.dtype)
        delta = leafwise(lambda e, u, w: jnp.sqrt(w + e) * u, e, updates, state.delta_sq)
        # |Delta_t|^2 = (w + eps) |u_t|^2: written without the square root, XLA fuses each output
        # with its own inputs instead of materializing sqrt(w + eps) for both (52 vs 68 bytes/param).
        w = leafwise(lambda r, u, w: r * w + (1 - r) * (w + e.astype(r.dtype)) * abs_sq(u), r, updates, state.delta_sq)
        return cast_like(delta, updates), UpdateRmsState(safe_increment(state.count), cast_like(w, state.delta_sq))

    return GradientTransformation(init, update)
