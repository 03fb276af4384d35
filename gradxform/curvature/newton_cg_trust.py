r"""Trust-region Newton-CG: Steihaug's truncated CG inside a trust region (N&W algorithms 4.1 and 7.2).

The step $p$ approximately minimizes the quadratic model

$$m(p) = f + g^\top p + \tfrac12 p^\top H p \quad \text{subject to} \quad \|p\| \le \Delta,$$

by linear CG on $Hp = -g$ from $p = 0$ (Steihaug): CG stops when
the residual is below $\min(0.5, \sqrt{\|g\|})\|g\|$, when an iterate
would leave the region (the step then ends on the boundary along the current
CG direction), or when it meets non-positive curvature $d^\top H d \le 0$
(the step then goes to whichever boundary point along $d$ has the lower
model value). $H$ is never formed: each CG iteration needs one
Hessian-vector product, from `jax.linearize` of the gradient at $x$
(linearized once per update). The step is tried:

$$\rho = \frac{f(x) - f(x + p)}{m(0) - m(p)};$$

(when the predicted decrease is below the rounding error of $f$, the
gradient judges instead: `rounding_ulps`), the radius becomes $\Delta/4$ if $\rho < 1/4$, and
$\min(2\Delta, \Delta_{\max})$ if $\rho > 3/4$ and $p$ is on
the boundary; the step is accepted if $\rho > \eta$. A rejected step is
solved for again with the smaller radius, within the same update, up to
`max_tries` times; a rejected step inside the region would come back
unchanged while the radius exceeds its length, so the radius is quartered
past it at once instead of trying the same point again. This is scipy's `trust-ncg` (same constants and
defaults), as one bounded `lax.while_loop` of trials, each with a bounded CG
loop. The model value $m(p)$ is carried through CG
($m(z + t d) = m(z) + t\, r^\top d + \tfrac12 t^2 d^\top H d$, $r = g + Hz$),
so it costs no Hessian-vector products beyond CG's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation
from gradxform.curvature._flat import flat_objective, like, ravel, require_params
from gradxform.hyper import validate, validate_int
from gradxform.numerics import PyTree, safe_increment, zero_count


class NewtonCgTrustState(NamedTuple):
    """State of [`newton_cg_trust`][gradxform.newton_cg_trust].

    `radius`: the trust radius for the next step. `value` and `grad`:
    $f$ and $\\nabla f$ at the accepted point (`HANDS_OFF`:
    [`gradxform.minimize`][gradxform.minimize] takes them instead of evaluating again).
    `failed`: the last update found no acceptable step in `max_tries`
    trials (or the model predicted no decrease), and returned 0.
    `num_evals`: evaluations (value and gradient) at trial points;
    `num_trials_rejected`: trials whose step was not taken; `num_hvps`:
    Hessian-vector products; `cg_steps`: CG iterations of the last update.
    """

    count: jax.Array
    radius: jax.Array
    value: jax.Array
    grad: PyTree
    failed: jax.Array
    num_evals: jax.Array
    num_trials_rejected: jax.Array
    num_hvps: jax.Array
    cg_steps: jax.Array

    HANDS_OFF = True


def _boundary(z, d, radius):
    """Both t with ||z + t d|| = radius, low then high (scipy's rounding-safe formula)."""
    a = d @ d
    b = 2.0 * (z @ d)
    c = z @ z - radius**2
    sq = jnp.sqrt(jnp.maximum(b * b - 4.0 * a * c, 0.0))
    aux = b + jnp.where(b >= 0, sq, -sq)
    ta, tb = -aux / (2.0 * a), -2.0 * c / aux
    return jnp.minimum(ta, tb), jnp.maximum(ta, tb)


def steihaug(
    hvp: Callable[[jax.Array], jax.Array], g: jax.Array, radius: jax.Array, max_steps: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    r"""Steihaug's CG for $\min_p g^\top p + \frac12 p^\top H p$, $\|p\| \le$ `radius`.

    Returns `(p, model, on_boundary, iterations)`, `model` being
    $g^\top p + \tfrac12 p^\top H p$.
    """
    gnorm = jnp.sqrt(g @ g)
    tol = jnp.minimum(0.5, jnp.sqrt(gnorm)) * gnorm
    zero = jnp.zeros([], g.dtype)

    # carry: j, z, r, d, r.r, m(z), done, on_boundary
    def cond(c):
        return (c[0] < max_steps) & ~c[6]

    def body(c):
        j, z, r, d, rr, mz, _, _ = c
        hd = hvp(d)
        dhd = d @ hd
        rd = r @ d
        ta, tb = _boundary(z, d, radius)
        model = lambda t: mz + t * rd + 0.5 * t * t * dhd  # noqa: E731
        # non-positive curvature: the boundary point with the lower model value
        t_neg = jnp.where(model(ta) < model(tb), ta, tb)
        alpha = rr / jnp.where(dhd > 0, dhd, 1.0)
        z_next = z + alpha * d
        outside = jnp.sqrt(z_next @ z_next) >= radius
        r_next = r + alpha * hd
        rr_next = r_next @ r_next
        neg = dhd <= 0
        t = jnp.where(neg, t_neg, jnp.where(outside, tb, alpha))
        z_out = z + t * d
        m_out = model(t)
        boundary = neg | outside
        converged = jnp.sqrt(rr_next) < tol
        d_next = -r_next + (rr_next / rr) * d
        keep = lambda old, new: jnp.where(boundary, old, new)  # noqa: E731
        return (
            j + 1,
            z_out,
            keep(r, r_next),
            keep(d, d_next),
            keep(rr, rr_next),
            m_out,
            boundary | converged,
            boundary,
        )

    c0 = (jnp.zeros([], jnp.int32), jnp.zeros_like(g), g, -g, g @ g, zero, gnorm <= 0, jnp.zeros([], bool))
    j, p, _, _, _, model, _, on_boundary = jax.lax.while_loop(cond, body, c0)
    return p, model, on_boundary, j


def newton_cg_trust(
    initial_radius: float = 1.0,
    max_radius: float = 1000.0,
    eta: float = 0.15,
    max_cg_steps: int | None = None,
    max_tries: int = 50,
    rounding_ulps: float = 10.0,
) -> GradientTransformation:
    r"""Trust-region Newton-CG (Steihaug), scipy's `trust-ncg`: $x \leftarrow x + p$ (module docstring).

    The incoming updates must be the gradient of the objective, passed as the
    extra argument `value_fn` with `params` (and `value`, $f(x)$,
    which [`gradxform.minimize`][gradxform.minimize] passes; without it one more evaluation is
    made). Each trial evaluates $f$ and $\nabla f$ once at
    $x + p$; the accepted trial's value and gradient are handed on, so no
    point is evaluated twice. The outgoing update is the accepted step, or 0 if
    none of `max_tries` trials was accepted.

    Args:
        initial_radius: $\Delta_0$, in (0, `max_radius`).
        max_radius: $\Delta_{\max}$, > 0.
        eta: accept a step when $\rho > \eta$, in [0, 1/4).
        max_cg_steps: the most CG iterations per trial; None for $20n$.
        max_tries: the most trials (radius reductions) in one update, an int >= 1.
        rounding_ulps: when the predicted decrease $m(0) - m(p)$ is at
            most this many units in the last place of $f(x)$, differences
            of $f$ are rounding noise and cannot judge the step; it is
            then taken (as $\rho = 1$) if it lowers $\|\nabla f\|$, and
            rejected ($\rho = 0$) if not. 0 gives scipy's test. >= 0.
    """
    who = "newton_cg_trust"
    validate(who, "max_radius", max_radius, 0.0, low_open=True)
    validate(who, "initial_radius", initial_radius, 0.0, max_radius, low_open=True, high_open=True)
    validate(who, "eta", eta, 0.0, 0.25, high_open=True)
    validate_int(who, "max_cg_steps", max_cg_steps, 1, allow_none=True)
    validate_int(who, "max_tries", max_tries, 1)
    validate(who, "rounding_ulps", rounding_ulps, 0.0)

    def init(params):
        x, _ = ravel(params)
        return NewtonCgTrustState(
            zero_count(),
            jnp.asarray(initial_radius, x.dtype),
            jnp.full([], jnp.nan, x.dtype),
            jax.tree.map(jnp.zeros_like, params),
            jnp.zeros([], bool),
            zero_count(),
            zero_count(),
            zero_count(),
            zero_count(),
        )

    def update(updates, state, params=None, *, value_fn=None, value=None, **extra_args):
        require_params(who, params)
        fn = flat_objective(who, value_fn, params, extra_args)
        x, _ = ravel(params)
        g, _ = ravel(updates)
        dt = x.dtype
        maxiter = 20 * x.shape[0] if max_cg_steps is None else max_cg_steps
        f0 = fn(x) if value is None else jnp.asarray(value).astype(dt)
        _, hvp = jax.linearize(jax.grad(fn), x)
        vg = jax.value_and_grad(fn)
        noise = rounding_ulps * jnp.finfo(dt).eps * jnp.abs(f0)

        # carry: tries, radius, accepted, stop, p, f1, g1, hvps
        def cond(c):
            return (c[0] < max_tries) & ~c[2] & ~c[3]

        def body(c):
            i, radius, _, _, _, _, _, hvps = c
            p, model, on_boundary, j = steihaug(hvp, g, radius, maxiter)
            f1, g1 = vg(x + p)
            pred = -model
            rho = (f0 - f1) / pred
            # below rounding, f cannot tell: the gradient, which is still accurate, does
            lower_grad = (g1 @ g1) < (g @ g)
            rho = jnp.where((pred > 0) & (pred <= noise), jnp.where(lower_grad, 1.0, 0.0), rho)
            rho = jnp.where(jnp.isfinite(f1) & jnp.all(jnp.isfinite(g1)), rho, -jnp.inf)
            grown = jnp.where((rho > 0.75) & on_boundary, jnp.minimum(2 * radius, max_radius), radius)
            radius = jnp.where(rho < 0.25, 0.25 * radius, grown)
            accepted = (pred > 0) & (rho > eta)
            # a rejected step inside the region comes back unchanged until the radius is below its
            # length (Steihaug's iterates grow in norm); scipy evaluates it again at each such
            # radius (its cache spares the evaluation), here the radius is shrunk past it at once
            pnorm = jnp.sqrt(p @ p)
            radius = jax.lax.while_loop(
                lambda r: ~accepted & ~on_boundary & (r > pnorm) & (r > 0), lambda r: 0.25 * r, radius
            )
            return i + 1, radius.astype(dt), accepted, ~(pred > 0), p, f1, g1, hvps + j

        c0 = (
            jnp.zeros([], jnp.int32),
            state.radius.astype(dt),
            jnp.zeros([], bool),
            jnp.zeros([], bool),
            jnp.zeros_like(x),
            f0,
            g,
            jnp.zeros([], jnp.int32),
        )
        tries, radius, ok, _, p, f1, g1, hvps = jax.lax.while_loop(cond, body, c0)
        p = jnp.where(ok, p, 0.0)
        f1 = jnp.where(ok, f1, f0)
        g1 = jnp.where(ok, g1, g)
        extra = jnp.int32(0) if value is not None else jnp.int32(1)
        new_state = NewtonCgTrustState(
            safe_increment(state.count),
            radius,
            f1,
            like(g1, updates),
            ~ok,
            state.num_evals + tries + extra,
            state.num_trials_rejected + tries - ok.astype(jnp.int32),
            state.num_hvps + hvps,
            hvps,
        )
        return like(p, updates), new_state

    return GradientTransformation(init, update)
