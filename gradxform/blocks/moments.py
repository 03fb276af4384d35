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
from gradxform.hyper.validate import ANY, CLOSED_UNIT, NONNEGATIVE, POSITIVE, UNIT, validate_bool
from gradxform.hyper.values import Hyperparameter, is_schedule, is_zero
from gradxform.numerics.tree_math import abs_sq

PyTree = Any


@per_param("mu")
class EmaState(NamedTuple):
    """`mu`: the moving average of the updates."""

    mu: PyTree


def ema(
    decay: Hyperparameter, state_dtype: Any = None, initial: Hyperparameter = 0.0, nesterov: bool = False
) -> GradientTransformation:
    r"""Exponential moving average of the updates.

    $$\mu_t = \beta\,\mu_{t-1} + (1-\beta)\,g_t, \qquad \text{output } \mu_t
    \quad (\text{or, with } \texttt{nesterov}, \ \beta\mu_t + (1-\beta)g_t)$$

    with $\mu_0 = 0$ (or `initial`). Not bias corrected: chain `bias_correction` for that (or
    `nesterov_ema` for a bias-corrected look-ahead).

    Args:
      decay: $\beta \in [0, 1)$.
      state_dtype: the dtype $\mu$ is stored in (default: the parameter's).
      initial: $\mu_0$, used once, at init (not a schedule); Yogi starts its moments at $10^{-6}$.
      nesterov: output the look-ahead $\beta\mu_t + (1-\beta)g_t$ (ADOPT's Nesterov form).
    """
    nesterov = validate_bool("ema", "nesterov", nesterov)
    _init_only("ema", "initial", initial)

    def fn(h, g, m):
        m = h.decay * m + (1 - h.decay) * g
        return (h.decay * m + (1 - h.decay) * g) if nesterov else m, m

    hyper = {"decay": (decay, UNIT)}
    if not is_zero(initial):
        hyper["initial"] = (initial, ANY)
    return elementwise(
        "ema",
        fn,
        hyper=hyper,
        state=EmaState,
        rules={"mu": storage("ema", state_dtype)},
        initial={"mu": initial},
    )


