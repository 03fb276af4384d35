"""Runs tests/sharding_cases.py on 8 simulated CPU devices, in a subprocess so this process keeps one device.

The cases run every registry entry: each moment sharded like its parameter under plain
`jax.jit(tx.init)` (Auto and Explicit meshes, alone and inside masked, partition and zero1), under
eager init and `init_sharded`, and after compiled updates; no collective in the compiled update (under
ZeRO-1, all-gathers of the outgoing updates only; entries that are not elementwise also all-reduce their
scalar norms and sums); parity with one device. And that the per-parameter
marks, not shapes, decide which state leaf belongs to which parameter.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import gradxform as gx

ROOT = Path(__file__).resolve().parent.parent


def test_sharding_cases_on_eight_cpu_devices():
    env = dict(os.environ)
    # Eight simulated devices, each without its own pool of Eigen threads: on a 2-core machine those
    # threads (8 devices x cores) oversubscribe the CPU and nearly double the wall time.
    flags = "--xla_force_host_platform_device_count=8 --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "tests" / "sharding_cases.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    m = re.search(r"(\d+) passed", out)
    # Five cases per registry entry at least (two meshes, alone and inside the wrappers), plus the rest.
    assert m and int(m.group(1)) >= 5 * len(gx.registry.entries()), out[-3000:]
    assert not re.search(r"\d+ (failed|skipped|error)", out), out[-3000:]
