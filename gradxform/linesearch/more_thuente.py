r"""Moré-Thuente line search: MINPACK-2's DCSRCH and DCSTEP as one bounded `lax.while_loop`.

Moré and Thuente (1994), "Line search algorithms with guaranteed sufficient
decrease", ACM TOMS 20(3). This is the search of scipy's BFGS and CG (through
`line_search_wolfe1`) and of L-BFGS-B, ported from scipy's
`scipy/optimize/_dcsrch.py` step for step, with one change: where DCSRCH
would evaluate the best point found again to report it (after a rounding or
`xtol` warning), this search returns that point's stored value and gradient.
"""

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
    tree_where,
    trial_step,
    value_and_slope,
)
from gradxform.numerics import PyTree, safe_increment

_P5, _P66, _XTRAPL, _XTRAPU = 0.5, 0.66, 1.1, 4.0


@per_param("grad")
class MoreThuenteState(NamedTuple):
    """State of [`more_thuente`][gradxform.linesearch.more_thuente].

    `step_size`: the accepted $\\alpha$; `value` and `grad`:
    $f$ and $\\nabla f$ at $x + \\alpha d$; `prev_value`:
    $f(x)$, for `initial_step='quadratic'`; `failed`: the search
    stopped without meeting the strong Wolfe conditions (a DCSRCH warning or
    the budget; the step is then the best point found, or 0); `num_evals`:
    objective-and-gradient evaluations so far.

    `HANDS_OFF`: the value and gradient at the accepted point are in the
    state, so [`gradxform.minimize`][gradxform.minimize] takes them instead of evaluating again.
    """

    count: jax.Array
    step_size: jax.Array
    value: jax.Array
    grad: PyTree
    prev_value: jax.Array
    failed: jax.Array
    num_evals: jax.Array

    HANDS_OFF = True


def _cubic_gamma(theta, da, db):
    s = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(da)), jnp.abs(db))
    return s, (theta / s) ** 2 - (da / s) * (db / s)


