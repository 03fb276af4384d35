"""One process of tests/test_multiprocess.py (not collected: run as a script).

    python tests/multiprocess_worker.py single OUT_DIR
    python tests/multiprocess_worker.py multi OUT_DIR PORT PROCESS_ID

`single`: the reference, one process, one device. `multi`: one of two processes joined by
`jax.distributed` on 127.0.0.1:PORT, CPU collectives over gloo, 2 CPU devices each (the caller
sets XLA_FLAGS), one global mesh of 4 devices. Both train the same least-squares model with
Adam (data parallel: batch split over the mesh, gradients all-reduced by XLA) and with
`zero1(adam)`; `multi` also saves the sharded ZeRO-1 state with orbax from both processes and
restores it. Results go to OUT_DIR/<mode>-<process id>.npz; anything that goes wrong raises.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 8
LR = 0.05


def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = (x @ rng.normal(size=(16, 4)) + 0.1).astype(np.float32)
    params = {"w": (0.1 * rng.normal(size=(16, 4))).astype(np.float32), "b": np.zeros((4,), np.float32)}
    return x, y, params


def loss(p, x, y):
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def train(tx, p, x, y):
    import gradxform as gx

    @jax.jit
    def step(p, s, x, y):
        lv, g = jax.value_and_grad(loss)(p, x, y)
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s, lv

    s = jax.jit(tx.init)(p)
    losses = []
    for _ in range(STEPS):
        p, s, lv = step(p, s, x, y)
        losses.append(lv)
    return p, s, losses


def local(x) -> np.ndarray:
    """A fully replicated array's value, read from this process's first shard."""
    assert x.is_fully_replicated, x.sharding
    return np.asarray(x.addressable_shards[0].data)


def single(out: Path) -> None:
    import gradxform as gx

    assert jax.device_count() == 1 and jax.process_count() == 1
    x, y, host = data()
    p = {k: jnp.asarray(v) for k, v in host.items()}
    p_out, _, losses = train(gx.adam(LR), p, jnp.asarray(x), jnp.asarray(y))
    results = {f"adam_{k}": np.asarray(v) for k, v in p_out.items()}
    results["adam_losses"] = np.asarray([float(v) for v in losses])
    np.savez(out / "single-0.npz", **results)


def multi(out: Path, port: int, pid: int) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        coordinator_bind_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=pid,
        initialization_timeout=60,
        heartbeat_timeout_seconds=30,
        shutdown_timeout_seconds=30,
    )
    try:
        run_multi(out, pid)
    finally:
        jax.distributed.shutdown()


def run_multi(out: Path, pid: int) -> None:
    import orbax.checkpoint as ocp
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradxform as gx

    assert jax.process_count() == 2 and jax.process_index() == pid
    assert jax.local_device_count() == 2 and jax.device_count() == 4
    mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Auto,))
    assert {d.process_index for d in mesh.devices.flat} == {0, 1}

    x, y, host = data()
    batch = NamedSharding(mesh, P("data"))  # each process holds the rows of its two devices

    def global_array(a, sharding):
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    xs, ys = global_array(x, batch), global_array(y, batch)
    assert not xs.is_fully_addressable
    rep = {k: NamedSharding(mesh, P()) for k in host}
    params = {k: global_array(v, rep[k]) for k, v in host.items()}

    results = {}
    info = {}
    for name, tx in (("dp", gx.adam(LR)), ("zero1", gx.zero1(gx.adam(LR), rep, axis="data"))):
        p_out, state, losses = train(tx, params, xs, ys)
        results.update({f"{name}_{k}": local(v) for k, v in p_out.items()})
        results[f"{name}_losses"] = np.asarray([float(local(v)) for v in losses])
        mu_w = gx.tree_get(state, "mu")["w"]
        info[f"{name}_mu_w_local_shape"] = list(mu_w.addressable_shards[0].data.shape)
        info[f"{name}_mu_w_fully_addressable"] = bool(mu_w.is_fully_addressable)
        if name == "zero1":
            zero1_state = state

    # The ZeRO-1 state, split over both processes: saved by both, restored into the same shardings.
    path = out / "ckpt" / "zero1_state"
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), zero1_state)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path, zero1_state)
        ckptr.wait_until_finished()
        restored = ckptr.restore(path, target)
    assert jax.tree.structure(restored) == jax.tree.structure(zero1_state)
    shards = 0
    for a, b in zip(jax.tree.leaves(zero1_state), jax.tree.leaves(restored)):
        assert a.dtype == b.dtype and a.shape == b.shape, (a, b)
        assert b.sharding.is_equivalent_to(a.sharding, a.ndim), (a.sharding, b.sharding)
        for sa, sb in zip(a.addressable_shards, b.addressable_shards):
            assert sa.index == sb.index and sa.device == sb.device
            va, vb = np.asarray(sa.data), np.asarray(sb.data)
            assert va.tobytes() == vb.tobytes(), "restored shard differs"
            shards += 1
    info["state_leaves"] = len(jax.tree.leaves(zero1_state))
    info["restored_shards"] = shards
    # Restored, it continues exactly as the original (one more compiled step on each).
    g = jax.jit(jax.grad(loss))(params, xs, ys)
    tx = gx.zero1(gx.adam(LR), rep, axis="data")
    step = jax.jit(tx.update)
    u1, _ = step(g, zero1_state, params)
    u2, _ = step(g, restored, params)
    for k in u1:
        assert local(u1[k]).tobytes() == local(u2[k]).tobytes(), k

    np.savez(out / f"multi-{pid}.npz", **results)
    (out / f"multi-{pid}.json").write_text(json.dumps(info))


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "single":
        single(out)
    else:
        multi(out, int(sys.argv[3]), int(sys.argv[4]))
