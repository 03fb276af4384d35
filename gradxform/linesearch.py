r"""Line searches as transforms: the incoming update is a search direction, the outgoing one a step.

A line search sees the objective along the direction :math:`d` (the incoming
updates) from the parameters :math:`x`,

.. math:: \phi(\alpha) = f(x + \alpha d), \qquad \phi'(\alpha) = \nabla f(x + \alpha d)^\top d,

picks a step size :math:`\alpha` and returns :math:`\alpha d`. It needs the
objective, which it takes through the extra arguments of ``update`` with
optax's names (as ``optax.scale_by_backtracking_linesearch`` and
``optax.scale_by_zoom_linesearch`` do)::

    updates, state = tx.update(grad, state, params, value=f(params), grad=grad, value_fn=f)

``value`` is :math:`f(x)`, ``grad`` is :math:`\nabla f(x)` and ``value_fn`` is
:math:`f`. Other extra arguments whose names ``value_fn`` accepts are passed on
to it (data batches, say); the rest are ignored, so a line search can sit in a
:func:`gradxform.chain` beside transforms that take other extra arguments.

Every search runs a bounded ``lax.while_loop`` (``max_steps`` evaluations of
:math:`f`), so it jit-compiles and vmaps. If the direction is not a descent
direction (:math:`\phi'(0) \ge 0`), the search uses :math:`d = -\nabla f(x)`
instead. If no step satisfying the search's conditions is found within the
budget, the best point found that lowers :math:`f` is taken, or no step at all
(:math:`\alpha = 0`); ``state.failed`` then says so.

Each state records the accepted step size, the value (and for :func:`zoom` the
gradient) at the new point, and ``num_evals``, the running count of objective
evaluations made by the search, which :func:`gradxform.minimize` adds up.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation
from gradxform.hyper import validate
from gradxform.numerics import PyTree, safe_increment, zero_count

__all__ = [
    "BacktrackingState",
    "ExactQuadraticState",
    "ZoomState",
    "backtracking",
    "exact_quadratic",
    "zoom",
]


# --------------------------------------------------------------------------- helpers


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    """:math:`\\sum_\\ell \\mathrm{Re}\\langle a_\\ell, b_\\ell\\rangle` over the leaves."""
    parts = [jnp.real(jnp.vdot(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([])


def tree_axpy(alpha: jax.Array, d: PyTree, x: PyTree) -> PyTree:
    """:math:`x + \\alpha d`, each leaf keeping ``x``'s dtype."""
    return jax.tree.map(lambda xi, di: (xi + alpha * di).astype(jnp.result_type(xi)), x, d)


def tree_scale(alpha: jax.Array, d: PyTree) -> PyTree:
    """:math:`\\alpha d`, each leaf keeping its dtype."""
    return jax.tree.map(lambda di: (alpha * di).astype(jnp.result_type(di)), d)


def bind_value_fn(value_fn: Callable, extra_args: dict) -> Callable[[PyTree], jax.Array]:
    """``value_fn`` with the extra arguments it names bound: ``params -> f(params, **kwargs)``."""
    try:
        sig = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):
        return value_fn
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        kwargs = dict(extra_args)
    else:
        kwargs = {k: v for k, v in extra_args.items() if k in sig}
    if not kwargs:
        return value_fn
    return lambda p: value_fn(p, **kwargs)


def _require(who: str, params: Any, value: Any, grad: Any, value_fn: Any) -> None:
    missing = [
        n for n, v in (("params", params), ("value", value), ("grad", grad), ("value_fn", value_fn)) if v is None
    ]
    if missing:
        raise TypeError(
            f"{who}: update needs {', '.join(missing)}. Call it as "
            "tx.update(grad, state, params, value=f(params), grad=grad, value_fn=f), "
            "or use gradxform.minimize, which passes them."
        )
    if not callable(value_fn):
        raise TypeError(f"{who}: value_fn must be the objective (a callable params -> scalar), got {value_fn!r}.")


def _line_setup(who, updates, params, value, grad, value_fn, extra_args):
    """The direction (steepest descent if ``updates`` is not a descent direction), phi(0), phi'(0)."""
    _require(who, params, value, grad, value_fn)
    fn = bind_value_fn(value_fn, extra_args)
    f0 = jnp.asarray(value)
    dtype = jnp.result_type(jnp.float32, f0)
    f0 = f0.astype(dtype)
    slope = tree_vdot(grad, updates).astype(dtype)
    descent = slope < 0
    d = jax.tree.map(lambda u, g: jnp.where(descent, u, -g).astype(jnp.result_type(u)), updates, grad)
    slope0 = jnp.where(descent, slope, -tree_vdot(grad, grad).astype(dtype))
    return fn, d, f0, slope0, dtype


