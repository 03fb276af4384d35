"""accumulate with a schedule of k, against optax.MultiSteps(every_k_schedule=...); reduce_on_plateau's scales
against optax.contrib.reduce_on_plateau on the same losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests.helpers import grad_stream, make_tree
from tests.refs import rel_err

STEPS = 300


def _scan(tx, params, grads, apply=gx.apply_updates):
    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = apply(p, u)
        return (p, s), p

    (_, s), seen = jax.jit(lambda p, g: jax.lax.scan(body, (p, tx.init(p)), g))(params, grads)
    return seen, s


def _growing(step):
    """1, 2, 3, ... micro-steps per window, capped at 6, by the number of inner steps taken."""
    return jnp.minimum(step + 1, 6)


@pytest.mark.parametrize(
    "inner, ref",
    [
        (lambda: gx.adam(0.05, b1=0.8), lambda: optax.adam(0.05, b1=0.8)),
        (lambda: gx.sgd(0.1, momentum=0.9), lambda: optax.sgd(0.1, momentum=0.9)),  # reads no count of its own
    ],
    ids=["adam", "sgd-momentum"],
)
def test_accumulate_with_a_schedule_of_k_equals_optax_multisteps(inner, ref):
    with jax.enable_x64(True):
        params, grads = make_tree(jnp.float64, seed=0), grad_stream(jnp.float64, STEPS, seed=1)
        ours, state = _scan(gx.accumulate(inner(), every_k_schedule=_growing), params, grads)
        # optax accumulates in float32 unless told otherwise; ours in the compute dtype (float64 here)
        multi = optax.MultiSteps(ref(), every_k_schedule=_growing, accumulator_dtype=jnp.float64)
        theirs, ref_state = _scan(multi, params, grads, optax.apply_updates)
        worst = rel_err(ours, theirs)
        print(f"accumulate(every_k_schedule) vs optax.MultiSteps: {worst:.2e}")
        assert worst <= 1e-12
        # windows of 1, 2, ..., 6, 6, ...: 15 micro-steps for the first five inner steps, then one per 6
        inner_steps = 5 + (STEPS - 15) // 6
        assert int(gx.tree_get(state, "count")) == int(ref_state.gradient_step) == inner_steps
        assert int(gx.tree_get(state, "micro_step")) == int(ref_state.mini_step)
        assert rel_err(_step_last(ours), params) > 1e-3


def _step_last(seen):
    return jax.tree.map(lambda x: x[-1], seen)


def test_an_int_every_k_schedule_is_k():
    params, grads = make_tree(jnp.float32), grad_stream(jnp.float32, 12)
    a, _ = _scan(gx.accumulate(gx.adam(0.1), every_k_schedule=3), params, grads)
    b, _ = _scan(gx.accumulate(gx.adam(0.1), k=3), params, grads)
    assert rel_err(a, b) == 0.0


def test_accumulate_refuses_both_or_neither_and_bad_schedules():
    with pytest.raises(TypeError, match=r"^accumulate: pass exactly one of k"):
        gx.accumulate(gx.adam(0.1))
    with pytest.raises(TypeError, match=r"^accumulate: pass exactly one of k"):
        gx.accumulate(gx.adam(0.1), 2, every_k_schedule=lambda s: 2)
    with pytest.raises(ValueError, match=r"^accumulate: every_k_schedule=0 must be an int >= 1"):
        gx.accumulate(gx.adam(0.1), every_k_schedule=0)
    tx = gx.accumulate(gx.adam(0.1), every_k_schedule=lambda s: jnp.ones(2, jnp.int32))
    p = {"w": jnp.ones(2)}
    state = tx.init(p)
    with pytest.raises(ValueError, match=r"^accumulate: every_k_schedule returned shape \[2\]"):
        tx.update(p, state, p)
    np.testing.assert_array_equal(gx.tree_get(state, "acc")["w"], 0.0)


def _losses(n=400, seed=0):
    """Descends, then plateaus with noise, then descends again: reductions, cooldowns and recoveries."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.where(t < 100, 10.0 - 0.05 * t, np.where(t < 250, 5.0, 5.0 - 0.02 * (t - 250)))
    return base + 0.05 * rng.normal(size=n)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(factor=0.5, patience=3, rtol=1e-3, atol=1e-2, cooldown=4, accumulation_size=3, min_scale=0.05),
        dict(factor=0.9, patience=1, rtol=0.0, atol=0.1, cooldown=1),
        dict(factor=0.3, patience=5, rtol=1e-2, min_scale=2.0),  # a floor above 1: optax raises the scale to it
    ],
    ids=["defaults", "non-default", "atol-only", "min_scale-above-1"],
)
def test_reduce_on_plateau_scales_equal_optax_on_the_same_losses(kwargs):
    with jax.enable_x64(True):
        losses = jnp.asarray(_losses())
        ours, theirs = gx.reduce_on_plateau(**kwargs), optax.contrib.reduce_on_plateau(**kwargs)
        g = {"w": jnp.ones(3, jnp.float64)}

        def scales(tx):
            def body(s, v):
                u, s = tx.update(g, s, g, value=v)
                return s, u["w"][0]

            return jax.jit(lambda vs: jax.lax.scan(body, tx.init(g), vs))(losses)

        s1, a = scales(ours)
        s2, b = scales(theirs)
        worst = float(jnp.max(jnp.abs(a - b) / jnp.abs(b)))
        print(f"reduce_on_plateau{kwargs}: max relative difference of the scales {worst:.2e}")
        assert worst <= 1e-12
        assert len(np.unique(np.concatenate([[1.0], np.asarray(a)]))) >= 2  # the scale changed
        for name in ("best_value", "plateau_count", "cooldown_count", "scale"):
            np.testing.assert_allclose(np.asarray(getattr(s1, name)), np.asarray(getattr(s2, name)), rtol=1e-12)


