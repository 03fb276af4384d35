"""The Polyak step size: the loss's gap to its minimum over the squared gradient norm."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradxform.core.transform import EmptyState, GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import ANY, NONNEGATIVE, validate
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.dtypes import compute_dtype, real_dtype
from gradxform.numerics.tree_math import tree_sum_sq

PyTree = Any
VARIANTS = ("sps", "sps+")


def scale_by_polyak(
    max_learning_rate: Hyperparameter = 1.0,
    f_min: Hyperparameter = 0.0,
    eps: Hyperparameter = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    r"""Scales the updates by the Polyak step size (Polyak 1987; Loizou et al. 2021, SPS$_{\max}$).

    $$\gamma_t = \min\left(\frac{f(\theta_t) - f^*}{\|u_t\|^2 + \epsilon},\ \gamma_{\max}\right), \qquad
    u_t \leftarrow \gamma_t\,u_t$$

    with $\gamma_t = 0$ where $\|u_t\|^2 + \epsilon$ is at most float64's machine epsilon
    (optax's rule). `variant="sps+"` takes the positive part of the gap $f(\theta_t) - f^*$.
    The loss $f(\theta_t)$ is `update`'s `value=` argument (`gradxform.train_step` passes
    it); the norm is over the whole tree, accumulated in at least float32.

    Args:
      max_learning_rate: $\gamma_{\max} \ge 0$.
      f_min: $f^*$, a lower bound on the loss.
      eps: $\epsilon \ge 0$.
      variant: `"sps"` or `"sps+"`.
    """
    validate("scale_by_polyak", "max_learning_rate", max_learning_rate, NONNEGATIVE)
    validate("scale_by_polyak", "f_min", f_min, ANY)
    validate("scale_by_polyak", "eps", eps, NONNEGATIVE)
    if variant not in VARIANTS:
        raise ValueError(f"{lead('scale_by_polyak')}: variant={variant!r} is not one of {', '.join(VARIANTS)}.")

    def update(updates, state, params, count, extra_args):
        value = jnp.asarray(extra_args["value"])
        if value.shape != ():
            raise ValueError(f"{lead('scale_by_polyak')}: value= must be a scalar loss, got shape {list(value.shape)}.")
        sq = tree_sum_sq(updates)
        f_star, e = resolve(f_min, count, "f_min"), resolve(eps, count, "eps").astype(sq.dtype)
        gap = (value - f_star).astype(sq.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0)
        top = resolve(max_learning_rate, count, "max_learning_rate").astype(sq.dtype)
        step = jnp.where(sq + e <= jnp.finfo(jnp.float64).eps, 0, jnp.minimum(gap / (sq + e), top))

        def one(u):
            ct = compute_dtype(u.dtype)
            return u.astype(ct) * step.astype(real_dtype(ct))

        return jax.tree.map(one, updates), state

    needs_step = any(is_schedule(v) for v in (max_learning_rate, f_min, eps))
    return make_block(
        "scale_by_polyak",
        lambda params: EmptyState(),
        update,
        needs_step=needs_step,
        stateless=True,
        extra_args=("value",),
    )