def _quadratic_guess(f0, prev_value, slope0, grad, dtype):
    r"""N&W eq. (3.60), scipy's first guess: :math:`\min(1, 1.01\cdot 2(f_k - f_{k-1})/\phi'(0))`.

    Before the first step :math:`f_{k-1} = f_k + \|\nabla f\|/2`, as in scipy's
    BFGS and CG. A guess that is not positive and finite becomes 1.
    """
    gnorm = jnp.sqrt(tree_vdot(grad, grad)).astype(dtype)
    prev = jnp.where(jnp.isnan(prev_value), f0 + gnorm / 2, prev_value)
    guess = 1.01 * 2 * (f0 - prev) / slope0
    ok = jnp.isfinite(guess) & (guess > 0)
    return jnp.where(ok, jnp.minimum(1.0, guess), 1.0).astype(dtype)


def _check_initial_step(who: str, initial_step: Any) -> Any:
    if isinstance(initial_step, str):
        if initial_step not in ("one", "quadratic"):
            raise ValueError(
                f"{who}: initial_step={initial_step!r} is not known; use 'one', 'quadratic' or a positive number."
            )
        return initial_step
    return validate(who, "initial_step", initial_step, 0.0, low_open=True)


def _first_step(initial_step, f0, prev_value, slope0, grad, dtype):
    if initial_step == "one":
        return jnp.ones([], dtype)
    if initial_step == "quadratic":
        return _quadratic_guess(f0, prev_value, slope0, grad, dtype)
    return jnp.asarray(initial_step, dtype)


# --------------------------------------------------------------------------- backtracking


class BacktrackingState(NamedTuple):
    """State of :func:`backtracking`.

    ``step_size``: the accepted :math:`\\alpha` (0 if none); ``value``:
    :math:`f(x + \\alpha d)`; ``prev_value``: :math:`f(x)` of the last step (NaN
    before the first), for ``initial_step='quadratic'``; ``failed``: no step met
    the Armijo condition; ``num_evals``: objective evaluations so far.
    """

    count: jax.Array
    step_size: jax.Array
    value: jax.Array
    prev_value: jax.Array
    failed: jax.Array
    num_evals: jax.Array


def backtracking(
    c1: float = 1e-4,
    decrease_factor: float = 0.5,
    max_steps: int = 30,
    initial_step: float | str = 1.0,
) -> GradientTransformation:
    r"""Backtracking (Armijo) line search, N&W algorithm 3.1.

    Tries :math:`\alpha = \alpha_0, \rho\alpha_0, \rho^2\alpha_0, \dots` and
    takes the first that satisfies the sufficient-decrease (Armijo) condition

    .. math:: f(x + \alpha d) \le f(x) + c_1 \alpha \nabla f(x)^\top d,

    with at most ``max_steps`` evaluations of :math:`f` (values only, no
    gradients). ``c1`` in (0, 1), ``decrease_factor`` :math:`\rho` in (0, 1).
    ``initial_step`` :math:`\alpha_0` is a positive number, ``'one'``, or
    ``'quadratic'`` (N&W eq. 3.60: :math:`\min(1, 2.02 (f_k - f_{k-1}) /
    \nabla f_k^\top d)`). If none of the tried steps satisfies Armijo, the step
    is 0 and ``state.failed`` is set.
    """
    who = "linesearch.backtracking"
    validate(who, "c1", c1, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "decrease_factor", decrease_factor, 0.0, 1.0, low_open=True, high_open=True)
    _check_steps(who, max_steps)
    initial_step = _check_initial_step(who, initial_step)

    def init(params):
        dt = _value_dtype(params)
        return BacktrackingState(
            zero_count(),
            jnp.zeros([], dt),
            jnp.full([], jnp.nan, dt),
            jnp.full([], jnp.nan, dt),
            jnp.zeros([], bool),
            zero_count(),
        )

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, slope0, dt = _line_setup(who, updates, params, value, grad, value_fn, extra_args)
        a0 = _first_step(initial_step, f0, state.prev_value.astype(dt), slope0, grad, dt)

        def phi(a):
            return jnp.asarray(fn(tree_axpy(a, d, params))).astype(dt)

        def armijo(a, f):
            return f <= f0 + c1 * a * slope0

        def cond(c):
            i, a, f = c
            return (i < max_steps) & ~(armijo(a, f) & (i > 0))

        def body(c):
            i, a, _ = c
            a = jnp.where(i > 0, a * decrease_factor, a)
            return i + 1, a, phi(a)

        n, a, f = jax.lax.while_loop(cond, body, (jnp.zeros([], jnp.int32), a0, jnp.full([], jnp.inf, dt)))
        ok = armijo(a, f) & jnp.isfinite(f)
        a = jnp.where(ok, a, 0.0).astype(dt)
        f = jnp.where(ok, f, f0)
        new_state = BacktrackingState(safe_increment(state.count), a, f, f0, ~ok, state.num_evals + n.astype(jnp.int32))
        return tree_scale(a, d), new_state

    return GradientTransformation(init, update)


def _check_steps(who: str, max_steps: Any) -> None:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"{who}: max_steps={max_steps!r} must be an int >= 1 (the most objective evaluations).")


