"""gradxform against optax, side by side in one process: step times, bandwidth, compile times, state size.

Run from the repository root::

    python benchmarks/run.py --quick                       # a short run while developing
    python benchmarks/run.py --out docs/performance.md     # the full run; also writes docs/performance.png

Every case compiles each contender with ``jit(...).lower(...).compile()``
(timed), warms it up, then runs repetitions interleaved A, B, A, B, ... so
that load from other processes hits both alike; a repetition times
``--iters`` back-to-back steps. Reported: medians over repetitions, the ratio
gradxform / optax of the medians, achieved GB/s (the bytes a step must move
at minimum, divided by its time) against the bandwidth of a jitted, donated
``x + 1`` on the same machine, and optimizer-state bytes per parameter.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gradxform as gx  # noqa: E402

BIG = 1 << 24  # 16.8M float32 parameters in one leaf
SAME_OPTIONS = dict(gx.CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else {}


# ----------------------------------------------------------------------------- timing


@dataclass
class Contender:
    """A compiled, donated step and the arrays it threads through (params, state)."""

    label: str
    compiled: Callable
    carry: tuple
    fixed: tuple
    compile_s: float
    state_bytes: float = float("nan")
    times: list = field(default_factory=list)

    def run(self, n: int) -> float:
        carry = self.carry
        t0 = time.perf_counter()
        for _ in range(n):
            carry = self.compiled(*carry, *self.fixed)
            carry = carry[:2] if len(carry) > 2 else carry
        jax.block_until_ready(carry)
        dt = (time.perf_counter() - t0) / n
        self.carry = carry
        return dt

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1e3


def compile_step(
    label: str, fn: Callable, carry: tuple, fixed: tuple, n_params: int | None = None, how: str = "plain"
) -> Contender:
    """Lowers and compiles ``fn(*carry, *fixed)`` with ``carry`` donated, timing the compile.

    ``how``: ``"gx"`` jits with ``gradxform.jit_step`` (what ``make_train_step`` uses: donation plus
    ``gradxform.CPU_COMPILER_OPTIONS`` on CPU), ``"plain"`` with ``jax.jit`` and donation, ``"same"``
    with ``jax.jit``, donation and the same compiler options as ``"gx"`` (optax given gradxform's flags).
    """
    donate = tuple(range(len(carry)))
    if how == "gx":
        jitted = gx.jit_step(fn, donate)
    elif how == "same":
        jitted = jax.jit(fn, donate_argnums=donate, compiler_options=SAME_OPTIONS or None)
    else:
        jitted = jax.jit(fn, donate_argnums=donate)
    t0 = time.perf_counter()
    compiled = jitted.lower(*carry, *fixed).compile()
    c = Contender(label, compiled, carry, fixed, time.perf_counter() - t0)
    if n_params is not None and len(carry) > 1:
        c.state_bytes = gx.state_nbytes(carry[1]) / n_params
    return c


def race(contenders: list[Contender], reps: int, iters: int) -> None:
    """Warms each contender up, then times ``reps`` rounds, interleaved, the order rotated each round."""
    for c in contenders:
        c.run(1)
    for i in range(reps):
        k = i % len(contenders)  # rotate who goes first, so no contender always follows the same one
        for c in contenders[k:] + contenders[:k]:
            c.times.append(c.run(iters))


class GradOnly(Contender):
    """Times a function of fixed arguments (nothing donated, nothing threaded)."""

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        out = None
        for _ in range(n):
            out = self.compiled(*self.fixed)
        jax.block_until_ready(out)
        return (time.perf_counter() - t0) / n


def opt_step(tx) -> Callable:
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return jax.tree.map(lambda p, u: p + u, params, updates), state

    return step


# ----------------------------------------------------------------------------- cases

ROWS: list[dict] = []


def row(case: str, a: Contender, b: Contender | None, target: str, bytes_per_param: float | None, n: int, **kw):
    r = dict(case=case, a=a, b=b, target=target, traffic=bytes_per_param, n=n, **kw)
    ROWS.append(r)
    bms = b.median_ms if b else float("nan")
    print(
        f"{case:48s} gx {a.median_ms:9.3f} ms  optax {bms:9.3f} ms  ratio {a.median_ms / bms:5.2f}  "
        f"compile {a.compile_s:6.2f} s / {b.compile_s if b else float('nan'):6.2f} s",
        flush=True,
    )


def copy_bandwidth(reps: int, iters: int) -> float:
    """GB/s of a jitted, donated ``x + 1`` over 16.8M float32 (reads 4 and writes 4 bytes an element)."""
    x = jnp.zeros(BIG, jnp.float32)
    c = compile_step("copy", lambda x: (x + 1,), (x,), ())
    c.run(1)
    for _ in range(reps):
        c.times.append(c.run(iters))
    return 8 * BIG / (statistics.median(c.times)) / 1e9


def single_leaf(reps: int, iters: int) -> None:
    key = jax.random.key(0)
    g = jax.random.normal(key, (BIG,), jnp.float32) * 1e-3
    cases = [
        ("SGD", gx.sgd(1e-3), optax.sgd(1e-3), 12, "<= 1.0"),
        ("Momentum 0.9", gx.momentum(1e-3, 0.9), optax.sgd(1e-3, momentum=0.9), 20, "<= 1.0"),
        ("RMSProp", gx.rmsprop(1e-3), optax.rmsprop(1e-3), 20, "<= 1.0"),
        ("Adam", gx.adam(1e-3), optax.adam(1e-3), 28, "<= 1.0"),
        ("Adadelta", gx.adadelta(1.0), optax.adadelta(1.0), 28, "gx <= 1.25 x gx Adam"),
    ]
    for name, gtx, otx, traffic, target in cases:
        cs = []
        for label, tx, how in (("gradxform", gtx, "gx"), ("optax", otx, "plain"), ("optax same", otx, "same")):
            p = jnp.zeros(BIG, jnp.float32)
            cs.append(compile_step(label, opt_step(tx), (p, tx.init(p)), (g,), BIG, how))
        race(cs, reps, iters)
        check = "adam<=1.25" if name == "Adadelta" else "step<=1.0"
        row(f"{name}, one leaf of 16.8M float32", cs[0], cs[1], target, traffic, BIG, same=cs[2], check=check)


def many_leaves(reps: int, iters: int, with_flatten: bool) -> None:
    n_leaves, size = 1000, 1000
    keys = jax.random.split(jax.random.key(1), n_leaves)
    params = {f"p{i:04d}": jnp.zeros(size, jnp.float32) for i in range(n_leaves)}
    grads = {f"p{i:04d}": jax.random.normal(k, (size,)) * 1e-3 for i, k in enumerate(keys)}
    n = n_leaves * size

    def tree_contender(label, tx, how):
        p = jax.tree.map(jnp.copy, params)
        return compile_step(label, opt_step(tx), (p, tx.init(p)), (grads,), n, how)

    flat_g = gx.flatten_params(grads)
    fp = gx.flatten_params(params)
    flat = compile_step("gradxform flat", opt_step(gx.adam(1e-3)), (fp, gx.adam(1e-3).init(fp)), (flat_g,), n, "gx")
    tree = tree_contender("gradxform tree", gx.adam(1e-3), "gx")
    ref = tree_contender("optax", optax.adam(1e-3), "plain")
    same = tree_contender("optax same", optax.adam(1e-3), "same")
    contenders = [flat, tree, ref, same]
    if with_flatten:
        contenders.append(tree_contender("optax.flatten", optax.flatten(optax.adam(1e-3)), "plain"))
    race(contenders, reps, iters)
    tag = "Adam, 1000 leaves x 1000 float32"
    row(
        f"{tag}: gradxform FlatParams",
        flat,
        ref,
        "<= 0.5, compile <= 1.0",
        28,
        n,
        same=same,
        check="step<=0.5,compile<=1.0",
    )
    row(f"{tag}: gradxform tree", tree, ref, "(reference)", 28, n, same=same)
    if with_flatten:
        row(f"{tag}: optax.flatten(adam) (in the gradxform column)", contenders[4], ref, "(reference)", 28, n)


def mlp_params(key, depth: int = 200, width: int = 64) -> list[dict]:
    keys = jax.random.split(key, depth)
    return [{"w": jax.random.normal(k, (width, width)) / np.sqrt(width), "b": jnp.zeros(width)} for k in keys]


def mlp_loss(params: list[dict], x: jax.Array, y: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    x = x @ params[-1]["w"] + params[-1]["b"]
    return jnp.mean((x - y) ** 2)


def mlp(reps: int, iters: int) -> None:
    kp, kx = jax.random.split(jax.random.key(2))
    params = mlp_params(kp)
    n = sum(x.size for x in jax.tree.leaves(params))
    x = jax.random.normal(kx, (32, 64))
    y = jnp.sin(x)

    def whole(tx):
        def step(params, state, x, y):
            loss, grads = jax.value_and_grad(mlp_loss)(params, x, y)
            updates, state = tx.update(grads, state, params)
            return jax.tree.map(lambda p, u: p + u, params, updates), state

        return step

    fp = gx.flatten_params(params)
    # what gx.make_train_step(lambda f, x, y: mlp_loss(f.unravel(), x, y), tx) runs, lowered by hand to time
    # the compile: its jitted function takes the leaves' offsets as arguments (FlatParams.with_offsets)
    train = gx.make_train_step(lambda f, x, y: mlp_loss(f.unravel(), x, y), gx.adam(1e-3))
    carry = (fp, gx.adam(1e-3).init(fp))
    t0 = time.perf_counter()
    compiled = train.jitted.lower(*carry, gx.flat_offsets(fp), x, y).compile()
    flat = Contender("gradxform flat", compiled, carry, (gx.flat_offsets(fp), x, y), time.perf_counter() - t0)
    flat.state_bytes = gx.state_nbytes(carry[1]) / n
    p1 = jax.tree.map(jnp.copy, params)
    tree = compile_step("gradxform tree", whole(gx.adam(1e-3)), (p1, gx.adam(1e-3).init(p1)), (x, y), n, "gx")
    p2 = jax.tree.map(jnp.copy, params)
    ref = compile_step("optax", whole(optax.adam(1e-3)), (p2, optax.adam(1e-3).init(p2)), (x, y), n)
    p3 = jax.tree.map(jnp.copy, params)
    same = compile_step("optax same", whole(optax.adam(1e-3)), (p3, optax.adam(1e-3).init(p3)), (x, y), n, "same")
    t0 = time.perf_counter()
    grad_c = jax.jit(jax.grad(mlp_loss)).lower(params, x, y).compile()
    grc = GradOnly("gradient only", grad_c, (), (params, x, y), time.perf_counter() - t0)
    race([flat, tree, ref, same, grc], reps, iters)
    tag = f"MLP 200 layers ({len(jax.tree.leaves(params))} leaves, {n / 1e3:.0f}k params, batch 32)"
    row(
        f"{tag}, step: gradxform FlatParams",
        flat,
        ref,
        "<= 0.8, compile <= 1.0",
        None,
        n,
        same=same,
        check="step<=0.8,compile<=1.0",
    )
    row(f"{tag}, step: gradxform tree", tree, ref, "(reference)", None, n, same=same)
    row(f"{tag}, gradient alone (tree)", grc, ref, "(share of optax's step)", None, n)


def bf16_moments(steps: int) -> dict:
    """State bytes per parameter and final loss of Adam with bfloat16 vs float32 moments.

    The task is tests/test_flat.py's: a 2-32-32-1 tanh MLP on 2048 points of
    sin(x0) cos(x1) + 0.1 noise, full batch. Its loss floor is the noise
    variance (0.01) and it cannot memorize the noise, so the final loss
    measures convergence (on a noiseless target both losses go to ~1e-4 and
    their relative difference says nothing).
    """
    kx, kn, kp = jax.random.split(jax.random.key(7), 3)
    x = jax.random.uniform(kx, (2048, 2), minval=-2.0, maxval=2.0)
    y = jnp.sin(x[:, :1]) * jnp.cos(x[:, 1:]) + 0.1 * jax.random.normal(kn, (2048, 1))
    sizes = [2, 32, 32, 1]
    keys = jax.random.split(kp, len(sizes) - 1)
    params0 = [
        {"w": jax.random.normal(k, (m, n)) / np.sqrt(m), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]

    def loss(params, x, y):
        h = x
        for layer in params[:-1]:
            h = jnp.tanh(h @ layer["w"] + layer["b"])
        return jnp.mean((h @ params[-1]["w"] + params[-1]["b"] - y) ** 2)

    out = {}
    for label, tx in (
        ("float32", gx.adam(1e-2)),
        ("bfloat16", gx.adam(1e-2, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)),
    ):
        params = jax.tree.map(jnp.copy, params0)
        state = tx.init(params)
        moments = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim > 0]  # without the step counters
        bpp = gx.state_bytes_per_param(moments, params)
        step = gx.make_train_step(loss, tx)
        for _ in range(steps):
            params, state, lv = step(params, state, x, y)
        out[label] = dict(bytes=bpp, loss=float(loss(params, x, y)))
    return out


# ----------------------------------------------------------------------------- report


READING = """
How to read the single-leaf rows: for SGD, Momentum and Adam, gradxform and optax compile to the same
large kernels (their optimized HLO differs only in gradxform's extra int32 step counters, a few scalar
kernels), so their ratio is 1 up to noise, in either direction from run to run. The last column is a
control for that noise: the XLA option it adds changes nothing in those three steps, so gradxform against
"optax with the same options" is two copies of the same kernels. RMSProp differs in math: gradxform's
default puts eps outside the square root (`g / (sqrt(nu) + eps)`), optax's inside. The Adam step makes
three passes over memory (40 bytes a parameter, against a 28-byte floor) in both libraries, because XLA on
CPU gives each output array its own loop. Adadelta is the case where the library's structure mattered
(`scale_by_adadelta`: three passes where the chain of blocks made five) and where the XLA option matters
(for gradxform's block: without it XLA copies a moment first, about 2x slower in a scratch run;
optax's Adadelta is not affected).
The same option costs time on a tree of 1000 small leaves (compare the
1000-leaf tree rows: optax with it is slower than optax without it, in every full run so far); FlatParams,
one leaf per dtype, does not pay it. `make_train_step(..., compiler_options={})` turns it off.
"""

USAGE = """
## How to hold parameters for the fast path (`FlatParams`)

Trees of many small leaves are slow on CPU because XLA runs at least one kernel per leaf per output of the
optimizer step, and compiles one kernel per distinct leaf shape and offset. `gradxform.flatten_params`
packs the tree into one 1-D buffer per dtype; you keep that object as your parameters and view it as
your tree inside the loss:

```python
import gradxform as gx

flat = gx.flatten_params(params)             # once, outside jit: FlatParams (a pytree of 1 buffer per dtype)
tx = gx.adam(1e-3)
state = tx.init(flat)                        # the moments are flat buffers too


def loss(flat, x, y):
    params = flat.unravel()                  # your tree again: reshaped slices of the buffers
    return model_loss(params, x, y)


step = gx.make_train_step(loss, tx)          # jit, with params and state donated
flat, state, loss_value = step(flat, state, x, y)
params = flat.unravel()                      # whenever you need the tree (checkpoints, evaluation)
```

What changes for you: the parameters you pass around are a `FlatParams`, not your tree; gradients of
a loss of `flat` arrive as a `FlatParams` (the backward pass of `unravel` is one concatenation); any
optimizer, gradxform's or optax's, sees one leaf per dtype. Elementwise optimizers (all of gradxform's
optimizers) give the tree path's result (tests/test_flat.py: rtol 1e-5 after ten steps). Transforms
that look at leaves separately (per-leaf norms, masks by leaf name) see the buffers instead: wrap only
elementwise optimizers this way.

Compile time: inside `jit`, a slice at a constant offset is a kernel of its own and XLA on CPU compiles
every distinct kernel separately (a tree's identical per-leaf kernels are compiled once and reused), so
`unravel` with the offsets baked in costs seconds of compile for hundreds of leaves. `make_train_step`
therefore passes the leaves' offsets as jit arguments (`gx.flat_offsets(flat)`, applied with
`flat.with_offsets(offsets)` inside the differentiated function): slices of same-shaped leaves are then
one kernel, compiled once, and the backward pass is still one concatenation. If you write your own jitted
step, do the same:

```python
@gx.jit_step                                  # jax.jit with params and state donated (+ CPU options)
def step(flat, state, offsets, x, y):
    grads = jax.grad(lambda f: loss(f.with_offsets(offsets), x, y))(flat)
    updates, state = tx.update(grads, state, flat)
    return gx.apply_updates(flat, updates), state

flat, state = step(flat, state, gx.flat_offsets(flat), x, y)
```

`gx.make_train_step(loss, tx)` works on plain trees too; it jits with `donate_argnums=(0, 1)`: do not
reuse the arrays you passed in. Adam with `mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16` stores 4 bytes
of moments per parameter instead of 8; the math still runs in float32.
"""


def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(
        cpu=model,
        cores=os.cpu_count(),
        python=platform.python_version(),
        jax=jax.__version__,
        jaxlib=getattr(jax.lib, "__version__", jax.__version__),
        optax=optax.__version__,
        backend=jax.default_backend(),
    )


def fmt(x: float, nd: int = 2) -> str:
    return "n/a" if x != x else f"{x:.{nd}f}"


def write_report(path: str, info: dict, copy_gbs: float, bf16: dict | None, load: tuple, args) -> None:
    lines = [
        "# Performance: gradxform beside optax",
        "",
        "Measured by `python benchmarks/run.py --out docs/performance.md` "
        f"({'--quick, ' if args.quick else ''}{args.reps} interleaved repetitions of {args.iters} steps each; "
        "medians). Every step is jitted with the parameters and optimizer state donated; the single-leaf "
        "and 1000-leaf cases are the optimizer update plus `params + updates` with fixed gradients, the MLP "
        "cases a whole training step (loss, gradient, update, apply). gradxform's steps are jitted by "
        "`gradxform.jit_step` (what `gradxform.make_train_step` uses: donation plus "
        f"`{SAME_OPTIONS}` on CPU), optax's by `jax.jit` with donation, as an optax user writes it; the last "
        "column gives optax the same XLA options, to separate what the flag does from what the library does. "
        "1000-leaf steps run 4x as many steps per repetition (1000-leaf and MLP rows: 4 x the iterations).",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, backend {info['backend']}; Python {info['python']}, "
        f"jax {info['jax']}, optax {info['optax']}.",
        f"- Load average (1, 5, 15 min) before the run: {load[0]}; after: {load[1]}. The machine was shared "
        "with other jobs, so absolute times are noisy; the ratios come from interleaved runs in one process.",
        f"- Copy bandwidth (jitted, donated `x + 1` on 16.8M float32, 8 bytes an element): **{copy_gbs:.1f} GB/s**.",
        "",
        "| case | gradxform ms | optax ms | ratio gx/optax | target | GB/s gx (% of copy) | GB/s optax "
        "| compile gx s | compile optax s | compile ratio | state B/param gx | state B/param optax "
        "| optax with gx's XLA options: ms (ratio gx/it) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    adam_ms = next((r["a"].median_ms for r in ROWS if r["case"].startswith("Adam, one leaf")), float("nan"))
    for r in ROWS:
        a, b = r["a"], r["b"]
        ratio = a.median_ms / b.median_ms if b else float("nan")
        rtxt = fmt(ratio)
        if r["case"].startswith("Adadelta"):
            rtxt += f" ({fmt(a.median_ms / adam_ms)} x gx Adam)"
        verdict = ""
        if r.get("check"):
            values = {"step": ratio, "compile": a.compile_s / b.compile_s, "adam": a.median_ms / adam_ms}
            ok = all(values[k] <= float(v) for k, v in (c.split("<=") for c in r["check"].split(",")))
            verdict = ": **met**" if ok else ": **missed**"
        s = r.get("same")
        same_txt = f"{fmt(s.median_ms, 3)} ({fmt(a.median_ms / s.median_ms)})" if s else "-"
        if r["traffic"]:
            gbs_a = r["traffic"] * r["n"] / (a.median_ms * 1e-3) / 1e9
            gbs_b = r["traffic"] * r["n"] / (b.median_ms * 1e-3) / 1e9
            bw_a = f"{gbs_a:.1f} ({100 * gbs_a / copy_gbs:.0f}%)"
            bw_b = f"{gbs_b:.1f}"
        else:
            bw_a = bw_b = "-"
        lines.append(
            f"| {r['case']} | {fmt(a.median_ms, 3)} | {fmt(b.median_ms, 3)} | {rtxt} | {r['target']}{verdict} "
            f"| {bw_a} | "
            f"{bw_b} | {fmt(a.compile_s)} | {fmt(b.compile_s)} | {fmt(a.compile_s / b.compile_s)} | "
            f"{fmt(a.state_bytes)} | {fmt(b.state_bytes)} | {same_txt} |"
        )
    lines += [
        "",
        "GB/s counts the minimum traffic of the step: SGD 12 bytes a parameter (read parameter and gradient, "
        "write parameter), Momentum and RMSProp 20, Adam and Adadelta 28. State bytes include the int32 step "
        "counters.",
        "",
        READING.strip(),
    ]
    if bf16:
        f32, b16 = bf16["float32"], bf16["bfloat16"]
        rel = abs(b16["loss"] - f32["loss"]) / f32["loss"]
        lines += [
            "",
            f"Adam with bfloat16 moments (`adam(1e-2, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)`), small MLP "
            "2-32-32-1 on 2048 points of sin(x0) cos(x1) + 0.1 noise (loss floor 0.01), "
            f"{args.bf16_steps} full-batch steps: moments take "
            f"**{b16['bytes']:.1f} bytes per parameter** (float32 moments: {f32['bytes']:.1f}); final loss "
            f"{b16['loss']:.5f} vs {f32['loss']:.5f} with float32 moments ({100 * rel:.2f}% apart; target 2%).",
        ]
    lines += ["", "![ratios gradxform / optax](performance.png)", "", USAGE.strip(), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}")


def plot(path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in ROWS if r["b"] is not None]
    short = [
        (", one leaf of 16.8M float32", ", 1 leaf of 16.8M"),
        ("Adam, 1000 leaves x 1000 float32: ", "Adam 1000x1000 leaves, "),
        ("MLP 200 layers (400 leaves, 832k params, batch 32), ", "MLP 200 layers, "),
        (" (in the gradxform column)", ""),
    ]
    names = []
    for r in rows:
        name = r["case"]
        for a, b in short:
            name = name.replace(a, b)
        names.append(name)
    step = [r["a"].median_ms / r["b"].median_ms for r in rows]
    comp = [r["a"].compile_s / r["b"].compile_s for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, step, 0.4, label="step time")
    ax.barh(y + 0.2, comp, 0.4, label="compile time")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("gradxform / optax (lower is faster; log scale)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions, no optax.flatten case")
    ap.add_argument("--out", default=None, help="markdown file to write (a PNG is written beside it)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--only", default="copy,single,many,mlp,bf16")
    args = ap.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 9)
    args.iters = args.iters or (2 if args.quick else 5)
    args.bf16_steps = 300 if args.quick else 1500
    only = set(args.only.split(","))
    load0 = os.getloadavg()
    info = machine()
    print(info, "load", load0, flush=True)
    copy_gbs = copy_bandwidth(args.reps, args.iters) if "copy" in only else float("nan")
    print(f"copy bandwidth {copy_gbs:.1f} GB/s", flush=True)
    if "single" in only:
        single_leaf(args.reps, args.iters)
    if "many" in only:
        many_leaves(args.reps, 4 * args.iters, with_flatten=not args.quick)
    if "mlp" in only:
        mlp(args.reps, 4 * args.iters)
    bf16 = bf16_moments(args.bf16_steps) if "bf16" in only else None
    if bf16:
        print("bf16 moments", bf16, flush=True)
    load1 = os.getloadavg()
    if args.out:
        fl = lambda t: ", ".join(f"{v:.1f}" for v in t)  # noqa: E731
        write_report(args.out, info, copy_gbs, bf16, (fl(load0), fl(load1)), args)
        plot(os.path.splitext(args.out)[0] + ".png")


if __name__ == "__main__":
    main()