def dcstep(
    stx: jax.Array,
    fx: jax.Array,
    dx: jax.Array,
    sty: jax.Array,
    fy: jax.Array,
    dy: jax.Array,
    stp: jax.Array,
    fp: jax.Array,
    dp: jax.Array,
    brackt: jax.Array,
    stpmin: jax.Array,
    stpmax: jax.Array,
) -> tuple:
    r"""MINPACK-2's DCSTEP: a safeguarded trial step and the updated interval of uncertainty.

    `stx` is the step with the least (modified) value so far, `sty` the
    other end of the interval, `stp` the step just evaluated; `dx`, `dy`,
    `dp` are derivatives along the line. Four cases (Moré & Thuente, section 4):

    1. $f_p > f_x$: a minimizer is bracketed in $[s_x, s_p]$; the
       cubic step if it is closer to $s_x$ than the quadratic step, else
       their average.
    2. $f_p \le f_x$ and $d_p d_x < 0$: bracketed; the cubic step
       if it is farther from $s_p$ than the secant step, else the secant step.
    3. $f_p \le f_x$, same signs, $|d_p| < |d_x|$: the cubic step
       (if the cubic tends to infinity in the step's direction) or the secant
       step, safeguarded towards $s_y$ (bracketed) or into
       `[stpmin, stpmax]` (not).
    4. otherwise: the cubic through $s_p, s_y$ if bracketed, else
       `stpmax` or `stpmin`.

    Args:
        stx: the best step so far.
        fx: its value.
        dx: its derivative.
        sty: the interval's other end.
        fy: its value.
        dy: its derivative.
        stp: the step just evaluated.
        fp: its value.
        dp: its derivative.
        brackt: whether a minimizer is bracketed.
        stpmin: the lower bound for a step that extrapolates.
        stpmax: the upper bound for a step that extrapolates.

    Returns:
        `(stx, fx, dx, sty, fy, dy, stp, brackt, moved)` with `stp` the new trial step and `moved`
        whether `stx` became the evaluated `stp`.
    """
    sgnd = jnp.sign(dp) * jnp.sign(dx)
    gap = stp - stx

    # case 1
    theta1 = 3.0 * (fx - fp) / gap + dx + dp
    s1, disc1 = _cubic_gamma(theta1, dx, dp)
    gamma1 = s1 * jnp.sqrt(disc1)
    gamma1 = jnp.where(stp < stx, -gamma1, gamma1)
    r1 = ((gamma1 - dx) + theta1) / (((gamma1 - dx) + gamma1) + dp)
    stpc1 = stx + r1 * gap
    stpq1 = stx + ((dx / ((fx - fp) / gap + dx)) / 2.0) * gap
    stpf1 = jnp.where(jnp.abs(stpc1 - stx) <= jnp.abs(stpq1 - stx), stpc1, stpc1 + (stpq1 - stpc1) / 2.0)

    # case 2 (and 3 share theta)
    theta2 = 3.0 * (fx - fp) / gap + dx + dp
    s2, disc2 = _cubic_gamma(theta2, dx, dp)
    gamma2 = s2 * jnp.sqrt(disc2)
    gamma2 = jnp.where(stp > stx, -gamma2, gamma2)
    r2 = ((gamma2 - dp) + theta2) / (((gamma2 - dp) + gamma2) + dx)
    stpc2 = stp + r2 * (stx - stp)
    stpq2 = stp + (dp / (dp - dx)) * (stx - stp)
    stpf2 = jnp.where(jnp.abs(stpc2 - stp) > jnp.abs(stpq2 - stp), stpc2, stpq2)

    # case 3
    gamma3 = s2 * jnp.sqrt(jnp.maximum(0.0, disc2))
    gamma3 = jnp.where(stp > stx, -gamma3, gamma3)
    r3 = ((gamma3 - dp) + theta2) / ((gamma3 + (dx - dp)) + gamma3)
    stpc3 = jnp.where((r3 < 0) & (gamma3 != 0), stp + r3 * (stx - stp), jnp.where(stp > stx, stpmax, stpmin))
    stpq3 = stpq2
    closer = jnp.abs(stpc3 - stp) < jnp.abs(stpq3 - stp)
    farther = jnp.abs(stpc3 - stp) > jnp.abs(stpq3 - stp)
    stpf3_b = jnp.where(closer, stpc3, stpq3)
    stpf3_b = jnp.where(
        stp > stx, jnp.minimum(stp + _P66 * (sty - stp), stpf3_b), jnp.maximum(stp + _P66 * (sty - stp), stpf3_b)
    )
    stpf3_u = jnp.clip(jnp.where(farther, stpc3, stpq3), stpmin, stpmax)
    stpf3 = jnp.where(brackt, stpf3_b, stpf3_u)

    # case 4
    theta4 = 3.0 * (fp - fy) / (sty - stp) + dy + dp
    s4, disc4 = _cubic_gamma(theta4, dy, dp)
    gamma4 = s4 * jnp.sqrt(disc4)
    gamma4 = jnp.where(stp > sty, -gamma4, gamma4)
    r4 = ((gamma4 - dp) + theta4) / (((gamma4 - dp) + gamma4) + dy)
    stpf4 = jnp.where(brackt, stp + r4 * (sty - stp), jnp.where(stp > stx, stpmax, stpmin))

    case1 = fp > fx
    case2 = ~case1 & (sgnd < 0)
    case3 = ~case1 & ~case2 & (jnp.abs(dp) < jnp.abs(dx))
    stpf = jnp.where(case1, stpf1, jnp.where(case2, stpf2, jnp.where(case3, stpf3, stpf4)))
    brackt = brackt | case1 | case2

    # the new interval
    moved = ~case1
    to_y_from_p = case1
    to_y_from_x = ~case1 & (sgnd < 0)
    sty_n = jnp.where(to_y_from_p, stp, jnp.where(to_y_from_x, stx, sty))
    fy_n = jnp.where(to_y_from_p, fp, jnp.where(to_y_from_x, fx, fy))
    dy_n = jnp.where(to_y_from_p, dp, jnp.where(to_y_from_x, dx, dy))
    stx_n = jnp.where(moved, stp, stx)
    fx_n = jnp.where(moved, fp, fx)
    dx_n = jnp.where(moved, dp, dx)
    return stx_n, fx_n, dx_n, sty_n, fy_n, dy_n, stpf, brackt, moved


class _Carry(NamedTuple):
    i: jax.Array
    done: jax.Array
    conv: jax.Array
    stage: jax.Array
    brackt: jax.Array
    stp: jax.Array
    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    stmin: jax.Array
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array
    cap: jax.Array
    grad_x: PyTree  # the gradient at stx
    acc: tuple  # the accepted (step, value, gradient)


