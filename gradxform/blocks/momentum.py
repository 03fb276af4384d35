"""The heavy-ball momentum accumulator."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradxform.blocks.base import elementwise, storage
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import CLOSED_UNIT, UNIT
from gradxform.hyper.values import Hyperparameter, is_zero

PyTree = Any


@per_param("trace")
class TraceState(NamedTuple):
    """`trace`: the momentum buffer $v$."""

    trace: PyTree


def trace(
    decay: Hyperparameter,
    nesterov: bool = False,
    state_dtype: Any = None,
    dampening: Hyperparameter = 0.0,
) -> GradientTransformation:
    r"""Heavy-ball accumulator, the optax and torch.optim form of momentum.

    $$
    \begin{aligned}
    &v_1 = g_1, \qquad v_t = \gamma\,v_{t-1} + (1-\tau)\,g_t, \\
    &\text{output } v_t \;\text{ or, with Nesterov, }\; g_t + \gamma\,v_t
    \end{aligned}
    $$

    so with $\tau = 0$, $v_3 = \gamma^2 g_1 + \gamma g_2 + g_3$ (for
    $\gamma = 0.5$: $0.25\,g_1 + 0.5\,g_2 + g_3$, a common worked example).
    The first step is never dampened; a dampening
    $\tau$ other than a concrete zero makes the block read the step count (it is
    torch.optim.SGD's `dampening`).

    Args:
      decay: $\gamma \in [0, 1)$.
      nesterov: output the look-ahead $g_t + \gamma v_t$.
      state_dtype: the dtype $v$ is stored in (default: the parameter's).
      dampening: $\tau \in [0, 1]$.
    """
    damped = not is_zero(dampening)

    def fn(h, g, v):
        if damped:  # v_0 = 0, so v_1 = g_1: the first step is undampened
            v = h.decay * v + jnp.where(h.count == 0, jnp.ones_like(h.dampening), 1 - h.dampening) * g
        else:
            v = h.decay * v + g
        return (g + h.decay * v if nesterov else v), v

    return elementwise(
        "trace",
        fn,
        hyper={"decay": (decay, UNIT), "dampening": (dampening, CLOSED_UNIT)},
        state=TraceState,
        rules={"trace": storage("trace", state_dtype)},
        step=damped,
    )
