"""gradxform in the libraries people train with: flax (nnx and linen), equinox, orbax, optax.

flax, equinox and orbax come from the ``ecosystem`` extra (``pip install -e ".[ecosystem]"``); each
test is skipped, saying so, when its library is missing. The optax tests always run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import checkpoint


def _need(name: str):
    return pytest.importorskip(name, reason=f"{name} is not installed: pip install -e '.[ecosystem]'")


def _data(n: int = 64, d_in: int = 3, d_out: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_in)).astype(np.float32)
    w = rng.normal(size=(d_in, d_out)).astype(np.float32)
    y = np.tanh(x @ w) + 0.5
    return jnp.asarray(x), jnp.asarray(y.astype(np.float32))


# ---- flax ----


def test_flax_nnx_optimizer_trains_with_gradxform():
    nnx = _need("flax.nnx")
    x, y = _data()

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(3, 16, rngs=rngs)
            self.l2 = nnx.Linear(16, 2, rngs=rngs)

        def __call__(self, x):
            return self.l2(jax.nn.tanh(self.l1(x)))

    model = MLP(nnx.Rngs(0))
    opt = nnx.Optimizer(model, gx.adam(0.02), wrt=nnx.Param)

    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2)

    @nnx.jit
    def step(model, opt):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    first = float(loss_fn(model))
    for _ in range(300):
        step(model, opt)
    last = float(loss_fn(model))
    assert first > 0.2  # the data are not trivially fitted at init
    assert last < 5e-3, (first, last)
    # Our state is inside the flax optimizer: Adam's step count sits in the first EMA's state.
    counts = [int(v) for v in jax.tree.leaves(nnx.state(opt.opt_state)) if jnp.ndim(v) == 0]
    assert 300 in counts


def test_flax_linen_train_state_trains_with_gradxform():
    nn = _need("flax.linen")
    from flax.training import train_state

    x, y = _data()

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(nn.tanh(nn.Dense(16)(x)))

    model = MLP()
    params = model.init(jax.random.key(0), x)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=gx.adamw(0.02, weight_decay=1e-4))

    def loss_fn(params):
        return jnp.mean((state.apply_fn(params, x) - y) ** 2)

    @jax.jit
    def step(state):
        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    first = float(loss_fn(state.params))
    for _ in range(300):
        state, _ = step(state)
    last = float(loss_fn(state.params))
    assert first > 0.2
    assert last < 5e-3, (first, last)
    assert int(state.step) == 300


# ---- gradxform checkpoints of flax and equinox trees, restored in another process ----

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LINEN_TRAIN_STATE = """
import jax, jax.numpy as jnp, numpy as np
import flax.linen as nn
from flax.training import train_state
import gradxform as gx


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.tanh(nn.Dense(16)(x)))


def build():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, 3)).astype(np.float32))
    y = jnp.asarray(np.tanh(rng.normal(size=(64, 2))).astype(np.float32))
    model = MLP()
    params = model.init(jax.random.key(0), x)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=gx.adamw(0.02, weight_decay=1e-4))

    @jax.jit
    def step(state):
        grads = jax.grad(lambda p: jnp.mean((state.apply_fn(p, x) - y) ** 2))(state.params)
        return state.apply_gradients(grads=grads)

    return state, step
"""

EQUINOX_STATIC_FUNCTION = """
import jax, jax.numpy as jnp, numpy as np
import equinox as eqx
import gradxform as gx


class Net(eqx.Module):
    l1: eqx.nn.Linear
    l2: eqx.nn.Linear
    act: object = eqx.field(static=True)  # a function in the node's static data: its repr has an address

    def __call__(self, x):
        return self.l2(self.act(self.l1(x)))


def build():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, 3)).astype(np.float32))
    y = jnp.asarray(np.tanh(rng.normal(size=(64, 2))).astype(np.float32))
    k1, k2 = jax.random.split(jax.random.key(0))
    model = Net(eqx.nn.Linear(3, 16, key=k1), eqx.nn.Linear(16, 2, key=k2), lambda v: jnp.tanh(v))
    tx = gx.adam(0.02)
    params = eqx.filter(model, eqx.is_inexact_array)

    def loss(m):
        return jnp.mean((jax.vmap(m)(x) - y) ** 2)

    @eqx.filter_jit
    def step(state):
        grads = eqx.filter_grad(loss)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        return {"params": eqx.apply_updates(state["params"], updates), "opt_state": opt_state}

    return {"params": params, "opt_state": tx.init(params)}, step
