"""Sharding tests on 8 simulated CPU devices. Not collected directly: tests/test_sharding.py runs this
file in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8, so the rest of the suite
keeps its single device.

State leaves are matched to parameters by their key path (a state leaf whose path ends in a parameter's
name belongs to that parameter), independently of gradxform.sharding's own matching.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform.compat import torch as gxt
from gradxform.distributed import init_sharded, state_sharding, zero1, zero1_sharding

SHAPES = {"w": (32, 16), "b": (16,), "v": (6,), "s": ()}
# Tensor/FSDP-style: each parameter sharded its own way, some replicated.
SPECS = {"w": P("data", "model"), "b": P("model"), "v": P(), "s": P()}
# Data parallel (replicated over 'data'), model-sharded where it applies: what ZeRO-1 starts from.
DP_SPECS = {"w": P(None, "model"), "b": P("model"), "v": P(), "s": P()}

OPTIMIZERS = {
    "sgd-momentum": lambda: gx.sgd(0.1, momentum=0.9),
    "adam": lambda: gx.adam(1e-2),
    "adamw": lambda: gx.adamw(1e-2, weight_decay=0.1),
    "rmsprop-centered": lambda: gx.rmsprop(1e-2, centered=True, momentum=0.5),
    "adagrad": lambda: gx.adagrad(0.1),
    "adadelta": lambda: gx.adadelta(),
    "torch-NAdam": lambda: gxt.NAdam(weight_decay=0.01),
    "torch-SGD": lambda: gxt.SGD(0.1, momentum=0.9, dampening=0.1),
}
MODES = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}
COLLECTIVE = re.compile(r"\b(all-gather|all-reduce|reduce-scatter|collective-permute|all-to-all)(-start)?\(")


@pytest.fixture(autouse=True)
def _eight_devices():
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


def make(mode: str, specs: dict, seed: int = 0):
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(MODES[mode],) * 2)
    rng = np.random.default_rng(seed)
    host = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    shard = {k: NamedSharding(mesh, specs[k]) for k in SHAPES}
    params = {k: jax.device_put(host[k], shard[k]) for k in SHAPES}
    grads = [{k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(5)]
    return mesh, host, shard, params, grads


def param_leaves(state):
    """(param name, leaf) for every state leaf whose key path ends in a parameter name; asserts the rest are scalars."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        last = path[-1] if path else None
        if isinstance(last, jax.tree_util.DictKey) and last.key in SHAPES:
            assert leaf.shape == SHAPES[last.key], (path, leaf.shape)
            out.append((last.key, leaf))
        else:
            assert leaf.ndim == 0, f"non-parameter state leaf {jax.tree_util.keystr(path)} is not a scalar"
            if hasattr(leaf, "sharding"):
                assert leaf.sharding.is_fully_replicated, jax.tree_util.keystr(path)
    assert out
    return out


def assert_sharded_like(state, shard):
    for name, leaf in param_leaves(state):
        s = leaf.sharding
        assert s.is_equivalent_to(shard[name], leaf.ndim), f"{name}: state {s} vs param {shard[name]}"


def collectives(compiled_text: str) -> list[str]:
    return [line.strip() for line in compiled_text.splitlines() if COLLECTIVE.search(line)]


def mesh_ctx(mesh, mode):
    import contextlib

    return jax.set_mesh(mesh) if mode == "explicit" else contextlib.nullcontext()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_state_sharded_like_params_and_update_has_no_collectives(mode, opt):
    mesh, host, shard, params, grads = make(mode, SPECS)
    tx = OPTIMIZERS[opt]()
    with mesh_ctx(mesh, mode):
        # 1. eager init on sharded arrays.
        assert_sharded_like(tx.init(params), shard)
        # 2. jit with out_shardings from state_sharding, on arrays and on bare ShapeDtypeStructs.
        assert_sharded_like(init_sharded(tx, params), shard)
        shapes = {k: jax.ShapeDtypeStruct(SHAPES[k], jnp.float32, sharding=shard[k]) for k in SHAPES}
        state = init_sharded(tx, shapes)
        assert_sharded_like(state, shard)
        out_sh = state_sharding(tx, shapes)
        assert jax.tree.structure(out_sh) == jax.tree.structure(state)
        # 3. the update keeps them, and its compiled HLO has no communication at all.
        step = jax.jit(tx.update)
        g0 = {k: jax.device_put(grads[0][k], shard[k]) for k in SHAPES}
        hlo = step.lower(g0, state, params).compile().as_text()
        assert collectives(hlo) == [], collectives(hlo)
        p = params
        for g in grads:
            u, state = step({k: jax.device_put(g[k], shard[k]) for k in SHAPES}, state, p)
            p = gx.apply_updates(p, u)
        assert_sharded_like(state, shard)
        assert_sharded_like(u, shard)
    # 4. parity with the single-device run.
    ref_p = {k: jnp.asarray(v) for k, v in host.items()}
    ref_s = tx.init(ref_p)
    for g in grads:
        u, ref_s = tx.update({k: jnp.asarray(v) for k, v in g.items()}, ref_s, ref_p)
        ref_p = gx.apply_updates(ref_p, u)
    for k in SHAPES:
        np.testing.assert_allclose(np.asarray(p[k]), np.asarray(ref_p[k]), rtol=1e-6, atol=1e-7)


