"""The combinator that makes adaptive methods chains: one branch divided by another."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradxform.core.combine import identity
from gradxform.core.state import tree_get
from gradxform.core.transform import Block, GradientTransformation, as_transform, block_of
from gradxform.errors import lead
from gradxform.hyper.validate import validate_bool
from gradxform.numerics.dtypes import compute_dtype

_MISSING = object()


class RatioState(NamedTuple):
    """The states of the two branches."""

    numerator: Any
    denominator: Any


def ratio(
    numerator: GradientTransformation | None, denominator: GradientTransformation, residual: bool = False
) -> GradientTransformation:
    r"""Feeds the same updates to two branches and divides: $u \leftarrow N(u) / D(u)$.

    Adam is `ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2),
    bias_correction(b2), add_eps(eps_root), sqrt(), add_eps(eps)))` followed by the
    learning rate. Both branches see the optimizer's step count; the quotient is
    computed in the compute dtype.

    With `residual`, the denominator is fed the prediction error $u - \mu_t$ instead of $u$,
    $\mu_t$ being the numerator's new moving average (the `mu` of its state, as stored):
    AdaBelief's second moment is the moving average of $(g_t - \mu_t)^2$.

    Args:
      numerator: $N$, or `None` for the identity ($u / D(u)$).
      denominator: $D$.
      residual: feed $D$ the updates minus the numerator's moving average.
    """
    validate_bool("ratio", "residual", residual)
    num = block_of(identity() if numerator is None else numerator, "ratio (numerator)")
    den = block_of(denominator, "ratio (denominator)")

    def init(params):
        return RatioState(num.init(params), den.init(params))

    def update(updates, state, params, count, extra_args):
        n, ns = num.update(updates, state.numerator, params, count, extra_args)
        feed = updates
        if residual:
            mu = tree_get(ns, "mu", _MISSING)
            if mu is _MISSING:
                raise ValueError(f"{lead('ratio')}: residual=True needs a numerator whose state holds `mu`.")
            feed = jax.tree.map(lambda g, m: g.astype(compute_dtype(g.dtype, m.dtype)) - m, updates, mu)
        d, ds = den.update(feed, state.denominator, params, count, extra_args)
        return jax.tree.map(lambda a, b: a / b, n, d), RatioState(ns, ds)

    return as_transform(
        Block(
            "ratio",
            init,
            update,
            needs_step=num.needs_step or den.needs_step,
            stateless=num.stateless and den.stateless,
            per_leaf=num.per_leaf or den.per_leaf,
        )
    )
