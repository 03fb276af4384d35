"""The registry's references made runnable: optax and torch.optim resolved by name, trajectories as one scan.

Every registry-driven suite (parity, low precision, properties, transforms,
inject, checkpoints, sharding) draws its optimizers from `gradxform.registry`,
so a new entry is covered without editing a test.
"""

from __future__ import annotations

import importlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

ENTRIES = gx.registry.entries()


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


def count_leaves(state) -> tuple[int, int]:
    """(array leaves, integer scalars) of a state."""
    leaves = jax.tree.leaves(state)
    ints = [x for x in leaves if jnp.issubdtype(jnp.result_type(x), jnp.integer) and jnp.ndim(x) == 0]
    return len(leaves), len(ints)