def test_zero1_sharding_rule():
    mesh, _, shard, _, _ = make("auto", DP_SPECS)
    z = zero1_sharding(shard, {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in SHAPES.items()}, "data")
    assert z["w"].spec == P("data", "model")  # first free dim, 32 % 4 == 0
    assert z["b"].spec == P(("model", "data"))  # only dim already on 'model': 16 % (2*4) == 0
    assert z["v"].spec == P()  # 6 % 4 != 0: stays replicated (small)
    assert z["s"].spec == P()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opt", ["adam", "adamw", "torch-NAdam", "rmsprop-centered"])
def test_zero1_splits_moments_gathers_only_updates_and_matches(mode, opt):
    mesh, host, shard, params, grads = make(mode, DP_SPECS)
    tx = zero1(OPTIMIZERS[opt](), shard, axis="data")
    split = zero1_sharding(shard, params, "data")
    with mesh_ctx(mesh, mode):
        state = jax.jit(tx.init)(params)
        assert_sharded_like(state, split)
        assert_sharded_like(init_sharded(OPTIMIZERS[opt](), params, zero1_axis="data"), split)
        # Each device holds 1/4 ('data') of w's and b's moments, on top of the 1/2 from 'model'.
        for name, leaf in param_leaves(state):
            local = leaf.addressable_shards[0].data.shape
            full = np.prod(SHAPES[name], dtype=int)
            want = {"w": full // 8, "b": full // 8, "v": full, "s": 1}[name]
            assert np.prod(local, dtype=int) == want, (name, local)
        step = jax.jit(tx.update)
        g0 = {k: jax.device_put(grads[0][k], shard[k]) for k in SHAPES}
        hlo = step.lower(g0, state, params).compile().as_text()
        coll = collectives(hlo)
        # Only all-gathers, and only of the outgoing updates: their elements sum to the local
        # (model-sharded) sizes of the split parameters, w and b. A gathered moment would add more.
        assert all("all-gather" in c for c in coll), coll
        gathered = 0
        for c in coll:
            result = c.split("=", 1)[1].split("all-gather", 1)[0]
            for dims in re.findall(r"f32\[([\d,]*)\]", result):
                gathered += int(np.prod([int(d) for d in dims.split(",") if d], dtype=int))
        expected = sum(int(np.prod(shard[k].shard_shape(SHAPES[k]), dtype=int)) for k in ("w", "b"))
        assert gathered == expected, (gathered, expected, coll)
        p = params
        for g in grads:
            u, state = step({k: jax.device_put(g[k], shard[k]) for k in SHAPES}, state, p)
            p = gx.apply_updates(p, u)
        assert_sharded_like(state, split)
        assert_sharded_like(u, shard)  # updates come back in the parameters' sharding
    inner = OPTIMIZERS[opt]()
    ref_p = {k: jnp.asarray(v) for k, v in host.items()}
    ref_s = inner.init(ref_p)
    for g in grads:
        u, ref_s = inner.update({k: jnp.asarray(v) for k, v in g.items()}, ref_s, ref_p)
        ref_p = gx.apply_updates(ref_p, u)
    for k in SHAPES:
        np.testing.assert_allclose(np.asarray(p[k]), np.asarray(ref_p[k]), rtol=1e-6, atol=1e-7)


def test_zero1_data_parallel_training_matches_single_device():
    """A full step: batch split over 'data', gradients all-reduced by jit, ZeRO-1 Adam; 20 steps."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = (x @ rng.normal(size=(16, 4)) + 0.1).astype(np.float32)
    host = {"w": np.zeros((16, 4), np.float32), "b": np.zeros((4,), np.float32)}
    rep = {k: NamedSharding(mesh, P()) for k in host}

    def loss(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    def train(tx, p, xs, ys, **jit_kw):
        @jax.jit
        def step(p, s, x, y):
            lv, g = jax.value_and_grad(loss)(p, x, y)
            u, s = tx.update(g, s, p)
            return gx.apply_updates(p, u), s, lv

        s = jax.jit(tx.init)(p)
        losses = []
        for _ in range(20):
            p, s, lv = step(p, s, xs, ys)
            losses.append(float(lv))
        return p, s, losses

    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    ys = jax.device_put(y, NamedSharding(mesh, P("data")))
    params = {k: jax.device_put(v, rep[k]) for k, v in host.items()}
    p, s, losses = train(zero1(gx.adam(0.05), rep), params, xs, ys)
    mu_w = s[0].numerator[0].mu["w"]
    assert mu_w.addressable_shards[0].data.shape == (2, 4)  # 16 rows over 8 devices
    ref_p, _, ref_losses = train(gx.adam(0.05), {k: jnp.asarray(v) for k, v in host.items()}, x, y)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for k in host:
        np.testing.assert_allclose(np.asarray(p[k]), np.asarray(ref_p[k]), rtol=1e-5, atol=1e-6)
    assert losses[-1] < 0.5 * losses[0]


def test_errors_name_what_to_do():
    mesh, host, shard, params, _ = make("auto", DP_SPECS)
    with pytest.raises(ValueError, match="axis='batch' is not a mesh axis"):
        zero1(gx.adam(1e-3), shard, axis="batch")
    with pytest.raises(ValueError, match="has no sharding; pass param_sharding="):
        state_sharding(gx.adam(1e-3), {k: np.asarray(v) for k, v in host.items()})
    with pytest.raises(TypeError, match="expected jax.sharding.NamedSharding"):
        state_sharding(gx.adam(1e-3), params, {k: jax.sharding.SingleDeviceSharding(jax.devices()[0]) for k in SHAPES})
