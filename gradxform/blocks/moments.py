"""Running statistics of the incoming updates: the seeds' moving averages and sums."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks._common import cast_like, dtype_rule, leafwise
from gradxform.core import GradientTransformation
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import (
    PyTree,
    abs_sq,
    check_inexact,
    check_match,
    full_like,
    real_dtype,
    safe_increment,
    zero_count,
    zeros_like,
)


class EmaState(NamedTuple):
    count: jax.Array
    mu: PyTree


def ema(decay: Hyperparameter, state_dtype: Any = None) -> GradientTransformation:
    r"""Exponential moving average of the updates (seed 001).

    .. math:: \mu_t = \beta\,\mu_{t-1} + (1-\beta)\,g_t, \qquad \text{output } \mu_t

    with ``decay`` :math:`=\beta \in [0, 1)` and :math:`\mu_0 = 0`. Not bias
    corrected: chain :func:`bias_correction` for that.
    """
    validate("ema", "decay", decay, 0.0, 1.0, high_open=True)
    rule = dtype_rule("ema", state_dtype)

    def init(params):
        check_inexact(params, "ema")
        return EmaState(zero_count(), zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.mu, "ema", rule)
        b = resolve(decay, state.count, "decay")
        mu = leafwise(lambda b, g, m: b * m + (1 - b) * g, b, updates, state.mu)
        return cast_like(mu, updates), EmaState(safe_increment(state.count), cast_like(mu, state.mu))

    return GradientTransformation(init, update)


class EmaSqState(NamedTuple):
    count: jax.Array
    nu: PyTree


def ema_sq(decay: Hyperparameter, state_dtype: Any = None) -> GradientTransformation:
    r"""Exponential moving average of the squared updates (RMSProp's statistic).

    .. math:: \nu_t = \beta\,\nu_{t-1} + (1-\beta)\,|g_t|^2, \qquad \text{output } \nu_t

    :math:`|g|^2` is the squared modulus for complex updates, so :math:`\nu`
    is real. :math:`\nu_0 = 0`.
    """
    validate("ema_sq", "decay", decay, 0.0, 1.0, high_open=True)
    rule = dtype_rule("ema_sq", state_dtype, real=True)

    def init(params):
        check_inexact(params, "ema_sq")
        return EmaSqState(zero_count(), zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.nu, "ema_sq", rule)
        b = resolve(decay, state.count, "decay")
        nu = leafwise(lambda b, g, n: b * n + (1 - b) * abs_sq(g), b, updates, state.nu)
        out = jax.tree.map(lambda n, g: n.astype(real_dtype(g.dtype)), nu, updates)
        return out, EmaSqState(safe_increment(state.count), cast_like(nu, state.nu))

    return GradientTransformation(init, update)


class EmaVarState(NamedTuple):
    count: jax.Array
    mu: PyTree
    nu: PyTree


def ema_var(decay: Hyperparameter, state_dtype: Any = None) -> GradientTransformation:
    r"""Moving-average variance of the updates (centered RMSProp's statistic).

    .. math::
        \mu_t = \beta\mu_{t-1} + (1-\beta)g_t,\quad
        \nu_t = \beta\nu_{t-1} + (1-\beta)|g_t|^2,\qquad
        \text{output } \nu_t - |\mu_t|^2
    """
    validate("ema_var", "decay", decay, 0.0, 1.0, high_open=True)
    mu_rule = dtype_rule("ema_var", state_dtype)
    nu_rule = dtype_rule("ema_var", state_dtype, real=True)

    def init(params):
        check_inexact(params, "ema_var")
        return EmaVarState(zero_count(), zeros_like(params, mu_rule), zeros_like(params, nu_rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.mu, "ema_var", mu_rule)
        b = resolve(decay, state.count, "decay")
        mu = leafwise(lambda b, g, m: b * m + (1 - b) * g, b, updates, state.mu)
        nu = leafwise(lambda b, g, n: b * n + (1 - b) * abs_sq(g), b, updates, state.nu)
        var = jax.tree.map(lambda m, n: n - abs_sq(m), mu, nu)
        out = jax.tree.map(lambda v, g: v.astype(real_dtype(g.dtype)), var, updates)
        new = EmaVarState(safe_increment(state.count), cast_like(mu, state.mu), cast_like(nu, state.nu))
        return out, new

    return GradientTransformation(init, update)


class SumSqState(NamedTuple):
    count: jax.Array
    sum_sq: PyTree


def sum_sq(initial_accumulator_value: Hyperparameter = 0.0, state_dtype: Any = None) -> GradientTransformation:
    r"""Running sum of squared updates (Adagrad's statistic, seed 003).

    .. math:: s_t = s_{t-1} + |g_t|^2, \qquad s_0 = \text{initial\_accumulator\_value},
              \qquad \text{output } s_t
    """
    validate("sum_sq", "initial_accumulator_value", initial_accumulator_value, 0.0)
    if callable(initial_accumulator_value):
        raise TypeError("sum_sq: initial_accumulator_value is used once, at init; it cannot be a schedule.")
    rule = dtype_rule("sum_sq", state_dtype, real=True)

    def init(params):
        check_inexact(params, "sum_sq")
        return SumSqState(zero_count(), full_like(params, initial_accumulator_value, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.sum_sq, "sum_sq", rule)
        s = leafwise(lambda _, g, s: s + abs_sq(g), jnp.zeros([]), updates, state.sum_sq)
        out = jax.tree.map(lambda x, g: x.astype(real_dtype(g.dtype)), s, updates)
        return out, SumSqState(safe_increment(state.count), cast_like(s, state.sum_sq))

    return GradientTransformation(init, update)


class RunningMaxState(NamedTuple):
    max: PyTree


def running_max(state_dtype: Any = None) -> GradientTransformation:
    r"""Elementwise running maximum of the updates (AMSGrad's safeguard).

    .. math:: m_t = \max(m_{t-1}, u_t), \qquad m_0 = 0, \qquad \text{output } m_t

    Its inputs are real (a maximum of complex numbers is undefined), so the
    state is stored in the parameters' real dtype (or ``state_dtype``). Where
    it sits in a chain is the difference between optax's AMSGrad (after bias
    correction) and PyTorch's (before it).
    """
    rule = dtype_rule("running_max", state_dtype, real=True)

    def init(params):
        check_inexact(params, "running_max")
        return RunningMaxState(zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.max, "running_max")
        new = leafwise(lambda _, u, m: jnp.maximum(m, u), jnp.zeros([]), updates, state.max)
        return cast_like(new, updates), RunningMaxState(cast_like(new, state.max))

    return GradientTransformation(init, update)
