"""gradxform.compat.torch.lr_scheduler against torch.optim.lr_scheduler: get_last_lr() over 500 steps, 1e-9.

For each scheduler at non-default settings, torch's sequence (the learning rate before any step, then
after each `scheduler.step()`) equals our schedule at counts 0, 1, 2, ... (float64), relative to the
base learning rate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradxform.compat.torch import lr_scheduler as L
from tests.refs import require_torch

STEPS = 500
LR = 0.1
CASES = [
    ("StepLR", dict(step_size=37, gamma=0.7), {}),
    ("MultiStepLR", dict(milestones=[30, 80, 80, 300], gamma=0.5), {}),
    ("ExponentialLR", dict(gamma=0.99), {}),
    ("CosineAnnealingLR", dict(T_max=120, eta_min=1e-3), {}),
    ("CosineAnnealingWarmRestarts", dict(T_0=50), {}),
    ("CosineAnnealingWarmRestarts", dict(T_0=20, T_mult=2, eta_min=1e-4), {}),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.8, total_iters=200), {}),
    ("PolynomialLR", dict(total_iters=300, power=2.5), {}),
    ("OneCycleLR", dict(total_steps=STEPS, pct_start=0.2, div_factor=10.0, final_div_factor=100.0), {"lr": "max_lr"}),
    ("OneCycleLR", dict(total_steps=STEPS, anneal_strategy="linear", three_phase=True), {"lr": "max_lr"}),
    ("CyclicLR", dict(max_lr=0.5, step_size_up=40, step_size_down=60), {"lr": "base_lr"}),
    ("CyclicLR", dict(max_lr=0.5, step_size_up=30, mode="triangular2"), {"lr": "base_lr"}),
    ("CyclicLR", dict(max_lr=0.5, step_size_up=25, mode="exp_range", gamma=0.995), {"lr": "base_lr"}),
]


def torch_sequence(name, kwargs, lr_name):
    torch = require_torch()
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=LR, momentum=0.9)
    kw = dict(kwargs)
    if lr_name != "lr":
        kw[lr_name] = LR
    if name in ("OneCycleLR", "CyclicLR"):
        kw["cycle_momentum"] = False
    sched = getattr(torch.optim.lr_scheduler, name)(opt, **kw)
    out = [sched.get_last_lr()[0]]
    for _ in range(STEPS - 1):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return np.asarray(out)


@pytest.mark.parametrize("name, kwargs, rename", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_schedule_equals_torchs_get_last_lr(name, kwargs, rename):
    lr_name = rename.get("lr", "lr")
    want = torch_sequence(name, kwargs, lr_name)
    with jax.enable_x64(True):
        schedule = getattr(L, name)(**{lr_name: LR}, **kwargs)
        got = np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(STEPS)))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * LR)
    assert np.ptp(want) > 1e-3 * LR  # the schedule moves over these 500 steps


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"^StepLR: step_size=0 must be an int >= 1"):
        L.StepLR(0.1, 0)
    with pytest.raises(ValueError, match=r"^OneCycleLR: anneal_strategy='cosine' must be 'cos' or 'linear'"):
        L.OneCycleLR(0.1, 100, anneal_strategy="cosine")
    with pytest.raises(ValueError, match=r"^CyclicLR: mode='tri' must be"):
        L.CyclicLR(0.1, 0.2, mode="tri")
    with pytest.raises(TypeError, match=r"^LinearLR: lr must be a concrete number"):
        L.LinearLR(lambda c: 0.1)
