"""Weight decay added to the update (decoupled from the adaptive scaling when chained after it)."""

from __future__ import annotations

import jax

from gradxform.blocks._common import CountState, cast_like, leafwise
from gradxform.core import GradientTransformation
from gradxform.hyper import Hyperparameter, resolve, validate
from gradxform.tree import check_match, safe_increment, zero_count


def add_decayed_weights(weight_decay: Hyperparameter = 0.0) -> GradientTransformation:
    r"""Adds the parameters, scaled: :math:`u \leftarrow u + \lambda\,\theta`.

    Chained *after* an adaptive scaling and before the learning rate this is
    AdamW's decoupled decay (:math:`\theta \leftarrow \theta - \eta(\hat u +
    \lambda\theta)`); chained before, it is L2 regularisation. Needs
    ``params`` in ``update``.
    """
    validate("add_decayed_weights", "weight_decay", weight_decay, 0.0)

    def init(params):
        return CountState(zero_count())

    def update(updates, state, params=None, **extra_args):
        if params is None and jax.tree.leaves(updates):  # an empty tree needs no parameters
            raise ValueError("add_decayed_weights: update needs the parameters: call tx.update(grads, state, params).")
        check_match(updates, params, "add_decayed_weights")
        wd = resolve(weight_decay, state.count, "weight_decay")
        out = leafwise(lambda wd, u, p: u + wd * p, wd, updates, params)
        return cast_like(out, updates), CountState(safe_increment(state.count))

    return GradientTransformation(init, update)
