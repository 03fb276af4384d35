"""Wrappers: parity with optax's apply_if_finite, masked, partition and MultiSteps, and our deliberate differences."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx


def _params():
    return {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.1, -0.2]), "scale": jnp.array(2.0)}


def _grad(params, i):
    """A deterministic, step-dependent gradient of a quadratic."""
    return jax.tree.map(lambda p: p * (1.0 + 0.1 * i) + 0.05 * i, params)


def _poison(tree, kind):
    return jax.tree.map(lambda g: g.at[..., 0].set(kind) if g.ndim else jnp.asarray(kind, g.dtype), tree)


def _eq(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _close(a, b, rtol=1e-6, atol=1e-7):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def _run(tx, grads_seq, params, jit=False):
    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    traj = []
    for g in grads_seq:
        u, state = update(g, state, params)
        params = gx.apply_updates(params, u)
        traj.append(params)
    return traj, state


# ---------------------------------------------------------------- skip_nonfinite


def _nan_steps(n=40, p=0.25, seed=0):
    rng = np.random.default_rng(seed)
    return [bool(x) for x in rng.random(n) < p]


def test_skip_nonfinite_matches_optax_apply_if_finite_before_giving_up():
    bad = _nan_steps()
    run = max(sum(1 for _ in g) for k, g in __import__("itertools").groupby(bad) if k)
    max_consecutive = run  # never exceeded: both wrappers must agree step for step
    p0 = _params()
    inner = gx.adam(1e-2)
    ours, ref = gx.skip_nonfinite(inner, max_consecutive), optax.apply_if_finite(inner, max_consecutive)
    s_ours, s_ref, p_ours, p_ref = ours.init(p0), ref.init(p0), p0, p0
    up1, up2 = jax.jit(ours.update), jax.jit(ref.update)
    for i, is_bad in enumerate(bad):
        g = _grad(p_ours, i)
        g = _poison(g, jnp.nan if i % 2 else jnp.inf) if is_bad else g
        u1, s_ours = up1(g, s_ours, p_ours)
        u2, s_ref = up2(g, s_ref, p_ref)
        p_ours, p_ref = gx.apply_updates(p_ours, u1), gx.apply_updates(p_ref, u2)
        # optax runs the inner update inside lax.cond, we select with jnp.where: XLA may fuse
        # the two programs differently, so parity is to float32 rounding, not bitwise.
        _close(p_ours, p_ref)
        assert int(s_ours.consecutive) == int(s_ref.notfinite_count)
        assert int(s_ours.total) == int(s_ref.total_notfinite)
    _close(s_ours.inner_state, s_ref.inner_state)
    assert int(s_ours.total) == sum(bad) > 0 and int(s_ours.gave_up) == 0


def test_nan_steps_lose_nothing_trajectory_equals_clean_run():
    """NaN at random steps: the run equals, bitwise, the same program fed only the finite gradients."""
    bad = _nan_steps(seed=3)
    p0 = _params()
    tx = gx.skip_nonfinite(gx.adamw(1e-2, weight_decay=0.1), max_consecutive=10)
    update = jax.jit(tx.update)
    s, p = tx.init(p0), p0
    sc, pc = tx.init(p0), p0
    k = 0
    for is_bad in bad:
        if is_bad:
            before_p, before_s = p, s
            u, s = update(_poison(_grad(p, k), jnp.nan), s, p)
            p = gx.apply_updates(p, u)
            _eq(p, before_p)  # params exactly as they were
            _eq(s.inner_state, before_s.inner_state)  # inner state exactly as it was
            assert not bool(s.last_finite)
        else:
            u, s = update(_grad(p, k), s, p)
            p = gx.apply_updates(p, u)
            uc, sc = update(_grad(pc, k), sc, pc)
            pc = gx.apply_updates(pc, uc)
            k += 1
            _eq(p, pc)
    _eq(s.inner_state, sc.inner_state)
    assert int(s.total) == sum(bad) and int(sc.total) == 0
    # and the same as plain adamw, to float32 rounding (a different compiled program)
    sp, pp = gx.adamw(1e-2, weight_decay=0.1).init(p0), p0
    for i in range(k):
        u, sp = gx.adamw(1e-2, weight_decay=0.1).update(_grad(pp, i), sp, pp)
        pp = gx.apply_updates(pp, u)
    _close(p, pp, rtol=1e-5, atol=1e-6)


def test_gives_up_then_protects_again_unlike_optax():
    """max_consecutive=2 and 5 NaN steps in a row: ours skip,skip,pass,skip,skip; optax skip,skip,pass,pass,pass."""
    p0 = {"x": jnp.ones(3)}
    nan = {"x": jnp.array([jnp.nan, 1.0, 1.0])}
    ours, ref = gx.skip_nonfinite(gx.sgd(0.1), 2), optax.apply_if_finite(gx.sgd(0.1), 2)
    s1, s2 = ours.init(p0), ref.init(p0)
    passed_ours, passed_ref = [], []
    for _ in range(5):
        u1, s1 = ours.update(nan, s1, p0)
        u2, s2 = ref.update(nan, s2, p0)
        passed_ours.append(bool(jnp.isnan(u1["x"][0])))
        passed_ref.append(bool(jnp.isnan(u2["x"][0])))
        if not passed_ours[-1]:
            _eq(u1, {"x": jnp.zeros(3)})
    assert passed_ours == [False, False, True, False, False]
    assert passed_ref == [False, False, True, True, True]
    assert (int(s1.consecutive), int(s1.total), int(s1.gave_up)) == (2, 5, 1)
    assert int(s2.notfinite_count) == 5


def test_max_consecutive_zero_never_skips():
    tx = gx.skip_nonfinite(gx.sgd(1.0), 0)
    s = tx.init({"x": jnp.ones(2)})
    u, s = tx.update({"x": jnp.array([jnp.inf, 1.0])}, s)
    assert np.isinf(u["x"][0]) and int(s.gave_up) == 1 and int(s.consecutive) == 0


# ---------------------------------------------------------------- masked, freeze, partition


def _not_bias(p):
    return {k: k != "b" for k in p}


def test_masked_weight_decay_matches_optax():
    p0 = _params()
    grads = [_grad(p0, i) for i in range(6)]
    ours = gx.chain(gx.adam(1e-2), gx.masked(gx.chain(gx.add_decayed_weights(0.1), gx.scale(-1e-2)), _not_bias))
    ref = optax.chain(
        gx.adam(1e-2), optax.masked(optax.chain(optax.add_decayed_weights(0.1), optax.scale(-1e-2)), _not_bias)
    )
    t1, _ = _run(ours, grads, p0)
    t2, _ = _run(ref, grads, p0)
    for a, b in zip(t1, t2):
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)
    # biases got Adam's update only: they equal a plain Adam run
    t3, _ = _run(gx.adam(1e-2), grads, p0)
    np.testing.assert_array_equal(t1[-1]["b"], t3[-1]["b"])
    assert not np.array_equal(t1[-1]["w"], t3[-1]["w"])


def test_masked_out_leaves_pass_through_like_optax_and_freeze_zeros_them():
    """Our documented choice: masked() passes masked-out leaves through (optax's), freeze() zeros them."""
    p0 = _params()
    g = _grad(p0, 1)
    mask = {"w": True, "b": False, "scale": False}
    u_ours, _ = gx.masked(gx.sgd(0.1), mask).update(g, gx.masked(gx.sgd(0.1), mask).init(p0), p0)
    u_ref, _ = optax.masked(optax.sgd(0.1), mask).update(g, optax.masked(optax.sgd(0.1), mask).init(p0), p0)
    _eq(u_ours, u_ref)
    _eq(u_ours["b"], g["b"])  # the raw gradient, added to params: the optax #159 surprise
    # the fix: freeze the others; their params stay bitwise identical over a run
    inverse = {k: not v for k, v in mask.items()}
    tx = gx.chain(gx.masked(gx.sgd(0.1), mask), gx.freeze(inverse))
    traj, _ = _run(tx, [_grad(p0, i) for i in range(4)], p0)
    _eq(traj[-1]["b"], p0["b"])
    _eq(traj[-1]["scale"], p0["scale"])
    want_w = p0["w"]
    for i in range(4):
        want_w = want_w - 0.1 * _grad(p0, i)["w"]
    np.testing.assert_allclose(traj[-1]["w"], want_w, rtol=1e-6)


def test_mask_prefix_and_callable():
    p = {"layer": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, "head": jnp.ones(3)}
    g = jax.tree.map(lambda x: 2 * x, p)
    tx = gx.masked(gx.scale(10.0), {"layer": True, "head": False})
    out, _ = tx.update(g, tx.init(p))
    _eq(out, {"layer": {"w": 20 * jnp.ones((2, 2)), "b": 20 * jnp.ones(2)}, "head": 2 * jnp.ones(3)})
    tx2 = gx.masked(gx.scale(10.0), lambda t: jax.tree.map(lambda x: x.ndim == 2, t))
    out2, _ = tx2.update(g, tx2.init(p))
    _eq(out2, {"layer": {"w": 20 * jnp.ones((2, 2)), "b": 2 * jnp.ones(2)}, "head": 2 * jnp.ones(3)})


def test_inner_state_only_holds_selected_leaves():
    p = _params()
    st = gx.masked(gx.adam(1e-3), _not_bias).init(p)
    mu = gx.tree_get(st, "mu")
    assert sorted(k for k, v in mu.items() if v is not None) == ["scale", "w"]


def test_partition_matches_optax_partition():
    p0 = _params()
    labels = {"w": "decay", "b": "no_decay", "scale": "sgd"}
    txs = {"decay": gx.adamw(1e-2, weight_decay=0.1), "no_decay": gx.adam(1e-2), "sgd": gx.sgd(0.05, 0.9)}
    grads = [_grad(p0, i) for i in range(6)]
    t1, _ = _run(gx.partition(txs, labels), grads, p0)
    t2, _ = _run(optax.partition(txs, labels), grads, p0)
    for a, b in zip(t1, t2):
        _eq(a, b)
    # each leaf follows exactly its own optimizer run alone
    for lab, key in (("decay", "w"), ("no_decay", "b"), ("sgd", "scale")):
        alone, _ = _run(txs[lab], [{key: g[key]} for g in grads], {key: p0[key]})
        np.testing.assert_array_equal(t1[-1][key], alone[-1][key])


def test_freeze_all_gives_exact_zeros_in_each_dtype():
    g = {"a": jnp.ones(2, jnp.bfloat16), "c": jnp.ones(2, jnp.complex64), "f": jnp.full(3, jnp.nan)}
    out, _ = gx.freeze().update(g, gx.freeze().init(g))
    for k in g:
        assert out[k].dtype == g[k].dtype
        np.testing.assert_array_equal(np.asarray(out[k]), np.zeros(g[k].shape, g[k].dtype))


# ---------------------------------------------------------------- accumulate


@pytest.mark.parametrize("k", [1, 3, 4])
def test_accumulate_matches_optax_multisteps(k):
    p0 = _params()
    grads = [_grad(p0, i) for i in range(12)]
    inner = gx.adam(1e-2)
    t1, s1 = _run(gx.accumulate(inner, k), grads, p0, jit=True)
    t2, _ = _run(optax.MultiSteps(inner, k).gradient_transformation(), grads, p0, jit=True)
    for a, b in zip(t1, t2):
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)
    # the inner optimizer stepped once per k micro-steps
    assert int(gx.tree_get(s1, "count")) == 12 // k


