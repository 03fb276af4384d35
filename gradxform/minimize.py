r"""``minimize``: run a transform on an objective until the gradient is small or the budget ends.

One jit-compiled ``lax.while_loop``::

    g_0 = grad f(x_0)
    while k < max_steps and ||g_k||_2 > tol and not stalled:
        u, state = tx.update(g_k, state, x_k, value=f(x_k), grad=g_k, value_fn=f)
        x_{k+1} = x_k + u
        f(x_{k+1}), g_{k+1} = value_and_grad(f)(x_{k+1})

It passes the extra arguments that line searches and curvature methods need
(:mod:`gradxform.linesearch`), so any gradxform (or optax) transform works,
first-order ones included. ``jax.vmap`` over starting points gives each its
own run: a batched loop keeps going until every member has stopped, and
members that stopped are left unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import GradientTransformation, apply_updates
from gradxform.hyper import validate
from gradxform.linesearch import tree_vdot
from gradxform.numerics import PyTree, check_inexact


class MinimizeResult(NamedTuple):
    """What :func:`minimize` returns.

    ``params``: the final parameters. ``value``: :math:`f` there.
    ``grad_norm``: :math:`\\|\\nabla f\\|_2` there. ``num_steps``: updates taken.
    ``trace``: :math:`f(x_0), \\dots, f(x_{\\text{num\\_steps}})`, a fixed-size
    array of length ``max_steps + 1`` padded with NaN. ``num_evals``: objective
    evaluations, counting the loop's value-and-gradient calls and those made
    inside the transform (line-search trials, Newton's acceptance tests: any
    state field named ``num_evals``). ``converged``: ``grad_norm <= tol``.
    ``stalled``: the last update was zero (a line search found no decrease).
    ``state``: the transform's final state.
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
) -> MinimizeResult:
    r"""Minimizes ``fun`` from ``params`` with the transform ``tx``.

    Stops when :math:`\|\nabla f\|_2 \le` ``tol``, after ``max_steps``
    updates, or when an update is zero. ``fun`` maps the parameter pytree to a
    real scalar; bind data with ``functools.partial`` or a closure. The loop is
    jit-compiled (``fun`` and ``tx`` are part of the compiled function's
    identity, ``max_steps`` sets the trace's length). See
    :class:`MinimizeResult` for what comes back.
    """
    if not callable(fun):
        raise TypeError(f"minimize: fun must be the objective (a callable params -> scalar), got {fun!r}.")
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"minimize: tx must be a gradient transformation (with init and update), got {type(tx).__name__}; "
            "e.g. gradxform.bfgs(), not gradxform.bfgs."
        )
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise ValueError(f"minimize: max_steps={max_steps!r} must be an int >= 0.")
    validate("minimize", "tol", tol, 0.0)
    check_inexact(params, "minimize")
    return _run(fun, tx, max_steps, params, tol)


def _run_impl(fun, tx, max_steps, params, tol):
    vg = jax.value_and_grad(fun)
    f0, g0 = vg(params)
    f0 = jnp.asarray(f0)
    dt = jnp.result_type(jnp.float32, f0)
    tol = jnp.asarray(tol, dt)

    def gnorm(g):
        return jnp.sqrt(tree_vdot(g, g)).astype(dt)

    trace = jnp.full((max_steps + 1,), jnp.nan, dt).at[0].set(f0.astype(dt))
    state0 = tx.init(params)

    def cond(c):
        k, _, _, _, _, gn, _, stalled, _ = c
        return (k < max_steps) & (gn > tol) & ~stalled

    def body(c):
        k, x, st, f, g, _, tr, _, n = c
        u, st = tx.update(g, st, x, value=f, grad=g, value_fn=fun)
        x_new = apply_updates(x, u)
        f_new, g_new = vg(x_new)
        f_new = jnp.asarray(f_new).astype(f.dtype)
        tr = tr.at[k + 1].set(f_new.astype(dt))
        return k + 1, x_new, st, f_new, g_new, gnorm(g_new), tr, _all_zero(u), n + 1

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


_run = jax.jit(_run_impl, static_argnums=(0, 1, 2))
