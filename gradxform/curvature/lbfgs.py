r"""L-BFGS: the BFGS inverse Hessian applied from the last `m` pairs, never stored.

The last `memory_size` pairs $s_i = x_{i} - x_{i-1}$,
$y_i = g_{i} - g_{i-1}$ (newest first) give $u = H_k g$ by the
two-loop recursion (N&W algorithm 7.4):

```python
q = g
for i = newest .. oldest:  a_i = rho_i s_i.q ;  q -= a_i y_i
r = gamma q,   gamma = s.y / y.y  of the newest pair  (N&W eq. 7.20; 1 with no pairs)
for i = oldest .. newest:  b = rho_i y_i.r ;  r += (a_i - b) s_i
```

with $\rho_i = 1/y_i^\top s_i$. Pairs that fail the curvature condition
$y^\top s > \epsilon\|s\|\|y\|$ are not stored. Memory and time per step
are $O(mn)$.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks import scale
from gradxform.core import GradientTransformation, chain
from gradxform.curvature._flat import like, ravel, require_params, secant_pair
from gradxform.hyper import validate, validate_int
from gradxform.linesearch import more_thuente
from gradxform.numerics import safe_increment, zero_count


class LbfgsState(NamedTuple):
    """State of [`scale_by_lbfgs`][gradxform.scale_by_lbfgs]: previous raveled parameters and gradient, the
    pair history `s_history`/`y_history` (m x n, newest in row 0), `rho` (m,),
    and `num_pairs` (how many rows are valid, at most m)."""

    count: jax.Array
    prev_params: jax.Array
    prev_grad: jax.Array
    s_history: jax.Array
    y_history: jax.Array
    rho: jax.Array
    num_pairs: jax.Array


def scale_by_lbfgs(memory_size: int = 10, curvature_eps: float = 1e-10) -> GradientTransformation:
    r"""Preconditions by the L-BFGS inverse Hessian: $u \leftarrow H_k g_k$ (module docstring).

    Args:
      memory_size: $m$, the number of pairs kept.
      curvature_eps: pairs with $s^\top y \le$ this (relative) are skipped.

    Returns:
      A `GradientTransformation`.
    """
    who = "scale_by_lbfgs"
    validate_int(who, "memory_size", memory_size, 1)
    validate(who, "curvature_eps", curvature_eps, 0.0)
    m = memory_size

    def init(params):
        x, _ = ravel(params)
        n = x.shape[0]
        z = jnp.zeros((m, n), x.dtype)
        return LbfgsState(
            zero_count(), jnp.zeros_like(x), jnp.zeros_like(x), z, z, jnp.zeros((m,), x.dtype), zero_count()
        )

    def update(updates, state, params=None, **extra_args):
        require_params(who, params)
        x, _ = ravel(params)
        g, _ = ravel(updates)
        s, y, sy, yy, ok = secant_pair(x, g, state.prev_params, state.prev_grad, state.count, curvature_eps)
        push = lambda hist, v: jnp.where(ok, jnp.roll(hist, 1, axis=0).at[0].set(v), hist)  # noqa: E731
        S, Y = push(state.s_history, s), push(state.y_history, y)
        rho = jnp.where(ok, jnp.roll(state.rho, 1).at[0].set(1.0 / jnp.where(ok, sy, 1.0)), state.rho)
        k = jnp.where(ok, jnp.minimum(state.num_pairs + 1, m), state.num_pairs).astype(jnp.int32)
        valid = jnp.arange(m) < k

        def first(i, c):
            q, a = c
            ai = jnp.where(valid[i], rho[i] * (S[i] @ q), 0.0)
            return q - ai * Y[i], a.at[i].set(ai)

        q, a = jax.lax.fori_loop(0, m, first, (g, jnp.zeros((m,), g.dtype)))
        gamma = jnp.where(k > 0, (S[0] @ Y[0]) / jnp.where(k > 0, Y[0] @ Y[0], 1.0), 1.0)
        r = gamma * q

        def second(j, r):
            i = m - 1 - j
            b = rho[i] * (Y[i] @ r)
            return jnp.where(valid[i], r + (a[i] - b) * S[i], r)

        r = jax.lax.fori_loop(0, m, second, r)
        new_state = LbfgsState(safe_increment(state.count), x, g, S, Y, rho, k)
        return like(r, updates), new_state

    return GradientTransformation(init, update)


def lbfgs(
    memory_size: int = 10, linesearch: GradientTransformation | None = None, curvature_eps: float = 1e-10
) -> GradientTransformation:
    r"""L-BFGS with memory `m = memory_size`: $x \leftarrow x - \alpha H_k g_k$.

    `chain(scale_by_lbfgs(memory_size, curvature_eps), scale(-1), linesearch)`;
    the default line search is L-BFGS-B's: Moré-Thuente
    ([`gradxform.linesearch.more_thuente`][gradxform.linesearch.more_thuente], `c1=1e-3, c2=0.9, xtol=0.1`)
    with first trial step $1/\|d\|$ at the first iteration (the first
    direction is the raw gradient) and 1 afterwards (`'quasi_newton'`: the
    $\gamma$-scaled direction's natural step). Without bounds L-BFGS-B's
    direction is this two-loop direction, so the iterates are L-BFGS-B's.

    Args:
        memory_size: the pairs kept, an int >= 1.
        linesearch: the line search; None for the default above.
        curvature_eps: pairs are dropped unless $y^\top s > \epsilon\|s\|\|y\|$, >= 0.
    """
    ls = more_thuente(c1=1e-3, c2=0.9, xtol=0.1, initial_step="quasi_newton") if linesearch is None else linesearch
    return chain(scale_by_lbfgs(memory_size, curvature_eps), scale(-1.0), ls)
