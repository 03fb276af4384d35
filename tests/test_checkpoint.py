"""Checkpoints: exact round trips, bitwise resume, and faults (killed write, truncation, bit flips) lose nothing."""

import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import checkpoint
from gradxform.io.checkpoint import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _params():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {"w": jax.random.normal(k1, (3, 4)), "b": jax.random.normal(k2, (4,)), "empty": jnp.zeros((0, 3))}


def _grad(p, i):
    return jax.tree.map(lambda x: jnp.sin(x * (i + 1)) + 0.01 * i, p)


def _assert_bitwise(a, b):
    la, da = jax.tree.flatten(a)
    lb, db = jax.tree.flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_round_trip_is_exact_for_every_dtype(tmp_path):
    tree = {
        "bf16": jnp.array([1.5, -2.25, 3e-3], jnp.bfloat16),
        "c64": jnp.array([1 + 2j, -0.5j], jnp.complex64),
        "f32": jnp.array([[np.pi, -0.0, np.inf]], jnp.float32),
        "count": jnp.array(7, jnp.int32),
        "flag": jnp.array(True),
        "none": None,
        "empty": jnp.zeros((2, 0), jnp.float16),
        "nested": (jnp.arange(3, dtype=jnp.uint8), [jnp.array(-1, jnp.int8)]),
    }
    path = tmp_path / "t.ckpt"
    checkpoint.save(path, tree)
    _assert_bitwise(checkpoint.restore(path, tree), tree)
    # an abstract template (no arrays allocated) works too
    _assert_bitwise(checkpoint.restore(path, jax.eval_shape(lambda: tree)), tree)


def test_round_trip_float64_under_x64(tmp_path):
    with jax.enable_x64(True):
        tree = {"x": jnp.array([1 / 3, 1e-300], jnp.float64), "c": jnp.array([1j / 3], jnp.complex128)}
        checkpoint.save(tmp_path / "x64.ckpt", tree)
        _assert_bitwise(checkpoint.restore(tmp_path / "x64.ckpt", tree), tree)


@pytest.mark.parametrize(
    "make", [lambda: gx.adam(1e-2, mu_dtype=jnp.bfloat16), lambda: gx.skip_nonfinite(gx.accumulate(gx.nadam(1e-2), 2))]
)
def test_resume_is_bitwise_identical_to_uninterrupted_run(tmp_path, make):
    tx = make()
    update = jax.jit(tx.update)
    p0 = _params()

    def run(p, s, start, stop):
        traj = []
        for i in range(start, stop):
            u, s = update(_grad(p, i), s, p)
            p = gx.apply_updates(p, u)
            traj.append(p)
        return p, s, traj

    _, s_full, traj_full = run(p0, tx.init(p0), 0, 10)
    p5, s5, _ = run(p0, tx.init(p0), 0, 5)
    path = tmp_path / "run.ckpt"
    checkpoint.save(path, {"params": p5, "opt_state": s5})
    del p5, s5
    template = jax.eval_shape(lambda: {"params": p0, "opt_state": tx.init(p0)})
    restored = checkpoint.restore(path, template)
    _, s_resumed, traj_resumed = run(restored["params"], restored["opt_state"], 5, 10)
    for a, b in zip(traj_full[5:], traj_resumed):
        _assert_bitwise(a, b)
    _assert_bitwise(s_full, s_resumed)


def test_write_that_raises_halfway_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "state.ckpt"
    old = {"x": jnp.arange(1000.0)}
    checkpoint.save(path, old)
    before = path.read_bytes()

    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, blob):
            self.f.write(blob[: len(blob) // 2])
            raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(path, {"x": jnp.zeros(1000)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["state.ckpt"]  # the partial temp file was removed
    _assert_bitwise(checkpoint.restore(path, old), old)


def test_writer_process_killed_mid_write_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "state.ckpt"
    old = {"x": jnp.arange(50_000.0), "count": jnp.array(3, jnp.int32)}
    checkpoint.save(path, old)
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {ROOT!r})
        import jax.numpy as jnp
        from gradxform import checkpoint
        real_fdopen = os.fdopen
        class Stall:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *a): self.f.close()
            def write(self, blob):
                self.f.write(blob[: len(blob) // 2]); self.f.flush(); os.fsync(self.f.fileno())
                print("HALF", flush=True)
                time.sleep(120)
        checkpoint.os.fdopen = lambda fd, mode: Stall(real_fdopen(fd, mode))
        checkpoint.save({str(path)!r}, {{"x": jnp.zeros(50_000), "count": jnp.array(4, jnp.int32)}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HALF"
        temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert len(temps) == 1 and 0 < os.path.getsize(tmp_path / temps[0]) < len(before)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    _assert_bitwise(checkpoint.restore(path, old), old)
    # the half-written temp file is never mistaken for a checkpoint
    with pytest.raises(CheckpointError):
        checkpoint.restore(tmp_path / temps[0], old)


def _small_file(tmp_path):
    tree = {"m": jnp.array([1.0, 2.0, 3.0]), "c": jnp.array(5, jnp.int32), "h": jnp.array([0.5], jnp.bfloat16)}
    path = tmp_path / "s.ckpt"
    checkpoint.save(path, tree)
    return tree, path, path.read_bytes()


def test_every_truncation_raises(tmp_path):
    tree, path, blob = _small_file(tmp_path)
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        with pytest.raises(CheckpointError, match="truncated|too short|corrupted"):
            checkpoint.restore(path, tree)
    path.write_bytes(blob + b"\0")
    with pytest.raises(CheckpointError, match="data section is"):
        checkpoint.restore(path, tree)


def test_every_single_bit_flip_raises(tmp_path):
    tree, path, blob = _small_file(tmp_path)
    flips = 0
    for i in range(len(blob)):
        for bit in (0, 3, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            path.write_bytes(bytes(bad))
            with pytest.raises(CheckpointError):
                checkpoint.restore(path, tree)
            flips += 1
    assert flips == 3 * len(blob)
    path.write_bytes(blob)
    _assert_bitwise(checkpoint.restore(path, tree), tree)
