"""The combinator that makes adaptive methods chains: one branch divided by another."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradxform.core.combine import identity
from gradxform.core.transform import Block, GradientTransformation, as_transform, block_of, union_extra_args


class RatioState(NamedTuple):
    """The states of the two branches."""

    numerator: Any
    denominator: Any


def ratio(numerator: GradientTransformation | None, denominator: GradientTransformation) -> GradientTransformation:
    r"""Feeds the same updates to two branches and divides: $u \leftarrow N(u) / D(u)$.

    Adam is `ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2),
    bias_correction(b2), add_eps(eps_root), sqrt(), add_eps(eps)))` followed by the
    learning rate. Both branches see the optimizer's step count; the quotient is
    computed in the compute dtype.

    Args:
      numerator: $N$, or `None` for the identity ($u / D(u)$).
      denominator: $D$.
    """
    num = block_of(identity() if numerator is None else numerator, "ratio (numerator)")
    den = block_of(denominator, "ratio (denominator)")

    def init(params):
        return RatioState(num.init(params), den.init(params))

    def update(updates, state, params, count, extra_args):
        n, ns = num.update(updates, state.numerator, params, count, extra_args)
        d, ds = den.update(updates, state.denominator, params, count, extra_args)
        return jax.tree.map(lambda a, b: a / b, n, d), RatioState(ns, ds)

    return as_transform(
        Block(
            "ratio",
            init,
            update,
            needs_step=num.needs_step or den.needs_step,
            stateless=num.stateless and den.stateless,
            per_leaf=num.per_leaf or den.per_leaf,
            extra_args=union_extra_args((num, den)),
        )
    )
