r"""Exact Newton steps with Levenberg-Marquardt damping.

For a small problem the Hessian of the raveled parameters is formed exactly
(`jax.hessian`) and eigendecomposed, $H = Q\Lambda Q^\top$, so that the
damped step for any damping $\lambda$ costs one matrix-vector product:

$$p(\lambda) = -(H + \lambda I)^{-1} g = -Q (\Lambda + \lambda I)^{-1} Q^\top g.$$

The damping is kept large enough that $H + \lambda I$ is positive
definite, so $p$ always points downhill. A step is accepted when the
ratio of the actual to the predicted decrease

$$\rho = \frac{f(x) - f(x + p)}{-(g^\top p + \tfrac12 p^\top H p)}$$

exceeds `accept_ratio`; otherwise $\lambda$ grows by `increase` and
the step is retried (at most `max_tries` times in one update). After an
accepted step, $\lambda$ shrinks by `decrease` if $\rho > 3/4$
(to 0 once it falls below `min_damping` times the Hessian's scale), and
doubles if $\rho < 1/4$. Near a minimum with positive-definite Hessian
the damping vanishes and the steps are Newton's: one step on a quadratic,
quadratic convergence on smooth functions. Far from it the steps shorten
towards scaled steepest descent, so the method is safe where the Hessian is
indefinite or the quadratic model is poor.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation
from gradxform.curvature._flat import flat_objective, like, ravel, require_params
from gradxform.hyper import validate, validate_int
from gradxform.numerics import PyTree, safe_increment, zero_count


class NewtonState(NamedTuple):
    """State of [`newton`][gradxform.newton]: the damping $\\lambda$ for the next step, counts.

    `num_evals` counts evaluations (value and gradient) at the trial points
    of the acceptance test; `num_hessians` counts Hessians formed; `failed`
    says the last update found no acceptable step within `max_tries` (it then
    returned 0). `value` and `grad`: $f$ and $\\nabla f$ at the
    accepted point (`HANDS_OFF`: [`gradxform.minimize`][gradxform.minimize] takes them
    instead of evaluating the point again).
    """

    count: jax.Array
    damping: jax.Array
    failed: jax.Array
    num_evals: jax.Array
    num_hessians: jax.Array
    value: jax.Array
    grad: PyTree

    HANDS_OFF = True


def newton(
    initial_damping: float = 0.0,
    min_damping: float = 1e-6,
    increase: float = 4.0,
    decrease: float = 4.0,
    accept_ratio: float = 1e-4,
    max_tries: int = 20,
) -> GradientTransformation:
    r"""Damped (Levenberg-Marquardt) Newton's method with the exact Hessian.

    The incoming updates must be the gradient $g$ of the objective,
    passed as the extra argument `value_fn` (with `params`); the outgoing
    update is the accepted step $p(\lambda)$ (module docstring), or 0 if
    none of `max_tries` dampings gave a decrease. `min_damping` is relative
    to the Hessian's scale $\max(1, \max_i|\Lambda_i|)$: the damping never
    sits between 0 and that value. Costs $O(n^3)$ per step and
    $O(n^2)$ memory: for problems up to a few thousand parameters. Each
    trial evaluates $f$ and $\nabla f$ once; the accepted trial's
    are handed to the next update (`NewtonState.value`, `.grad`).

    Args:
      initial_damping: $\lambda$ of the first trial.
      min_damping: the smallest positive damping, relative to the Hessian's scale.
      increase: the factor on $\lambda$ after a rejected trial.
      decrease: the factor dividing $\lambda$ after an accepted one.
      accept_ratio: the least ratio of actual to predicted decrease that accepts a step.
      max_tries: the most trials per update.

    Returns:
      A `GradientTransformation`.
    """
    who = "newton"
    validate(who, "initial_damping", initial_damping, 0.0)
    validate(who, "min_damping", min_damping, 0.0, low_open=True)
    validate(who, "increase", increase, 1.0, low_open=True)
    validate(who, "decrease", decrease, 1.0, low_open=True)
    validate(who, "accept_ratio", accept_ratio, 0.0, 0.25, high_open=True)
    validate_int(who, "max_tries", max_tries, 1)

    def init(params):
        x, _ = ravel(params)
        return NewtonState(
            zero_count(),
            jnp.asarray(initial_damping, x.dtype),
            jnp.zeros([], bool),
            zero_count(),
            zero_count(),
            jnp.full([], jnp.nan, x.dtype),
            jax.tree.map(jnp.zeros_like, params),
        )

    def update(updates, state, params=None, *, value_fn=None, value=None, **extra_args):
        require_params(who, params)
        fn = flat_objective(who, value_fn, params, extra_args)
        x, _ = ravel(params)
        g, _ = ravel(updates)
        dt = x.dtype
        f0 = fn(x) if value is None else jnp.asarray(value).astype(dt)
        h = jax.hessian(fn)(x)
        h = 0.5 * (h + h.T)
        evals, q = jnp.linalg.eigh(h)
        qg = q.T @ g
        scale = jnp.maximum(1.0, jnp.max(jnp.abs(evals)))
        lam_floor = min_damping * scale
        # the smallest damping that keeps H + lam I safely positive definite
        pd_min = jnp.maximum(0.0, -evals[0] + lam_floor)

        vg = jax.value_and_grad(fn)

        def step(lam):
            lam = jnp.maximum(lam, pd_min)
            p = -(q @ (qg / (evals + lam)))
            pred = -(g @ p + 0.5 * p @ (h @ p))
            f1, g1 = vg(x + p)
            rho = (f0 - f1) / pred
            ok = jnp.isfinite(f1) & (f1 < f0) & (rho > accept_ratio)
            return lam, p, rho, ok, f1, g1

        def cond(c):
            i, _, _, _, ok, _, _ = c
            return (i < max_tries) & ~ok

        def body(c):
            i, lam = c[0], c[1]
            lam = jnp.where(i > 0, jnp.maximum(lam * increase, lam_floor), lam)
            return (i + 1, *step(lam))

        init_c = (
            jnp.zeros([], jnp.int32),
            state.damping.astype(dt),
            jnp.zeros_like(x),
            jnp.zeros([], dt),
            jnp.zeros([], bool),
            f0,
            g,
        )
        tries, lam, p, rho, ok, f1, g1 = jax.lax.while_loop(cond, body, init_c)
        lam_next = jnp.where(rho > 0.75, lam / decrease, jnp.where(rho < 0.25, lam * 2.0, lam))
        lam_next = jnp.where(lam_next < lam_floor, 0.0, lam_next).astype(dt)
        p = jnp.where(ok, p, 0.0)
        f1 = jnp.where(ok, f1, f0)
        g1 = jnp.where(ok, g1, g)
        extra = jnp.int32(0) if value is not None else jnp.int32(1)
        new_state = NewtonState(
            safe_increment(state.count),
            lam_next,
            ~ok,
            state.num_evals + tries + extra,
            state.num_hessians + 1,
            f1,
            like(g1, updates),
        )
        return like(p, updates), new_state

    return GradientTransformation(init, update)
