"""Elementwise scalings: a factor, the learning rate, and the denominators' pieces."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform.blocks._common import CountState, cast_like, leafwise
from gradxform.core import GradientTransformation, stateless
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import safe_increment, zero_count


def _scaled(who: str, name: str, value: Hyperparameter, sign: float) -> GradientTransformation:
    def init(params):
        return CountState(zero_count())

    def update(updates, state, params=None, **extra_args):
        f = sign * resolve(value, state.count, name)
        out = leafwise(lambda f, u: f * u, f, updates)
        return cast_like(out, updates), CountState(safe_increment(state.count))

    return GradientTransformation(init, update)


def scale(factor: Hyperparameter) -> GradientTransformation:
    r"""Multiplies the updates by a factor: :math:`u \leftarrow c\,u`."""
    validate("scale", "factor", factor)
    return _scaled("scale", "factor", factor, 1.0)


def scale_by_learning_rate(learning_rate: Hyperparameter, flip_sign: bool = True) -> GradientTransformation:
    r"""Steps against the update direction: :math:`u \leftarrow -\eta\,u`.

    ``learning_rate`` :math:`=\eta \ge 0`; with ``flip_sign=False`` the sign
    is kept (:math:`u \leftarrow \eta u`), for objectives to be maximized.
    """
    validate("scale_by_learning_rate", "learning_rate", learning_rate, 0.0)
    return _scaled("scale_by_learning_rate", "learning_rate", learning_rate, -1.0 if flip_sign else 1.0)


def add_eps(eps: Hyperparameter) -> GradientTransformation:
    r"""Adds a small constant, to keep a denominator off zero: :math:`u \leftarrow u + \epsilon`.

    ``eps >= 0``. Chained before :func:`sqrt` it puts eps inside the root,
    after it outside.
    """
    validate("add_eps", "eps", eps, 0.0)

    def init(params):
        return CountState(zero_count())

    def update(updates, state, params=None, **extra_args):
        e = resolve(eps, state.count, "eps")
        out = leafwise(lambda e, u: u + e, e, updates)
        return cast_like(out, updates), CountState(safe_increment(state.count))

    return GradientTransformation(init, update)


def sqrt() -> GradientTransformation:
    r"""Elementwise square root: :math:`u \leftarrow \sqrt{u}` (inputs are non-negative statistics)."""
    return stateless(lambda updates, params=None: jax.tree.map(jnp.sqrt, updates))
