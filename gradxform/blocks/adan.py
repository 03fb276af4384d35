"""Adan's three moments: of the gradient, of its difference, and of the extrapolated gradient's square."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradxform.blocks.base import elementwise, storage
from gradxform.blocks.correction import debias
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import NONNEGATIVE, UNIT
from gradxform.hyper.values import Hyperparameter
from gradxform.numerics.tree_math import abs_sq

PyTree = Any


@per_param("m", "v", "n", "prev")
class AdanState(NamedTuple):
    """`m`, `v`, `n`: the moments of $g$, of $g_t - g_{t-1}$ and of $|g + (1-\\beta_2)\\Delta|^2$ (real);
    `prev`: the previous gradient."""

    m: PyTree
    v: PyTree
    n: PyTree
    prev: PyTree


def scale_by_adan(
    b1: Hyperparameter = 0.98,
    b2: Hyperparameter = 0.92,
    b3: Hyperparameter = 0.99,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
) -> GradientTransformation:
    r"""Adan's adaptive Nesterov step (Xie et al. 2022, Algorithm 1).

    $$\begin{aligned}
    \Delta_t &= g_t - g_{t-1}\ (\Delta_1 = 0), \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)g_t, \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\Delta_t,\\
    n_t &= \beta_3 n_{t-1} + (1-\beta_3)\,|g_t + (1-\beta_2)\Delta_t|^2, \\
    u_t &= \frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}
    \end{aligned}$$

    with each moment bias-corrected by its own $1-\beta^t$. One block, because the
    gradient difference feeds two of the moments (split into branches, each would keep
    its own copy of $g_{t-1}$). Written with optax's $\beta$s: $\beta_2$ weights the
    *old* difference moment (the paper's $1-\beta_2$).

    Args:
      b1: $\beta_1 \in [0, 1)$, of the gradient's moment.
      b2: $\beta_2 \in [0, 1)$, of the difference's moment.
      b3: $\beta_3 \in [0, 1)$, of the second moment.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
    """

    def fn(h, g, m, v, n, prev):
        diff = jnp.where(h.t > 1, g - prev, 0)
        m = h.b1 * m + (1 - h.b1) * g
        v = h.b2 * v + (1 - h.b2) * diff
        n = h.b3 * n + (1 - h.b3) * abs_sq(g + (1 - h.b2) * diff)
        m_hat, v_hat, n_hat = m / debias(h.b1, h.t), v / debias(h.b2, h.t), n / debias(h.b3, h.t)
        return (m_hat + (1 - h.b2) * v_hat) / (jnp.sqrt(n_hat + h.eps_root) + h.eps), m, v, n, g

    return elementwise(
        "scale_by_adan",
        fn,
        hyper={
            "b1": (b1, UNIT),
            "b2": (b2, UNIT),
            "b3": (b3, UNIT),
            "eps": (eps, NONNEGATIVE),
            "eps_root": (eps_root, NONNEGATIVE),
        },
        state=AdanState,
        rules={"n": storage("scale_by_adan", real=True)},
        step=True,
    )