"""

_CHILD = """
import json, sys
sys.path.insert(0, {root!r})
import types
import jax, numpy as np
from gradxform import checkpoint
mod = sys.modules["gx_build"] = types.ModuleType("gx_build")
exec(compile({source!r}, "gx_build", "exec", dont_inherit=True), mod.__dict__)
template, step = mod.build()  # a fresh tree of the same structure, built in this process
restored = checkpoint.restore({path!r}, template)


def dump(tree):
    return [
        [jax.tree_util.keystr(p), str(np.asarray(x).dtype), list(np.shape(x)), np.asarray(x).tobytes().hex()]
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


print(json.dumps({{"restored": dump(restored), "next": dump(step(restored))}}))
"""


def _dump(tree):
    return [
        [jax.tree_util.keystr(p), str(np.asarray(x).dtype), list(np.shape(x)), np.asarray(x).tobytes().hex()]
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def _build(source, monkeypatch):
    """Runs `source` as the module `gx_build` (the child process does the same) and returns its `build()`."""
    mod = types.ModuleType("gx_build")
    monkeypatch.setitem(sys.modules, "gx_build", mod)
    exec(compile(source, "gx_build", "exec", dont_inherit=True), mod.__dict__)
    return mod.build


def _save_then_restore_in_a_new_process(tmp_path, monkeypatch, source, steps=5):
    state, step = _build(source, monkeypatch)()
    for _ in range(steps):  # a state that is not the initial one
        state = step(state)
    assert " at 0x" in str(jax.tree.structure(state))  # what the old check compared: an address
    path = tmp_path / "state.ckpt"
    checkpoint.save(path, state)
    child = _CHILD.format(root=ROOT, source=source, path=str(path))
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return state, step, out


def test_flax_linen_train_state_checkpoint_restores_in_a_new_process(tmp_path, monkeypatch):
    _need("flax.linen")
    state, step, out = _save_then_restore_in_a_new_process(tmp_path, monkeypatch, LINEN_TRAIN_STATE)
    assert out["restored"] == _dump(state)  # every leaf bitwise, with its key path, dtype and shape
    assert any(p == ".step" and bytes.fromhex(h) == np.int32(5).tobytes() for p, _, _, h in out["restored"])
    assert out["next"] == _dump(step(state))  # and training goes on exactly as it would have


def test_equinox_module_with_static_function_checkpoint_restores_in_a_new_process(tmp_path, monkeypatch):
    _need("equinox")
    state, step, out = _save_then_restore_in_a_new_process(tmp_path, monkeypatch, EQUINOX_STATIC_FUNCTION)
    assert out["restored"] == _dump(state)
    assert out["next"] == _dump(step(state))


def test_flax_linen_train_state_restores_with_another_optimizer_instance(tmp_path, monkeypatch):
    _need("flax.linen")
    build = _build(LINEN_TRAIN_STATE, monkeypatch)
    state, step = build()
    state = step(state)
    template, _ = build()  # a second gx.adamw(...): other functions, other addresses
    assert str(jax.tree.structure(template)) != str(jax.tree.structure(state))
    checkpoint.save(tmp_path / "s.ckpt", state)
    restored = checkpoint.restore(tmp_path / "s.ckpt", template)
    assert _dump(restored) == _dump(state)
    assert restored.tx is template.tx and restored.apply_fn == template.apply_fn  # static data from the template


# ---- equinox ----


def test_equinox_filter_recipe_with_non_array_leaves():
    eqx = _need("equinox")
    x, y = _data()

    class Net(eqx.Module):
        l1: eqx.nn.Linear
        l2: eqx.nn.Linear
        activation: object  # a function: not an array
        depth: int  # a Python int: not an array
        calls: jax.Array  # an int32 array: an array, but not trainable

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.l1 = eqx.nn.Linear(3, 16, key=k1)
            self.l2 = eqx.nn.Linear(16, 2, key=k2)
            self.activation = jax.nn.tanh
            self.depth = 2
            self.calls = jnp.zeros((), jnp.int32)

        def __call__(self, x):
            return self.l2(self.activation(self.l1(x)))

    model = Net(jax.random.key(0))
    tx = gx.adam(0.02)
    # The recipe: the optimizer sees only the float arrays (eqx.is_inexact_array drops the
    # function, the int and the int32 array; our init would refuse an int32 leaf).
    opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))

    def loss(model, x, y):
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)

    @eqx.filter_jit
    def step(model, opt_state):
        grads = eqx.filter_grad(loss)(model, x, y)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state

    first = float(loss(model, x, y))
    for _ in range(300):
        model, opt_state = step(model, opt_state)
    last = float(loss(model, x, y))
    assert first > 0.2
    assert last < 5e-3, (first, last)
    assert model.activation is jax.nn.tanh and model.depth == 2 and model.calls.dtype == jnp.int32
    with pytest.raises(TypeError, match="has dtype int32"):
        tx.init(eqx.filter(model, eqx.is_array))  # without the float filter: a clear error


# ---- orbax ----


@pytest.mark.parametrize(
    "make",
    [
        lambda: gx.adam(1e-2),
        lambda: gx.adadelta(),
        lambda: gx.chain(gx.compat.torch.NAdam(), gx.scale(0.5)),
        lambda: gx.compat.torch.SGD(0.1, momentum=0.9, dampening=0.2),
    ],
    ids=["adam", "adadelta", "torch-NAdam", "torch-SGD"],
)
def test_orbax_standard_checkpointer_round_trip(make, tmp_path):
    ocp = _need("orbax.checkpoint")
    tx = make()
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
    state = tx.init(params)
    for i in range(3):  # a state that is not the initial one
        _, state = tx.update(jax.tree.map(lambda p: jnp.sin(p + i), params), state, params)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "opt", state)
        ckptr.wait_until_finished()
        restored = ckptr.restore(tmp_path / "opt", jax.eval_shape(tx.init, params))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The restored state continues exactly as the original.
    g = jax.tree.map(jnp.cos, params)
    u1, _ = tx.update(g, state, params)
    u2, _ = tx.update(g, restored, params)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---- optax interop, both ways ----


def _run(tx, steps: int = 20):
    """20 steps in float64 (so that only a difference in the math, not float32 rounding, can show)."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        params = {"w": jnp.asarray(rng.normal(size=(4, 3))), "b": jnp.zeros(3, jnp.float64)}
        state = tx.init(params)

        @jax.jit
        def step(params, state, g):
            u, state = tx.update(g, state, params)
            return optax.apply_updates(params, u), state

        for _ in range(steps):
            g = {k: jnp.asarray(rng.normal(size=v.shape) * 3.0) for k, v in params.items()}
            params, state = step(params, state, g)
        assert params["w"].dtype == jnp.float64
        return jax.tree.map(np.asarray, params)


def _close(a, b, rtol=1e-10):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-12)


