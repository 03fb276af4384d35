"""The combinators that make adaptive methods chains: one branch divided by another, branches added."""

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


class PlusState(NamedTuple):
    """The states of the branches, in order."""

    branches: tuple


def plus(*branches: GradientTransformation | None) -> GradientTransformation:
    r"""Feeds the same updates to several branches and adds: $u \leftarrow \sum_i B_i(u)$.

    AdEMAMix's numerator, a fast bias-corrected EMA plus $\alpha$ times a slow one, is
    `plus(chain(ema(b1), bias_correction(b1)), chain(ema(b3), scale(alpha)))`. Every
    branch sees the optimizer's step count; the sum is computed in the compute dtype.

    Args:
      *branches: the $B_i$ (at least one); `None` is the identity.
    """
    if not branches:
        raise ValueError("plus: needs at least one branch.")
    blocks = [block_of(identity() if b is None else b, f"plus (branch {i})") for i, b in enumerate(branches)]

    def init(params):
        return PlusState(tuple(b.init(params) for b in blocks))

    def update(updates, state, params, count, extra_args):
        outs, states = [], []
        for b, s in zip(blocks, state.branches):
            o, s = b.update(updates, s, params, count, extra_args)
            outs.append(o)
            states.append(s)
        return jax.tree.map(lambda *xs: sum(xs[1:], xs[0]), *outs), PlusState(tuple(states))

    return as_transform(
        Block(
            "plus",
            init,
            update,
            needs_step=any(b.needs_step for b in blocks),
            stateless=all(b.stateless for b in blocks),
            per_leaf=any(b.per_leaf for b in blocks),
        )
    )
