r"""Hager-Zhang line search: CG_DESCENT's approximate Wolfe conditions, secant steps and bisection.

Hager and Zhang (2005), "A new conjugate gradient method with guaranteed
descent and an efficient line search", SIAM J. Optim. 16(1), section 4; and
(2006) "Algorithm 851: CG_DESCENT", ACM TOMS 32(1). The search is the paper's
procedure (bracket, then secant^2 steps, update and bisection) written as a
state machine whose every pass through a bounded `lax.while_loop` evaluates
$f$ and $\nabla f$ at one trial point.
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

# phases: what the trial being evaluated is
_BRACKET, _U3, _S1, _S2, _L2 = 0, 1, 2, 3, 4


@per_param("grad")
class HagerZhangState(NamedTuple):
    """State of [`hager_zhang`][gradxform.linesearch.hager_zhang].

    `step_size`: the accepted $\\alpha$; `value` and `grad`:
    $f$ and $\\nabla f$ at $x + \\alpha d$; `prev_value`:
    $f(x)$, for `initial_step='quadratic'`; `failed`: no trial met
    the Wolfe or approximate Wolfe conditions within the budget (the step is
    then the lowest point found if it lowers $f$, else 0); `num_evals`:
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


class _Carry(NamedTuple):
    i: jax.Array
    done: jax.Array
    conv: jax.Array
    phase: jax.Array
    ctx: jax.Array  # the phase an update through U3 returns to
    c: jax.Array  # the trial step
    a: jax.Array  # interval [a, b] with phi'(a) < 0, phi(a) <= phi(0) + eps, phi'(b) >= 0
    da: jax.Array
    b: jax.Array
    db: jax.Array
    aj: jax.Array  # the interval secant^2 started from
    daj: jax.Array
    bj: jax.Array
    dbj: jax.Array
    abar: jax.Array  # U3's bisection interval
    dabar: jax.Array
    bbar: jax.Array
    best: tuple  # (step, value, gradient): the accepted point, or the lowest so far


def _secant(a, da, b, db):
    return (a * db - b * da) / (db - da)


def _pick(cond, p, q):
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), p, q)


