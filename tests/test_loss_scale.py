"""loss_scale: float16 training on the digits, the overflow step, the scale's trajectory against torch.amp.GradScaler
and jmp.DynamicLossScale, train_step's scaling, loss_scale_value, validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform.race.problems import load_digits_split


def _eq(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


# ---------------------------------------------------------------- float16 training on the digits

STEPS, BATCH = 1500, 128


def _init_mlp(key, dtype, sizes=(64, 64, 10)):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": (jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / (m + n))).astype(dtype), "b": jnp.zeros(n, dtype)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def _logits(params, x):
    x = x.astype(params[0]["w"].dtype)  # activations in the parameters' dtype
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def _loss(params, batch):
    x, y = batch
    logp = jax.nn.log_softmax(_logits(params, x).astype(jnp.float32))  # the loss itself in float32
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _accuracy(params, x, y):
    return float(jnp.mean(jnp.argmax(_logits(params, x), axis=1) == y))


@pytest.fixture(scope="module")
def digits():
    x_tr, x_te, y_tr, y_te = load_digits_split(0)
    rng = np.random.default_rng(0)
    idx = np.stack([rng.choice(len(x_tr), BATCH, replace=False) for _ in range(STEPS)])
    return (jnp.asarray(x_tr[idx]), jnp.asarray(y_tr[idx])), jnp.asarray(x_te), jnp.asarray(y_te)


def _train(tx, dtype, data):
    params = _init_mlp(jax.random.PRNGKey(0), dtype)
    return jax.jit(lambda p: gx.run(_loss, tx, p, STEPS, data=data))(params)


def test_float16_mlp_with_loss_scale_matches_float32_on_the_digits(digits):
    data, x_te, y_te = digits
    ref = _train(gx.adam(2e-3), jnp.float32, data)
    # float16 parameters and activations, Adam at its defaults: its first moment is stored in float16, its second
    # in float32 (float16 cannot hold the squares of its gradients: `numerics.square_dtype`)
    tx = gx.loss_scale(gx.adam(2e-3))
    half = _train(tx, jnp.float16, data)
    assert {x.dtype for x in jax.tree.leaves(gx.tree_get(half.state, "nu"))} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(gx.tree_get(half.state, "mu"))} == {jnp.dtype(jnp.float16)}
    assert all(x.dtype == jnp.float16 for x in jax.tree.leaves(half.params))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(half.params))
    acc32, acc16 = _accuracy(ref.params, x_te, y_te), _accuracy(half.params, x_te, y_te)
    assert acc32 > 0.95, acc32
    assert acc16 >= acc32 - 0.01, (acc16, acc32)
    assert float(gx.loss_scale_value(half.state)) == 2.0**15  # no overflow, and 1500 < 2000 finite steps
    assert int(gx.tree_get(half.state, "count")) == STEPS


def test_the_scale_keeps_float16_gradients_that_underflow_unscaled(digits):
    # A loss weighted 1e-4 (an auxiliary term, or a sum over a small weight): its float16 gradients fall into
    # float16's subnormal range, where they lose digits or flush to zero; scaled by 2**15 they do not.
    data, _, _ = digits
    batch = jax.tree.map(lambda a: a[0], data)
    params = _init_mlp(jax.random.PRNGKey(0), jnp.float16)

    def loss(p):
        return 1e-4 * _loss(p, batch)

    exact = jax.grad(loss)(jax.tree.map(lambda p: p.astype(jnp.float32), params))

    def errors(scale):
        g = jax.grad(lambda p: loss(p) * scale)(params)
        return [
            float(jnp.linalg.norm(a.astype(jnp.float32) / scale - b) / jnp.linalg.norm(b))
            for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(exact))
        ]

    assert max(errors(2.0**15)) < 2e-3, errors(2.0**15)  # float16's own rounding
    assert max(errors(1.0)) > 0.05, errors(1.0)  # measured: 7% to 17% per leaf


# ---------------------------------------------------------------- the overflow step


def test_an_overflowing_step_leaves_params_and_inner_state_unchanged_and_halves_the_scale():
    params = {"w": jnp.array([1.0, -2.0], jnp.float16), "b": jnp.array(0.5, jnp.float16)}
    tx = gx.loss_scale(gx.adam(1e-2), initial_scale=2.0**10, growth_interval=4)
    state = tx.init(params)
    g = {"w": jnp.array([0.5, 0.25], jnp.float16), "b": jnp.array(1.0, jnp.float16)}
    u, state = tx.update(g, state, params)  # a finite step
    params = gx.apply_updates(params, u)
    before_params, before_inner = params, state.inner
    bad = {"w": jnp.array([jnp.inf, 0.25], jnp.float16), "b": jnp.array(1.0, jnp.float16)}
    u, state = jax.jit(tx.update)(bad, state, params)
    _eq(gx.apply_updates(params, u), before_params)  # bitwise
    _eq(u, jax.tree.map(jnp.zeros_like, params))
    _eq(state.inner, before_inner)  # Adam's moments and its step count
    assert float(state.scale) == 2.0**9
    assert int(state.good_steps) == 0 and int(state.skipped) == 1
    for bad_value in (jnp.nan, -jnp.inf):
        u, state = tx.update({"w": jnp.array([0.0, bad_value], jnp.float16), "b": g["b"]}, state, params)
        _eq(u, jax.tree.map(jnp.zeros_like, params))
    assert float(state.scale) == 2.0**7 and int(state.skipped) == 3


def test_the_scale_grows_after_growth_interval_finite_steps_and_stops_at_its_floor_and_ceiling():
    params = {"w": jnp.ones(3)}
    g = {"w": jnp.full(3, 0.5)}
    tx = gx.loss_scale(gx.sgd(0.1), initial_scale=4.0, growth_interval=3, min_scale=2.0)
    state = tx.init(params)
    seen = []
    for _ in range(7):
        _, state = tx.update(g, state, params)
        seen.append(float(state.scale))
    assert seen == [4.0, 4.0, 8.0, 8.0, 8.0, 16.0, 16.0]
    for _ in range(5):  # 16 -> 8 -> 4 -> 2 -> 2 -> 2: never below min_scale
        _, state = tx.update({"w": jnp.full(3, jnp.nan)}, state, params)
    assert float(state.scale) == 2.0
    big = gx.loss_scale(gx.sgd(0.1), initial_scale=2.0**127, growth_interval=1)
    s = big.init(params)
    _, s = big.update(g, s, params)
    assert float(s.scale) == 2.0**127 and int(s.good_steps) == 0  # 2**128 is inf in float32: the scale stays


def test_unscaled_gradients_reach_the_inner_optimizer_in_float32():
    seen = {}

    def spy(u, p):
        seen["dtype"] = jax.tree.leaves(u)[0].dtype
        return u

    params = {"w": jnp.ones(3, jnp.float16)}
    tx = gx.loss_scale(gx.stateless(spy), initial_scale=2.0**15)
    u, _ = tx.update({"w": jnp.full(3, 2.0**14, jnp.float16)}, tx.init(params), params)
    assert seen["dtype"] == jnp.float32
    assert u["w"].dtype == jnp.float16 and np.all(np.asarray(u["w"]) == 0.5)


# ---------------------------------------------------------------- the scale's trajectory against torch and jmp


def _overflow_flags(n=300, seed=0):
    """Overflows at random steps (about one in twelve) and in bursts of three."""
    rng = np.random.default_rng(seed)
    flags = rng.random(n) < 1 / 12
    for start in (50, 51, 52, 200, 201, 202):
        flags[start] = True
    return [bool(f) for f in flags]


def test_scale_trajectory_and_skipped_steps_match_torch_grad_scaler_exactly():
    torch = pytest.importorskip("torch")
    settings = dict(init_scale=2.0**10, growth_factor=3.0, backoff_factor=0.375, growth_interval=4)
    flags = _overflow_flags()
    w0 = np.array([0.5, -1.5, 2.0], np.float32)

    w = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.Adam([w], lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", **settings)
    torch_scales, torch_params = [], []
    for bad in flags:
        opt.zero_grad()
        scaler.scale(torch.sum((w - 1.0) ** 2)).backward()
        if bad:
            w.grad[1] = float("inf")
        scaler.step(opt)
        scaler.update()
        torch_scales.append(scaler.get_scale())
        torch_params.append(w.detach().numpy().copy())

    tx = gx.loss_scale(
        gx.adam(1e-2),
        initial_scale=settings["init_scale"],
        growth_interval=settings["growth_interval"],
        growth_factor=settings["growth_factor"],
        backoff_factor=settings["backoff_factor"],
        min_scale=2.0**-20,  # torch has no floor; this one is never reached
    )

    @jax.jit
    def run(p, bad):
        def body(carry, b):
            p, s = carry
            g = jax.grad(lambda q: jnp.sum((q - 1.0) ** 2) * gx.loss_scale_value(s))(p)
            g = jnp.where(b, g.at[1].set(jnp.inf), g)
            u, s = tx.update(g, s, p)
            p = gx.apply_updates(p, u)
            return (p, s), (s.scale, p)

        (_, s), (scales, ps) = jax.lax.scan(body, (p, tx.init(p)), bad)
        return s, scales, ps

    state, scales, ps = run(jnp.asarray(w0), jnp.asarray(flags))
    np.testing.assert_array_equal(np.asarray(scales), np.asarray(torch_scales, np.float32))
    assert len(set(torch_scales)) > 10  # the scale moved both ways
    assert int(gx.tree_get(state, "count")) == int(opt.state[w]["step"]) == len(flags) - sum(flags)
    assert int(state.skipped) == sum(flags)
    np.testing.assert_allclose(np.asarray(ps), np.stack(torch_params), rtol=1e-5, atol=1e-6)


def test_scale_trajectory_matches_torch_update_scale_kernel_at_growth_attempts_past_float32():
    torch = pytest.importorskip("torch")
    scale, tracker = torch.tensor([2.0**120]), torch.tensor([0], dtype=torch.int32)
    tx = gx.loss_scale(gx.sgd(0.1), initial_scale=2.0**120, growth_interval=2, growth_factor=8.0)
    p = jnp.ones(2)
    s = tx.init(p)
    for bad in [False] * 9 + [True] + [False] * 4:
        found_inf = torch.tensor([1.0 if bad else 0.0])
        torch._amp_update_scale_(scale, tracker, found_inf, 8.0, 0.5, 2)
        _, s = tx.update(jnp.full(2, jnp.nan if bad else 1.0), s, p)
        assert float(s.scale) == float(scale[0]) and int(s.good_steps) == int(tracker[0])


def test_scale_trajectory_matches_jmp_dynamic_loss_scale_with_its_floor():
    jmp = pytest.importorskip("jmp")
    flags = _overflow_flags(seed=1)
    flags[100:120] = [True] * 20  # long enough to reach the floor
    ref = jmp.DynamicLossScale(jnp.float32(2.0**6), period=5, factor=2, min_loss_scale=jnp.float32(0.25))
    tx = gx.loss_scale(gx.sgd(0.1), initial_scale=2.0**6, growth_interval=5, growth_factor=2, min_scale=0.25)
    p = jnp.ones(2)
    s = tx.init(p)
    update = jax.jit(tx.update)
    theirs, ours = [], []
    for bad in flags:  # jmp eagerly: its pytree form drops a min_loss_scale other than 1 (not in its leaves)
        g = jnp.full(2, jnp.inf if bad else 1.0)
        ref = ref.adjust(jmp.all_finite(g))
        _, s = update(g, s, p)
        theirs.append(float(ref.loss_scale))
        ours.append(float(s.scale))
        assert int(s.good_steps) == int(ref.counter)
    assert ours == theirs and min(ours) == 0.25


# ---------------------------------------------------------------- train_step and run scale for the user


def test_train_step_scales_the_loss_and_returns_it_unscaled():
    params = {"w": jnp.array([0.3, -0.2, 0.1], jnp.float16)}
    x = jnp.array([1.0, 2.0, -1.0], jnp.float16)

    def loss(p, x):
        return jnp.sum((p["w"] * x).astype(jnp.float32) ** 2)

    tx = gx.loss_scale(gx.adam(1e-2), initial_scale=2.0**8, growth_interval=2)
    state = tx.init(params)
    p1, s1, value = jax.jit(gx.train_step(loss, tx))(params, state, x)
    grads = jax.grad(lambda p: loss(p, x) * gx.loss_scale_value(state))(params)  # the three-line recipe
    u, s_ref = tx.update(grads, state, params)
    _eq((p1, s1), (gx.apply_updates(params, u), s_ref))
    assert value == loss(params, x)  # the loss itself, not scaled
    # without a loss scale in the state the step does not scale
    plain = gx.adam(1e-2)
    q, _, _ = gx.train_step(loss, plain)(params, plain.init(params), x)
    _eq(q, gx.apply_updates(params, plain.update(jax.grad(loss)(params, x), plain.init(params), params)[0]))


def test_train_step_with_aux_and_make_train_step_scale_too():
    params = {"w": jnp.array([0.3, -0.2, 0.1], jnp.float16)}
    x = jnp.array([1.0, 2.0, -1.0], jnp.float16)

    def loss_aux(p, x):
        value = jnp.sum((p["w"] * x).astype(jnp.float32) ** 2)
        return value, {"half": value / 2}

    tx = gx.loss_scale(gx.adam(1e-2), initial_scale=2.0**8)
    state = tx.init(params)
    grads = jax.grad(lambda p: loss_aux(p, x)[0] * gx.loss_scale_value(state))(params)
    want = gx.apply_updates(params, tx.update(grads, state, params)[0])
    p1, _, value, aux = gx.train_step(loss_aux, tx, has_aux=True)(params, state, x)
    _eq(p1, want)
    assert value == loss_aux(params, x)[0] and aux["half"] == value / 2
    p2, s2, value2, _ = gx.make_train_step(loss_aux, tx, has_aux=True, donate=False)(params, state, x)
    _eq(p2, want)
    assert value2 == value and float(gx.loss_scale_value(s2)) == 2.0**8


def test_run_backs_off_from_a_scale_that_overflows_float16_and_then_trains():
    # 2**16 is above float16's largest finite number: the first backward pass overflows, that step is skipped.
    params = {"w": jnp.array([0.5, -0.5], jnp.float16)}

    def loss(p):
        return jnp.sum(p["w"] ** 2).astype(jnp.float32)

    tx = gx.loss_scale(gx.sgd(0.1), initial_scale=2.0**16)
    out = jax.jit(lambda p: gx.run(loss, tx, p, 5, measure=lambda q: q["w"]))(params)
    _eq(out.measured[1], params["w"])  # the first step changed nothing
    skipped = int(out.state.skipped)
    assert 1 <= skipped < 5 and float(gx.loss_scale_value(out.state)) == 2.0 ** (16 - skipped)
    assert float(jnp.sum(out.measured[-1].astype(jnp.float32) ** 2)) < 0.6 * float(out.losses[0])


# ---------------------------------------------------------------- loss_scale_value, nesting, validation


def test_loss_scale_value_finds_the_scale_inside_chain_and_inject_hyperparams():
    params = {"w": jnp.ones(2)}
    inside_chain = gx.chain(gx.loss_scale(gx.adam(1e-2), initial_scale=8.0), gx.scale(1.0))
    assert float(gx.loss_scale_value(inside_chain.init(params))) == 8.0
    live = gx.inject_hyperparams(lambda learning_rate: gx.loss_scale(gx.adam(learning_rate), initial_scale=4.0))(
        learning_rate=1e-2
    )
    state = live.init(params)
    assert float(gx.loss_scale_value(state)) == 4.0
    _, state = live.update({"w": jnp.full(2, jnp.inf)}, state, params)
    assert float(gx.loss_scale_value(state)) == 2.0
    assert float(gx.tree_get(state, "scale")) == 2.0
    with pytest.raises(ValueError, match=r"^loss_scale_value: this state \(StepState\) holds no loss scale"):
        gx.loss_scale_value(gx.adam(1e-2).init(params))


def test_live_factors_under_inject_hyperparams_jit_and_can_be_set():
    params = {"w": jnp.ones(2)}
    tx = gx.inject_hyperparams(gx.loss_scale, static_args=("growth_interval",))(
        gx.sgd(0.1), initial_scale=8.0, growth_interval=1, growth_factor=2.0, backoff_factor=0.5
    )
    state = tx.init(params)
    update = jax.jit(tx.update)
    _, state = update({"w": jnp.ones(2)}, state, params)
    assert float(gx.loss_scale_value(state)) == 16.0
    state = gx.set_hyperparams(state, growth_factor=4.0)
    _, state = update({"w": jnp.ones(2)}, state, params)
    assert float(gx.loss_scale_value(state)) == 64.0
    state = gx.set_hyperparams(state, backoff_factor=0.125)
    _, state = update({"w": jnp.full(2, jnp.nan)}, state, params)
    assert float(gx.loss_scale_value(state)) == 8.0


def test_a_live_growth_interval_is_refused_with_the_way_out():
    with pytest.raises(TypeError, match=r"^loss_scale: growth_interval must be a Python int, got an array; with "):
        gx.inject_hyperparams(gx.loss_scale)(gx.sgd(0.1), growth_interval=3).init({"w": jnp.ones(2)})


def test_two_loss_scales_side_by_side_are_refused_where_the_loss_is_scaled():
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    tx = gx.partition({"x": gx.loss_scale(gx.sgd(0.1)), "y": gx.loss_scale(gx.sgd(0.1))}, {"a": "x", "b": "y"})
    state = tx.init(params)
    with pytest.raises(ValueError, match=r"^loss_scale_value: the state holds 2 loss scales, but one loss"):
        gx.loss_scale_value(state)
    with pytest.raises(ValueError, match=r"^train_step: the state holds 2 loss scales"):
        gx.train_step(lambda p: jnp.sum(p["a"] ** 2 + p["b"] ** 2), tx)(params, state)


def test_a_loss_scale_inside_a_loss_scale_is_refused():
    tx = gx.loss_scale(gx.chain(gx.loss_scale(gx.sgd(0.1)), gx.scale(1.0)))
    with pytest.raises(ValueError, match=r"^loss_scale: the inner optimizer already holds a loss scale"):
        tx.init({"w": jnp.ones(2)})


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(backoff_factor=1.5), ValueError, r"backoff_factor=1.5 is out of range; allowed: \(0, 1\)"),
        (dict(backoff_factor=0.0), ValueError, r"backoff_factor=0.0 is out of range; allowed: \(0, 1\)"),
        (dict(growth_factor=1.0), ValueError, r"growth_factor=1.0 is out of range; allowed: \(1, inf\)"),
        (dict(growth_interval=0), ValueError, r"growth_interval=0 must be an int >= 1"),
        (dict(growth_interval=2.5), TypeError, r"growth_interval=2.5 must be an int >= 1"),
        (dict(growth_interval=2**31), ValueError, r"growth_interval=2147483648 must be at most 2147483647"),
        (dict(initial_scale=0.0), ValueError, r"initial_scale=0.0 is out of range; allowed: \(0, inf\)"),
        (dict(initial_scale=float("inf")), ValueError, r"initial_scale=inf is out of range"),
        (dict(initial_scale=1e39), ValueError, r"initial_scale=1e\+39 is inf in float32"),
        (dict(min_scale=-1.0), ValueError, r"min_scale=-1.0 is out of range; allowed: \(0, inf\)"),
        (dict(initial_scale=2.0, min_scale=4.0), ValueError, r"min_scale=4.0 is above initial_scale=2.0"),
        (dict(growth_factor=lambda t: 2.0), TypeError, r"growth_factor must be a number, not a schedule"),
        (dict(backoff_factor="half"), TypeError, r"backoff_factor must be a number, got the string"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match=r"^loss_scale: " + message):
        gx.loss_scale(gx.adam(1e-2), **kwargs)


def test_a_factory_instead_of_an_optimizer_is_refused():
    with pytest.raises(TypeError, match=r"^loss_scale: expected a gradient transformation"):
        gx.loss_scale(gx.adam)
