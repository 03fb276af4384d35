r"""BFGS: a dense inverse-Hessian approximation updated from gradient differences.

With $s_k = x_k - x_{k-1}$, $y_k = g_k - g_{k-1}$ and
$\rho_k = 1/y_k^\top s_k$, the inverse-Hessian approximation is updated
(N&W eq. 6.17)

$$H_k = (I - \rho_k s_k y_k^\top) H_{k-1} (I - \rho_k y_k s_k^\top) + \rho_k s_k s_k^\top$$

and the update is $u_k = H_k g_k$. $H_0 = I$ (as scipy). With
`scale_initial=True` it is rescaled to $\gamma I$,
$\gamma = s^\top y / y^\top y$, just before the first update (N&W eq. 6.20);
that is off by default because it measured worse: 1.04 times scipy's evaluations
instead of 0.99 on the Moré-Garbow-Hillstrom problems of `docs/curvature.md`
(unit steps become acceptable before the approximation has learned the large
eigenvalues).

Safeguard: the update keeps $H$ positive definite only if
the curvature condition $y^\top s > 0$ holds, so it is skipped (`H`
kept) when $y^\top s \le \epsilon \|s\|\|y\|$ ($\epsilon$ =
`curvature_eps`). A strong-Wolfe line search guarantees $y^\top s > 0$.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks import scale
from gradxform.core import GradientTransformation, chain
from gradxform.curvature._flat import like, ravel, require_params, secant_pair
from gradxform.hyper import validate
from gradxform.linesearch import more_thuente
from gradxform.numerics import safe_increment, zero_count


class BfgsState(NamedTuple):
    """State of [`scale_by_bfgs`][gradxform.scale_by_bfgs]: the previous raveled parameters and gradient, the
    inverse-Hessian approximation `inv_hessian` (n x n), and `num_updates`, the
    updates of it made so far (skipped ones not counted)."""

    count: jax.Array
    prev_params: jax.Array
    prev_grad: jax.Array
    inv_hessian: jax.Array
    num_updates: jax.Array


def scale_by_bfgs(curvature_eps: float = 1e-10, scale_initial: bool = False) -> GradientTransformation:
    r"""Preconditions by the BFGS inverse Hessian: $u \leftarrow H_k g_k$ (module docstring).

    The incoming updates must be gradients and `params` must be given (the
    pairs $s, y$ come from consecutive calls).

    Args:
      curvature_eps: pairs with $s^\top y \le$ this (relative) are skipped.
      scale_initial: scale $H_0$ by $s^\top y / y^\top y$ after the first pair.

    Returns:
      A `GradientTransformation`.
    """
    who = "scale_by_bfgs"
    validate(who, "curvature_eps", curvature_eps, 0.0)

    def init(params):
        x, _ = ravel(params)
        n = x.shape[0]
        return BfgsState(zero_count(), jnp.zeros_like(x), jnp.zeros_like(x), jnp.eye(n, dtype=x.dtype), zero_count())

    def update(updates, state, params=None, **extra_args):
        require_params(who, params)
        x, _ = ravel(params)
        g, _ = ravel(updates)
        s, y, sy, yy, ok = secant_pair(x, g, state.prev_params, state.prev_grad, state.count, curvature_eps)
        h = jnp.where(
            (state.num_updates == 0) & scale_initial,
            (sy / jnp.where(ok, yy, 1.0)) * jnp.eye(x.shape[0], dtype=x.dtype),
            state.inv_hessian,
        )
        rho = 1.0 / jnp.where(ok, sy, 1.0)
        hy = h @ y
        # (I - rho s y^T) H (I - rho y s^T) + rho s s^T, expanded
        h_new = h - rho * (jnp.outer(s, hy) + jnp.outer(hy, s)) + (rho * rho * (y @ hy) + rho) * jnp.outer(s, s)
        h_new = jnp.where(ok, h_new, state.inv_hessian)
        u = h_new @ g
        new_state = BfgsState(safe_increment(state.count), x, g, h_new, state.num_updates + ok.astype(jnp.int32))
        return like(u, updates), new_state

    return GradientTransformation(init, update)


def bfgs(linesearch: GradientTransformation | None = None, curvature_eps: float = 1e-10) -> GradientTransformation:
    r"""BFGS: $x \leftarrow x - \alpha H_k g_k$.

    `chain(scale_by_bfgs(curvature_eps), scale(-1), linesearch)`; the default
    line search is scipy's: Moré-Thuente ([`gradxform.linesearch.more_thuente`][gradxform.linesearch.more_thuente],
    `c1=1e-4, c2=0.9, xtol=1e-14`) with the first trial step
    $\min(1, 2.02 (f_k - f_{k-1})/\nabla f_k^\top d)$ (`'quadratic'`:
    a step of length about 1 at the first iteration, then the unit quasi-Newton
    step unless the last decrease says it is too long). It hands the accepted
    point's value and gradient to the next update and to [`gradxform.minimize`][gradxform.minimize].
    Stores an `n x n` matrix: for problems up to a few thousand parameters;
    use [`lbfgs`][gradxform.lbfgs] beyond.

    Args:
        linesearch: the line search; None for the default above.
        curvature_eps: the update is skipped unless $y^\top s > \epsilon\|s\|\|y\|$, >= 0.
    """
    ls = more_thuente(c1=1e-4, c2=0.9, xtol=1e-14, initial_step="quadratic") if linesearch is None else linesearch
    return chain(scale_by_bfgs(curvature_eps), scale(-1.0), ls)
