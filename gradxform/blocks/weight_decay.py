"""Weight decay added to the update (decoupled from the adaptive scaling when chained after it)."""

from __future__ import annotations

from gradxform.blocks.base import elementwise
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import NONNEGATIVE
from gradxform.hyper.values import Hyperparameter


def add_decayed_weights(weight_decay: Hyperparameter = 0.0) -> GradientTransformation:
    r"""Adds the parameters, scaled: $u \leftarrow u + \lambda\,\theta$.

    Chained *after* an adaptive scaling and before the learning rate this is
    AdamW's decoupled decay ($\theta \leftarrow \theta - \eta(\hat u + \lambda\theta)$);
    chained before, it is L2 regularisation. `update` needs `params`.

    Args:
      weight_decay: $\lambda \ge 0$.
    """
    return elementwise(
        "add_decayed_weights",
        lambda h, u, p: u + h.weight_decay * p,
        hyper={"weight_decay": (weight_decay, NONNEGATIVE)},
        with_params=True,
    )