def test_accumulate_is_one_sgd_step_on_the_mean():
    p0 = _params()
    grads = [_grad(p0, i) for i in range(3)]
    traj, state = _run(gx.accumulate(gx.sgd(0.1), 3), grads, p0)
    _eq(traj[0], p0)
    _eq(traj[1], p0)
    want = jax.tree.map(lambda p, *g: p - 0.1 * sum(g) / 3, p0, *grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), traj[2], want)
    assert int(state.micro_step) == 0
    jax.tree.map(lambda a: np.testing.assert_array_equal(a, 0), state.acc)


def test_accumulate_keeps_one_parameter_sized_buffer():
    p = {"w": jnp.ones((64, 32), jnp.bfloat16), "b": jnp.ones(32, jnp.bfloat16)}
    st = gx.accumulate(gx.sgd(0.1), 4).init(p)
    outer = [x for x in jax.tree.leaves((st.micro_step, st.acc))]
    assert sum(x.size for x in outer) == 64 * 32 + 32 + 1
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(st.acc))


def test_nan_micro_step_is_skipped_by_an_outer_skip_nonfinite():
    p0 = {"x": jnp.array([1.0, 2.0])}
    tx = gx.skip_nonfinite(gx.accumulate(gx.sgd(1.0), 2), 5)
    s = tx.init(p0)
    _, s = tx.update({"x": jnp.array([1.0, 1.0])}, s)
    acc_before = s.inner_state.acc
    _, s = tx.update({"x": jnp.array([jnp.nan, 1.0])}, s)
    _eq(s.inner_state.acc, acc_before)
    u, s = tx.update({"x": jnp.array([3.0, 5.0])}, s)
    _eq(u, {"x": -jnp.array([2.0, 3.0])})