def test_reduce_on_plateau_reads_the_loss_from_train_step_and_refuses_an_update_without_it():
    tx = gx.chain(gx.sgd(0.1), gx.reduce_on_plateau(patience=1, factor=0.5))
    p = {"w": jnp.ones(2)}
    state = tx.init(p)
    with pytest.raises(TypeError, match=r"^chain: update needs value="):
        tx.update(p, state, p)
    with pytest.raises(ValueError, match=r"^reduce_on_plateau: value must be a scalar"):
        tx.update(p, state, p, value=jnp.ones(2))
    step = jax.jit(gx.train_step(lambda q: 0.0 * jnp.sum(q["w"]) + 1.0, tx))  # a flat loss: no improvement
    for _ in range(3):
        p, state, _ = step(p, state)
    assert float(gx.tree_get(state, "scale")) == 0.25  # improved once (from inf), then two flat windows


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(factor=1.0), r"^reduce_on_plateau: factor=1.0 is out of range; allowed: \(0, 1\)"),
        (dict(factor=0.0), r"^reduce_on_plateau: factor=0.0 is out of range"),
        (dict(rtol=0.0, atol=0.0), r"^reduce_on_plateau: rtol and atol are both 0"),
        (dict(rtol=1.5), r"^reduce_on_plateau: rtol=1.5 is out of range"),
        (dict(atol=-1.0), r"^reduce_on_plateau: atol=-1.0 is out of range"),
        (dict(patience=0), r"^reduce_on_plateau: patience=0 must be an int >= 1"),
        (dict(cooldown=-1), r"^reduce_on_plateau: cooldown=-1 must be an int >= 0"),
        (dict(accumulation_size=0), r"^reduce_on_plateau: accumulation_size=0 must be an int >= 1"),
        (dict(min_scale=-0.1), r"^reduce_on_plateau: min_scale=-0.1 is out of range"),
    ],
)
def test_reduce_on_plateau_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gx.reduce_on_plateau(**kwargs)


# ------------------------------------------------------------------------------------------ sam


