"""Blocks that use the previous step's statistic: the previous gradient, the previous second moment.

`optimistic_gradient` extrapolates with the previous gradient (optimistic gradient
descent, Popov 1980; Daskalakis et al. 2018); `scale_by_previous_rms` divides by the
root of the second moment *before* the current gradient enters it (ADOPT,
Taniguchi et al. 2024), so the gradient and its normalizer are independent.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import elementwise, map_leaves, storage, stored
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.hyper.validate import ANY, NONNEGATIVE, UNIT, validate
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.tree_math import abs_sq, full_like

PyTree = Any


@per_param("prev")
class OptimisticState(NamedTuple):
    """`prev`: the previous update; `first`: no update has been seen yet (a boolean scalar)."""

    prev: PyTree
    first: jax.Array


def optimistic_gradient(alpha: Hyperparameter = 1.0, beta: Hyperparameter = 1.0) -> GradientTransformation:
    r"""Extrapolates with the previous update (optimistic gradient descent).

    $$u_t = (\alpha + \beta)\,g_t - \beta\,g_{t-1}, \qquad g_0 = g_1$$

    so the first output is $\alpha g_1$ (optax's rule). `alpha=1, beta=1` is the
    optimistic step $2g_t - g_{t-1}$. The state holds $g_{t-1}$ and a boolean flag for
    the first step (as optax's), so the block needs no step count (unless a
    hyperparameter is a schedule).

    Args:
      alpha: $\alpha$, the weight of the current update.
      beta: $\beta$, the weight of the difference $g_t - g_{t-1}$.
    """
    validate("optimistic_gradient", "alpha", alpha, ANY)
    validate("optimistic_gradient", "beta", beta, ANY)
    rule = storage("optimistic_gradient")

    def init(params):
        check_inexact(params, "optimistic_gradient")
        return OptimisticState(full_like(params, 0, rule), jnp.array(True))

    def update(updates, state, params, count, extra_args):
        check_match(updates, state.prev, "optimistic_gradient", rule)
        values = {"alpha": resolve(alpha, count, "alpha"), "beta": resolve(beta, count, "beta")}

        def fn(h, g, prev):
            prev = jnp.where(state.first, g, prev)
            return (h.alpha + h.beta) * g - h.beta * prev

        out = map_leaves(fn, values, count, updates, state.prev)
        return out, OptimisticState(stored(updates, state.prev), jnp.zeros_like(state.first))

    return make_block("optimistic_gradient", init, update, needs_step=is_schedule(alpha) or is_schedule(beta))


@per_param("nu")
class PreviousRmsState(NamedTuple):
    """`nu`: the moving average of the squared updates, including the latest one."""

    nu: PyTree


def scale_by_previous_rms(b2: Hyperparameter = 0.9999, eps: Hyperparameter = 1e-6) -> GradientTransformation:
    r"""Divides by the root of the second moment *before* this update (ADOPT's normalization).

    $$u_t = \frac{g_t}{\max(\sqrt{\nu_{t-1}}, \epsilon)}, \qquad
    \nu_t = \beta_{2,t}\,\nu_{t-1} + (1-\beta_{2,t})\,|g_t|^2, \qquad \beta_{2,1} = 0,\ \beta_{2,t>1} = \beta_2$$

    so $\nu_1 = |g_1|^2$ and the first output is $g_1/\epsilon$ (ADOPT discards it:
    its clipping bound and momentum weight are 0 at the first step). $\nu$ is real.

    Args:
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, the floor of the root.
    """
    validate("scale_by_previous_rms", "b2", b2, UNIT)

    def fn(h, g, nu):
        out = g / jnp.maximum(jnp.sqrt(nu), h.eps)
        b = jnp.where(h.t > 1, h.b2, 0)
        return out, b * nu + (1 - b) * abs_sq(g)

    return elementwise(
        "scale_by_previous_rms",
        fn,
        hyper={"b2": (b2, UNIT), "eps": (eps, NONNEGATIVE)},
        state=PreviousRmsState,
        rules={"nu": storage("scale_by_previous_rms", real=True)},
        step=True,
    )
