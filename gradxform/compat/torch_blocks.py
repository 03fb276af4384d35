"""The two pieces of torch.optim's math that the library's blocks do not state.

* :func:`dampened_trace`: SGD's momentum buffer, which starts at the first
  gradient (undampened) and dampens every later one.
* :func:`nadam_momentum`: NAdam's numerator with torch's momentum-decay schedule
  :math:`\\mu_t = \\beta_1(1 - \\tfrac12\\,0.96^{t\\,\\psi})` and its running product.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks._common import cast_like, dtype_rule, leafwise
from gradxform.core import GradientTransformation
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import PyTree, check_inexact, check_match, hyper_dtype, safe_increment, zero_count, zeros_like


class DampenedTraceState(NamedTuple):
    count: jax.Array
    trace: PyTree


def dampened_trace(
    momentum: Hyperparameter, dampening: Hyperparameter = 0.0, nesterov: bool = False, state_dtype: Any = None
) -> GradientTransformation:
    r"""torch.optim.SGD's momentum buffer: the first step is not dampened.

    .. math::
        b_1 = g_1, \qquad b_t = \mu\,b_{t-1} + (1-\tau)\,g_t \;(t > 1), \qquad
        \text{output } b_t \;\text{ or, with Nesterov, }\; g_t + \mu\,b_t

    with ``momentum`` :math:`=\mu \in [0, 1)` and ``dampening``
    :math:`=\tau \in [0, 1]`. With :math:`\tau = 0` it equals
    :func:`gradxform.trace`.
    """
    validate("dampened_trace", "momentum", momentum, 0.0, 1.0, high_open=True)
    validate("dampened_trace", "dampening", dampening, 0.0, 1.0)
    rule = dtype_rule("dampened_trace", state_dtype)

    def init(params):
        check_inexact(params, "dampened_trace")
        return DampenedTraceState(zero_count(), zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.trace, "dampened_trace", rule)
        m = resolve(momentum, state.count, "momentum")
        d = resolve(dampening, state.count, "dampening")
        w = jnp.where(state.count == 0, jnp.ones_like(d), 1 - d)  # b_0 = 0, so b_1 = g_1: undampened
        b = leafwise(lambda m, g, b: m * b + w.astype(m.dtype) * g, m, updates, state.trace)
        out = leafwise(lambda m, g, b: g + m * b, m, updates, b) if nesterov else b
        return cast_like(out, updates), DampenedTraceState(safe_increment(state.count), cast_like(b, state.trace))

    return GradientTransformation(init, update)


class NadamMomentumState(NamedTuple):
    count: jax.Array
    mu: PyTree
    mu_product: jax.Array


def _momentum_cache(b1: jax.Array, t: jax.Array, momentum_decay: jax.Array) -> jax.Array:
    return b1 * (1 - 0.5 * jnp.asarray(0.96, b1.dtype) ** (t.astype(b1.dtype) * momentum_decay))


def nadam_momentum(
    b1: Hyperparameter = 0.9, momentum_decay: Hyperparameter = 4e-3, state_dtype: Any = None
) -> GradientTransformation:
    r"""NAdam's numerator as torch.optim.NAdam computes it (Dozat 2016 with a momentum schedule).

    .. math::
        \mu_t = \beta_1\bigl(1 - \tfrac12\,0.96^{t\psi}\bigr), \quad
        \Pi_t = \prod_{i \le t}\mu_i, \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \\
        \text{output } \frac{1-\mu_t}{1-\Pi_t}\,g_t + \frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,m_t

    with ``momentum_decay`` :math:`=\psi \ge 0`. :math:`\Pi_t` is kept in the
    state as a scalar of the hyperparameter dtype (float64 under x64).
    """
    validate("nadam_momentum", "b1", b1, 0.0, 1.0, high_open=True)
    validate("nadam_momentum", "momentum_decay", momentum_decay, 0.0)
    rule = dtype_rule("nadam_momentum", state_dtype)

    def init(params):
        check_inexact(params, "nadam_momentum")
        return NadamMomentumState(zero_count(), zeros_like(params, rule), jnp.ones([], hyper_dtype()))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.mu, "nadam_momentum", rule)
        b = resolve(b1, state.count, "b1")
        psi = resolve(momentum_decay, state.count, "momentum_decay")
        t = safe_increment(state.count)
        mu_t, mu_next = _momentum_cache(b, t, psi), _momentum_cache(b, safe_increment(t), psi)
        prod = state.mu_product.astype(b.dtype) * mu_t
        c_grad = (1 - mu_t) / (1 - prod)
        c_mom = mu_next / (1 - prod * mu_next)
        m = leafwise(lambda b, g, m: b * m + (1 - b) * g, b, updates, state.mu)
        out = leafwise(lambda c, g, m: c * g + c_mom.astype(c.dtype) * m, c_grad, updates, m)
        new = NadamMomentumState(t, cast_like(m, state.mu), prod.astype(state.mu_product.dtype))
        return cast_like(out, updates), new

    return GradientTransformation(init, update)
