"""Averaged iterates: the weights to evaluate, kept beside the weights being trained."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import elementwise
from gradxform.core.state import evaluates, per_param
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import NONNEGATIVE
from gradxform.hyper.values import Hyperparameter

PyTree = Any


def _averaged(node: Any, params: PyTree) -> PyTree:
    return jax.tree.map(
        lambda d, p: p if d is None else (p + d).astype(jnp.result_type(p)),
        node.offset,
        params,
        is_leaf=lambda x: x is None,
    )


@evaluates(_averaged)
@per_param("offset")
class AverageState(NamedTuple):
    """`offset`: the averaged iterate minus the parameters, $\\bar\\theta_t - \\theta_t$ (0 until averaging starts).

    `gradxform.eval_params(state, params)` returns $\\theta_t + $ `offset` $= \\bar\\theta_t$.
    """

    offset: PyTree


def iterate_average(t0: Hyperparameter = 1e6) -> GradientTransformation:
    r"""Polyak-Ruppert averaging of the iterates from step $t_0$ on (ASGD's average, torch.optim's rule).

    $$\theta_t = \theta_{t-1} + u_t, \qquad
    \bar\theta_t = \bar\theta_{t-1} + \mu_t(\theta_t - \bar\theta_{t-1}), \qquad
    \mu_t = \frac{1}{\max(1,\ t - 1 - t_0)}$$

    so $\bar\theta_t = \theta_t$ up to step $t_0 + 2$ and the running mean of the
    iterates after. The update passes through unchanged. The state keeps the
    offset $d_t = \bar\theta_t - \theta_t$, updated as $d_t = (1-\mu_t)(d_{t-1} + \theta_{t-1} - \theta_t)$
    with $\theta_t$ rounded as `apply_updates` rounds it; so before the first step and
    while $\mu_t = 1$ the average *is* the parameters, exactly, and
    `gradxform.eval_params(state, params)` returns $\bar\theta_t$. Place it last in a
    chain (it reads the final update). `update` needs `params`.

    Args:
      t0: $t_0 \ge 0$, the step after which averaging starts.
    """

    def fn(h, u, d, p, dtypes):
        pdt = dtypes[-1]
        new = (p.astype(pdt) + u.astype(pdt)).astype(pdt)  # the parameter apply_updates will make
        mu = 1 / jnp.maximum(1, h.t - 1 - h.t0)
        d = jnp.where(mu == 1, 0, (1 - mu) * (d + p - new.astype(p.dtype)))
        return u, d

    return elementwise(
        "iterate_average",
        fn,
        hyper={"t0": (t0, NONNEGATIVE)},
        state=AverageState,
        step=True,
        with_params=True,
        dtypes=True,
    )
