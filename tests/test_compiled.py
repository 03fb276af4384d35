"""What XLA compiles a gradxform step to, against optax's at identical math: kernels, state, bytes accessed.

Structure only (counts from the optimized HLO and XLA's cost analysis), never timings.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax
import pytest

import gradxform as gx

_NOT_KERNELS = {"parameter", "tuple", "get-tuple-element", "constant", "bitcast"}
_INSTR = re.compile(r"^\s*(?:ROOT )?%?\S+ = (\S+) ([\w-]+)\(")

CASES = {
    "adam": (lambda: gx.adam(1e-3), lambda: optax.adam(1e-3)),
    "adamw": (lambda: gx.adamw(1e-3), lambda: optax.adamw(1e-3)),
    "rmsprop": (lambda: gx.rmsprop(1e-3, eps_in_sqrt=True), lambda: optax.rmsprop(1e-3)),
    "sgd_momentum": (lambda: gx.sgd(1e-3, 0.9), lambda: optax.sgd(1e-3, momentum=0.9)),
}


def _compiled(tx, params):
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return jax.tree.map(lambda a, b: a + b, p, u), s

    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)
    return jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), grads).compile()


def _kernels(compiled, scalars: bool = True) -> list[str]:
    """The ops of the kernels the compiled step runs (with `scalars=False`, only those over arrays)."""
    text = compiled.as_text()
    entry = text[text.index("\nENTRY") :].splitlines()[1:]
    ops = [(m.group(1), m.group(2)) for m in map(_INSTR.match, entry) if m]
    return [op for shape, op in ops if op not in _NOT_KERNELS and (scalars or not shape.endswith("[]"))]


def _bytes(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["bytes accessed"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_small_tree_step_has_no_more_kernels_or_state_than_optax(name):
    """On a 3-leaf tree (matrix, vector, scalar): kernels over arrays, state leaves and integer scalars <= optax's.

    Scalar kernels are not compared: gradxform's Adam has two more (XLA computes each bias correction's
    reciprocal apart), which cost no measurable time (docs/performance.md).
    """
    params = {"w": jnp.zeros((16, 16)), "b": jnp.zeros(16), "s": jnp.zeros(())}
    ours, theirs = (make() for make in CASES[name])
    k_ours, k_theirs = (_kernels(_compiled(tx, params), scalars=False) for tx in (ours, theirs))
    assert len(k_ours) <= len(k_theirs), (k_ours, k_theirs)
    assert "copy" not in k_ours
    s_ours, s_theirs = jax.tree.leaves(ours.init(params)), jax.tree.leaves(theirs.init(params))
    assert len(s_ours) <= len(s_theirs)

    def ints(leaves):
        return sum(1 for x in leaves if jnp.issubdtype(x.dtype, jnp.integer))

    assert ints(s_ours) <= ints(s_theirs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_step_accesses_no_more_bytes_than_optax(name):
    """Computing in float32 between blocks costs nothing on float32: same loops and bytes accessed as optax."""
    params = jnp.zeros(1 << 16, jnp.float32)
    ours, theirs = (_compiled(make(), params) for make in CASES[name])
    assert _bytes(ours) <= _bytes(theirs)
    assert _kernels(ours).count("fusion") <= _kernels(theirs).count("fusion")


def test_adadelta_under_plain_jit_copies_no_moment():
    """Donated and jitted without compiler options, Adadelta's step is three loops and no copy.

    The update is computed from the new delta_sq, so the parameters' loop reads what the moment's loop
    wrote and XLA orders them by that data dependency (the direct form reads the old delta_sq in both
    loops and needs a copy unless region-based copy insertion is on: docs/performance.md).
    """
    params = jnp.zeros(1 << 16, jnp.float32)
    kernels = _kernels(_compiled(gx.adadelta(1.0), params), scalars=False)
    assert kernels.count("copy") == 0, kernels
    assert kernels.count("fusion") == 3, kernels
    assert _bytes(_compiled(gx.adadelta(1.0), params)) <= 48 * params.size + 64
    # bfloat16 state keeps the direct form: the new form would need the unrounded delta_sq as a fourth loop
    low = _kernels(_compiled(gx.adadelta(1.0, state_dtype=jnp.bfloat16), params), scalars=False)
    assert low.count("fusion") == 3, low