def test_sam_equals_its_closed_form_on_a_quadratic():
    """f = 1/2 sum h p^2: g = h p, eps = rho g / |g|, and SGD steps with h (p + eps)."""
    with jax.enable_x64(True):
        h = {"a": jnp.array([1.0, 4.0, 0.5]), "b": jnp.array([[2.0, 0.1], [3.0, 1.5]])}
        p = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([[0.3, -1.0], [2.0, 0.7]])}
        grad_fn = jax.grad(
            lambda q: sum(0.5 * jnp.sum(hh * qq**2) for hh, qq in zip(jax.tree.leaves(h), jax.tree.leaves(q)))
        )
        lr, rho = 0.05, 0.1
        tx = gx.sam(gx.sgd(lr), rho=rho)
        state = tx.init(p)
        want = p
        for _ in range(50):
            g = jax.tree.map(lambda hh, x: hh * x, h, want)
            norm = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))
            want = jax.tree.map(lambda x, hh, gg: x - lr * hh * (x + rho * gg / norm), want, h, g)
            u, state = tx.update(grad_fn(p), state, p, grad_fn=grad_fn)
            p = gx.apply_updates(p, u)
        assert rel_err(p, want) <= 1e-10
        # not plain SGD: the perturbation matters
        q = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([[0.3, -1.0], [2.0, 0.7]])}
        plain = gx.sgd(lr)
        s = plain.init(q)
        for _ in range(50):
            u, s = plain.update(grad_fn(q), s, q)
            q = gx.apply_updates(q, u)
        assert rel_err(p, q) > 1e-3


def _loss(p):
    """Convex, with curvatures from 0.2 to 2: SAM's trajectory is not chaotic, so two orders of rounding stay close
    (on a wavy loss Adam's steps near a minimum amplify rounding differences, also between jit and eager)."""
    return sum(
        jnp.sum(jnp.log(jnp.cosh(x - 0.3)) + 0.5 * (x + 0.1) ** 2 * jnp.arange(1, x.size + 1).reshape(x.shape) / x.size)
        for x in jax.tree.leaves(p)
    )


@pytest.mark.parametrize(
    "inner, ref",
    [
        (lambda: gx.adam(0.005, b1=0.8), lambda: optax.adam(0.005, b1=0.8)),
        (lambda: gx.sgd(0.1, momentum=0.9), lambda: optax.sgd(0.1, momentum=0.9)),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_sam_equals_optax_sam_after_each_descent_step(inner, ref):
    """optax alternates an ascent call (to p + eps) and a descent call; our one call equals the pair."""
    rho = 0.07
    with jax.enable_x64(True):
        params = make_tree(jnp.float64, seed=3)
        grad_fn = jax.grad(_loss)
        ours = gx.sam(inner(), rho=rho)

        def ours_body(carry, _):
            p, s = carry
            u, s = ours.update(grad_fn(p), s, p, grad_fn=grad_fn)
            p = gx.apply_updates(p, u)
            return (p, s), p

        _, seen = jax.jit(lambda p: jax.lax.scan(ours_body, (p, ours.init(p)), None, length=STEPS))(params)
        theirs = optax.contrib.sam(ref(), optax.chain(optax.contrib.normalize(), optax.sgd(rho)), sync_period=2)

        def theirs_body(carry, _):
            p, s = carry
            for _ in range(2):  # ascent, then descent
                u, s = theirs.update(grad_fn(p), s, p)
                p = optax.apply_updates(p, u)
            return (p, s), p

        _, ref_seen = jax.jit(lambda p: jax.lax.scan(theirs_body, (p, theirs.init(p)), None, length=STEPS))(params)
        worst = rel_err(seen, ref_seen)
        print(f"sam vs optax.contrib.sam over {STEPS} descent steps: {worst:.2e}")
        assert worst <= 1e-10
        assert rel_err(jax.tree.map(lambda x: x[-1], seen), params) > 1e-3


def test_sam_needs_grad_fn_and_a_matching_gradient():
    tx = gx.sam(gx.sgd(0.1))
    p = {"w": jnp.ones(3)}
    state = tx.init(p)
    with pytest.raises(TypeError, match=r"^sam: update needs grad_fn="):
        tx.update(p, state, p)
    with pytest.raises(ValueError, match=r"^sam: grad_fn returned a tree unlike the parameters"):
        tx.update(p, state, p, grad_fn=lambda q: {"v": q["w"]})
    with pytest.raises(ValueError, match=r"^sam: rho=-0.1 is out of range"):
        gx.sam(gx.sgd(0.1), rho=-0.1)
    # a zero gradient: no perturbation, no NaN
    u, _ = tx.update({"w": jnp.zeros(3)}, state, p, grad_fn=lambda q: jax.tree.map(jnp.zeros_like, q))
    np.testing.assert_array_equal(u["w"], 0.0)
    # train_step passes grad_fn for the batch
    step = gx.train_step(lambda q, x: jnp.sum((q["w"] - x) ** 2), tx)
    p2, _, _ = step(p, state, jnp.zeros(3))
    assert bool(jnp.all(p2["w"] < 1.0))
