r"""What the line searches share: tree arithmetic, the objective along the line, first trial steps.

An *evaluation* here is one call of `jax.value_and_grad` of the objective at
one point (the value and the whole gradient), except in [`backtracking`][gradxform.linesearch.backtracking],
which evaluates values only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradxform.hyper import validate, validate_int
from gradxform.numerics import (  # noqa: F401 (used by the searches)
    PyTree,
    tree_axpy,
    tree_max_abs,
    tree_scale,
    tree_vdot,
    tree_where,
    zero_count,
    zeros_like,
)

# --------------------------------------------------------------------------- the objective


def bind_value_fn(value_fn: Callable, extra_args: dict) -> Callable[[PyTree], jax.Array]:
    """`value_fn` with the extra arguments it names bound: `params -> f(params, **kwargs)`.

    Args:
      value_fn: the objective, `value_fn(params, **kwargs)`.
      extra_args: the update's extra arguments; those `value_fn` names are bound.

    Returns:
      `params -> value_fn(params, **kwargs)`.
    """
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


def require(who: str, params: Any, value: Any, grad: Any, value_fn: Any) -> None:
    """`TypeError` naming what `update` was not given."""
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


def line_setup(who, updates, params, value, grad, value_fn, extra_args):
    """The direction (steepest descent if `updates` is not a descent direction), phi(0), phi'(0)."""
    require(who, params, value, grad, value_fn)
    fn = bind_value_fn(value_fn, extra_args)
    f0 = jnp.asarray(value)
    dtype = jnp.result_type(jnp.float32, f0)
    f0 = f0.astype(dtype)
    slope = tree_vdot(grad, updates).astype(dtype)
    descent = slope < 0
    d = jax.tree.map(lambda u, g: jnp.where(descent, u, -g).astype(jnp.result_type(u)), updates, grad)
    slope0 = jnp.where(descent, slope, -tree_vdot(grad, grad).astype(dtype))
    return fn, d, f0, slope0, dtype


def value_and_slope(fn: Callable, params: PyTree, d: PyTree, dtype: Any) -> Callable:
    r"""`alpha -> (phi(alpha), phi'(alpha), grad f(x + alpha d))`: one evaluation of `f` and `grad f`."""
    vg = jax.value_and_grad(fn)

    def phi(a):
        f, g = vg(tree_axpy(a, d, params))
        return jnp.asarray(f).astype(dtype), tree_vdot(g, d).astype(dtype), g

    return phi


def value_dtype(params: PyTree) -> jnp.dtype:
    """The real dtype of the objective's values: at least float32, as precise as the leaves."""
    leaves = jax.tree.leaves(params)
    dts = [jnp.real(jnp.zeros([], jnp.result_type(x))).dtype for x in leaves]
    return jnp.dtype(jnp.result_type(jnp.float32, *dts))


def check_steps(who: str, max_steps: Any) -> None:
    """`max_steps` must be an int >= 1."""
    validate_int(who, "max_steps", max_steps, 1, what="the most objective evaluations")


# --------------------------------------------------------------------------- the searches' shared state


def fresh_state(cls: type, params: PyTree, with_grad: bool = True) -> Any:
    """A line search's first state: `(count, step_size, value, [grad,] prev_value, failed, num_evals)`.

    Every search keeps these fields in this order (`grad` only where it hands the
    gradient at the accepted point off); the gradient is born like the parameters.
    """
    dt = value_dtype(params)
    grad = [zeros_like(params)] if with_grad else []
    nan = jnp.full([], jnp.nan, dt)
    return cls(
        zero_count(), jnp.zeros([], dt), nan, *grad, jnp.full([], jnp.nan, dt), jnp.zeros([], bool), zero_count()
    )


def trial_step(initial_step: Any, state: Any, f0, slope0, d, grad, params, dtype) -> jax.Array:
    """The first trial step of this update, by the search's `initial_step` rule (see `first_step`)."""
    return first_step(
        initial_step,
        count=state.count,
        f0=f0,
        prev_value=state.prev_value.astype(dtype),
        prev_step=state.step_size.astype(dtype),
        slope0=slope0,
        d=d,
        grad=grad,
        params=params,
        dtype=dtype,
    )


# --------------------------------------------------------------------------- first trial steps

