"""Weights to evaluate: schedule-free, ema_params, swa, lookahead, each against its closed form and reference.

* `eval_params` of schedule-free equals `optax.contrib.schedule_free_eval_params` (float64, 1e-10);
* `ema_params` equals its closed form and torch's `AveragedModel(get_ema_multi_avg_fn)` (300 float64 steps);
* `swa` equals torch's `AveragedModel` with its default average on the same sequence;
* `lookahead`'s fast weights are `optax.lookahead`'s `fast` and its `eval_params` its `slow`;
* `eval_params` is the parameters for every other optimizer, and the outermost evaluating node wins;
* bad input raises led by the function's name and leaves the state as it was.

Parity with optax's schedule-free optimizers over 300 steps (params and state, float32 and float64) is in
the registry's cases (`tests/test_parity.py`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests.helpers import grad_stream, make_tree
from tests.refs import rel_err, require_torch

STEPS = 300


def _trajectory(tx, params, grads):
    """(params after every step, eval_params after every step, final state), one compiled scan."""

    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = gx.apply_updates(p, u)
        return (p, s), (p, gx.eval_params(s, p))

    @jax.jit
    def run(params, grads):
        (p, s), (seen, evals) = jax.lax.scan(body, (params, tx.init(params)), grads)
        return seen, evals, s

    return run(params, grads)


def _step(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _setup(steps=STEPS, dtype=jnp.float64):
    return make_tree(dtype, seed=0), grad_stream(dtype, steps, seed=1)


# ------------------------------------------------------------------------------------------ schedule-free


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda: gx.schedule_free_sgd(0.5, warmup_steps=16, b1=0.8, weight_decay=1e-3, weight_lr_power=1.5),
            lambda: optax.contrib.schedule_free_sgd(
                0.5, warmup_steps=16, b1=0.8, weight_decay=1e-3, weight_lr_power=1.5
            ),
        ),
        (
            lambda: gx.schedule_free_adamw(2**-7, warmup_steps=8, b1=0.85, b2=0.99, eps=1e-6, weight_decay=0.05),
            lambda: optax.contrib.schedule_free_adamw(
                2**-7, warmup_steps=8, b1=0.85, b2=0.99, eps=1e-6, weight_decay=0.05
            ),
        ),
        (
            lambda: gx.schedule_free(gx.adam(0.01, b1=0.0, b2=0.99), 0.01, b1=0.7, weight_lr_power=1.0),
            lambda: optax.contrib.schedule_free(optax.adam(0.01, b1=0.0, b2=0.99), 0.01, b1=0.7, weight_lr_power=1.0),
        ),
    ],
    ids=["sgd", "adamw", "wrapper-adam"],
)
def test_schedule_free_eval_params_equal_optax(ours, theirs):
    with jax.enable_x64(True):
        params, grads = _setup()
        seen, evals, state = _trajectory(ours(), params, grads)
        tx = theirs()

        def body(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            p = optax.apply_updates(p, u)
            return (p, s), (p, optax.contrib.schedule_free_eval_params(s, p))

        (_, s2), (seen2, evals2) = jax.jit(lambda p, g: jax.lax.scan(body, (p, tx.init(p)), g))(params, grads)
        worst = max(rel_err(_step(evals, i), _step(evals2, i)) for i in range(0, STEPS, 10))
        print(f"schedule-free eval_params: max relative difference {worst:.2e}")
        assert worst <= 1e-10
        assert rel_err(seen, seen2) <= 1e-10
        assert rel_err(gx.tree_get(state, "z"), gx.tree_get(s2, "z")) <= 1e-10
        # x is not y: the weights to evaluate differ from the ones trained
        assert rel_err(_step(evals, -1), _step(seen, -1)) > 1e-3


def test_schedule_free_at_init_evaluates_the_parameters_and_first_step_is_the_base_step():
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    tx = gx.schedule_free_sgd(0.1, b1=0.9)
    state = tx.init(params)
    np.testing.assert_array_equal(gx.eval_params(state, params)["w"], params["w"])
    g = {"w": jnp.array([0.5, 0.25, -1.0])}
    u, state = tx.update(g, state, params)
    # c_1 = 1: x_1 = z_1 = y_0 - lr g, and y_1 = b1 x_1 + (1 - b1) z_1 = the SGD step
    sgd_step = params["w"] + (-0.1 * g["w"])
    np.testing.assert_array_equal(gx.tree_get(state, "z")["w"], sgd_step)
    np.testing.assert_array_equal(gx.apply_updates(params, u)["w"], sgd_step)  # u = z_1 - y_0
    np.testing.assert_allclose(u["w"], -0.1 * g["w"], rtol=1e-5)


# ------------------------------------------------------------------------------------------ ema_params


def _torch_averaged(params_seq, initial, multi_avg_fn=None, which=None):
    """torch's AveragedModel over a sequence of parameter trees (flattened leaves), float64.

    `which(t)` says whether the parameters after update t (t = 0: the initial ones) are averaged.
    Returns the averaged parameters after every update (None before the first averaged one).
    """
    torch = require_torch()
    leaves0 = [np.asarray(x) for x in jax.tree.leaves(initial)]
    model = torch.nn.Module()
    model.ps = torch.nn.ParameterList([torch.nn.Parameter(torch.tensor(x, dtype=torch.float64)) for x in leaves0])
    avg = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=multi_avg_fn)
    out = []

    def set_model(leaves):
        with torch.no_grad():
            for p, x in zip(model.ps, leaves):
                p.copy_(torch.tensor(np.asarray(x), dtype=torch.float64))

    if which(0):
        avg.update_parameters(model)
    for t in range(1, len(params_seq) + 1):
        set_model(jax.tree.leaves(params_seq[t - 1]))
        if which(t):
            avg.update_parameters(model)
        averaged = [p.detach().numpy().copy() for p in avg.module.ps]
        out.append(averaged if int(avg.n_averaged) > 0 else None)
    return out


def test_ema_params_equals_closed_form_and_torch_averaged_model():
    torch = require_torch()
    decay = 0.97
    with jax.enable_x64(True):
        params, grads = _setup()
        seen, evals, state = _trajectory(gx.ema_params(gx.adam(0.05), decay=decay), params, grads)
        # closed form: decay^T theta_0 + sum_t (1 - decay) decay^(T - t) theta_t
        T = STEPS
        closed = jax.tree.map(
            lambda p0, ps: (
                decay**T * p0 + jnp.einsum("t,t...->...", (1 - decay) * decay ** jnp.arange(T - 1, -1, -1.0), ps)
            ),
            params,
            seen,
        )
        assert rel_err(_step(evals, -1), closed) <= 1e-10
        # the inner optimizer's trajectory is adam's: the wrapper passes its updates through
        plain, _, _ = _trajectory(gx.adam(0.05), params, grads)
        assert rel_err(seen, plain) == 0.0
        ref = _torch_averaged(
            [_step(seen, i) for i in range(T)],
            params,
            torch.optim.swa_utils.get_ema_multi_avg_fn(decay),
            which=lambda t: True,
        )
        worst = max(rel_err(jax.tree.leaves(_step(evals, i)), r) for i, r in enumerate(ref))
        print(f"ema_params vs torch AveragedModel(get_ema_multi_avg_fn): {worst:.2e}")
        assert worst <= 1e-10
        assert rel_err(_step(evals, -1), _step(seen, -1)) > 1e-3


def test_ema_params_debiased_is_the_normalized_average_of_the_iterates():
    decay = 0.9
    with jax.enable_x64(True):
        params, grads = _setup(40)
        tx = gx.ema_params(gx.sgd(0.1), decay=decay, debias=True)
        np.testing.assert_array_equal(gx.eval_params(tx.init(params), params)["w"], params["w"])  # no update yet
        seen, evals, _ = _trajectory(tx, params, grads)
        for T in (1, 2, 40):
            w = (1 - decay) * decay ** np.arange(T - 1, -1, -1.0)
            want = jax.tree.map(lambda ps: jnp.einsum("t,t...->...", w / w.sum(), ps[:T]), seen)
            assert rel_err(_step(evals, T - 1), want) <= 1e-12
        assert rel_err(_step(evals, 0), _step(seen, 0)) <= 1e-15  # one iterate: itself


def test_ema_params_state_is_float32_for_low_precision_params():
    params = {"w": jnp.linspace(-1, 1, 6).astype(jnp.bfloat16)}
    tx = gx.ema_params(gx.sgd(1e-3), decay=0.999)
    state = tx.init(params)
    assert gx.tree_get(state, "ema")["w"].dtype == jnp.float32
    p = params
    for _ in range(20):
        u, state = tx.update({"w": jnp.ones(6, jnp.bfloat16)}, state, p)
        p = gx.apply_updates(p, u)
    ev = gx.eval_params(state, p)
    assert ev["w"].dtype == jnp.bfloat16
    # the average holds what bfloat16 cannot: (1 - 0.999) times a parameter's move is below its spacing
    ema = gx.tree_get(state, "ema")["w"]
    moved = p["w"] != params["w"]
    assert bool(jnp.any(moved))
    assert bool(jnp.all((ema != ema.astype(jnp.bfloat16).astype(jnp.float32))[moved]))
    explicit = gx.ema_params(gx.sgd(1e-3), state_dtype=jnp.bfloat16).init(params)
    assert gx.tree_get(explicit, "ema")["w"].dtype == jnp.bfloat16


# ------------------------------------------------------------------------------------------ swa


@pytest.mark.parametrize("start, every", [(100, 7), (0, 1), (1, 3)])
def test_swa_equals_torch_averaged_model(start, every):
    require_torch()
    with jax.enable_x64(True):
        params, grads = _setup()
        seen, evals, state = _trajectory(gx.swa(gx.sgd(0.05, momentum=0.9), start=start, every=every), params, grads)
        which = lambda t: t >= start and (t - start) % every == 0  # noqa: E731
        ref = _torch_averaged([_step(seen, i) for i in range(STEPS)], params, None, which)
        worst = 0.0
        for i, r in enumerate(ref):
            if r is None:  # nothing averaged yet: the parameters themselves
                assert rel_err(_step(evals, i), _step(seen, i)) == 0.0
            else:
                worst = max(worst, rel_err(jax.tree.leaves(_step(evals, i)), r))
        print(f"swa(start={start}, every={every}) vs torch AveragedModel: {worst:.2e}")
        assert worst <= 1e-10
        n = sum(which(t) for t in range(STEPS + 1))
        assert int(gx.tree_get(state, "n_averaged")) == n
        # the plain mean of the averaged iterates
        members = [t for t in range(STEPS + 1) if which(t)]
        stack = jax.tree.map(lambda p0, ps: jnp.concatenate([p0[None], ps]), params, seen)
        mean = jax.tree.map(lambda s: jnp.mean(s[jnp.asarray(members)], axis=0), stack)
        assert rel_err(_step(evals, -1), mean) <= 1e-12


# ------------------------------------------------------------------------------------------ lookahead


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_fast_and_slow_weights_equal_optax(reset_state):
    with jax.enable_x64(True):
        params, grads = _setup()
        ours = gx.lookahead(gx.adam(0.05), sync_period=5, slow_step_size=0.3, reset_state=reset_state)
        seen, evals, _ = _trajectory(ours, params, grads)
        theirs = optax.lookahead(optax.adam(0.05), sync_period=5, slow_step_size=0.3, reset_state=reset_state)

        def body(carry, g):
            p, s = carry
            u, s = theirs.update(g, s, p)
            p = optax.apply_updates(p, u)
            return (p, s), p

        pair = optax.LookaheadParams.init_synced(params)
        _, ref = jax.jit(lambda p, g: jax.lax.scan(body, (p, theirs.init(p)), g))(pair, grads)
        fast, slow = rel_err(seen, ref.fast), rel_err(evals, ref.slow)
        print(f"lookahead(reset_state={reset_state}): fast {fast:.2e}, slow {slow:.2e}")
        assert fast <= 1e-10 and slow <= 1e-10
        assert rel_err(_step(evals, 7), _step(seen, 7)) > 1e-3  # between syncs fast and slow differ
        assert rel_err(_step(evals, 9), _step(seen, 9)) <= 1e-14  # after the 10th step they are synced


# ------------------------------------------------------------------------------------------ eval_params


def test_eval_params_is_the_parameters_for_other_optimizers_and_the_outermost_node_wins():
    params = {"w": jnp.array([1.0, 2.0])}
    g = {"w": jnp.array([1.0, -1.0])}
    for tx in (gx.adam(0.1), gx.sgd(0.1, momentum=0.9), gx.accumulate(gx.adam(0.1), k=2)):
        state = tx.update(g, tx.init(params), params)[1]
        assert gx.eval_params(state, params) is params
    # ema of lookahead: the average of the fast weights the user holds, not lookahead's slow weights
    tx = gx.ema_params(gx.lookahead(gx.sgd(0.1), sync_period=3, slow_step_size=0.5), decay=0.5)
    u, state = tx.update(g, tx.init(params), params)
    new = gx.apply_updates(params, u)
    np.testing.assert_allclose(gx.eval_params(state, new)["w"], 0.5 * params["w"] + 0.5 * new["w"], rtol=1e-6)
    # inside a chain and under inject_hyperparams the node is found too
    tx = gx.inject_hyperparams(gx.schedule_free_sgd)(learning_rate=0.1)
    state = tx.init(params)
    u, state = tx.update(g, state, params)
    new = gx.apply_updates(params, u)
    plain = gx.schedule_free_sgd(0.1)
    s2 = plain.update(g, plain.init(params), params)[1]
    np.testing.assert_array_equal(gx.eval_params(state, new)["w"], gx.eval_params(s2, new)["w"])


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: gx.schedule_free_sgd(b1=0.0), r"^schedule_free_sgd: b1=0.0 is out of range; allowed: \(0, 1\]"),
        (lambda: gx.schedule_free_sgd(b1=1.5), r"^schedule_free_sgd: b1=1.5 is out of range"),
        (lambda: gx.schedule_free_sgd(-1.0), r"^schedule_free_sgd: learning_rate=-1.0 is out of range"),
        (lambda: gx.schedule_free_adamw(b2=1.0), r"^schedule_free_adamw: b2=1.0 is out of range"),
        (lambda: gx.schedule_free_adamw(weight_lr_power=-1.0), r"^schedule_free_adamw: weight_lr_power=-1.0"),
        (lambda: gx.schedule_free_sgd(warmup_steps=0), r"^schedule_free_sgd: warmup_steps=0 must be an int >= 1"),
        (lambda: gx.ema_params(gx.adam(0.1), decay=1.5), r"^ema_params: decay=1.5 is out of range; allowed: \[0, 1\]"),
        (lambda: gx.swa(gx.adam(0.1), start=-1), r"^swa: start=-1 must be an int >= 0"),
        (lambda: gx.swa(gx.adam(0.1), start=3, every=0), r"^swa: every=0 must be an int >= 1"),
        (lambda: gx.lookahead(gx.adam(0.1), 0, 0.5), r"^lookahead: sync_period=0 must be an int >= 1"),
        (lambda: gx.lookahead(gx.adam(0.1), 5, 1.5), r"^lookahead: slow_step_size=1.5 is out of range"),
    ],
)
def test_bad_values_are_refused_led_by_the_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_kinds_are_refused_led_by_the_name():
    with pytest.raises(TypeError, match=r"^schedule_free: b1 must be a number"):
        gx.schedule_free(gx.sgd(0.1), 0.1, b1=lambda c: 0.9)
    with pytest.raises(TypeError, match=r"^ema_params: debias='yes' must be True or False"):
        gx.ema_params(gx.adam(0.1), debias="yes")
    with pytest.raises(TypeError, match=r"^swa: start=1.5 must be an int"):
        gx.swa(gx.adam(0.1), start=1.5)
    with pytest.raises(TypeError, match=r"gx.adam instead of gx.adam\(|gradxform.adam instead of"):
        gx.lookahead(gx.adam, 5, 0.5)


@pytest.mark.parametrize(
    "tx",
    [
        gx.schedule_free_sgd(0.1),
        gx.ema_params(gx.adam(0.1)),
        gx.swa(gx.adam(0.1), start=1),
        gx.lookahead(gx.adam(0.1), 2, 0.5),
    ],
    ids=["schedule_free_sgd", "ema_params", "swa", "lookahead"],
)
def test_update_without_params_or_with_a_wrong_tree_raises_and_changes_nothing(tx):
    name = tx.update.__gradxform_block__.name
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    state = tx.init(params)
    before = jax.tree.map(np.asarray, state)
    g = jax.tree.map(jnp.ones_like, params)
    with pytest.raises(ValueError, match=rf"^{name}: update needs the parameters"):
        tx.update(g, state)
    with pytest.raises(ValueError, match=rf"^{name}: the update at \['w'\] has shape \[3, 2\]"):
        tx.update({"w": jnp.ones((3, 2)), "b": jnp.zeros(3)}, state, {"w": jnp.ones((3, 2)), "b": jnp.zeros(3)})
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, state))
