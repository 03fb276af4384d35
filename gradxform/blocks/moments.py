"""Running statistics of the incoming updates: moving averages, sums and maxima.

Each is one line of math on the skeleton of `gradxform.blocks.base`: stored in
the parameter's dtype (or `state_dtype`), computed in at least float32.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradxform.blocks.base import elementwise, storage
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, UNIT, validate_bool
from gradxform.hyper.values import Hyperparameter, is_schedule
from gradxform.numerics.tree_math import abs_sq

PyTree = Any


@per_param("mu")
class EmaState(NamedTuple):
    """`mu`: the moving average of the updates."""

    mu: PyTree


def ema(decay: Hyperparameter, state_dtype: Any = None, nesterov: bool = False) -> GradientTransformation:
    r"""Exponential moving average of the updates.

    $$\mu_t = \beta\,\mu_{t-1} + (1-\beta)\,g_t, \qquad \text{output } \mu_t
    \quad (\text{or, with } \texttt{nesterov}, \ \beta\mu_t + (1-\beta)g_t)$$

    with $\mu_0 = 0$. Not bias corrected: chain `bias_correction` for that (or
    `nesterov_ema` for a bias-corrected look-ahead).

    Args:
      decay: $\beta \in [0, 1)$.
      state_dtype: the dtype $\mu$ is stored in (default: the parameter's).
      nesterov: output the look-ahead $\beta\mu_t + (1-\beta)g_t$ (ADOPT's Nesterov form).
    """
    nesterov = validate_bool("ema", "nesterov", nesterov)

    def fn(h, g, m):
        m = h.decay * m + (1 - h.decay) * g
        return (h.decay * m + (1 - h.decay) * g) if nesterov else m, m

    return elementwise(
        "ema", fn, hyper={"decay": (decay, UNIT)}, state=EmaState, rules={"mu": storage("ema", state_dtype)}
    )


@per_param("nu")
class EmaSqState(NamedTuple):
    """`nu`: the moving average of the squared updates (real)."""

    nu: PyTree


def ema_sq(decay: Hyperparameter, state_dtype: Any = None) -> GradientTransformation:
    r"""Exponential moving average of the squared updates (RMSProp's statistic).

    $$\nu_t = \beta\,\nu_{t-1} + (1-\beta)\,|g_t|^2, \qquad \text{output } \nu_t$$

    $|g|^2$ is the squared modulus for complex updates, so $\nu$ is real; $\nu_0 = 0$.

    Args:
      decay: $\beta \in [0, 1)$.
      state_dtype: the dtype $\nu$ is stored in (default: the parameter's real dtype).
    """

    def fn(h, g, n):
        n = h.decay * n + (1 - h.decay) * abs_sq(g)
        return n, n

    return elementwise(
        "ema_sq",
        fn,
        hyper={"decay": (decay, UNIT)},
        state=EmaSqState,
        rules={"nu": storage("ema_sq", state_dtype, real=True)},
    )


@per_param("mu", "nu")
class EmaVarState(NamedTuple):
    """`mu`, `nu`: moving averages of the updates and of their squares."""

    mu: PyTree
    nu: PyTree


def ema_var(decay: Hyperparameter, state_dtype: Any = None) -> GradientTransformation:
    r"""Moving-average variance of the updates (centered RMSProp's statistic).

    $$\mu_t = \beta\mu_{t-1} + (1-\beta)g_t,\quad \nu_t = \beta\nu_{t-1} + (1-\beta)|g_t|^2,\qquad
    \text{output } \nu_t - |\mu_t|^2$$

    Args:
      decay: $\beta \in [0, 1)$.
      state_dtype: the dtype both moments are stored in (default: the parameter's; $\nu$ real).
    """

    def fn(h, g, m, n):
        m = h.decay * m + (1 - h.decay) * g
        n = h.decay * n + (1 - h.decay) * abs_sq(g)
        return n - abs_sq(m), m, n

    return elementwise(
        "ema_var",
        fn,
        hyper={"decay": (decay, UNIT)},
        state=EmaVarState,
        rules={"mu": storage("ema_var", state_dtype), "nu": storage("ema_var", state_dtype, real=True)},
    )


@per_param("sum_sq")
class SumSqState(NamedTuple):
    """`sum_sq`: the running sum of squared updates (real)."""

    sum_sq: PyTree


def sum_sq(initial_accumulator_value: Hyperparameter = 0.0, state_dtype: Any = None) -> GradientTransformation:
    r"""Running sum of squared updates (Adagrad's statistic).

    $$s_t = s_{t-1} + |g_t|^2, \qquad s_0 = \text{initial\_accumulator\_value}, \qquad \text{output } s_t$$

    Args:
      initial_accumulator_value: $s_0 \ge 0$, used once, at init (not a schedule).
      state_dtype: the dtype $s$ is stored in (default: the parameter's real dtype).
    """
    if is_schedule(initial_accumulator_value):
        raise TypeError(f"{lead('sum_sq')}: initial_accumulator_value is used once, at init; it cannot be a schedule.")

    def fn(h, g, s):
        s = s + abs_sq(g)
        return s, s

    return elementwise(
        "sum_sq",
        fn,
        hyper={"initial_accumulator_value": (initial_accumulator_value, NONNEGATIVE)},
        state=SumSqState,
        rules={"sum_sq": storage("sum_sq", state_dtype, real=True)},
        initial={"sum_sq": initial_accumulator_value},
    )


@per_param("max")
class RunningMaxState(NamedTuple):
    """`max`: the elementwise maximum of the updates so far."""

    max: PyTree


def running_max(state_dtype: Any = None) -> GradientTransformation:
    r"""Elementwise running maximum of the updates (AMSGrad's safeguard).

    $$m_t = \max(m_{t-1}, u_t), \qquad m_0 = 0, \qquad \text{output } m_t$$

    Its inputs are real statistics (a maximum of complex numbers is undefined), so
    the state is stored in the parameters' real dtype (or `state_dtype`). Where it
    sits in a chain is the difference between optax's AMSGrad (after bias
    correction) and PyTorch's (before it).

    Args:
      state_dtype: the dtype $m$ is stored in (default: the parameter's real dtype).
    """

    def fn(h, u, m):
        m = jnp.maximum(m, u)
        return m, m

    return elementwise(
        "running_max", fn, state=RunningMaxState, rules={"max": storage("running_max", state_dtype, real=True)}
    )