def _value_dtype(params: PyTree) -> jnp.dtype:
    leaves = jax.tree.leaves(params)
    dts = [jnp.real(jnp.zeros([], jnp.result_type(x))).dtype for x in leaves]
    return jnp.dtype(jnp.result_type(jnp.float32, *dts))


# --------------------------------------------------------------------------- zoom (strong Wolfe)


class ZoomState(NamedTuple):
    """State of :func:`zoom`.

    ``step_size``: the accepted :math:`\\alpha`; ``value`` and ``grad``:
    :math:`f` and :math:`\\nabla f` at :math:`x + \\alpha d` (reuse them for the
    next step instead of re-evaluating); ``prev_value``: :math:`f(x)`, for
    ``initial_step='quadratic'``; ``failed``: no step met the strong Wolfe
    conditions; ``num_evals``: objective-and-gradient evaluations so far.
    """

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

    Finds :math:`\alpha` with

    .. math::
        f(x + \alpha d) \le f(x) + c_1 \alpha \nabla f(x)^\top d, \qquad
        |\nabla f(x + \alpha d)^\top d| \le c_2 |\nabla f(x)^\top d|,

    ``0 < c1 < c2 < 1``. Bracketing grows the trial step by
    ``increase_factor`` (up to ``max_step_size``) until an interval holding
    such a step is found; zooming shrinks it with safeguarded cubic
    interpolation. At most ``max_steps`` evaluations of :math:`f` and
    :math:`\nabla f` in all. Use ``c2 = 0.9`` for Newton and quasi-Newton
    directions, ``c2 = 0.1``-``0.4`` for nonlinear CG. ``initial_step``: a
    positive number, ``'one'`` (the natural step of Newton-like methods), or
    ``'quadratic'`` (N&W eq. 3.60, as scipy's BFGS and CG).

    If the budget runs out, the point with the lowest value among those that
    satisfied the Armijo condition is taken (it may be :math:`\alpha = 0`) and
    ``state.failed`` is set.
    """
    who = "linesearch.zoom"
    validate(who, "c1", c1, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "c2", c2, c1, 1.0, low_open=True, high_open=True)
    validate(who, "increase_factor", increase_factor, 1.0, low_open=True)
    validate(who, "max_step_size", max_step_size, 0.0, low_open=True)
    _check_steps(who, max_steps)
    initial_step = _check_initial_step(who, initial_step)

    def init(params):
        dt = _value_dtype(params)
        return ZoomState(
            zero_count(),
            jnp.zeros([], dt),
            jnp.full([], jnp.nan, dt),
            jax.tree.map(jnp.zeros_like, params),
            jnp.full([], jnp.nan, dt),
            jnp.zeros([], bool),
            zero_count(),
        )

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, s0, dt = _line_setup(who, updates, params, value, grad, value_fn, extra_args)
        a0 = jnp.minimum(_first_step(initial_step, f0, state.prev_value.astype(dt), s0, grad, dt), max_step_size)
        vg = jax.value_and_grad(fn)

        def phi(a):
            f, g = vg(tree_axpy(a, d, params))
            return jnp.asarray(f).astype(dt), tree_vdot(g, d).astype(dt), g

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


# --------------------------------------------------------------------------- exact line search on quadratics


class ExactQuadraticState(NamedTuple):
    """State of :func:`exact_quadratic`: the step taken and the evaluations so far."""

    count: jax.Array
    step_size: jax.Array
    num_evals: jax.Array


def exact_quadratic(max_steps: int = 1) -> GradientTransformation:
    r"""Exact line search by Newton's method on :math:`\phi`: :math:`\alpha \leftarrow \alpha - \phi'/\phi''`.

    :math:`\phi''(\alpha) = d^\top \nabla^2 f(x + \alpha d)\, d` comes from
    forward-over-reverse differentiation, without forming the Hessian. On a
    quadratic :math:`f` one iteration (the default) gives the exact minimizer
    along :math:`d`, :math:`\alpha = -\nabla f^\top d / d^\top A d`; on other
    functions ``max_steps`` iterations refine it (no safeguard: meant for
    (nearly) quadratic objectives, e.g. linear CG). Takes the same extra
    arguments as :func:`zoom`.
    """
    who = "linesearch.exact_quadratic"
    _check_steps(who, max_steps)

    def init(params):
        return ExactQuadraticState(zero_count(), jnp.zeros([], _value_dtype(params)), zero_count())

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, s0, dt = _line_setup(who, updates, params, value, grad, value_fn, extra_args)
        gfn = jax.grad(fn)

        def slope_and_curv(a):
            x = tree_axpy(a, d, params)
            g, hd = jax.jvp(gfn, (x,), (d,))
            return tree_vdot(g, d).astype(dt), tree_vdot(hd, d).astype(dt)

        def body(_, a):
            s, c = slope_and_curv(a)
            return a - s / c

        a = jax.lax.fori_loop(0, max_steps, body, jnp.zeros([], dt))
        new_state = ExactQuadraticState(safe_increment(state.count), a, state.num_evals + jnp.int32(max_steps))
        return tree_scale(a, d), new_state

    return GradientTransformation(init, update)
