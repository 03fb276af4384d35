"""Sharpness-aware minimization in one call: the ascent step, the gradient there, the descent step."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradxform.blocks.base import map_leaves, require_params
from gradxform.core import GradientTransformation, apply_updates, block_of, make_block, public
from gradxform.errors import lead
from gradxform.hyper import NONNEGATIVE, Hyperparameter, is_schedule, resolve, validate
from gradxform.numerics import cast_out, check_match, global_norm

PyTree = Any


@public
def sam(inner: GradientTransformation, rho: Hyperparameter = 0.05) -> GradientTransformation:
    r"""Sharpness-aware minimization (Foret et al. 2021): `inner` steps with the gradient at the worst nearby point.

    $$\epsilon_t = \rho\,\frac{g_t}{\lVert g_t\rVert_2}, \qquad
    \tilde g_t = \nabla f(\theta_t + \epsilon_t), \qquad \Delta\theta_t = \mathrm{inner}(\tilde g_t)$$

    with $\lVert\cdot\rVert_2$ the norm of the whole gradient tree ($\epsilon_t = 0$ for a
    zero gradient). `update(grads, state, params, grad_fn=...)` takes the ascent step,
    re-evaluates the gradient with `grad_fn(params + eps)` and returns `inner`'s descent
    update at `params`; `gradxform.train_step` passes `grad_fn` for the batch. The
    state is `inner`'s, and `inner` takes one step per call.

    `optax.contrib.sam` alternates calls instead: an ascent call that moves the
    parameters to $\theta + \epsilon$ and a descent call that moves them back and steps;
    its parameters after each descent call are ours after each call.

    Args:
      inner: the optimizer that takes the descent step.
      rho: $\rho \ge 0$, the radius of the neighbourhood.
    """
    block = block_of(inner, "sam (inner)")
    validate("sam", "rho", rho, NONNEGATIVE)

    def update(updates, state, params, count, extra_args):
        require_params("sam", updates, params)
        norm = global_norm(updates)
        r = resolve(rho, count, "rho")
        step = jnp.where(norm > 0, r.astype(norm.dtype) / jnp.where(norm > 0, norm, 1), 0)
        eps = map_leaves(lambda h, g: h.step * g, {"step": step}, None, updates)
        grads = extra_args["grad_fn"](apply_updates(params, cast_out(eps, params)))
        try:
            check_match(grads, params, "sam", against="params")
        except ValueError as err:
            raise ValueError(f"{lead('sam')}: grad_fn returned a tree unlike the parameters ({err})") from None
        return block.update(grads, state, params, count, extra_args)

    return make_block(
        "sam",
        block.init,
        update,
        needs_step=block.needs_step or is_schedule(rho),
        stateless=block.stateless,
        per_leaf=block.per_leaf,
        extra_args=tuple(dict.fromkeys(("grad_fn", *block.extra_args))),
    )
