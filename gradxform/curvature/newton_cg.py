r"""Hessian-free (truncated) Newton: Newton-CG with forward-over-reverse Hessian-vector products.

The Newton system $H p = g$ is solved approximately by linear conjugate
gradients (N&W algorithm 7.1), never forming $H$: each CG iteration
needs one product $Hv = \frac{d}{d\epsilon}\nabla f(x + \epsilon v)|_0$,
computed by `jax.jvp` of `jax.grad` (forward over reverse). CG stops when

$$\|r_j\| \le \eta \|g\|, \qquad \eta = \min(0.5, \sqrt{\|g\|}),$$

(the forcing sequence that gives superlinear convergence), after `max_cg_steps`
iterations, or when it meets a direction of non-positive curvature
$d_j^\top H d_j \le 0$ (the Steihaug safeguard): then it returns the
current iterate, or $g$ itself (steepest descent) if that happens at the
first iteration. The result is always a descent direction once negated.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks import scale
from gradxform.core import GradientTransformation, chain
from gradxform.curvature._flat import flat_objective, like, ravel, require_params
from gradxform.hyper import validate_int
from gradxform.linesearch import more_thuente
from gradxform.numerics import safe_increment, zero_count


class NewtonCgState(NamedTuple):
    """State of [`scale_by_newton_cg`][gradxform.scale_by_newton_cg]: `num_hvps` Hessian-vector products so far,
    `cg_steps` the CG iterations of the last update, `negative_curvature` whether
    the last solve stopped at a direction of non-positive curvature."""

    count: jax.Array
    num_hvps: jax.Array
    cg_steps: jax.Array
    negative_curvature: jax.Array


def scale_by_newton_cg(max_cg_steps: int | None = None) -> GradientTransformation:
    r"""Preconditions the gradient by the inverse Hessian, approximately: $u \leftarrow p \approx H^{-1} g$.

    Truncated CG as in the module docstring; `max_cg_steps` defaults to
    $20n$ (scipy's). Needs `params` and the objective as the extra
    argument `value_fn`; the incoming updates must be its gradient.

    Args:
      max_cg_steps: the most CG iterations per update; `None` means $20n$.

    Returns:
      A `GradientTransformation`.
    """
    who = "scale_by_newton_cg"
    validate_int(who, "max_cg_steps", max_cg_steps, 1, allow_none=True)

    def init(params):
        return NewtonCgState(zero_count(), zero_count(), zero_count(), jnp.zeros([], bool))

    def update(updates, state, params=None, *, value_fn=None, value=None, grad=None, **extra_args):
        require_params(who, params)
        fn = flat_objective(who, value_fn, params, extra_args)
        x, _ = ravel(params)
        g, _ = ravel(updates)
        n = x.shape[0]
        maxiter = 20 * n if max_cg_steps is None else max_cg_steps
        grad_fn = jax.grad(fn)

        def hvp(v):
            return jax.jvp(grad_fn, (x,), (v,))[1]

        gnorm = jnp.linalg.norm(g)
        tol = jnp.minimum(0.5, jnp.sqrt(gnorm)) * gnorm
        tiny = jnp.finfo(x.dtype).eps

        # carry: j, p, r, d, r.r, stop (0 running, 1 converged, 2 negative curvature)
        def cond(c):
            j, _, _, _, rr, stop = c
            return (j < maxiter) & (stop == 0) & (jnp.sqrt(rr) > tol)

        def body(c):
            j, p, r, d, rr, _ = c
            hd = hvp(d)
            curv = d @ hd
            neg = curv <= 3 * tiny * (d @ d)
            alpha = rr / jnp.where(neg, 1.0, curv)
            p_new = p + alpha * d
            r_new = r - alpha * hd
            rr_new = r_new @ r_new
            d_new = r_new + (rr_new / rr) * d
            keep = lambda old, new: jnp.where(neg, old, new)  # noqa: E731
            # on negative curvature at the first iteration, fall back to the gradient
            p_out = jnp.where(neg & (j == 0), g, keep(p, p_new))
            return (
                j + 1,
                p_out,
                keep(r, r_new),
                keep(d, d_new),
                keep(rr, rr_new),
                jnp.where(neg, 2, 0).astype(jnp.int32),
            )

        init_c = (jnp.zeros([], jnp.int32), jnp.zeros_like(g), g, g, g @ g, jnp.zeros([], jnp.int32))
        j, p, _, _, _, stop = jax.lax.while_loop(cond, body, init_c)
        p = jnp.where(j == 0, g, p)  # a zero gradient: nothing to precondition
        new_state = NewtonCgState(safe_increment(state.count), state.num_hvps + j, j, stop == 2)
        return like(p, updates), new_state

    return GradientTransformation(init, update)


def newton_cg(
    max_cg_steps: int | None = None, linesearch: GradientTransformation | None = None
) -> GradientTransformation:
    r"""Newton-CG: $x \leftarrow x - \alpha\, p$, $p \approx H^{-1}\nabla f$ by truncated CG.

    `chain(scale_by_newton_cg(max_cg_steps), scale(-1), linesearch)` with the
    Moré-Thuente search [`gradxform.linesearch.more_thuente`][gradxform.linesearch.more_thuente] (`c2=0.9`,
    first trial step 1, the Newton step) unless another line search is given.
    Needs the extra arguments `value`, `grad` and `value_fn` (see
    [`gradxform.linesearch`][gradxform.linesearch]); [`gradxform.minimize`][gradxform.minimize] passes them. The
    trust-region variant is [`gradxform.newton_cg_trust`][gradxform.newton_cg_trust].

    Args:
        max_cg_steps: the most CG iterations per step; None for $20n$.
        linesearch: the line search; None for the default above.
    """
    ls = more_thuente(c2=0.9, initial_step="one") if linesearch is None else linesearch
    return chain(scale_by_newton_cg(max_cg_steps), scale(-1.0), ls)