def _init_only(who: str, name: str, value: Any) -> None:
    if is_schedule(value):
        raise TypeError(f"{lead(who)}: {name} is used once, at init; it cannot be a schedule.")


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

    $$s_t = s_{t-1} + |g_t|^2, \qquad s_0 = \text{initial_accumulator_value}, \qquad \text{output } s_t$$

    Args:
      initial_accumulator_value: $s_0 \ge 0$, used once, at init (not a schedule).
      state_dtype: the dtype $s$ is stored in (default: the parameter's real dtype).
    """
    _init_only("sum_sq", "initial_accumulator_value", initial_accumulator_value)

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


@per_param("nu")
class InfinityMomentState(NamedTuple):
    """`nu`: the exponentially weighted infinity norm of the updates (real)."""

    nu: PyTree


def infinity_moment(
    decay: Hyperparameter, eps: Hyperparameter = 0.0, state_dtype: Any = None
) -> GradientTransformation:
    r"""Exponentially weighted infinity norm of the updates (AdaMax's second moment, Kingma & Ba 2015, §7.1).

    $$u_t = \max(\beta\,u_{t-1},\; |g_t| + \epsilon), \qquad u_0 = 0, \qquad \text{output } u_t$$

    Adam's $\nu_t^{1/p}$ for $p \to \infty$: no bias correction is needed, since $u_t$ is a
    maximum, not an average. With `eps` inside the maximum it is optax's and torch.optim's
    form, and the output is never zero; Keras adds its `epsilon` after (`add_eps`).

    Args:
      decay: $\beta \in [0, 1)$.
      eps: $\epsilon \ge 0$, added to $|g_t|$ inside the maximum.
      state_dtype: the dtype $u$ is stored in (default: the parameter's real dtype).
    """

    def fn(h, g, u):
        u = jnp.maximum(h.decay * u, jnp.abs(g) + h.eps)
        return u, u

    return elementwise(
        "infinity_moment",
        fn,
        hyper={"decay": (decay, UNIT), "eps": (eps, NONNEGATIVE)},
        state=InfinityMomentState,
        rules={"nu": storage("infinity_moment", state_dtype, real=True)},
    )


@per_param("nu")
class YogiSqState(NamedTuple):
    """`nu`: Yogi's second moment (real)."""

    nu: PyTree


def yogi_sq(
    decay: Hyperparameter, initial_accumulator_value: Hyperparameter = 1e-6, state_dtype: Any = None
) -> GradientTransformation:
    r"""Yogi's second moment: an additive update that moves by at most $(1-\beta)g^2$ (Zaheer et al. 2018).

    $$\nu_t = \nu_{t-1} - (1-\beta)\,\mathrm{sign}(\nu_{t-1} - g_t^2)\,g_t^2, \qquad \text{output } \nu_t$$

    Adam's EMA is $\nu_t = \nu_{t-1} - (1-\beta)(\nu_{t-1} - g_t^2)$: its step is proportional to
    $\nu_{t-1}$, so a large $\nu$ forgets quickly; Yogi's step depends on $\nu_{t-1}$ only through the
    sign, so the effective learning rate grows slowly when gradients shrink. $\nu$ stays
    positive from a positive start ($\nu_t \ge \beta\nu_{t-1}$).

    Args:
      decay: $\beta \in [0, 1)$.
      initial_accumulator_value: $\nu_0 > 0$, used once, at init (not a schedule).
      state_dtype: the dtype $\nu$ is stored in (default: the parameter's real dtype).
    """
    _init_only("yogi_sq", "initial_accumulator_value", initial_accumulator_value)

    def fn(h, g, n):
        g2 = abs_sq(g)
        n = n - (1 - h.decay) * jnp.sign(n - g2) * g2
        return n, n

    return elementwise(
        "yogi_sq",
        fn,
        hyper={"decay": (decay, UNIT), "initial_accumulator_value": (initial_accumulator_value, POSITIVE)},
        state=YogiSqState,
        rules={"nu": storage("yogi_sq", state_dtype, real=True)},
        initial={"nu": initial_accumulator_value},
    )


@per_param("nu")
class BeliefSqState(NamedTuple):
    """`nu`: AdaBelief's $s$, the moving average of squared prediction errors (real)."""

    nu: PyTree


def belief_sq(decay: Hyperparameter, eps_root: Hyperparameter = 0.0, state_dtype: Any = None) -> GradientTransformation:
    r"""AdaBelief's second moment: the moving average of the squared prediction error (Zhuang et al. 2020).

    $$s_t = \beta\,s_{t-1} + (1-\beta)\,|g_t - \mu_t|^2 + \epsilon_{root}, \qquad \text{output } s_t$$

    Its input is the prediction error $g_t - \mu_t$ (the gradient minus its moving average):
    `ratio(numerator, chain(belief_sq(b2), ...), residual=True)` feeds it the numerator's. A
    gradient close to its prediction is "believed" (small $s_t$: a large step); a surprising
    one is not. $\epsilon_{root}$ is added to the stored state at every step, as in the paper's
    Algorithm 2 and in optax.

    Args:
      decay: $\beta \in [0, 1)$.
      eps_root: $\epsilon_{root} \ge 0$.
      state_dtype: the dtype $s$ is stored in (default: the parameter's real dtype).
    """

    def fn(h, r, s):
        s = h.decay * s + (1 - h.decay) * abs_sq(r) + h.eps_root
        return s, s

    return elementwise(
        "belief_sq",
        fn,
        hyper={"decay": (decay, UNIT), "eps_root": (eps_root, NONNEGATIVE)},
        state=BeliefSqState,
        rules={"nu": storage("belief_sq", state_dtype, real=True)},
    )


@per_param("mu")
class InterpolatedEmaState(NamedTuple):
    """`mu`: the moving average of the updates (with the slower decay)."""

    mu: PyTree


def interpolated_ema(b1: Hyperparameter, b2: Hyperparameter, state_dtype: Any = None) -> GradientTransformation:
    r"""Lion's momentum: the output interpolates the gradient with the *previous* average (Chen et al. 2023).

    $$c_t = \beta_1\mu_{t-1} + (1-\beta_1)\,g_t \;\text{(output)}, \qquad
    \mu_t = \beta_2\mu_{t-1} + (1-\beta_2)\,g_t$$

    Two decays for one moment: the step direction weighs the current gradient by $1-\beta_1$
    (0.1 by default), the kept average by $1-\beta_2$ (0.01): a short memory for the update, a
    long one for the momentum. With $\beta_1 = \beta_2$ it is `ema`'s output one step late.

    Args:
      b1: $\beta_1 \in [0, 1]$, the interpolation weight of the previous average.
      b2: $\beta_2 \in [0, 1)$, the average's decay.
      state_dtype: the dtype $\mu$ is stored in (default: the parameter's).
    """

    def fn(h, g, m):
        c = (1 - h.b1) * g + h.b1 * m
        return c, h.b2 * m + (1 - h.b2) * g

    return elementwise(
        "interpolated_ema",
        fn,
        hyper={"b1": (b1, CLOSED_UNIT), "b2": (b2, UNIT)},
        state=InterpolatedEmaState,
        rules={"mu": storage("interpolated_ema", state_dtype)},
    )
