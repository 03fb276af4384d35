"""The registry's references made runnable: optax and torch.optim resolved by name, trajectories as one scan.

Every registry-driven suite (parity, low precision, properties, transforms,
inject, checkpoints, sharding) draws its optimizers from `ENTRIES` here: the
registry's entries, those whose `update` reads extra arguments (`value=`,
`value_fn=`, `grad_fn=`) made to supply them from the parameters (the loss
`loss_of`), so every suite calls `tx.update(g, s, p)` alike and a new entry is
covered without editing a test.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx


def loss_of(params) -> jax.Array:
    """The loss the suites supply as `value=`: $\\tfrac12\\sum |p|^2$ over the leaves, in float32 or wider."""
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(params)]
    wide = [x.astype(jnp.promote_types(x.dtype, jnp.float32)) for x in leaves]
    return sum((0.5 * jnp.sum(jnp.abs(x) ** 2) for x in wide), jnp.zeros((), jnp.float32))


def extra_for(names, params) -> dict:
    """The extra arguments `names` for `update` at `params`: the loss `loss_of`, it as a function, its gradient."""
    given = {"value": lambda: loss_of(params), "value_fn": lambda: loss_of, "grad_fn": lambda: lambda p: p}
    return {n: given[n]() for n in names}


def supplied(tx):
    """`tx` (a gradxform transform) supplying the extra arguments it reads from the parameters (or the updates),
    unless they are passed; its name, state and other properties unchanged."""
    block = gx.core.block_of(tx)
    if not block.extra_args:
        return tx

    def update(updates, state, params, count, extra_args):
        at = updates if params is None else params
        return block.update(updates, state, params, count, {**extra_for(block.extra_args, at), **extra_args})

    return gx.core.as_transform(dataclasses.replace(block, update=update, extra_args=()))


def scalars_lifted(tx):
    """A reference that fails on 0-d leaves (`Reference.lift_scalars`), given each as a 1-element vector; its
    updates come back in the leaves' shapes, its state keeps the vectors."""

    def lift(tree):
        return None if tree is None else jax.tree.map(lambda x: jnp.reshape(x, (1,)) if jnp.ndim(x) == 0 else x, tree)

    def update(u, s, p=None, **extra):
        out, s = tx.update(lift(u), s, lift(p), **extra)
        return jax.tree.map(lambda o, x: jnp.reshape(o, jnp.shape(x)), out, u), s

    return gx.GradientTransformation(lambda p: tx.init(lift(p)), update)


def reference(case, extra_args=()):
    """The reference transform of a parity case at its settings (lifted, given the extra arguments `extra_args`)."""
    tx = resolve(case.reference.target)(**case.reference.kwargs)
    if case.reference.lift_scalars:
        tx = scalars_lifted(tx)
    return reference_supplied(tx, extra_args)


def reference_supplied(tx, names):
    """A reference transform (optax) given the extra arguments `names` at the parameters, as `supplied` gives ours."""
    if not names:
        return tx
    return gx.GradientTransformation(
        tx.init, lambda u, s, p=None: tx.update(u, s, p, **extra_for(names, u if p is None else p))
    )


def _supplying(entry):
    if not entry.extra_args:
        return entry
    factory = functools.wraps(entry.factory)(lambda *a, **k: supplied(entry.factory(*a, **k)))
    example = None if entry.example is None else (lambda lr: supplied(entry.example(lr)))
    return dataclasses.replace(entry, factory=factory, example=example)


ENTRIES = [_supplying(e) for e in gx.registry.entries()]
"""The registry's entries, each supplying the extra arguments its `update` reads (see the module docstring)."""


def registry_entries(kind: str | None = None) -> list:
    """`ENTRIES` (of one kind)."""
    return [e for e in ENTRIES if kind is None or e.kind == kind]


def resolve(target: str):
    """The object at a dotted path: `"optax.adam"`, `"optax.contrib.muon"`, `"torch.optim.Adam"`."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(target)


def cases(library: str | None = None):
    """`pytest.param(entry, case)` for every parity case of the registry (of one reference library)."""
    out = []
    for e in ENTRIES:
        for c in e.cases:
            if library is None or c.reference.library == library:
                out.append(pytest.param(e, c, id=f"{e.name}[{c.label}]"))
    return out


def entries(kind: str | None = None, where=None):
    """`pytest.param(entry)` for the registry's entries (of one kind, or for which `where(entry)` holds)."""
    return [
        pytest.param(e, id=e.name) for e in ENTRIES if (kind is None or e.kind == kind) and (where is None or where(e))
    ]


def scan_trajectory(tx, params, grads, record: bool = False):
    """Applies `tx` to the stacked `grads` (leading axis: steps) in one compiled `lax.scan`.

    Returns `(params, last updates, state)`, and with `record` the parameters after every step.
    """

    def body(carry, g):
        p, s, _ = carry
        u, s = tx.update(g, s, p)
        p = gx.apply_updates(p, u)
        return (p, s, u), (p if record else None)

    @jax.jit
    def run(params, grads):
        zeros = jax.tree.map(jnp.zeros_like, params)
        (p, s, u), seen = jax.lax.scan(body, (params, tx.init(params), zeros), grads)
        return p, u, s, seen

    p, u, s, seen = run(params, grads)
    return (p, u, s, seen) if record else (p, u, s)


def require_torch():
    try:
        import torch
    except ImportError:
        msg = (
            "torch is not installed, so the parity tests against torch.optim are SKIPPED. "
            "Install the CPU build with `pip install torch==2.13.0` (the .ci/run script does)."
        )
        warnings.warn(msg, stacklevel=2)
        pytest.skip(msg)
    return torch


def torch_trajectory(target: str, kwargs: dict, params: dict, grads: list[dict]) -> list[dict]:
    """torch.optim's parameters after every step, in float64, for a flat dict of numpy arrays.

    Empty (0-size) parameters are not handed to torch (torch.optim.Adafactor divides by a parameter's size);
    they cannot move and come back as they are.
    """
    torch = require_torch()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps step counts and NAdam's mu_product in this dtype
    empty = {k: np.array(v, copy=True) for k, v in params.items() if np.size(v) == 0}
    params = {k: v for k, v in params.items() if k not in empty}
    try:
        tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
        opt = resolve(target)(list(tparams.values()), **kwargs)
        out = []
        for g in grads:
            for k, p in tparams.items():
                p.grad = torch.tensor(g[k], dtype=torch.float64)
            opt.step()
            out.append({**{k: p.detach().numpy().copy() for k, p in tparams.items()}, **empty})
    finally:
        torch.set_default_dtype(old)
    return out


def rel_err(a, b) -> float:
    """max over leaves of |a - b| / (1 + |b|) (0 for empty trees and leaves)."""
    errs = [
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)) / (1 + np.abs(np.asarray(y)))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
        if np.size(x)
    ]
    return max(errs, default=0.0)


def masked_as_none(tree):
    """`tree` with optax's `MaskedNode`s (the leaves its `masked` / `partition` leave out) as `None`, ours."""

    def is_masked(x):
        return type(x).__name__ == "MaskedNode" and type(x).__module__.startswith("optax")

    return jax.tree.map(lambda x: None if is_masked(x) else x, tree, is_leaf=is_masked)


def count_leaves(state) -> tuple[int, int]:
    """(array leaves, integer scalars) of a state."""
    leaves = jax.tree.leaves(state)
    ints = [x for x in leaves if jnp.issubdtype(jnp.result_type(x), jnp.integer) and jnp.ndim(x) == 0]
    return len(leaves), len(ints)
