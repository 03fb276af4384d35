"""Weight decay added to the update (decoupled from the adaptive scaling when chained after it)."""

from __future__ import annotations

from typing import Any

from gradxform.blocks.base import elementwise
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import NONNEGATIVE
from gradxform.hyper.values import Hyperparameter


def add_decayed_weights(weight_decay: Hyperparameter = 0.0, mask: Any = None) -> GradientTransformation:
    r"""Adds the parameters, scaled: $u \leftarrow u + \lambda\,\theta$ (where `mask` says so).

    Chained *after* an adaptive scaling and before the learning rate this is
    AdamW's decoupled decay ($\theta \leftarrow \theta - \eta(\hat u + \lambda\theta)$);
    chained before, it is L2 regularisation. `update` needs `params`.

    Args:
      weight_decay: $\lambda \ge 0$.
      mask: optax's meaning: `None` (decay every leaf), or a tree of bools with the
        parameters' structure (or a prefix of it), or a function `params -> tree`; leaves
        where it is False pass through undecayed. "No decay on biases and norms" is
        `mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`.
    """
    if mask is not None:
        from gradxform.wrappers.masking import masked  # wrappers build on blocks, not the other way

        return masked(add_decayed_weights(weight_decay), mask)
    return elementwise(
        "add_decayed_weights",
        lambda h, u, p: u + h.weight_decay * p,
        hyper={"weight_decay": (weight_decay, NONNEGATIVE)},
        with_params=True,
    )
