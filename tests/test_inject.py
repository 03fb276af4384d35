"""Live hyperparameters: bitwise parity with the plain optimizer, dtypes, schedules, setting without recompiling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import schedules as S
from tests._compile_count import count_compiles
from tests.refs import registry_entries

W = jnp.arange(1.0, 6.0)


def loss(p):
    return jnp.sum(W * (p["w"] - 1.0) ** 2) + jnp.sum(jnp.sin(p["b"]) ** 2)


def init_params(dtype=jnp.float32):
    return {"w": jnp.linspace(-1.0, 1.0, 5).astype(dtype), "b": jnp.array([0.3, -0.7, 1.1], dtype)}


def trajectory(tx, steps=200, dtype=jnp.float32):
    """Parameters after each of `steps` updates (as float32 numpy, one compiled scan), and the final state."""

    @jax.jit
    def run(p):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            p = gx.apply_updates(p, u)
            return (p, s), jnp.concatenate([x.astype(jnp.float32).ravel() for x in jax.tree.leaves(p)])

        (_, state), seen = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return seen, state

    seen, state = run(init_params(dtype))
    return np.asarray(seen), state


# Every optimizer of the registry, at each of its parity settings (optax's and torch's argument names).
PARITY = [
    pytest.param(e, dict(c.kwargs), id=f"{e.name}[{c.label}]")
    for e in registry_entries()
    if e.kind in ("optimizer", "torch")
    for c in e.cases
]


@pytest.mark.parametrize("entry, kwargs", PARITY)
def test_bitwise_parity_with_the_plain_optimizer_200_steps(entry, kwargs):
    factory = entry.factory
    plain, plain_state = trajectory(factory(**kwargs))
    live, live_state = trajectory(gx.inject_hyperparams(factory, static_args=entry.static_args)(**kwargs))
    np.testing.assert_array_equal(live, plain)  # bitwise, every step
    if isinstance(plain_state, gx.StepState):  # the plain optimizer's one count is the wrapper's count
        assert int(live_state.count) == int(plain_state.count) == 200
        plain_state = plain_state.inner_state
    assert jax.tree.structure(live_state.inner_state) == jax.tree.structure(plain_state)
    for a, b in zip(jax.tree.leaves(live_state.inner_state), jax.tree.leaves(plain_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert plain[-1].tolist() != plain[0].tolist()  # it did move
    for k, v in kwargs.items():
        if isinstance(v, float) and k not in entry.static_args:
            assert live_state.hyperparams[k].dtype == jnp.float32
            assert live_state.hyperparams[k] == np.float32(v)


def test_defaults_are_live_and_static_arguments_are_not_stored():
    state = gx.inject_hyperparams(gx.sgd)(0.1, momentum=0.9, nesterov=True).init(init_params())
    assert sorted(state.hyperparams) == ["learning_rate", "momentum"]  # nesterov (bool) and state_dtype (None) static
    state = gx.inject_hyperparams(gx.adam)(learning_rate=1e-3).init(init_params())
    assert sorted(state.hyperparams) == ["b1", "b2", "eps", "eps_root", "learning_rate"]
    assert float(state.hyperparams["b2"]) == float(np.float32(0.999))
    # a dtype argument is static: passed through, not stored, and it takes effect
    state = gx.inject_hyperparams(gx.adam)(1e-3, mu_dtype=jnp.bfloat16).init(init_params())
    assert "mu_dtype" not in state.hyperparams
    assert {x.dtype for x in jax.tree.leaves(gx.tree_get(state, "mu"))} == {jnp.dtype(jnp.bfloat16)}


def test_bfloat16_params_keep_b2_0999_value_and_trajectory():
    tx = gx.inject_hyperparams(gx.adam)(learning_rate=0.01, b2=0.999)
    state = tx.init(init_params(jnp.bfloat16))
    assert state.hyperparams["b2"].dtype == jnp.float32
    assert float(state.hyperparams["b2"]) == float(np.float32(0.999))
    assert float(jnp.bfloat16(0.999)) == 1.0  # what bfloat16 storage would have made of it
    live, live_state = trajectory(tx, 200, jnp.bfloat16)
    plain, _ = trajectory(gx.adam(0.01, b2=0.999), 200, jnp.bfloat16)
    np.testing.assert_array_equal(live, plain)
    assert float(live_state.hyperparams["b2"]) == float(np.float32(0.999))
    # and b2 = 0.999 is not b2 -> 1: with bfloat16's rounding the second moment would never move (nu = 0, then
    # 1/sqrt(0)); our trajectory is finite and descends.
    assert np.all(np.isfinite(live)) and float(loss(init_params())) > 2 * float(
        loss({"w": jnp.asarray(live[-1][3:]), "b": jnp.asarray(live[-1][:3])})
    )


def test_user_named_dtype_is_used_and_x64_default_is_float64():
    state = gx.inject_hyperparams(gx.adam, hyperparam_dtype=jnp.float16)(0.01, eps=1e-4).init(init_params())
    assert state.hyperparams["b2"].dtype == jnp.float16  # asked for explicitly
    assert float(state.hyperparams["b2"]) == float(np.float16(0.999))
    # float16 storage cannot hold Adam's default eps = 1e-8 (it would be 0: NaN updates): refused when built,
    # blaming the dtype, not the value
    with pytest.raises(ValueError, match=r"^inject_hyperparams: hyperparam_dtype=float16 cannot hold eps=1e-08"):
        gx.inject_hyperparams(gx.adam, hyperparam_dtype=jnp.float16)(0.01)
    # bfloat16 storage rounds b2 to 1.0: refused when built, blaming hyperparam_dtype
    with pytest.raises(ValueError, match=r"^inject_hyperparams: hyperparam_dtype=bfloat16 rounds .*b2=1.0"):
        gx.inject_hyperparams(gx.adam, hyperparam_dtype=jnp.bfloat16)(0.01, eps=1e-3)
    with pytest.raises(TypeError, match="hyperparam_dtype"):
        gx.inject_hyperparams(gx.adam, hyperparam_dtype=jnp.int32)
    with jax.enable_x64(True):
        state = gx.inject_hyperparams(gx.adam)(0.01).init({"w": jnp.zeros(3, jnp.float32)})
        assert state.hyperparams["b2"].dtype == jnp.float64 and float(state.hyperparams["b2"]) == 0.999


def test_schedules_are_evaluated_into_the_state_and_match_the_plain_optimizer():
    lr = S.inverse_time_decay(0.05, 1.0, 10)
    b1 = S.linear_schedule(0.5, 0.9, 50)
    live, state = trajectory(gx.inject_hyperparams(gx.adam)(learning_rate=lr, b1=b1), 120)
    plain, _ = trajectory(gx.adam(lr, b1=b1), 120)
    np.testing.assert_array_equal(live, plain)
    # after 120 updates the state holds the values used by the last one, at step 119
    assert float(state.hyperparams["learning_rate"]) == float(jax.jit(lr)(jnp.int32(119)))
    assert float(state.hyperparams["b1"]) == float(np.float32(0.9))
    assert int(state.count) == 120


def test_setting_the_learning_rate_between_steps_takes_effect_and_compiles_nothing():
    traces = []
    tx = gx.inject_hyperparams(gx.sgd)(learning_rate=0.1)

    @jax.jit
    def step(p, s):
        traces.append(1)
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return gx.apply_updates(p, u), s

    p = init_params()
    state = tx.init(p)
    p1, state = step(p, state)  # compiles once
    lrs = [0.05, 0.01, 0.2, 1e-3, 0.07]
    with count_compiles() as compiles:
        for lr in lrs:
            state = gx.set_hyperparams(state, learning_rate=lr)
            g = jax.grad(loss)(p1)
            p2, state = step(p1, state)
            # closed form of one SGD step with the new rate: p - lr * g, in float32
            for k in p1:
                np.testing.assert_allclose(p2[k], p1[k] - np.float32(lr) * g[k], rtol=1e-6, atol=1e-7)
            assert float(state.hyperparams["learning_rate"]) == float(np.float32(lr))
            p1 = p2
    assert len(traces) == 1, "setting a live hyperparameter retraced the step"
    assert step._cache_size() == 1
    step_compiles = [c for c in compiles if "step" in c]
    assert step_compiles == [], f"setting a live hyperparameter compiled {step_compiles}"


def make_step(tx):
    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return gx.apply_updates(p, u), s

    return step


def test_closed_over_learning_rate_recompiles_but_live_one_does_not():
    # The optax issue #577 situation, measured: a learning rate captured as a constant needs a new program
    # per value; a live one reuses one program.
    p = init_params()
    with count_compiles() as closed:
        for lr in (0.1, 0.2, 0.3):
            tx = gx.sgd(lr)
            make_step(tx)(p, tx.init(p))
    assert len([c for c in closed if "step" in c]) == 3
    tx = gx.inject_hyperparams(gx.sgd)(0.1)
    step, state = make_step(tx), tx.init(p)
    with count_compiles() as live:
        for lr in (0.1, 0.2, 0.3):
            step(p, gx.set_hyperparams(state, learning_rate=lr))
    assert len([c for c in live if "step" in c]) == 1


def test_vmap_over_injected_hyperparameters_equals_separate_runs():
    lrs = jnp.array([0.01, 0.03, 0.1])
    tx = gx.inject_hyperparams(gx.adam)(learning_rate=0.01)
    p = init_params()

    def run(lr):
        s = tx.init(p)
        s = s._replace(hyperparams={**s.hyperparams, "learning_rate": lr})  # a traced, batched value

        def body(carry, _):
            q, s = carry
            u, s = tx.update(jax.grad(loss)(q), s, q)
            return (gx.apply_updates(q, u), s), None

        (q, _), _ = jax.lax.scan(body, (p, s), None, length=50)
        return q

    batched = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate([0.01, 0.03, 0.1]):
        sep, _ = trajectory(gx.adam(lr), 50)
        got = np.concatenate([np.asarray(x[i]).ravel() for x in jax.tree.leaves(batched)])
        np.testing.assert_allclose(got, sep[-1], rtol=2e-6, atol=1e-7)


def test_works_with_optax_factories_and_keeps_float32():
    # optax.inject_hyperparams stores hyperparameters in the params' dtype (optax #1414); ours does not.
    tx = gx.inject_hyperparams(optax.adam)(learning_rate=0.01, b2=0.999)
    state = tx.init(init_params(jnp.bfloat16))
    assert state.hyperparams["b2"].dtype == jnp.float32 and float(state.hyperparams["b2"]) == float(np.float32(0.999))
    # In float32 it is optax's own inject_hyperparams, bit for bit (both feed float32 arrays to optax.adam).
    live, _ = trajectory(tx, 100)
    theirs, _ = trajectory(optax.inject_hyperparams(optax.adam, hyperparam_dtype=jnp.float32)(0.01, b2=0.999), 100)
    np.testing.assert_array_equal(live, theirs)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="learning_rate=-0.1"):
        gx.inject_hyperparams(gx.adam)(learning_rate=-0.1)
    with pytest.raises(ValueError, match="b2=1.5"):
        gx.inject_hyperparams(gx.adam)(0.1, b2=1.5)
    with pytest.raises(ValueError, match="static_args"):
        gx.inject_hyperparams(gx.adam, static_args=("nope",))
    with pytest.raises(TypeError, match="factory"):
        gx.inject_hyperparams(gx.adam(0.1))
    state = gx.inject_hyperparams(gx.adam)(0.1).init(init_params())
    with pytest.raises(KeyError, match="learning_rat"):
        gx.set_hyperparams(state, learning_rat=0.1)
    with pytest.raises(ValueError, match="finite"):
        gx.set_hyperparams(state, learning_rate=float("nan"))
    with pytest.raises(ValueError, match=r"representable in the stored float32 \(it would be inf\)"):
        gx.set_hyperparams(state, learning_rate=1e300)
    for bad in ("0.1", True, 0.1j, None):
        with pytest.raises(TypeError, match="learning_rate must be a real number"):
            gx.set_hyperparams(state, learning_rate=bad)
    assert float(state.hyperparams["learning_rate"]) == float(np.float32(0.1))  # unchanged
    # a value set out of range is caught by the optimizer's own check when run eagerly
    tx = gx.inject_hyperparams(gx.adam)(0.1)
    bad = gx.set_hyperparams(tx.init(init_params()), b2=2.0)
    with pytest.raises(ValueError, match="b2=.*out of range"):
        tx.update(jax.grad(loss)(init_params()), bad, init_params())
