"""The combinator that makes adaptive methods chains: one branch divided by another."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradxform.core import GradientTransformation, OptState, _as_transform, call_update, identity


class RatioState(NamedTuple):
    numerator: OptState
    denominator: OptState


def ratio(numerator: GradientTransformation | None, denominator: GradientTransformation) -> GradientTransformation:
    r"""Feeds the same updates to two branches and divides: :math:`u \leftarrow N(u) / D(u)`.

    With ``numerator=None`` (the identity) this is :math:`u / D(u)`. Adam is
    ``ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2),
    bias_correction(b2), sqrt(), add_eps(eps)))`` followed by the learning rate.
    The output keeps the numerator's dtype.
    """
    num = identity() if numerator is None else _as_transform(numerator, "ratio (numerator)")
    den = _as_transform(denominator, "ratio (denominator)")

    def init(params):
        return RatioState(num.init(params), den.init(params))

    def update(updates, state, params=None, **extra_args):
        n, ns = call_update(num, updates, state.numerator, params, extra_args)
        d, ds = call_update(den, updates, state.denominator, params, extra_args)
        out = jax.tree.map(lambda a, b: (a / b).astype(a.dtype), n, d)
        return out, RatioState(ns, ds)

    return GradientTransformation(init, update)
