r"""Strong-Wolfe line search by bracketing and zooming (N&W algorithms 3.5 and 3.6)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation
from gradxform.core.state import per_param
from gradxform.hyper import validate
from gradxform.linesearch._common import (
    check_initial_step,
    check_steps,
    fresh_state,
    line_setup,
    tree_scale,
    trial_step,
    value_and_slope,
)
from gradxform.numerics import PyTree, safe_increment


@per_param("grad")
class ZoomState(NamedTuple):
    """State of [`zoom`][gradxform.linesearch.zoom].

    `step_size`: the accepted $\\alpha$; `value` and `grad`:
    $f$ and $\\nabla f$ at $x + \\alpha d$ (reuse them for the
    next step instead of re-evaluating); `prev_value`: $f(x)$, for
    `initial_step='quadratic'`; `failed`: no step met the strong Wolfe
    conditions; `num_evals`: objective-and-gradient evaluations so far.

    `HANDS_OFF`: the value and gradient at the accepted point are in the
    state, so [`gradxform.minimize`][gradxform.minimize] takes them instead of evaluating again.
    """

    HANDS_OFF = True

    count: jax.Array
    step_size: jax.Array
    value: jax.Array
    grad: PyTree
    prev_value: jax.Array
    failed: jax.Array
    num_evals: jax.Array


def _cubic_min(a_lo, f_lo, g_lo, a_hi, f_hi, g_hi):
    r"""Minimizer of the cubic through two points with slopes (N&W eq. 3.59), safeguarded.

    Falls back to bisection if the cubic has no minimizer or it lies within
    10% of the interval's ends.
    """
    d1 = g_lo + g_hi - 3 * (f_lo - f_hi) / (a_lo - a_hi)
    disc = d1 * d1 - g_lo * g_hi
    d2 = jnp.sign(a_hi - a_lo) * jnp.sqrt(jnp.maximum(disc, 0.0))
    a = a_hi - (a_hi - a_lo) * (g_hi + d2 - d1) / (g_hi - g_lo + 2 * d2)
    lo, hi = jnp.minimum(a_lo, a_hi), jnp.maximum(a_lo, a_hi)
    width = hi - lo
    ok = (disc >= 0) & jnp.isfinite(a) & (a > lo + 0.1 * width) & (a < hi - 0.1 * width)
    return jnp.where(ok, a, 0.5 * (a_lo + a_hi))


def zoom(
    c1: float = 1e-4,
    c2: float = 0.9,
    max_steps: int = 30,
    initial_step: float | str = "one",
    max_step_size: float = 1e10,
    increase_factor: float = 2.0,
) -> GradientTransformation:
    r"""Strong-Wolfe line search by bracketing and zooming, N&W algorithms 3.5 and 3.6.

    Finds $\alpha$ with

    $$
    f(x + \alpha d) \le f(x) + c_1 \alpha \nabla f(x)^\top d, \qquad
    |\nabla f(x + \alpha d)^\top d| \le c_2 |\nabla f(x)^\top d|,
    $$

    Bracketing grows the trial step by
    `increase_factor` (up to `max_step_size`) until an interval holding
    such a step is found; zooming shrinks it with safeguarded cubic
    interpolation. At most `max_steps` evaluations of $f$ and
    $\nabla f$ in all. [`more_thuente`][gradxform.linesearch.more_thuente] and
    [`hager_zhang`][gradxform.linesearch.hager_zhang] find such steps in fewer evaluations; this search is kept
    for comparison.

    If the budget runs out, the point with the lowest value among those that
    satisfied the Armijo condition is taken (it may be $\alpha = 0$) and
    `state.failed` is set.

    Args:
        c1: the sufficient-decrease constant, in (0, 1).
        c2: the curvature constant, in (c1, 1): 0.9 for Newton and quasi-Newton
            directions, 0.1-0.4 for nonlinear CG.
        max_steps: the most evaluations of $f$ and $\nabla f$ in one search.
        initial_step: the first trial step: a positive number or a rule,
            `'one'`, `'quadratic'`, `'quasi_newton'` or `'hager_zhang'`
            (see [`gradxform.linesearch.first_step`][gradxform.linesearch.first_step]).
        max_step_size: the largest step tried.
        increase_factor: how much bracketing grows the trial step, > 1.
    """
    who = "linesearch.zoom"
    validate(who, "c1", c1, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "c2", c2, c1, 1.0, low_open=True, high_open=True)
    validate(who, "increase_factor", increase_factor, 1.0, low_open=True)
    validate(who, "max_step_size", max_step_size, 0.0, low_open=True)
    check_steps(who, max_steps)
    initial_step = check_initial_step(who, initial_step)

    def init(params):
        return fresh_state(ZoomState, params)

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, s0, dt = line_setup(who, updates, params, value, grad, value_fn, extra_args)
        a0 = trial_step(initial_step, state, f0, s0, d, grad, params, dt)
        a0 = jnp.minimum(a0, max_step_size)
        phi = value_and_slope(fn, params, d, dt)

        zero = jnp.zeros([], dt)

        # carry: i, phase (0 bracket, 1 zoom, 2 done), trial a,
        #        prev (a, f, s) for bracketing, lo (a, f, s), hi (a, f, s),
        #        accepted (a, f, g), best-Armijo (a, f, g)
        init_c = (
            jnp.zeros([], jnp.int32),
            jnp.zeros([], jnp.int32),
            a0,
            (zero, f0, s0),
            (zero, f0, s0),
            (zero, f0, s0),
            (zero, f0, grad),
            (zero, f0, grad),
        )

        def cond(c):
            return (c[0] < max_steps) & (c[1] < 2)

        def body(c):
            i, phase, a, prev, lo, hi, acc, best = c
            f, s, g = phi(a)
            armijo_fail = (f > f0 + c1 * a * s0) | ~jnp.isfinite(f)
            curv_ok = jnp.abs(s) <= -c2 * s0
            # Algorithm 3.5 (bracketing).
            b_hi_here = armijo_fail | ((i > 0) & (f >= prev[1]))
            b_done = ~b_hi_here & curv_ok
            b_lo_here = ~b_hi_here & ~b_done & (s >= 0)
            b_lo = jax.tree.map(lambda p, q: jnp.where(b_hi_here, p, q), prev, (a, f, s))
            b_hi = jax.tree.map(lambda p, q: jnp.where(b_hi_here, p, q), (a, f, s), prev)
            b_phase = jnp.where(b_done, 2, jnp.where(b_hi_here | b_lo_here, 1, 0))
            b_next = jnp.minimum(a * increase_factor, max_step_size)
            # Algorithm 3.6 (zoom).
            z_hi_here = armijo_fail | (f >= lo[1])
            z_done = ~z_hi_here & curv_ok
            z_flip = ~z_hi_here & ~z_done & (s * (hi[0] - lo[0]) >= 0)
            z_lo = jax.tree.map(lambda p, q: jnp.where(z_hi_here, p, q), lo, (a, f, s))
            z_hi = jax.tree.map(lambda p, q, r: jnp.where(z_hi_here, q, jnp.where(z_flip, p, r)), lo, (a, f, s), hi)
            z_phase = jnp.where(z_done, 2, 1)
            in_b = phase == 0
            new_lo = jax.tree.map(lambda p, q: jnp.where(in_b, p, q), b_lo, z_lo)
            new_hi = jax.tree.map(lambda p, q: jnp.where(in_b, p, q), b_hi, z_hi)
            new_phase = jnp.where(in_b, b_phase, z_phase).astype(jnp.int32)
            done = new_phase == 2
            new_prev = jax.tree.map(lambda p, q: jnp.where(in_b, q, p), prev, (a, f, s))
            zoom_next = _cubic_min(*new_lo, *new_hi)
            new_a = jnp.where(new_phase == 0, b_next, zoom_next)
            new_acc = jax.tree.map(lambda p, q: jnp.where(done, q, p), acc, (a, f, g))
            better = ~armijo_fail & (f < best[1])
            new_best = jax.tree.map(lambda p, q: jnp.where(better, q, p), best, (a, f, g))
            return (i + 1, new_phase, new_a, new_prev, new_lo, new_hi, new_acc, new_best)

        out = jax.lax.while_loop(cond, body, init_c)
        n, phase = out[0], out[1]
        ok = phase == 2
        a, f, g = jax.tree.map(lambda p, q: jnp.where(ok, p, q), out[6], out[7])
        new_state = ZoomState(
            safe_increment(state.count), a.astype(dt), f, g, f0, ~ok, state.num_evals + n.astype(jnp.int32)
        )
        return tree_scale(a, d), new_state

    return GradientTransformation(init, update)
