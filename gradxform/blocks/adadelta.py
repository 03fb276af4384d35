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


class AdadeltaState(NamedTuple):
    count: jax.Array
    nu: PyTree
    delta_sq: PyTree


def scale_by_adadelta(
    rho: Hyperparameter = 0.9, eps: Hyperparameter = 1e-6, state_dtype: Any = None
) -> GradientTransformation:
    r"""Adadelta's scaling in one block: both running averages and the rescaled gradient.

    .. math::
        v_t = \rho v_{t-1} + (1-\rho)|g_t|^2, \quad
        \Delta_t = \sqrt{\frac{w_{t-1}+\epsilon}{v_t+\epsilon}}\;g_t, \quad
        w_t = \rho w_{t-1} + (1-\rho)\,\frac{(w_{t-1}+\epsilon)\,|g_t|^2}{v_t+\epsilon}
        \;\bigl(= \rho w_{t-1} + (1-\rho)|\Delta_t|^2\bigr), \quad \text{output } \Delta_t

    The same math as ``chain(ratio(None, chain(ema_sq(rho), add_eps(eps), sqrt())),
    scale_by_update_rms(rho, eps))``, in one block because that is what lets XLA
    compute each output from the inputs it reads (three passes over memory, with
    nothing materialized for two consumers) instead of five: see docs/performance.md.
    """
    validate("scale_by_adadelta", "rho", rho, 0.0, 1.0, high_open=True)
    validate("scale_by_adadelta", "eps", eps, 0.0)
    rule = dtype_rule("scale_by_adadelta", state_dtype, real=True)

    def init(params):
        check_inexact(params, "scale_by_adadelta")
        return AdadeltaState(zero_count(), zeros_like(params, rule), zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.nu, "scale_by_adadelta", rule)
        check_match(updates, state.delta_sq, "scale_by_adadelta", rule)
        r = resolve(rho, state.count, "rho")
        e = resolve(eps, state.count, "eps").astype(r.dtype)
        nu = leafwise(lambda r, g, v: r * v + (1 - r) * abs_sq(g), r, updates, state.nu)

        def delta(e, g, v, w):
            return g * jnp.sqrt((w + e) / (v + e))

        def new_w(r, g, v, w):
            er = e.astype(r.dtype)
            return r * w + (1 - r) * (w + er) * abs_sq(g) / (v + er)

        out = leafwise(delta, e, updates, nu, state.delta_sq)
        w = leafwise(new_w, r, updates, nu, state.delta_sq)
        new = AdadeltaState(safe_increment(state.count), cast_like(nu, state.nu), cast_like(w, state.delta_sq))
        return cast_like(out, updates), new

    return GradientTransformation(init, update)
