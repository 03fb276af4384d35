r"""Backtracking (Armijo) line search: values only."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation
from gradxform.hyper import validate
from gradxform.linesearch._common import (
    check_initial_step,
    check_steps,
    fresh_state,
    line_setup,
    tree_axpy,
    tree_scale,
    trial_step,
)
from gradxform.numerics import safe_increment


class BacktrackingState(NamedTuple):
    """State of [`backtracking`][gradxform.linesearch.backtracking].

    `step_size`: the accepted $\\alpha$ (0 if none); `value`:
    $f(x + \\alpha d)$; `prev_value`: $f(x)$ of the last step (NaN
    before the first), for `initial_step='quadratic'`; `failed`: no step met
    the Armijo condition; `num_evals`: objective evaluations so far (values
    only: the loop still evaluates the gradient at the accepted point).
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

    Tries $\alpha = \alpha_0, \rho\alpha_0, \rho^2\alpha_0, \dots$ and
    takes the first that satisfies the sufficient-decrease (Armijo) condition

    $$f(x + \alpha d) \le f(x) + c_1 \alpha \nabla f(x)^\top d,$$

    with at most `max_steps` evaluations of $f$ (values only, no
    gradients). If none of the tried steps satisfies Armijo, the step is 0 and
    `state.failed` is set.

    Args:
        c1: the sufficient-decrease constant, in (0, 1).
        decrease_factor: $\rho$, in (0, 1).
        max_steps: the most evaluations of $f$ in one search.
        initial_step: $\alpha_0$: a positive number or a rule,
            `'one'`, `'quadratic'`, `'quasi_newton'` or `'hager_zhang'`
            (see [`gradxform.linesearch.first_step`][gradxform.linesearch.first_step]).
    """
    who = "linesearch.backtracking"
    validate(who, "c1", c1, 0.0, 1.0, low_open=True, high_open=True)
    validate(who, "decrease_factor", decrease_factor, 0.0, 1.0, low_open=True, high_open=True)
    check_steps(who, max_steps)
    initial_step = check_initial_step(who, initial_step)

    def init(params):
        return fresh_state(BacktrackingState, params, with_grad=False)

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, slope0, dt = line_setup(who, updates, params, value, grad, value_fn, extra_args)
        a0 = trial_step(initial_step, state, f0, slope0, d, grad, params, dt)

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