def test_optax_chain_holds_gradxform():
    ours = optax.chain(optax.clip_by_global_norm(1.0), gx.adam(1e-2), optax.add_noise(0.0, 0.5, 0))
    theirs = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2), optax.add_noise(0.0, 0.5, 0))
    _close(_run(ours), _run(theirs))


def test_gradxform_chain_holds_optax():
    ours = gx.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(), gx.scale_by_learning_rate(1e-2))
    _close(_run(ours), _run(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))))
    # and inside a ratio: optax's EMA as our numerator.
    mixed = gx.chain(
        gx.ratio(
            gx.chain(optax.ema(0.9, debias=True)), gx.chain(gx.ema_sq(0.999), gx.bias_correction(0.999), gx.sqrt())
        ),
        gx.chain(gx.add_eps(0.0), gx.scale_by_learning_rate(1e-2)),
    )
    _close(_run(mixed), _run(optax.adam(1e-2, eps=0.0)))


def test_optax_wrappers_wrap_gradxform():
    # MultiSteps (gradient accumulation) and masking, from optax, around our transforms.
    _close(_run(optax.MultiSteps(gx.sgd(0.1, momentum=0.9), 4)), _run(optax.MultiSteps(optax.sgd(0.1, 0.9), 4)))
    mask = {"w": True, "b": False}
    _close(_run(optax.masked(gx.adam(1e-2), mask)), _run(optax.masked(optax.adam(1e-2), mask)))