def more_thuente(
    c1: float = 1e-4,
    c2: float = 0.9,
    xtol: float = 1e-14,
    max_steps: int = 30,
    initial_step: float | str = "one",
    min_step_size: float = 0.0,
    max_step_size: float = 1e10,
    rounding_ulps: float = 10.0,
) -> GradientTransformation:
    r"""Moré-Thuente line search (MINPACK-2 DCSRCH): strong Wolfe in few evaluations.

    Finds $\alpha$ with

    $$\phi(\alpha) \le \phi(0) + c_1 \alpha \phi'(0), \qquad |\phi'(\alpha)| \le c_2 |\phi'(0)|,$$

    $\phi(\alpha) = f(x + \alpha d)$. Each trial evaluates $f$ and
    $\nabla f$ once. While no trial has met the first condition with
    $\phi' \ge 0$, the steps are chosen on the auxiliary function
    $\psi(\alpha) = \phi(\alpha) - \phi(0) - c_1 \alpha \phi'(0)$, then on
    $\phi$; each next trial comes from [`dcstep`][gradxform.linesearch.dcstep] (safeguarded
    cubic, quadratic and secant steps), extrapolating by 1.1-4 times the last
    step until a minimizer is bracketed and bisecting when the interval does not
    shrink by a third. The search stops with a warning when the interval is
    narrower than `xtol` (relative) or rounding prevents progress; it then
    takes the best point found, stored, not evaluated again. At most
    `max_steps` evaluations. scipy's settings: BFGS and CG
    `c1=1e-4, c2=0.9` (CG: 0.4), `xtol=1e-14`; L-BFGS-B
    `c1=1e-3, c2=0.9, xtol=0.1`.

    Rounding: near a minimum the decrease the first condition asks for falls
    below the rounding error of $f$, and a search can fail on noise
    alone (scipy's then falls back to another search). Here the stopping test
    forgives $f$ an excess of `rounding_ulps` units in the last place
    of $f(x)$: $\phi(\alpha) \le \phi(0) + c_1\alpha\phi'(0) +
    \text{rounding_ulps}\cdot\epsilon_{\text{mach}}|\phi(0)|$. The choice of
    trial steps is DCSRCH's unchanged; with `rounding_ulps=0` so is the test.

    If the search stops without meeting both conditions, the best point found
    (the lowest of $\psi$, then of $\phi$) is taken if it lowers
    $f$, else no step; `state.failed` is set either way.

    Args:
        c1: the sufficient-decrease constant (MINPACK's `ftol`), in (0, 1).
        c2: the curvature constant (`gtol`), in (c1, 1).
        xtol: relative width of the interval of uncertainty at which the search
            stops, in [0, 1).
        max_steps: the most evaluations of $f$ and $\nabla f$ in one search.
        initial_step: the first trial step: a positive number or a rule,
            `'one'`, `'quadratic'`, `'quasi_newton'` or `'hager_zhang'`
            (see [`gradxform.linesearch.first_step`][gradxform.linesearch.first_step]); clipped into
            `[min_step_size, max_step_size]`.
        min_step_size: the smallest step (`stpmin`), >= 0.
        max_step_size: the largest step (`stpmax`), > `min_step_size`.
        rounding_ulps: the rounding error of $f$ the stopping test
            forgives, in units in the last place of $f(x)$, >= 0.
    """
    who = "linesearch.more_thuente"
    validate(who, "c1", c1, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "c2", c2, c1, 1.0, low_open=True, high_open=True)
    validate(who, "xtol", xtol, 0.0, 1.0, high_open=True)
    validate(who, "min_step_size", min_step_size, 0.0)
    validate(who, "max_step_size", max_step_size, min_step_size, low_open=True)
    validate(who, "rounding_ulps", rounding_ulps, 0.0)
    check_steps(who, max_steps)
    initial_step = check_initial_step(who, initial_step)

    def init(params):
        return fresh_state(MoreThuenteState, params)

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, s0, dt = line_setup(who, updates, params, value, grad, value_fn, extra_args)
        stpmin = jnp.asarray(min_step_size, dt)
        stpmax = jnp.asarray(max_step_size, dt)
        a0 = trial_step(initial_step, state, f0, s0, d, grad, params, dt)
        a0 = jnp.clip(a0, stpmin, stpmax)
        phi = value_and_slope(fn, params, d, dt)
        gtest = c1 * s0
        noise = rounding_ulps * jnp.finfo(dt).eps * jnp.abs(f0)
        zero = jnp.zeros([], dt)
        false = jnp.zeros([], bool)
        width = stpmax - stpmin
        c0 = _Carry(
            i=jnp.zeros([], jnp.int32),
            done=false,
            conv=false,
            stage=jnp.ones([], jnp.int32),
            brackt=false,
            stp=a0,
            stx=zero,
            fx=f0,
            gx=s0,
            sty=zero,
            fy=f0,
            gy=s0,
            stmin=zero,
            stmax=a0 + _XTRAPU * a0,
            width=width,
            width1=width / _P5,
            cap=stpmax,
            grad_x=grad,
            acc=(zero, f0, grad),
        )

        def cond(c):
            return (c.i < max_steps) & ~c.done

        def body(c):
            stp = c.stp
            f, g, gt = phi(stp)
            finite = jnp.isfinite(f) & jnp.isfinite(g)
            ftest = f0 + stp * gtest
            stage = jnp.where((c.stage == 1) & (f <= ftest) & (g >= 0), 2, c.stage).astype(jnp.int32)
            warn = (
                (c.brackt & ((stp <= c.stmin) | (stp >= c.stmax)))
                | (c.brackt & (c.stmax - c.stmin <= xtol * c.stmax))
                | ((stp == c.cap) & (f <= ftest) & (g <= gtest))
                | ((stp == stpmin) & ((f > ftest) | (g >= gtest)))
            )
            conv = finite & (f <= ftest + noise) & (jnp.abs(g) <= c2 * -s0)
            stop = conv | warn

            # DCSTEP, on psi while stage 1 has a lower value without sufficient decrease
            modified = (stage == 1) & (f <= c.fx) & (f > ftest)
            sh = jnp.where(modified, gtest, 0.0)
            stx, fx, gx, sty, fy, gy, stp_n, brackt, moved = dcstep(
                c.stx,
                c.fx - c.stx * sh,
                c.gx - sh,
                c.sty,
                c.fy - c.sty * sh,
                c.gy - sh,
                stp,
                f - stp * sh,
                g - sh,
                c.brackt,
                c.stmin,
                c.stmax,
            )
            fx, fy, gx, gy = fx + stx * sh, fy + sty * sh, gx + sh, gy + sh
            grad_x = tree_where(moved, gt, c.grad_x)
            # bisect when the interval did not shrink enough
            bisect = brackt & (jnp.abs(sty - stx) >= _P66 * c.width1)
            stp_n = jnp.where(bisect, stx + _P5 * (sty - stx), stp_n)
            width1 = jnp.where(brackt, c.width, c.width1)
            width = jnp.where(brackt, jnp.abs(sty - stx), c.width)
            stmin = jnp.where(brackt, jnp.minimum(stx, sty), stp_n + _XTRAPL * (stp_n - stx))
            stmax = jnp.where(brackt, jnp.maximum(stx, sty), stp_n + _XTRAPU * (stp_n - stx))
            stp_n = jnp.clip(stp_n, stpmin, c.cap)
            # no progress possible: DCSRCH would evaluate stx again and stop; stx is stored
            stuck = (brackt & ((stp_n <= stmin) | (stp_n >= stmax))) | (brackt & (stmax - stmin <= xtol * stmax))
            stuck = stuck | ~jnp.isfinite(stp_n)

            new = _Carry(
                c.i + 1, stuck, false, stage, brackt, stp_n, stx, fx, gx, sty, fy, gy, stmin, stmax, width,
                width1, c.cap, grad_x, (stx, fx, grad_x),
            )  # fmt: skip
            # a value or slope that is not finite: halve the step towards stx and cap further steps there
            half = c.stx + _P5 * (stp - c.stx)
            bad = c._replace(i=c.i + 1, stage=stage, stp=half, cap=half, done=~(half > c.stx))
            bad = bad._replace(acc=(c.stx, c.fx, c.grad_x))
            # a stop: the trial if it met the conditions or (after a warning) sufficient decrease, else stx
            take_trial = conv | (finite & (f <= ftest + noise))
            acc = jax.tree.map(lambda p, q: jnp.where(take_trial, p, q), (stp, f, gt), (c.stx, c.fx, c.grad_x))
            stopped = c._replace(i=c.i + 1, done=jnp.ones([], bool), conv=conv, stage=stage, acc=acc)
            out = jax.tree.map(lambda p, q: jnp.where(finite, p, q), new, bad)
            return jax.tree.map(lambda p, q: jnp.where(stop, p, q), stopped, out)

        c = jax.lax.while_loop(cond, body, c0)
        # out of budget: the best point so far
        acc = jax.tree.map(lambda p, q: jnp.where(c.done, p, q), c.acc, (c.stx, c.fx, c.grad_x))
        a, f, g = acc
        ok = c.conv | ((a > 0) & (f < f0))
        a = jnp.where(ok, a, 0.0).astype(dt)
        f = jnp.where(ok, f, f0)
        g = tree_where(ok, g, grad)
        new_state = MoreThuenteState(
            safe_increment(state.count), a, f, g, f0, ~c.conv, state.num_evals + c.i.astype(jnp.int32)
        )
        return tree_scale(a, d), new_state

    return GradientTransformation(init, update)
