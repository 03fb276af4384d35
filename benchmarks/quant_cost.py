"""Where an 8-bit Adam step's time goes: the table in docs/memory.md's "Speed" section.

Run from the repository root::

    python -m benchmarks.quant_cost

One 16.8M float32 leaf, Adam's arithmetic written out over gradxform's codes (`gradxform.numerics.quantize`:
`decode`, `encode`, `encode_codes`, blocks of 256), so that pieces can be left out: each variant one
jitted, donated step `(params, state, grads) -> (params, state)`, all timed interleaved in one process
(`benchmarks.run.race`), medians and the ratio to the same step with float32 moments:

* read back: both moments decoded, the parameters updated, the codes and scales left as they were;
* + maxima: also the new moments' block maxima (the new scales), the codes left as they were;
* + encoding: instead of the maxima, the new moments encoded with the old scales;
* whole: maxima and encoding, i.e. the 8-bit step (the library's own, `gx.adam(mu_dtype=gx.quantized(8),
  nu_dtype=gx.quantized(8))`, is timed beside it).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import gradxform as gx  # noqa: E402
from benchmarks.run import BIG, compile_step, machine, opt_step, race  # noqa: E402
from gradxform.numerics import quantize as qz  # noqa: E402

B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3
BLOCK = 256
MU, NU = qz.code_for(8, signed=True), qz.code_for(8, signed=False)


def _stored(x, code):
    return qz.encode(x, code, BLOCK)


def _with_scales(x, scales, code):
    """`x` encoded with given scales (one per block of 256)."""
    inv = 1.0 / jnp.where(scales > 0, scales, jnp.inf)
    k = qz.encode_codes(x.reshape(-1, BLOCK) * inv[:, None], code)
    return qz.Quantized(k.astype(jnp.uint8).reshape(x.shape), scales, code, BLOCK, x.shape[-1])


def _variant(maxima: bool, encoding: bool):
    def step(p, state, g):
        mq, vq, count = state
        t = (count + 1).astype(jnp.float32)
        m = B1 * qz.decode(mq) + (1 - B1) * g
        v = B2 * qz.decode(vq) + (1 - B2) * g * g
        p = p - LR * (m / (1 - B1**t)) / (jnp.sqrt(v / (1 - B2**t)) + EPS)
        if maxima and encoding:
            mq, vq = _stored(m, MU), _stored(v, NU)
        elif maxima:  # the new scales only: XLA drops the codes it would compute with them
            mq = qz.Quantized(mq.codes, _stored(m, MU).scales, MU, BLOCK, BIG)
            vq = qz.Quantized(vq.codes, _stored(v, NU).scales, NU, BLOCK, BIG)
        elif encoding:
            mq, vq = _with_scales(m, mq.scales, MU), _with_scales(v, vq.scales, NU)
        return p, (mq, vq, count + 1)

    return step


def _float32(p, state, g):
    m, v, count = state
    t = (count + 1).astype(jnp.float32)
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    return p - LR * (m / (1 - B1**t)) / (jnp.sqrt(v / (1 - B2**t)) + EPS), (m, v, count + 1)


ROWS = {
    "read back both moments, update the parameters (codes not rewritten)": (False, False),
    "... and compute the new blocks' maxima": (True, False),
    "... or instead encode the new moments with the old scales": (False, True),
    "the whole 8-bit step": (True, True),
}


def main(reps: int = 7, iters: int = 5) -> None:
    g = jax.random.normal(jax.random.key(0), (BIG,), jnp.float32) * 1e-3
    p = jnp.zeros(BIG, jnp.float32)  # every contender gets its own buffers: they are donated
    cs = [
        compile_step("float32 moments", _float32, (p, (jnp.zeros(BIG), jnp.zeros(BIG), jnp.zeros((), jnp.int32))), (g,))
    ]
    for name, (maxima, encoding) in ROWS.items():
        p = jnp.zeros(BIG, jnp.float32)
        state = (qz.zeros(p, MU, BLOCK, 0.0), qz.encode(jnp.full(BIG, 1e-6), NU, BLOCK), jnp.zeros((), jnp.int32))
        cs.append(compile_step(name, _variant(maxima, encoding), (p, state), (g,)))
    tx = gx.adam(LR, mu_dtype=gx.quantized(8), nu_dtype=gx.quantized(8))
    p = jnp.zeros(BIG, jnp.float32)
    cs.append(compile_step("gx.adam, 8-bit moments", opt_step(tx), (p, tx.init(p)), (g,)))
    race(cs, reps, iters)
    base = cs[0].ms
    print("| what the step does | ms | relative to float32 moments | kernels, B accessed / param |")
    print("|---|---|---|---|")
    for c in cs:
        print(f"| {c.label} | {c.ms:.1f} | {c.ms / base:.2f} | {c.hlo.kernels}, {c.hlo.bytes / BIG:.1f} |")
    m = machine()
    print(f"\nMeasured on {m['cpu']} ({m['cores']} cores), jax {m['jax']}; load {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
