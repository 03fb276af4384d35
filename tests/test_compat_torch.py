"""gradxform.compat.torch against torch.optim itself: 500 steps, float64, params compared after every step.

Needs torch (``pip install torch==2.13.0``, the CPU build); skipped, with that
instruction in the reason, when it is not installed. The validation and
block tests at the bottom run without torch.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform.compat import torch as gxt
from gradxform.compat.torch_blocks import dampened_trace, nadam_momentum

SHAPES = {"a": (7,), "b": (3, 4), "c": (2, 3, 5)}
STEPS = 500
TOL = 1e-6

# (name, gradxform constructor, torch.optim class name, kwargs shared by both)
CASES = [
    ("SGD-plain", "SGD", dict(lr=0.05)),
    ("SGD-momentum-dampening", "SGD", dict(lr=0.02, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD-nesterov-wd", "SGD", dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=5e-3)),
    ("SGD-maximize", "SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adam-default", "Adam", dict()),
    ("Adam-amsgrad-l2", "Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    ("Adam-decoupled", "Adam", dict(lr=2e-3, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW-default", "AdamW", dict()),
    ("AdamW-amsgrad", "AdamW", dict(lr=5e-3, weight_decay=0.05, amsgrad=True)),
    ("RMSprop-default", "RMSprop", dict()),
    (
        "RMSprop-centered-momentum-wd",
        "RMSprop",
        dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.9, weight_decay=1e-2),
    ),
    ("Adagrad-default", "Adagrad", dict()),
    (
        "Adagrad-lr_decay-iav-wd",
        "Adagrad",
        dict(lr=0.05, lr_decay=1e-2, initial_accumulator_value=0.1, weight_decay=1e-3),
    ),
    ("Adadelta-default", "Adadelta", dict()),
    ("Adadelta-wd", "Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=1e-2)),
    ("NAdam-default", "NAdam", dict()),
    ("NAdam-decoupled", "NAdam", dict(lr=1e-2, weight_decay=0.05, decoupled_weight_decay=True, momentum_decay=1e-2)),
    ("NAdam-l2", "NAdam", dict(lr=1e-2, betas=(0.95, 0.99), weight_decay=0.02)),
]


def _torch():
    try:
        import torch
    except ImportError:
        msg = (
            "torch is not installed, so the trajectory tests against torch.optim are SKIPPED. "
            "Install the CPU build with `pip install torch==2.13.0` (the .ci/run script does)."
        )
        warnings.warn(msg, stacklevel=2)
        pytest.skip(msg)
    return torch


def max_difference(torch, name: str, kwargs: dict, steps: int = STEPS, seed: int = 0, make=None) -> float:
    """Runs torch.optim.<name> and gradxform.compat.torch.<name> (or ``make()``) side by side.

    Returns the largest |p_torch - p_ours| over all steps and leaves.
    """
    rng = np.random.default_rng(seed)
    init = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [
        # Per-step random gradients whose scale wanders, so running maxima and lr_decay matter.
        {k: rng.normal(size=s) * np.exp(rng.normal()) for k, s in SHAPES.items()}
        for _ in range(steps)
    ]
    old_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps step counts and NAdam's mu_product in this dtype
    try:
        tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
        topt = getattr(torch.optim, name)(list(tparams.values()), **kwargs)
        with jax.enable_x64(True):
            tx = getattr(gxt, name)(**kwargs) if make is None else make()
            params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), init)
            state = tx.init(params)

            @jax.jit
            def step(params, state, g):
                updates, state = tx.update(g, state, params)
                return gx.apply_updates(params, updates), state

            worst = 0.0
            for g in grads:
                for k, p in tparams.items():
                    p.grad = torch.tensor(g[k], dtype=torch.float64)
                topt.step()
                params, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), g))
                assert params["a"].dtype == jnp.float64
                for k, p in tparams.items():
                    worst = max(worst, float(np.max(np.abs(p.detach().numpy() - np.asarray(params[k])))))
    finally:
        torch.set_default_dtype(old_default)
    return worst


@pytest.mark.parametrize("label,name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_trajectory_matches_torch_optim(label, name, kwargs):
    torch = _torch()
    worst = max_difference(torch, name, kwargs)
    print(f"{label}: max |p_torch - p_gradxform| over {STEPS} steps = {worst:.3e}")
    assert worst < TOL, f"{label}: {worst:.3e}"


@pytest.mark.parametrize(
    "label,name,kwargs,make",
    [
        ("optax-style amsgrad", "Adam", dict(lr=3e-3, amsgrad=True), lambda: gx.amsgrad(3e-3)),
        ("optax-style nadam", "NAdam", dict(lr=1e-2), lambda: gx.nadam(1e-2)),
        ("gradxform.adagrad defaults", "Adagrad", dict(lr=0.05), lambda: gx.adagrad(0.05)),
        ("trace for dampened SGD", "SGD", dict(lr=0.02, momentum=0.9, dampening=0.3), lambda: gx.sgd(0.02, 0.9)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_comparison_sees_the_differences(label, name, kwargs, make):
    """Negative controls: the library's optax-style optimizers are NOT torch's, and the test can tell."""
    torch = _torch()
    worst = max_difference(torch, name, kwargs, steps=100, make=make)
    assert worst > 100 * TOL, f"{label}: only {worst:.3e} from torch.optim.{name}"


def test_defaults_are_torchs():
    torch = _torch()
    import inspect

    for name in gxt.__all__:
        ours = inspect.signature(getattr(gxt, name)).parameters
        theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
        for arg, p in ours.items():
            assert arg in theirs, f"{name}: {arg} is not a torch.optim.{name} argument"
            want = theirs[arg].default
            assert p.default == (tuple(want) if isinstance(want, (tuple, list)) else want), (name, arg)


def test_differs_from_the_optax_style_optimizers():
    """The point of the compat module: torch's numerics are not the library's defaults."""
    with jax.enable_x64(True):
        p = {"w": jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float64)}
        g = {"w": jnp.linspace(0.5, -2.0, 5, dtype=jnp.float64)}

        def first(tx):
            return tx.update(g, tx.init(p), p)[0]["w"]

        # AdamW: torch's default decay 0.01 vs gradxform/optax's 1e-4.
        diff = first(gxt.AdamW(lr=1.0)) - first(gx.adamw(1.0))
        np.testing.assert_allclose(diff, -1.0 * (0.01 - 1e-4) * p["w"], rtol=1e-9, atol=1e-15)
        # Adagrad: eps 1e-10 outside the root, no initial accumulator: first step is -lr * sign(g).
        np.testing.assert_allclose(first(gxt.Adagrad(lr=0.1)), -0.1 * g["w"] / (np.abs(g["w"]) + 1e-10), rtol=1e-12)


# ---- Without torch: the new blocks' formulas, and validation. ----


def test_dampened_trace_formula():
    tx = dampened_trace(0.9, dampening=0.25)
    gs = [jnp.array([1.0, -2.0]), jnp.array([3.0, 0.5]), jnp.array([-1.0, 4.0])]
    s = tx.init(gs[0])
    outs = []
    for g in gs:
        u, s = tx.update(g, s)
        outs.append(u)
    b1 = gs[0]
    b2 = 0.9 * b1 + 0.75 * gs[1]
    b3 = 0.9 * b2 + 0.75 * gs[2]
    np.testing.assert_allclose(outs[0], b1, rtol=1e-6)
    np.testing.assert_allclose(outs[1], b2, rtol=1e-6)
    np.testing.assert_allclose(outs[2], b3, rtol=1e-6)


def test_nadam_momentum_formula():
    b1, psi = 0.9, 4e-3
    tx = nadam_momentum(b1, psi)
    g1, g2 = jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0])
    s = tx.init(g1)
    u1, s = tx.update(g1, s)
    u2, s = tx.update(g2, s)

    def mu(t):
        return b1 * (1 - 0.5 * 0.96 ** (t * psi))

    m1 = (1 - b1) * g1
    m2 = b1 * m1 + (1 - b1) * g2
    p1, p2 = mu(1), mu(1) * mu(2)
    np.testing.assert_allclose(u1, (1 - mu(1)) / (1 - p1) * g1 + mu(2) / (1 - p1 * mu(2)) * m1, rtol=1e-6)
    np.testing.assert_allclose(u2, (1 - mu(2)) / (1 - p2) * g2 + mu(3) / (1 - p2 * mu(3)) * m2, rtol=1e-6)
    np.testing.assert_allclose(s.mu_product, p2, rtol=1e-6)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: gxt.SGD(lr=-1.0), "lr=-1.0"),
        (lambda: gxt.SGD(lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda: gxt.SGD(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening == 0"),
        (lambda: gxt.Adam(betas=(0.9, 1.0)), r"betas\[1\]=1.0"),
        (lambda: gxt.Adam(betas=0.9), "betas must be a pair"),
        (lambda: gxt.AdamW(weight_decay=-0.1), "weight_decay=-0.1"),
        (lambda: gxt.RMSprop(alpha=1.5), "alpha=1.5"),
        (lambda: gxt.Adagrad(lr_decay=-1.0), "lr_decay=-1.0"),
        (lambda: gxt.Adadelta(rho=1.0), "rho=1.0"),
        (lambda: gxt.NAdam(momentum_decay=-1.0), "momentum_decay=-1.0"),
    ],
)
def test_bad_arguments_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()
