"""The heavy-ball momentum accumulator (seed 003's worked example)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradxform.blocks._common import cast_like, dtype_rule, leafwise
from gradxform.core import GradientTransformation
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import PyTree, check_inexact, check_match, safe_increment, zero_count, zeros_like


class TraceState(NamedTuple):
    count: jax.Array
    trace: PyTree


def trace(decay: Hyperparameter, nesterov: bool = False, state_dtype: Any = None) -> GradientTransformation:
    r"""Heavy-ball accumulator, the optax and torch.optim form of momentum.

    .. math:: v_t = \gamma\,v_{t-1} + g_t, \qquad v_0 = 0, \qquad
              \text{output } v_t \;\text{ or, with Nesterov, }\; g_t + \gamma\,v_t

    so :math:`v_3 = \gamma^2 g_1 + \gamma g_2 + g_3` (seed 003's example with
    :math:`\gamma = 0.5`: :math:`0.25\,b_1 + 0.5\,b_2 + b_3`). The first step
    is not dampened. ``decay`` :math:`=\gamma \in [0, 1)`.
    """
    validate("trace", "decay", decay, 0.0, 1.0, high_open=True)
    rule = dtype_rule("trace", state_dtype)

    def init(params):
        check_inexact(params, "trace")
        return TraceState(zero_count(), zeros_like(params, rule))

    def update(updates, state, params=None, **extra_args):
        check_match(updates, state.trace, "trace", rule)
        d = resolve(decay, state.count, "decay")
        v = leafwise(lambda d, g, v: d * v + g, d, updates, state.trace)
        out = leafwise(lambda d, g, v: g + d * v, d, updates, v) if nesterov else v
        return cast_like(out, updates), TraceState(safe_increment(state.count), cast_like(v, state.trace))

    return GradientTransformation(init, update)