def hager_zhang(
    c1: float = 0.1,
    c2: float = 0.9,
    epsilon: float = 1e-6,
    theta: float = 0.5,
    gamma: float = 0.66,
    expansion: float = 5.0,
    max_steps: int = 30,
    initial_step: float | str = "hager_zhang",
    max_step_size: float = 1e10,
) -> GradientTransformation:
    r"""Hager-Zhang line search (CG_DESCENT): Wolfe or approximate Wolfe steps.

    A trial $\alpha$ is accepted when it satisfies the Wolfe conditions

    $$\phi(\alpha) - \phi(0) \le \delta\alpha\phi'(0), \qquad \phi'(\alpha) \ge \sigma\phi'(0),$$

    or the approximate Wolfe conditions

    $$
    (2\delta - 1)\phi'(0) \ge \phi'(\alpha) \ge \sigma\phi'(0), \qquad
    \phi(\alpha) \le \phi(0) + \epsilon|\phi(0)|,
    $$

    ($\delta$ = `c1`, $\sigma$ = `c2`). The second pair is the
    first with $\phi$ replaced by its quadratic model, which can be
    checked to the precision of $\phi'$ rather than of $\phi$:
    near a minimum, where differences of $f$ are lost to rounding, the
    search still finds steps. The search brackets (steps grow by `expansion`
    until $\phi' \ge 0$ or $\phi$ rises above
    $\phi(0) + \epsilon|\phi(0)|$), then shrinks the bracket
    $[a, b]$ ($\phi'(a) < 0 \le \phi'(b)$) by secant steps on
    $\phi'$, $c = (a\phi'(b) - b\phi'(a))/(\phi'(b) - \phi'(a))$,
    two per round (secant^2), and bisects (by `theta`) when a round does not
    shrink it to `gamma` of its width. Each trial is one evaluation of
    $f$ and $\nabla f$; at most `max_steps`.

    Args:
        c1: $\delta$, in (0, 1/2).
        c2: $\sigma$, in [c1, 1).
        epsilon: the relative error in $f$ allowed by the approximate
            conditions, >= 0.
        theta: where the bisection of the update step cuts, in (0, 1).
        gamma: the shrink a secant^2 round must reach to skip bisection, in (0, 1).
        expansion: the growth of the trial step while bracketing, > 1.
        max_steps: the most evaluations of $f$ and $\nabla f$ in one search.
        initial_step: the first trial step: a positive number or a rule,
            `'one'`, `'quadratic'`, `'quasi_newton'` or `'hager_zhang'`
            (CG_DESCENT's I0 and I2; see [`gradxform.linesearch.first_step`][gradxform.linesearch.first_step]).
        max_step_size: the largest step tried.
    """
    who = "linesearch.hager_zhang"
    validate(who, "c1", c1, 0.0, 0.5, low_open=True, high_open=True)
    validate(who, "c2", c2, c1, 1.0, high_open=True)
    validate(who, "epsilon", epsilon, 0.0)
    validate(who, "theta", theta, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "gamma", gamma, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "expansion", expansion, 1.0, low_open=True)
    validate(who, "max_step_size", max_step_size, 0.0, low_open=True)
    check_steps(who, max_steps)
    initial_step = check_initial_step(who, initial_step)

    def init(params):
        return fresh_state(HagerZhangState, params)

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, s0, dt = line_setup(who, updates, params, value, grad, value_fn, extra_args)
        smax = jnp.asarray(max_step_size, dt)
        c_init = trial_step(initial_step, state, f0, s0, d, grad, params, dt)
        c_init = jnp.minimum(c_init, smax)
        phi = value_and_slope(fn, params, d, dt)
        fmax = f0 + epsilon * jnp.abs(f0)
        tiny = jnp.finfo(dt).eps
        zero = jnp.zeros([], dt)
        false = jnp.zeros([], bool)
        i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731

        def start_iteration(A, dA, B, dB):
            """Secant^2's first step on [A, B], or bisection if the secant falls outside."""
            s = _secant(A, dA, B, dB)
            inside = jnp.isfinite(s) & (s > A) & (s < B)
            return {
                "phase": jnp.where(inside, i32(_S1), i32(_L2)),
                "c": jnp.where(inside, s, A + 0.5 * (B - A)),
                "a": A, "da": dA, "b": B, "db": dB, "aj": A, "daj": dA, "bj": B, "dbj": dB,
            }  # fmt: skip

        def after_round(A, dA, B, dB, aj, daj, bj, dbj):
            """L2: bisect if secant^2 did not shrink [aj, bj] to gamma of its width, else a new round."""
            shrunk = (B - A) <= gamma * (bj - aj)
            mid = {
                "phase": i32(_L2), "c": A + 0.5 * (B - A),
                "a": A, "da": dA, "b": B, "db": dB, "aj": aj, "daj": daj, "bj": bj, "dbj": dbj,
            }  # fmt: skip
            return _pick(shrunk, start_iteration(A, dA, B, dB), mid)

        def finish(ctx, A, dA, B, dB, which, c, dc, k):
            """What follows an update that returned [A, B] (`which`: 1 if c became B, -1 if A, 0 neither)."""
            # secant^2's second step: the secant through the replaced end and c
            s = jnp.where(which > 0, _secant(k.bj, k.dbj, c, dc), _secant(k.aj, k.daj, c, dc))
            inside = (which != 0) & jnp.isfinite(s) & (s > A) & (s < B)
            second = {
                "phase": i32(_S2), "c": s,
                "a": A, "da": dA, "b": B, "db": dB, "aj": k.aj, "daj": k.daj, "bj": k.bj, "dbj": k.dbj,
            }  # fmt: skip
            l2 = after_round(A, dA, B, dB, k.aj, k.daj, k.bj, k.dbj)
            from_s1 = _pick(inside, second, l2)
            new_round = start_iteration(A, dA, B, dB)
            return _pick((ctx == _BRACKET) | (ctx == _L2), new_round, _pick(ctx == _S1, from_s1, l2))

        def u3_step(abar, bbar):
            return abar + theta * (bbar - abar)

        c0 = _Carry(
            i=i32(0), done=false, conv=false, phase=i32(_BRACKET), ctx=i32(_BRACKET), c=c_init,
            a=zero, da=s0, b=zero, db=s0, aj=zero, daj=s0, bj=zero, dbj=s0, abar=zero, dabar=s0, bbar=zero,
            best=(zero, f0, grad),
        )  # fmt: skip

        def cond(k):
            return (k.i < max_steps) & ~k.done

        def body(k):
            c = k.c
            fc, dc, gc = phi(c)
            finite = jnp.isfinite(fc) & jnp.isfinite(dc)
            wolfe = (fc - f0 <= c1 * c * s0) & (dc >= c2 * s0)
            approx = ((2 * c1 - 1) * s0 >= dc) & (dc >= c2 * s0) & (fc <= fmax)
            accept = finite & (wolfe | approx)
            lower = finite & (fc < k.best[1])
            best = _pick(accept | lower, (c, fc, gc), k.best)

            pos = finite & (dc >= 0)
            low = finite & (dc < 0) & (fc <= fmax)
            high = ~pos & ~low  # phi rose too much, or is not finite: a new upper end for U3

            nxt = {
                "phase": k.phase, "c": c, "a": k.a, "da": k.da, "b": k.b, "db": k.db,
                "aj": k.aj, "daj": k.daj, "bj": k.bj, "dbj": k.dbj,
            }  # fmt: skip
            abar, dabar, bbar, ctx = k.abar, k.dabar, k.bbar, k.ctx
            stuck = false

            # --- bracketing (B1-B3)
            br_pos = finish(i32(_BRACKET), k.a, k.da, c, dc, i32(0), c, dc, k)
            grow = jnp.minimum(expansion * c, smax)
            br_low = dict(nxt, c=grow, a=c, da=dc)
            br_high = dict(nxt, phase=i32(_U3), c=u3_step(k.a, c))
            br = _pick(pos, br_pos, _pick(low, br_low, br_high))
            br_stuck = low & ~(grow > c)

            # --- U3 (bisection inside update)
            u3_pos = finish(k.ctx, k.abar, k.dabar, c, dc, i32(0), c, dc, k)
            u3_low = dict(nxt, c=u3_step(c, k.bbar))
            u3_high = dict(nxt, c=u3_step(k.abar, c))
            u3 = _pick(pos, u3_pos, _pick(low, u3_low, u3_high))

            # --- a secant or bisection trial inside [a, b] (S1, S2, L2): update(a, b, c)
            up_pos = finish(k.phase, k.a, k.da, c, dc, i32(1), c, dc, k)
            up_low = finish(k.phase, c, dc, k.b, k.db, i32(-1), c, dc, k)
            up_high = dict(nxt, phase=i32(_U3), c=u3_step(k.a, c))
            up = _pick(pos, up_pos, _pick(low, up_low, up_high))

            in_br, in_u3 = k.phase == _BRACKET, k.phase == _U3
            new = _pick(in_br, br, _pick(in_u3, u3, up))
            # U3's interval: entered from bracketing or an update with [a or a_ok, c]; moved inside U3
            enter_u3 = high & ~in_u3
            abar = jnp.where(enter_u3, k.a, jnp.where(in_u3 & low, c, abar))
            dabar = jnp.where(enter_u3, k.da, jnp.where(in_u3 & low, dc, dabar))
            bbar = jnp.where(enter_u3 | (in_u3 & high), c, bbar)
            ctx = jnp.where(enter_u3, k.phase, ctx).astype(jnp.int32)
            stuck = (in_br & br_stuck) | ~jnp.isfinite(new["c"])
            # an interval that rounding cannot split any further
            lo = jnp.where(new["phase"] == _U3, abar, new["a"])
            hi = jnp.where(new["phase"] == _U3, bbar, new["b"])
            stuck = stuck | ((new["phase"] != _BRACKET) & (hi - lo <= tiny * jnp.abs(hi)))

            return _Carry(
                i=k.i + 1, done=accept | stuck, conv=accept, phase=new["phase"].astype(jnp.int32), ctx=ctx,
                c=new["c"], a=new["a"], da=new["da"], b=new["b"], db=new["db"], aj=new["aj"], daj=new["daj"],
                bj=new["bj"], dbj=new["dbj"], abar=abar, dabar=dabar, bbar=bbar, best=best,
            )  # fmt: skip

        k = jax.lax.while_loop(cond, body, c0)
        a, f, g = k.best
        ok = k.conv | ((a > 0) & (f < f0))
        a = jnp.where(ok, a, 0.0).astype(dt)
        f = jnp.where(ok, f, f0)
        g = tree_where(ok, g, grad)
        new_state = HagerZhangState(
            safe_increment(state.count), a, f, g, f0, ~k.conv, state.num_evals + k.i.astype(jnp.int32)
        )
        return tree_scale(a, d), new_state

    return GradientTransformation(init, update)
