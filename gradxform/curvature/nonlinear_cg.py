r"""Nonlinear conjugate gradients: Polak-Ribiere+, Fletcher-Reeves and Hager-Zhang, with restarts.

The search direction mixes the new gradient with the previous direction
(here both carried with the gradient's sign, $u = -d$):

$$u_k = g_k + \beta_k u_{k-1},$$

$$
\beta^{FR}_k = \frac{g_k^\top g_k}{g_{k-1}^\top g_{k-1}}, \qquad
\beta^{PR+}_k = \max\Big(0, \frac{g_k^\top (g_k - g_{k-1})}{g_{k-1}^\top g_{k-1}}\Big)
$$

(N&W eqs. 5.41a, 5.44, 5.45), and Hager and Zhang's (CG_DESCENT, 2005), in the
usual signs ($d = -u$ the descent direction, $y_k = g_k - g_{k-1}$):

$$
\beta^{HZ}_k = \max\Big(\frac{1}{d_{k-1}^\top y_k}\Big(y_k - 2 d_{k-1}
\frac{\|y_k\|^2}{d_{k-1}^\top y_k}\Big)^\top g_k,\;
\frac{-1}{\|d_{k-1}\| \min(0.01, \|g_{k-1}\|)}\Big),
$$

which gives descent, $g_k^\top d_k \le -\tfrac78 \|g_k\|^2$, after any
line search satisfying the (weak) Wolfe conditions. $\beta_k = 0$ (a restart: steepest descent)
at the first step, whenever $-u_k$ would not be a descent direction
($g_k^\top u_k \le 0$), and, if `restart_every` is given, every
`restart_every` steps. By default there are no periodic restarts, as in
scipy's CG: restarting every $n$ steps measured worse on the
Moré-Garbow-Hillstrom problems of `docs/curvature.md` (on Gulf, $n = 3$,
519 iterations against 85; over the set, 1.10 against 1.02 times scipy's
evaluations with the same line search). On a convex quadratic with an exact
line search all three formulas reduce to linear CG, which ends in at most
$n$ steps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks import scale
from gradxform.core import GradientTransformation, chain
from gradxform.curvature._flat import like, ravel
from gradxform.hyper import validate_int
from gradxform.linesearch import more_thuente
from gradxform.numerics import safe_increment, zero_count


class ConjugateGradientState(NamedTuple):
    """State of [`scale_by_conjugate_gradient`][gradxform.scale_by_conjugate_gradient]: the previous gradient
    and direction (raveled), and `since_restart`, the steps since the last restart."""

    count: jax.Array
    prev_grad: jax.Array
    prev_direction: jax.Array
    since_restart: jax.Array


_METHODS = ("polak_ribiere", "fletcher_reeves", "hager_zhang")


def scale_by_conjugate_gradient(
    method: str = "polak_ribiere", restart_every: int | None = None
) -> GradientTransformation:
    r"""The conjugate direction $u_k = g_k + \beta_k u_{k-1}$ (module docstring).

    The incoming updates must be gradients; follow with a sign flip and a
    line search ([`conjugate_gradient`][gradxform.conjugate_gradient] does).

    Args:
        method: `'polak_ribiere'` (PR+, the default), `'fletcher_reeves'` or
            `'hager_zhang'`.
        restart_every: restart every this many steps, an int >= 1; None for
            restarts only at the first step and where needed.
    """
    who = "scale_by_conjugate_gradient"
    if method not in _METHODS:
        raise ValueError(f"{who}: method={method!r} is not known; use one of {_METHODS}.")
    validate_int(who, "restart_every", restart_every, 1, allow_none=True)

    def init(params):
        x, _ = ravel(params)
        return ConjugateGradientState(zero_count(), jnp.zeros_like(x), jnp.zeros_like(x), zero_count())

    def update(updates, state, params=None, **extra_args):
        g, _ = ravel(updates)
        gp, up = state.prev_grad, state.prev_direction
        gpgp = gp @ gp
        if method == "fletcher_reeves":
            beta = (g @ g) / gpgp
        elif method == "hager_zhang":
            y = g - gp
            dy = -(up @ y)  # d_{k-1}^T y with d = -u
            beta_n = (y @ g + 2.0 * (up @ g) * (y @ y) / dy) / dy
            eta = -1.0 / (jnp.sqrt(up @ up) * jnp.minimum(0.01, jnp.sqrt(gpgp)))
            beta = jnp.maximum(beta_n, eta)
        else:
            beta = jnp.maximum(0.0, g @ (g - gp) / gpgp)
        periodic = state.since_restart == 0 if restart_every is None else state.since_restart % restart_every == 0
        restart = periodic | ~jnp.isfinite(beta)
        beta = jnp.where(restart, 0.0, beta)
        u = g + beta * up
        not_descent = (g @ u) <= 0
        u = jnp.where(not_descent, g, u)
        restarted = restart | not_descent
        since = jnp.where(restarted, 1, state.since_restart + 1).astype(jnp.int32)
        new_state = ConjugateGradientState(safe_increment(state.count), g, u, since)
        return like(u, updates), new_state

    return GradientTransformation(init, update)


def conjugate_gradient(
    method: str = "polak_ribiere",
    restart_every: int | None = None,
    linesearch: GradientTransformation | None = None,
) -> GradientTransformation:
    r"""Nonlinear CG: $x \leftarrow x - \alpha u$, $u_k = g_k + \beta_k u_{k-1}$.

    `chain(scale_by_conjugate_gradient(method, restart_every), scale(-1), linesearch)`;
    the default line search is Moré-Thuente ([`gradxform.linesearch.more_thuente`][gradxform.linesearch.more_thuente])
    with `c2=0.2` and the first trial step from the last decrease
    (`initial_step='quadratic'`, since CG directions carry no natural scale),
    as scipy's CG but for `c2` (scipy's 0.4; PR+ and FR need `c2 < 1/2` for
    descent). `c2` was chosen on the benchmark set of `docs/curvature.md`:
    evaluations over scipy's, geometric mean (worst), 0.84 (2.91) with 0.1,
    0.80 (1.80) with 0.2, 0.87 (2.00) with 0.3, 1.02 (1.56) with 0.4. Pass
    `linesearch=gradxform.linesearch.exact_quadratic()` for linear CG on a
    quadratic.

    Args:
        method: `'polak_ribiere'` (PR+), `'fletcher_reeves'` or `'hager_zhang'`.
        restart_every: restart (steepest descent) every this many steps, an int
            >= 1; None (the default) for restarts only where needed.
        linesearch: the line search; None for the default above.
    """
    ls = more_thuente(c2=0.2, initial_step="quadratic") if linesearch is None else linesearch
    return chain(scale_by_conjugate_gradient(method, restart_every), scale(-1.0), ls)
