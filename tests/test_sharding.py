"""Runs tests/sharding_cases.py on 8 simulated CPU devices, in a subprocess so this process keeps one device.

The cases check the sharding of every state leaf (eager init, jit init with out_shardings on arrays
and on ShapeDtypeStructs, after updates), that the compiled update has no collective at all (and,
under ZeRO-1, all-gathers only the outgoing updates), and parity with the single-device run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sharding_cases_on_eight_cpu_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
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
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    m = re.search(r"(\d+) passed", out)
    assert m and int(m.group(1)) >= 27, out[-3000:]
    assert not re.search(r"\d+ (failed|skipped|error)", out), out[-3000:]
