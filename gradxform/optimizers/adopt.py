"""ADOPT: Adam with the second moment of the previous steps, and clipping, so it converges for any b2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradxform.blocks import clip, ema, scale_by_learning_rate, scale_by_previous_rms
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.errors import lead
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, resolve, validate, validate_bool, validate_dtype


def quarter_power(count: jax.Array) -> jax.Array:
    """ADOPT's clipping bound $c_t = t^{1/4}$ of the step count $t$ before the update (0 at the first)."""
    return count**0.25


@public
def adopt(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.9999,
    eps: Hyperparameter = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] | None = None,
) -> GradientTransformation:
    r"""ADOPT (Taniguchi et al. 2024): normalize by the second moment *before* this gradient, clip, then average.

    $$\begin{aligned}
    x_t &= \mathrm{clip}\!\left(\frac{g_t}{\max(\sqrt{\nu_{t-1}}, \epsilon)}, \pm c_{t-1}\right), \\
    \nu_t &= \beta_2\nu_{t-1} + (1-\beta_2)g_t^2\ (\nu_1 = g_1^2),\\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)x_t\ (m_1 = 0), \\
    \Delta\theta_t &= -\eta\, m_t \ \ (\text{Nesterov: } -\eta(\beta_1 m_t + (1-\beta_1)x_t))
    \end{aligned}$$

    with $c_k = k^{1/4}$: the first step only fills $\nu$ (its update is 0).

    Chain: `scale_by_previous_rms(b2, eps)`, `clip(count -> clip_value_fn(count))` (when
    `use_clipping`), `ema(count -> b1 if count > 0 else 1, mu_dtype, nesterov)`,
    `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, the floor of the root.
      mu_dtype: the dtype $m$ is stored in.
      nesterov: output the look-ahead $\beta_1 m_t + (1-\beta_1)x_t$.
      use_clipping: clip the normalized gradient to $\pm c_{t-1}$.
      clip_value_fn: `count -> bound`, the count before the update; `None` is $t^{1/4}$
        (optax's default, `lambda x: x**0.25`).
    """
    who = "adopt"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "b1", b1, UNIT)
    validate(who, "b2", b2, UNIT)
    validate(who, "eps", eps, NONNEGATIVE)
    validate_dtype(who, "mu_dtype", mu_dtype)
    nesterov = validate_bool(who, "nesterov", nesterov)
    use_clipping = validate_bool(who, "use_clipping", use_clipping)
    if clip_value_fn is None:
        clip_value_fn = quarter_power
    elif not callable(clip_value_fn):
        raise TypeError(f"{lead(who)}: clip_value_fn must be a function count -> bound, got {clip_value_fn!r}.")

    def first_step_b1(count):  # the first x is g / eps: not averaged in
        return jnp.where(count > 0, resolve(b1, count, "b1"), 1.0)

    return chain(
        scale_by_previous_rms(b2, eps),
        clip(lambda count: clip_value_fn(count)) if use_clipping else identity(),
        ema(first_step_b1, mu_dtype, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )
