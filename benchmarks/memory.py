"""Saving memory: Adam's moments in float32, bfloat16, 8 bits and 4 bits, and Adafactor, side by side.

Run from the repository root::

    python -m benchmarks.memory                        # print the table
    python -m benchmarks.memory --out docs/memory.md   # also write it into the page, between its markers

Each row is one way to store the optimizer state:

* bytes per parameter: `gradxform.state_bytes_per_param` of the real state on a 141.5k-parameter MLP
  (128-256-256-160-10), scales and step count included;
* quality: scikit-learn's digits (MLP 64-256-256-10, AdamW, 600 steps of batch 128, held-out accuracy
  and loss) and a noisy 2-D regression (2048 points, loss floor 0.01, Adam, 2000 full-batch steps, final
  loss), the problems of `tests/quant_problems.py`, each trajectory one compiled `lax.scan`;
* speed: one donated, jitted step `update + apply` on a 16.8M float32 leaf, compiled both with
  `jax.jit` and with `gx.jit_step` (what `gx.make_train_step` uses: `gx.CPU_COMPILER_OPTIONS` on CPU), all
  steps timed interleaved in one process (the order rotated each round), medians and the ratio to float32
  moments compiled the same way; beside them, the kernels XLA compiled the `jax.jit` step to and the bytes
  they access (`cost_analysis`).

Adafactor keeps no first moment by default and factors the second into row and column statistics on
matrices; on the single 16.8M vector of the speed row it keeps a full (unfactored) second moment.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import gradxform as gx  # noqa: E402
from benchmarks.run import BIG, compile_step, machine, opt_step, race, wait_for_quiet  # noqa: E402
from tests import quant_problems as qp  # noqa: E402

BEGIN = "<!-- memory-table: begin (python -m benchmarks.memory --out docs/memory.md) -->"
END = "<!-- memory-table: end -->"

ROWS = {
    "float32 moments": dict(storage=None),
    "bfloat16 moments": dict(storage=jnp.bfloat16),
    "8-bit moments": dict(storage=gx.quantized(8)),
    "4-bit moments": dict(storage=gx.quantized(4)),
    "Adafactor": dict(adafactor=True),
}


def adam_like(row: dict, learning_rate: float, *, decoupled: bool) -> gx.GradientTransformation:
    if row.get("adafactor"):
        return gx.adafactor(learning_rate)
    s = row["storage"]
    if decoupled:
        return gx.adamw(learning_rate, weight_decay=1e-4, mu_dtype=s, nu_dtype=s)
    return gx.adam(learning_rate, mu_dtype=s, nu_dtype=s)


def quality() -> dict[str, dict]:
    out = {}
    params = qp.mlp_params()
    for name, row in ROWS.items():
        r = {"bytes": gx.state_bytes_per_param(adam_like(row, 1e-3, decoupled=True).init(params), params)}
        if row.get("adafactor"):
            d = qp.digits(gx.adafactor(1e-2, weight_decay_rate=1e-4))
            r["regression"] = qp.regression(gx.adafactor(1e-2))
        else:
            d = qp.digits(qp.digits_optimizer(row["storage"]))
            r["regression"] = qp.regression(qp.regression_optimizer(row["storage"]))
        r["accuracy"], r["loss"] = d["accuracy"], d["loss"]
        print(name, r, flush=True)
        out[name] = r
    return out


def speed(reps: int, iters: int) -> dict[str, object]:
    """Each row's step compiled twice, as an optax user jits it (`jax.jit`, donated) and as
    `gx.make_train_step` does (`gx.jit_step`: donated, with `gx.CPU_COMPILER_OPTIONS` on CPU), all timed
    interleaved in one race."""
    g = jax.random.normal(jax.random.key(0), (BIG,), jnp.float32) * 1e-3
    cs = []
    for name, row in ROWS.items():
        tx = adam_like(row, 1e-3, decoupled=False)
        for how in ("plain", "gx"):
            p = jnp.zeros(BIG, jnp.float32)
            cs.append(compile_step(f"{name}|{how}", opt_step(tx), (p, tx.init(p)), (g,), how=how))
    race(cs, reps, iters)
    return {c.label: c for c in cs}


def table(q: dict, s: dict) -> str:
    base_q = q["float32 moments"]
    base = {how: s[f"float32 moments|{how}"] for how in ("plain", "gx")}
    lines = [
        # short headers, so the seven columns fit the page; the text above the table says what each holds
        "| state | B / param | digits acc. % | digits loss | regression loss | step ms: jit, jit_step "
        "| kernels, B accessed / param |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ROWS:
        r, c, cg = q[name], s[f"{name}|plain"], s[f"{name}|gx"]
        lines.append(
            f"| {name} | {r['bytes']:.3f} | {r['accuracy']:.2f} ({r['accuracy'] - base_q['accuracy']:+.2f}) "
            f"| {r['loss']:.4f} ({r['loss'] / base_q['loss']:.3f}) "
            f"| {r['regression']:.5f} ({r['regression'] / base_q['regression']:.3f}) "
            f"| {c.ms:.1f} ({c.ms / base['plain'].ms:.2f}), {cg.ms:.1f} ({cg.ms / base['gx'].ms:.2f}) "
            f"| {c.hlo.kernels}, {c.hlo.bytes / BIG:.1f} |"
        )
    m = machine()
    lines += [
        "",
        f"Measured on {m['cpu']} ({m['cores']} cores), jax {m['jax']}; 1-minute load "
        f"{os.getloadavg()[0]:.2f} at the end of the run.",
    ]
    return "\n".join(lines)


def write(path: str, text: str) -> None:
    page = open(path).read()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"memory: {path} has no table markers ({BEGIN} ... {END}).")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n\n" + text + "\n\n" + END + tail)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="markdown page to write the table into (between its markers)")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--max-load", type=float, default=None, help="wait until the 1-minute load is below this")
    args = ap.parse_args(argv)
    q = quality()
    if args.max_load is not None:
        wait_for_quiet(args.max_load, 600.0)
    s = speed(args.reps, args.iters)
    text = table(q, s)
    print(text)
    if args.out:
        write(args.out, text)


if __name__ == "__main__":
    main()
