"""Bias correction of moving averages that start at zero, and its Nesterov look-ahead.

Both read the optimizer's step count. The correction $1 - \\beta^t$ is computed as
$-\\mathrm{expm1}(t \\log \\beta)$ in the leaf's compute dtype, from the same
$\\beta$ the moving average used (one precision for one hyperparameter).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import elementwise, field, map_leaves, storage, stored
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import UNIT, Range, validate, validate_bool
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.counts import safe_increment
from gradxform.numerics.dtypes import hyper_dtype
from gradxform.numerics.tree_math import zeros_like

PyTree = Any


def debias(b: jax.Array, t: jax.Array) -> jax.Array:
    """$1 - b^t$ as $-\\mathrm{expm1}(t \\log b)$: within a few ulp for every $t$.

    The direct form cancels: for $b = 0.999$ in float32, $1 - b^2$ is 3e-5 off in
    relative terms.
    """
    return -jnp.expm1(t * jnp.log(b))


def bias_correction(decay: Hyperparameter, power: float = 1.0) -> GradientTransformation:
    r"""Divides a moving average by the weight it has gathered so far.

    $$\hat u_t = \frac{u_t}{(1 - \beta^t)^p}, \qquad t = 1, 2, \dots$$

    $t$ is the optimizer's step number (its single count plus one). $p = 1$ corrects a
    moving average; $p = \tfrac12$ corrects the root of one, after it (torch.optim's RAdam
    divides $\sqrt{\nu_t} + \epsilon$ by $\sqrt{1-\beta_2^t}$).

    Args:
      decay: the $\beta$ of the moving average this block follows, in $[0, 1)$.
      power: $p$, `1.0` or `0.5` (a Python number: it chooses the formula).
    """
    if power not in (1.0, 0.5) or isinstance(power, bool):
        raise ValueError(f"{lead('bias_correction')}: power={power!r} must be 1.0 or 0.5.")
    root = power == 0.5
    return elementwise(
        "bias_correction",
        lambda h, u: u / (jnp.sqrt(debias(h.decay, h.t)) if root else debias(h.decay, h.t)),
        hyper={"decay": (decay, UNIT)},
        step=True,
        # `describe` shows the formula of this power, not the docstring's general one
        equation=(
            r"\hat u_t = \frac{u_t}{\sqrt{1 - \beta^t}}, \qquad t = 1, 2, \dots"
            if root
            else r"\hat u_t = \frac{u_t}{1 - \beta^t}, \qquad t = 1, 2, \dots"
        ),
    )


def rectification(
    b2: Hyperparameter, threshold: Hyperparameter = 5.0, *, strict: bool = False
) -> GradientTransformation:
    r"""RAdam's variance rectification, applied to Adam's denominator (Liu et al. 2020).

    $$\rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
    \rho_t = \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t}, \qquad
    r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}$$

    $$\text{output } \frac{u_t}{r_t} \text{ where } \rho_t \ge \text{threshold}, \qquad 1 \text{ elsewhere}$$

    $\rho_t$ is the length of the simple moving average that the EMA of $g^2$ approximates
    after $t$ steps. While it is short ($\rho_t$ below the threshold; the paper's is 4, optax's and
    torch's 5) the adaptive denominator's variance is intractable and the step is plain
    momentum $\hat\mu_t$ (this block outputs 1, so `ratio` returns its numerator); once it is
    long enough the denominator $u_t$ is divided by $r_t \in (0, 1)$, which damps the early
    adaptive steps and tends to 1. $1 - \beta_2^t$ is `debias`'s $-\mathrm{expm1}(t\log\beta_2)$
    and $\rho_t$ is computed in the leaf's compute dtype from the same $\beta_2$ as the moving
    average (see docs/conventions.md for how this meets optax's float32 form).

    Args:
      b2: $\beta_2 \in [0, 1)$, the decay of the second moment this block follows.
      threshold: $\ge 4$ ($r_t$ is real only for $\rho_t \ge 4$).
      strict: rectify where $\rho_t >$ threshold (torch.optim) rather than $\ge$ (optax).
    """
    validate_bool("rectification", "strict", strict)

    def fn(h, u):
        log_b2 = jnp.log(h.b2)
        rho_inf = 2 / (1 - h.b2) - 1
        rho = rho_inf - 2 * h.t * jnp.exp(h.t * log_b2) / -jnp.expm1(h.t * log_b2)
        on = rho > h.threshold if strict else rho >= h.threshold
        # r_t from safe values where it is not used, so that no NaN reaches a gradient through `where`
        rho_s, inf_s = jnp.where(on, rho, 5), jnp.where(on, rho_inf, 6)
        r = jnp.sqrt((rho_s - 4) * (rho_s - 2) * inf_s / ((inf_s - 4) * (inf_s - 2) * rho_s))
        return jnp.where(on, u / r, jnp.ones_like(u))

    return elementwise(
        "rectification",
        fn,
        hyper={"b2": (b2, UNIT), "threshold": (threshold, Range(4.0))},
        step=True,
    )


@per_param("mu")
class NesterovEmaState(NamedTuple):
    """`mu`: the moving average of the updates; `mu_product`: $\\Pi_t$ for a momentum schedule (else `None`)."""

    mu: PyTree
    mu_product: jax.Array | None


def nesterov_ema(decay: Hyperparameter, momentum: Any = None, state_dtype: Any = None) -> GradientTransformation:
    r"""A bias-corrected moving average looked one step ahead (NAdam's numerator, Dozat 2016).

    $$\mu_t = \beta\mu_{t-1} + (1-\beta)g_t, \qquad
    \text{output } \frac{1-m_t}{1-\Pi_t}\,g_t + \frac{m_{t+1}}{1-\Pi_t\,m_{t+1}}\,\mu_t,
    \qquad \Pi_t = \prod_{i \le t} m_i$$

    with momentum coefficients $m_t$. With `momentum=None` they are $m_t = \beta$,
    $\Pi_t = \beta^t$, and the output is optax's NAdam numerator
    $\beta\frac{\mu_t}{1-\beta^{t+1}} + (1-\beta)\frac{g_t}{1-\beta^t}$; the state then
    holds no product. A schedule gives torch.optim's NAdam (its momentum decay); its
    product is kept in the state in the hyperparameter dtype.

    Args:
      decay: $\beta \in [0, 1)$ of the moving average.
      momentum: `None`, or a schedule `count -> m_{count+1}` (the count before the
        update, so `momentum(t - 1)` is $m_t$).
      state_dtype: the dtype $\mu$ is stored in (default: the parameter's).
    """
    validate("nesterov_ema", "decay", decay, UNIT)
    if momentum is not None and not is_schedule(momentum):
        raise TypeError(f"nesterov_ema: momentum must be None or a schedule count -> coefficient, got {momentum!r}.")
    rule = storage("nesterov_ema", state_dtype)

    def init(params):
        check_inexact(params, "nesterov_ema")
        product = None if momentum is None else jnp.ones([], hyper_dtype())
        return NesterovEmaState(zeros_like(params, rule), product)

    def update(updates, state, params, count, extra_args):
        check_match(updates, state.mu, "nesterov_ema", rule)
        values = {"decay": resolve(decay, count, "decay")}
        if momentum is None:

            def fn(h, g, m):
                m = h.decay * m + (1 - h.decay) * g
                out = h.decay * m / debias(h.decay, h.t + 1) + (1 - h.decay) * g / debias(h.decay, h.t)
                return out, m

            product = None
        else:
            m_now, m_next = resolve(momentum, count, "momentum"), resolve(momentum, safe_increment(count), "momentum")
            product = state.mu_product.astype(m_now.dtype) * m_now
            values.update(c_grad=(1 - m_now) / (1 - product), c_mom=m_next / (1 - product * m_next))

            def fn(h, g, m):
                m = h.decay * m + (1 - h.decay) * g
                return h.c_grad * g + h.c_mom * m, m

            product = product.astype(state.mu_product.dtype)
        results = map_leaves(fn, values, count, updates, state.mu)
        return field(updates, results, 0), NesterovEmaState(stored(field(updates, results, 1), state.mu), product)

    return make_block("nesterov_ema", init, update, needs_step=True)