def test_partition_with_label_function_no_decay_on_vectors():
    """The docs' example: labels from a function of the params; 1-d leaves skip weight decay."""
    p0 = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    g = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
    tx = gx.partition(
        {"decay": gx.adamw(0.1, weight_decay=0.5), "no_decay": gx.adam(0.1)},
        lambda p: jax.tree.map(lambda x: "no_decay" if x.ndim <= 1 else "decay", p),
    )
    u, _ = tx.update(g, tx.init(p0), p0)
    np.testing.assert_allclose(u["w"], -0.1 * 0.5 * jnp.ones((2, 2)), rtol=1e-6)  # -lr * wd * w
    np.testing.assert_array_equal(u["b"], jnp.zeros(2))
    # a label no leaf has still gets a state, and the wrapper runs with no leaves at all
    st = gx.partition({"a": gx.adamw(0.1), "unused": gx.adam(0.1)}, "a").init(jnp.ones(3))
    out, _ = gx.partition({"a": gx.adamw(0.1), "unused": gx.adam(0.1)}, "a").update(jnp.ones(3), st, jnp.ones(3))
    assert out.shape == (3,)


def test_accumulate_and_skip_under_vmap():
    """lax.cond under vmap becomes a select: vmapped runs equal separate runs."""
    tx = gx.skip_nonfinite(gx.accumulate(gx.sgd(0.5), 2), 3)
    ps = jnp.stack([jnp.ones(3), 2 * jnp.ones(3)])
    gs = [jnp.stack([jnp.arange(3.0) + i, jnp.where(i == 1, jnp.nan, 1.0) * jnp.ones(3)]) for i in range(4)]
    vstate = jax.vmap(tx.init)(ps)
    vupdate = jax.vmap(tx.update)
    outs = []
    for g in gs:
        u, vstate = vupdate(g, vstate, ps)
        outs.append(u)
    for b in range(2):
        s = tx.init(ps[b])
        for g, u in zip(gs, outs):
            ub, s = tx.update(g[b], s, ps[b])
            np.testing.assert_allclose(u[b], ub, rtol=1e-6)
    assert list(vstate.total) == [0, 1]
