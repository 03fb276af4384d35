"""Two processes, one mesh: `jax.distributed` on 127.0.0.1, gloo CPU collectives, 2 CPU devices each.

tests/multiprocess_worker.py runs in two processes joined into one 4-device mesh, and once more on its
own (one process, one device) for the reference. Data-parallel Adam (the batch split over the mesh,
gradients all-reduced across the processes) and `zero1(adam)` (its moments split over both processes)
must equal the one-process run to 1e-6, and an orbax checkpoint of the sharded ZeRO-1 state, saved by
both processes, must restore bitwise into the same shardings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "multiprocess_worker.py"
TIMEOUT_S = 180  # all three processes together; a worker's own distributed timeouts are shorter
ATTEMPTS = 2  # a fresh port if the coordinator's was taken between choosing and binding it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(devices: int | None) -> dict:
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    if devices is not None:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    env["JAX_PLATFORMS"] = "cpu"
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"  # the coordinator is on loopback, never via a proxy
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def run_workers(out: Path) -> tuple[dict, str]:
    """Starts the reference and the two processes, waits for all (or the first failure), always reaps them."""
    port = free_port()
    jobs = {
        "single": (["single", str(out)], worker_env(None)),
        "multi-0": (["multi", str(out), str(port), "0"], worker_env(2)),
        "multi-1": (["multi", str(out), str(port), "1"], worker_env(2)),
    }
    procs, logs = {}, {}
    try:
        for name, (args, env) in jobs.items():
            logs[name] = open(out / f"{name}.log", "w")  # closed in the finally below
            procs[name] = subprocess.Popen(
                [sys.executable, str(WORKER), *args],
                cwd=ROOT,
                env=env,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that it can be ended with its children
            )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs.values()]
            if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.2)
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for f in logs.values():
            f.close()
    codes = {name: p.returncode for name, p in procs.items()}
    text = "\n".join(
        f"--- {name} (exit {codes[name]}) ---\n{(out / f'{name}.log').read_text()[-4000:]}" for name in jobs
    )
    return codes, text


@pytest.mark.skipif(importlib.util.find_spec("orbax") is None, reason="needs orbax-checkpoint (the ecosystem extra)")
def test_two_processes_match_one_and_checkpoint_restores_bitwise(tmp_path):
    for attempt in range(ATTEMPTS):
        out = tmp_path / f"attempt{attempt}"
        out.mkdir()
        codes, logs = run_workers(out)
        if all(c == 0 for c in codes.values()) or "already in use" not in logs:
            break
    assert all(c == 0 for c in codes.values()), logs

    ref = np.load(out / "single-0.npz")
    runs = [np.load(out / f"multi-{pid}.npz") for pid in (0, 1)]
    for pid in (0, 1):
        info = json.loads((out / f"multi-{pid}.json").read_text())
        # ZeRO-1 split w's moments over the 4 devices of both processes: 16 rows, 4 per device.
        assert info["zero1_mu_w_local_shape"] == [4, 4] and not info["zero1_mu_w_fully_addressable"], info
        assert info["dp_mu_w_local_shape"] == [16, 4], info
        # Every leaf of the state (the count, mu and nu of w and b) restored on both local devices.
        assert info["state_leaves"] == 5 and info["restored_shards"] == 2 * info["state_leaves"], info
    for key in ("w", "b", "losses"):
        # Both processes hold the same replicated result.
        np.testing.assert_array_equal(runs[0][f"dp_{key}"], runs[1][f"dp_{key}"])
        np.testing.assert_array_equal(runs[0][f"zero1_{key}"], runs[1][f"zero1_{key}"])
        for name in ("dp", "zero1"):
            # Not bitwise: the gradient's mean is summed in another order across 4 devices than on one.
            np.testing.assert_allclose(runs[0][f"{name}_{key}"], ref[f"adam_{key}"], rtol=1e-6, atol=1e-6)
    assert ref["adam_losses"][-1] < 0.7 * ref["adam_losses"][0]
