"""MADGRAD's dual averaging: sums of weighted gradients, a cube-root scaling, a step from the start."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import field, map_leaves, require_params, storage, stored
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, UNIT, validate
from gradxform.hyper.values import Hyperparameter, resolve
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.counts import safe_increment
from gradxform.numerics.dtypes import dtype_of
from gradxform.numerics.tree_math import full_like

PyTree = Any


@per_param("grad_sum_sq", "s", "x0")
class MadgradState(NamedTuple):
    """`grad_sum_sq`: $G_t$, `s`: $s_t$, `x0`: the parameters at the first update."""

    grad_sum_sq: PyTree
    s: PyTree
    x0: PyTree


def scale_by_madgrad(
    learning_rate: Hyperparameter, momentum: Hyperparameter = 0.9, eps: Hyperparameter = 1e-6
) -> GradientTransformation:
    r"""MADGRAD's step (Defazio & Jelassi 2021, Algorithm 1), as an update $x_{k+1} - x_k$.

    $$\begin{aligned}
    \lambda_k &= (\eta + \epsilon)\sqrt{k+1}, &
    G_{k+1} &= G_k + \lambda_k g_k^2, & s_{k+1} &= s_k + \lambda_k g_k,\\
    z_{k+1} &= x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon}, &
    x_{k+1} &= (1-c)\,z_{k+1} + c\,x_k, & u_k &= x_{k+1} - x_k
    \end{aligned}$$

    with $k$ the number of updates taken; the update is computed as
    $(1-c)\,((x_0 - x_k) - s_{k+1}/(G_{k+1}^{1/3}+\epsilon))$, the same number without
    the cancellation of subtracting $x_k$ from $x_{k+1}$. The learning rate is part of the method (it
    weighs the sums), so no `scale_by_learning_rate` follows. $x_0$ is taken from the
    parameters at the first update (`init` may see abstract leaves), so the first call
    must get the parameters `init` was made for. `update` needs `params`.

    Args:
      learning_rate: $\eta \ge 0$.
      momentum: $c \in [0, 1)$.
      eps: $\epsilon \ge 0$.
    """
    for name, value, rng in (("learning_rate", learning_rate, NONNEGATIVE), ("momentum", momentum, UNIT)):
        validate("scale_by_madgrad", name, value, rng)
    validate("scale_by_madgrad", "eps", eps, NONNEGATIVE)
    rule = storage("scale_by_madgrad")

    def init(params):
        check_inexact(params, "scale_by_madgrad")
        if any(jnp.issubdtype(dtype_of(x), jnp.complexfloating) for x in jax.tree.leaves(params)):
            raise TypeError(f"{lead('scale_by_madgrad')}: MADGRAD is defined for real parameters only (cube roots).")
        return MadgradState(*(full_like(params, 0, rule) for _ in range(3)))

    def update(updates, state, params, count, extra_args):
        for tree in state:
            check_match(updates, tree, "scale_by_madgrad", rule)
        require_params("scale_by_madgrad", updates, params)
        x0 = jax.lax.cond(
            count == 0, lambda: jax.tree.map(lambda p, x: p.astype(x.dtype), params, state.x0), lambda: state.x0
        )
        values = {k: resolve(v, count, k) for k, v in (("learning_rate", learning_rate), ("momentum", momentum))}
        values["eps"] = resolve(eps, count, "eps")
        # sqrt(k + 1) is the root of the int32 count, float32 even under x64, as optax's: the weights are any
        # positive sequence growing like sqrt(k + 1) (the dual averages are exact for the weights used).
        values["root_t"] = jnp.sqrt(safe_increment(count))

        def fn(h, g, G, s, x0, x):
            lam = (h.learning_rate + h.eps) * h.root_t
            G = G + lam * g**2
            s = s + lam * g
            # x_{k+1} - x_k = (1 - c)(z_{k+1} - x_k): the difference taken before rounding to the parameter's size
            return (1 - h.momentum) * ((x0 - x) - s / (jnp.cbrt(G) + h.eps)), G, s

        results = map_leaves(fn, values, count, updates, state.grad_sum_sq, state.s, x0, params)
        new = MadgradState(
            stored(field(updates, results, 1), state.grad_sum_sq), stored(field(updates, results, 2), state.s), x0
        )
        return field(updates, results, 0), new

    return make_block("scale_by_madgrad", init, update, needs_step=True)