INITIAL_STEPS = ("one", "quadratic", "quasi_newton", "hager_zhang")


def check_initial_step(who: str, initial_step: Any) -> Any:
    """A rule name from [`INITIAL_STEPS`][gradxform.linesearch.INITIAL_STEPS] or a positive number."""
    if isinstance(initial_step, str):
        if initial_step not in INITIAL_STEPS:
            raise ValueError(
                f"{who}: initial_step={initial_step!r} is not known; use one of {INITIAL_STEPS} or a positive number."
            )
        return initial_step
    return validate(who, "initial_step", initial_step, 0.0, low_open=True)


def first_step(
    rule: str | float,
    *,
    count: jax.Array,
    f0: jax.Array,
    prev_value: jax.Array,
    prev_step: jax.Array,
    slope0: jax.Array,
    d: PyTree,
    grad: PyTree,
    params: PyTree,
    dtype: Any,
) -> jax.Array:
    r"""The first trial step $\alpha_0$ of a line search by `rule`.

    `'one'`: $\alpha_0 = 1$, the natural step of Newton directions.

    `'quadratic'`: N&W eq. (3.60), scipy's BFGS and CG,
    $\min(1, 1.01\cdot 2(f_k - f_{k-1})/\phi'(0))$; before the first
    step $f_{k-1} = f_k + \|\nabla f\|/2$ (scipy's convention, a step of
    length about 1 along $-\nabla f$). A guess that is not positive and
    finite becomes 1.

    `'quasi_newton'`: $1/\|d\|_2$ at the first call (a step of length 1:
    the first quasi-Newton direction is the raw gradient, which carries no
    scale), 1 afterwards (the model has learned a scale, and its step is
    natural), as L-BFGS-B does.

    `'hager_zhang'`: CG_DESCENT's rules I0 and I2 (Hager & Zhang 2006): at the
    first call $\psi_0 \|x\|_\infty/\|d\|_\infty$ if $x \ne 0$, else
    $\psi_0 |f|/|\phi'(0)|$ if $f \ne 0$, else 1, with
    $\psi_0 = 0.01$; afterwards $\psi_2 \alpha_{k-1}$,
    $\psi_2 = 2$.

    A number is taken as it is.

    Args:
        rule: one of [`INITIAL_STEPS`][gradxform.linesearch.INITIAL_STEPS], or a positive number.
        count: the line search's calls so far (0 at the first).
        f0: $f(x)$.
        prev_value: $f$ at the previous call's start (NaN before the first).
        prev_step: the previous call's accepted step.
        slope0: $\phi'(0) = \nabla f(x)^\top d < 0$.
        d: the search direction.
        grad: $\nabla f(x)$.
        params: $x$.
        dtype: the dtype of the result.
    """
    one = jnp.ones([], dtype)
    if rule == "one":
        return one
    if rule == "quadratic":
        gnorm = jnp.sqrt(tree_vdot(grad, grad)).astype(dtype)
        prev = jnp.where(jnp.isnan(prev_value), f0 + gnorm / 2, prev_value)
        guess = 1.01 * 2 * (f0 - prev) / slope0
        ok = jnp.isfinite(guess) & (guess > 0)
        return jnp.where(ok, jnp.minimum(1.0, guess), 1.0).astype(dtype)
    if rule == "quasi_newton":
        dnorm = jnp.sqrt(tree_vdot(d, d)).astype(dtype)
        first = 1.0 / dnorm
        return jnp.where((count == 0) & jnp.isfinite(first) & (first > 0), first, one).astype(dtype)
    if rule == "hager_zhang":
        xmax = tree_max_abs(params).astype(dtype)
        dmax = tree_max_abs(d).astype(dtype)
        i0 = jnp.where(
            xmax > 0, 0.01 * xmax / dmax, jnp.where(f0 != 0, 0.01 * jnp.abs(f0) / jnp.abs(slope0), 1.0)
        ).astype(dtype)
        i0 = jnp.where(jnp.isfinite(i0) & (i0 > 0), i0, one)
        later = 2.0 * prev_step
        return jnp.where((count == 0) | ~(later > 0) | ~jnp.isfinite(later), i0, later).astype(dtype)
    return jnp.asarray(rule, dtype)
