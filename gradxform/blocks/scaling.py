"""Elementwise scalings: a factor, the learning rate, and the pieces of a denominator."""

from __future__ import annotations

import jax.numpy as jnp

from gradxform.blocks.base import elementwise
from gradxform.core.transform import GradientTransformation
from gradxform.hyper.validate import ANY, NONNEGATIVE
from gradxform.hyper.values import Hyperparameter


def scale(factor: Hyperparameter) -> GradientTransformation:
    r"""Multiplies the updates by a factor: $u \leftarrow c\,u$.

    Args:
      factor: $c$, any finite number.
    """
    return elementwise("scale", lambda h, u: h.factor * u, hyper={"factor": (factor, ANY)})


def scale_by_learning_rate(learning_rate: Hyperparameter, flip_sign: bool = True) -> GradientTransformation:
    r"""Steps against the update direction: $u \leftarrow -\eta\,u$.

    Args:
      learning_rate: $\eta \ge 0$.
      flip_sign: with `False` the sign is kept ($u \leftarrow \eta u$), for objectives to be maximized.
    """
    sign = -1.0 if flip_sign else 1.0
    return elementwise(
        "scale_by_learning_rate",
        lambda h, u: sign * h.learning_rate * u,
        hyper={"learning_rate": (learning_rate, NONNEGATIVE)},
    )


def add_eps(eps: Hyperparameter) -> GradientTransformation:
    r"""Adds a small constant, to keep a denominator off zero: $u \leftarrow u + \epsilon$.

    Chained before `sqrt` it puts eps inside the root, after it outside.

    Args:
      eps: $\epsilon \ge 0$.
    """
    return elementwise("add_eps", lambda h, u: u + h.eps, hyper={"eps": (eps, NONNEGATIVE)})


def sqrt() -> GradientTransformation:
    r"""Elementwise square root: $u \leftarrow \sqrt{u}$ (its inputs are non-negative statistics)."""
    return elementwise("sqrt", lambda h, u: jnp.sqrt(u))
