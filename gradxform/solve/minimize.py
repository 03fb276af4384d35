r"""`minimize`: run a transform on an objective until the gradient is small or the budget ends.

One jit-compiled `lax.while_loop`:

```python
f_0, g_0 = value_and_grad(f)(x_0)                       # evaluation 1
while k < max_steps and ||g_k|| > tol and not stalled:
    u, state = tx.update(g_k, state, x_k, value=f_k, grad=g_k, value_fn=f)
    x_{k+1} = x_k + u
    f_{k+1}, g_{k+1} = the line search's, if it hands them off,
                       else value_and_grad(f)(x_{k+1})  # one more evaluation
```

An *evaluation* is one value-and-gradient call of `f` at one point. Line
searches that evaluate `f` and its gradient at the point they accept (the
states with `HANDS_OFF`: [`gradxform.linesearch.more_thuente`][gradxform.linesearch.more_thuente],
`hager_zhang`, `zoom`, and [`gradxform.newton`][gradxform.newton],
[`gradxform.newton_cg_trust`][gradxform.newton_cg_trust]) pass both to the loop
([`gradxform.linesearch.accepted_point`][gradxform.linesearch.accepted_point]), so no point is evaluated twice:
the evaluations are the first one plus those the transform made. Otherwise
(first-order transforms, [`gradxform.linesearch.backtracking`][gradxform.linesearch.backtracking], a chain
that changes the step after its line search) the loop evaluates the new point.

It passes the extra arguments that line searches and curvature methods need
([`gradxform.linesearch`][gradxform.linesearch]), so any gradxform (or optax) transform works,
first-order ones included. `jax.vmap` over starting points gives each its
own run: a batched loop keeps going until every member has stopped, and
members that stopped are left unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation, apply_updates
from gradxform.hyper import validate, validate_int
from gradxform.linesearch import accepted_point
from gradxform.numerics import PyTree, check_inexact, tree_max_abs, tree_vdot


class MinimizeResult(NamedTuple):
    """What [`minimize`][gradxform.minimize] returns.

    `params`: the final parameters. `value`: $f$ there.
    `grad_norm`: $\\|\\nabla f\\|$ there, in the norm asked for.
    `num_steps`: the updates that moved the parameters (a final zero update,
    which stops the loop, is not counted). `trace`: $f(x_0), \\dots,
    f(x_{\\text{num_steps}})$, a fixed-size array of length `max_steps + 1`
    padded with NaN. `num_evals`: evaluations of the objective (one
    value-and-gradient call at one point, or a value alone in searches that
    evaluate only values): the loop's own calls plus those made inside the
    transform (every state field named `num_evals`: line-search trials,
    trust-region trials). Hessians and Hessian-vector products are counted in
    the transforms' states (`num_hessians`, `num_hvps`), not here.
    `converged`: `grad_norm <= tol`. `stalled`: the last update was zero
    (a line search found no decrease). `state`: the transform's final state.
    """

    params: PyTree
    value: jax.Array
    grad_norm: jax.Array
    num_steps: jax.Array
    trace: jax.Array
    num_evals: jax.Array
    converged: jax.Array
    stalled: jax.Array
    state: Any


def _inner_evals(state: Any) -> jax.Array:
    nodes = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, tuple) and hasattr(x, "num_evals"))
    counts = [n.num_evals for n in nodes if isinstance(n, tuple) and hasattr(n, "num_evals")]
    return sum(counts, jnp.zeros([], jnp.int32))


def _all_zero(tree: PyTree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(leaf == 0) for leaf in leaves])) if leaves else jnp.ones([], bool)


def minimize(
    fun: Callable[[PyTree], jax.Array],
    params: PyTree,
    tx: GradientTransformation,
    max_steps: int = 500,
    tol: float = 1e-6,
    norm: float = 2,
) -> MinimizeResult:
    r"""Minimizes `fun` from `params` with the transform `tx`.

    Stops when $\|\nabla f\| \le$ `tol`, after `max_steps`
    updates, or when an update is zero. The loop is jit-compiled (`fun` and
    `tx` are part of the compiled function's identity, `max_steps` sets the
    trace's length). See [`MinimizeResult`][gradxform.MinimizeResult] for what comes back.

    Args:
        fun: the objective, mapping the parameter pytree to a real scalar; bind
            data with `functools.partial` or a closure.
        params: the starting point, a pytree of float (or complex) arrays.
        tx: the transform, e.g. `gradxform.bfgs()`.
        max_steps: the most updates, an int >= 0.
        tol: the gradient-norm tolerance, >= 0.
        norm: the norm of the stopping test over all entries of the gradient:
            `2` (Euclidean, the default) or `jnp.inf` (the largest entry,
            scipy's test for BFGS, CG and L-BFGS-B).
    """
    if not callable(fun):
        raise TypeError(f"minimize: fun must be the objective (a callable params -> scalar), got {fun!r}.")
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"minimize: tx must be a gradient transformation (with init and update), got {type(tx).__name__}; "
            "e.g. gradxform.bfgs(), not gradxform.bfgs."
        )
    validate_int("minimize", "max_steps", max_steps, 0, what="the most updates")
    validate("minimize", "tol", tol, 0.0)
    if isinstance(norm, bool) or norm not in (2, float("inf")):
        raise ValueError(f"minimize: norm={norm!r} is not supported; use 2 or jnp.inf.")
    check_inexact(params, "minimize")
    return _run(fun, tx, max_steps, params, tol, float(norm))


def _run_impl(fun, tx, max_steps, norm, params, tol):
    vg = jax.value_and_grad(fun)
    f0, g0 = vg(params)
    f0 = jnp.asarray(f0)
    dt = jnp.result_type(jnp.float32, f0)
    tol = jnp.asarray(tol, dt)

    def gnorm(g):
        if norm == 2:
            return jnp.sqrt(tree_vdot(g, g)).astype(dt)
        return tree_max_abs(g).astype(dt)

    trace = jnp.full((max_steps + 1,), jnp.nan, dt).at[0].set(f0.astype(dt))
    state0 = tx.init(params)
    hands_off = accepted_point(state0) is not None  # decided by the state's structure, at trace time

    def cond(c):
        k, _, _, _, _, gn, _, stalled, _ = c
        return (k < max_steps) & (gn > tol) & ~stalled

    def body(c):
        k, x, st, f, g, gn, tr, _, n = c
        u, st = tx.update(g, st, x, value=f, grad=g, value_fn=fun)
        moved = ~_all_zero(u)
        x_new = apply_updates(x, u)
        if hands_off:
            point = accepted_point(st)
            f_new = point.value
            g_new = jax.tree.map(lambda a, b: jnp.asarray(a).astype(jnp.result_type(b)), point.grad, g)
        else:
            # a zero update leaves x where it was: nothing new to evaluate
            f_new, g_new = jax.lax.cond(moved, vg, lambda _: (f, g), x_new)
            n = n + moved.astype(jnp.int32)
        f_new = jnp.asarray(f_new).astype(f.dtype)
        x_new, f_new, g_new = jax.tree.map(lambda a, b: jnp.where(moved, a, b), (x_new, f_new, g_new), (x, f, g))
        k_new = k + moved.astype(jnp.int32)
        tr = jnp.where(moved, tr.at[k + 1].set(f_new.astype(dt)), tr)
        return k_new, x_new, st, f_new, g_new, jnp.where(moved, gnorm(g_new), gn), tr, ~moved, n

    c0 = (
        jnp.zeros([], jnp.int32),
        params,
        state0,
        f0,
        g0,
        gnorm(g0),
        trace,
        jnp.zeros([], bool),
        jnp.ones([], jnp.int32),
    )
    k, x, st, f, _, gn, tr, stalled, n = jax.lax.while_loop(cond, body, c0)
    return MinimizeResult(x, f, gn, k, tr, n + _inner_evals(st), gn <= tol, stalled, st)


_run_jit = jax.jit(_run_impl, static_argnums=(0, 1, 2, 3))


def _run(fun, tx, max_steps, params, tol, norm):
    return _run_jit(fun, tx, max_steps, norm, params, tol)
