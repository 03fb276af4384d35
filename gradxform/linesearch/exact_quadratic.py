r"""Exact line search on (nearly) quadratic objectives: Newton's method on $\phi$."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation
from gradxform.linesearch._common import check_steps, line_setup, tree_axpy, tree_scale, tree_vdot, value_dtype
from gradxform.numerics import safe_increment, zero_count


class ExactQuadraticState(NamedTuple):
    """State of [`exact_quadratic`][gradxform.linesearch.exact_quadratic]: the step taken and the evaluations so far
    (each a gradient and a Hessian-vector product at one point)."""

    count: jax.Array
    step_size: jax.Array
    num_evals: jax.Array


def exact_quadratic(max_steps: int = 1) -> GradientTransformation:
    r"""Exact line search by Newton's method on $\phi$: $\alpha \leftarrow \alpha - \phi'/\phi''$.

    $\phi''(\alpha) = d^\top \nabla^2 f(x + \alpha d)\, d$ comes from
    forward-over-reverse differentiation, without forming the Hessian. On a
    quadratic $f$ one iteration (the default) gives the exact minimizer
    along $d$, $\alpha = -\nabla f^\top d / d^\top A d$; on other
    functions `max_steps` iterations refine it (no safeguard: meant for
    (nearly) quadratic objectives, e.g. linear CG). Takes the same extra
    arguments as [`zoom`][gradxform.linesearch.zoom]. It does not evaluate $f$ at the new point,
    so [`gradxform.minimize`][gradxform.minimize] does.

    Args:
        max_steps: Newton iterations on $\phi$ (each one gradient and one
            Hessian-vector product).
    """
    who = "linesearch.exact_quadratic"
    check_steps(who, max_steps)

    def init(params):
        return ExactQuadraticState(zero_count(), jnp.zeros([], value_dtype(params)), zero_count())

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        fn, d, f0, s0, dt = line_setup(who, updates, params, value, grad, value_fn, extra_args)
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
