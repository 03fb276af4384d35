"""gradxform against optax, side by side in one process: step times, memory traffic, compile times, state size.

Run from the repository root::

    python benchmarks/run.py --quick                       # a short run while developing (under a minute)
    python benchmarks/run.py --out docs/performance.md     # the full run; also writes docs/performance.png

Every case compiles each contender with ``jit(...).lower(...).compile()``
(timed), warms it up, then runs repetitions interleaved A, B, A, B, ... (the
order rotated each round) so that load from other processes hits all alike;
a repetition times ``--iters`` back-to-back steps. Reported: medians over
repetitions and the ratio gradxform / optax of the medians. From each compiled
step the script also reads what XLA made of it: the kernels of its entry
computation (fusions, copies), and the bytes they access (XLA's
``compiled.cost_analysis()["bytes accessed"]``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import resource
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
SMALL_SHAPES = ((256, 256), (256,), ())  # the 3-leaf tree: a matrix, a vector, a scalar
GX_OPTIONS = dict(gx.CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else {}


# ----------------------------------------------------------------------------- compiled steps

_NOT_KERNELS = {"parameter", "tuple", "get-tuple-element", "constant", "bitcast"}
_INSTR = re.compile(r"^\s*(?:ROOT )?%?(\S+) = (\w+)\[([\d,]*)\]\S* ([\w-]+)\(")


@dataclass
class Hlo:
    """What XLA compiled a step to: its kernels and the bytes they access."""

    kernels: int  # instructions of the entry computation that run (fusions, copies, ...)
    big: int  # those over at least 2**20 elements (the passes over a large leaf)
    scalars: int  # those computing a scalar (step counts, bias corrections, scalar leaves)
    copies: int
    bytes: float  # XLA's cost analysis: bytes accessed by the whole step
    entry: list = field(default_factory=list)  # "name = op(operands)" of each kernel, for the report

    @staticmethod
    def of(compiled) -> Hlo:
        text = compiled.as_text()
        entry = text[text.index("\nENTRY") :].splitlines()[1:]
        kernels, big, scalars, copies, lines = 0, 0, 0, 0, []
        for line in entry:
            m = _INSTR.match(line)
            if not m or m.group(4) in _NOT_KERNELS:
                continue
            kernels += 1
            size = math.prod(int(d) for d in m.group(3).split(",") if d)
            big += size >= 1 << 20
            scalars += not m.group(3)
            copies += m.group(4) == "copy"
            args = re.search(r"\(([^)]*)\)", line[m.end(4) :]).group(1)
            lines.append(f"{m.group(1)} = {m.group(4)}({args.replace('%', '')})")
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return Hlo(kernels, big, scalars, copies, float(cost.get("bytes accessed", float("nan"))), lines)


@dataclass
class Contender:
    """A compiled, donated step and the arrays it threads through (params, state)."""

    label: str
    compiled: Callable
    carry: tuple
    fixed: tuple
    compile_s: float
    hlo: Hlo | None = None
    times: list = field(default_factory=list)
    spread: list = field(default_factory=list)  # medians of the sets of buffers a pooled row ran on
    faults: float = float("nan")  # minor page faults per step, measured after the race

    def count_faults(self, n: int = 3) -> None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        self.run(n)
        self.faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n

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
    def ms(self) -> float:
        return statistics.median(self.times) * 1e3


class GradOnly(Contender):
    """Times a function of fixed arguments (nothing donated, nothing threaded)."""

    def run(self, n: int) -> float:
        t0 = time.perf_counter()
        out = None
        for _ in range(n):
            out = self.compiled(*self.fixed)
        jax.block_until_ready(out)
        return (time.perf_counter() - t0) / n


def compile_step(label: str, fn: Callable, carry: tuple, fixed: tuple, how: str = "plain") -> Contender:
    """Lowers and compiles ``fn(*carry, *fixed)`` with ``carry`` donated, timing the compile.

    ``how``: ``"plain"`` jits with ``jax.jit`` and donation, as an optax user writes it; ``"gx"`` with
    ``gradxform.jit_step`` (what ``gradxform.make_train_step`` uses: donation plus
    ``gradxform.CPU_COMPILER_OPTIONS`` on CPU).
    """
    donate = tuple(range(len(carry)))
    jitted = gx.jit_step(fn, donate) if how == "gx" else jax.jit(fn, donate_argnums=donate)
    t0 = time.perf_counter()
    compiled = jitted.lower(*carry, *fixed).compile()
    return Contender(label, compiled, carry, fixed, time.perf_counter() - t0, Hlo.of(compiled))


def race(contenders: list[Contender], reps: int, iters: int) -> None:
    """Warms each contender up, then times ``reps`` rounds, interleaved, the order rotated each round."""
    for c in contenders:
        c.run(1)
    for i in range(reps):
        k = i % len(contenders)  # rotate who goes first, so no contender always follows the same one
        for c in contenders[k:] + contenders[:k]:
            c.times.append(c.run(iters))


def opt_step(tx) -> Callable:
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return jax.tree.map(lambda p, u: p + u, params, updates), state

    return step


def copy_bandwidth(reps: int, iters: int) -> float:
    """GB/s of a jitted, donated ``x + 1`` over 16.8M float32 (reads 4 and writes 4 bytes an element)."""
    x = jnp.zeros(BIG, jnp.float32)
    c = compile_step("copy", lambda x: (x + 1,), (x,), ())
    c.run(1)
    for _ in range(reps):
        c.times.append(c.run(iters))
    return 8 * BIG / (statistics.median(c.times)) / 1e9


# ----------------------------------------------------------------------------- cases

# (name, gradxform, optax, minimum bytes a step moves per parameter); identical math on both sides
# (gradxform's rmsprop puts eps outside the root by default, optax's inside: eps_in_sqrt=True here).
LEAF_CASES = [
    ("SGD", lambda: gx.sgd(1e-3), lambda: optax.sgd(1e-3), 12),
    ("SGD + momentum 0.9", lambda: gx.sgd(1e-3, 0.9), lambda: optax.sgd(1e-3, momentum=0.9), 20),
    ("RMSProp", lambda: gx.rmsprop(1e-3, eps_in_sqrt=True), lambda: optax.rmsprop(1e-3), 20),
    ("Adam", lambda: gx.adam(1e-3), lambda: optax.adam(1e-3), 28),
    ("AdamW", lambda: gx.adamw(1e-3), lambda: optax.adamw(1e-3), 28),
]
SMALL_CASES = [c for c in LEAF_CASES if c[0] != "SGD"]

RESULTS: dict[str, list] = {"leaf": [], "small": [], "many": [], "mlp": [], "adadelta": []}


def report(section: str, name: str, a: Contender, b: Contender | None, **extra) -> None:
    RESULTS[section].append(dict(name=name, a=a, b=b, **extra))
    ratio = f"ratio {a.ms / b.ms:5.2f}" if b else ""
    print(
        f"[{section}] {name:44s} {a.label} {a.ms:9.4f} ms  {b.label if b else ''} "
        f"{b.ms if b else float('nan'):9.4f} ms  {ratio}",
        flush=True,
    )


def single_leaf(reps: int, iters: int) -> None:
    g = jax.random.normal(jax.random.key(0), (BIG,), jnp.float32) * 1e-3
    for name, make_gx, make_optax, floor in LEAF_CASES:
        cs = []
        for label, tx in (("gradxform", make_gx()), ("optax", make_optax())):
            p = jnp.zeros(BIG, jnp.float32)
            cs.append(compile_step(label, opt_step(tx), (p, tx.init(p)), (g,)))
        race(cs, reps, iters)
        report("leaf", name, cs[0], cs[1], floor=floor)


def small_tree(reps: int, iters: int) -> None:
    keys = jax.random.split(jax.random.key(3), len(SMALL_SHAPES))
    grads = {f"p{i}": jax.random.normal(k, s) * 1e-3 for i, (k, s) in enumerate(zip(keys, SMALL_SHAPES))}

    def counts(state):
        leaves = jax.tree.leaves(state)
        return len(leaves), sum(1 for x in leaves if jnp.issubdtype(x.dtype, jnp.integer) and x.ndim == 0)

    for name, make_gx, make_optax, _ in SMALL_CASES:
        cs, state_counts = [], []
        for label, tx in (("gradxform", make_gx()), ("optax", make_optax())):
            p = {f"p{i}": jnp.zeros(s, jnp.float32) for i, s in enumerate(SMALL_SHAPES)}
            state = tx.init(p)
            state_counts.append(counts(state))
            cs.append(compile_step(label, opt_step(tx), (p, state), (grads,)))
        race(cs, reps, iters)
        report("small", name, cs[0], cs[1], counts=state_counts)


def many_leaves(reps: int, iters: int, full: bool) -> None:
    """Adam on 1000 leaves.

    A tree step's time depends on where its 3000 small buffers happen to lie (in scratch runs the same
    executable ran 20% apart on two sets of buffers), so each tree contender runs on several sets, allocated
    interleaved before anything is compiled, and its row pools their repetitions.
    """
    n_leaves, size = 1000, 1000
    keys = jax.random.split(jax.random.key(1), n_leaves)
    params = {f"p{i:04d}": jnp.zeros(size, jnp.float32) for i in range(n_leaves)}
    grads = {f"p{i:04d}": jax.random.normal(k, (size,)) * 1e-3 for i, k in enumerate(keys)}
    specs = [("gradxform", gx.adam(1e-3), "plain"), ("optax", optax.adam(1e-3), "plain")]
    if full:
        specs += [("optax", optax.adam(1e-3), "gx"), ("optax", optax.flatten(optax.adam(1e-3)), "plain")]
    sets = 3 if full else 1
    carries = [[] for _ in specs]
    for _ in range(sets):
        for i, (_, tx, _) in enumerate(specs):
            p = jax.tree.map(jnp.copy, params)
            carries[i].append((p, tx.init(p)))
    fp = gx.flatten_params(params)
    flat = compile_step("gradxform", opt_step(gx.adam(1e-3)), (fp, gx.adam(1e-3).init(fp)), (gx.flatten_params(grads),))
    groups = []
    for (label, tx, how), cs in zip(specs, carries):
        first = compile_step(label, opt_step(tx), cs[0], (grads,), how)
        rest = [Contender(label, first.compiled, c, (grads,), first.compile_s, first.hlo) for c in cs[1:]]
        groups.append([first] + rest)
    race([flat] + [c for g in groups for c in g], reps, iters)
    pooled = []
    for g in groups:
        c = Contender(g[0].label, g[0].compiled, (), (), g[0].compile_s, g[0].hlo, [t for x in g for t in x.times])
        c.spread = [x.ms for x in g]
        pooled.append(c)
    ref = pooled[1]
    report("many", "gradxform Adam on FlatParams", flat, ref)
    report("many", "gradxform Adam on the tree", pooled[0], ref)
    if full:
        report("many", "optax Adam on the tree, jitted with gx.CPU_COMPILER_OPTIONS", pooled[2], ref)
        report("many", "optax.flatten(optax.adam)", pooled[3], ref)


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
    x = jax.random.normal(kx, (32, 64))
    y = jnp.sin(x)

    def whole(tx):
        def step(params, state, x, y):
            grads = jax.grad(mlp_loss)(params, x, y)
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
    flat = Contender("gradxform", compiled, carry, (gx.flat_offsets(fp), x, y), time.perf_counter() - t0)
    p1, p2 = jax.tree.map(jnp.copy, params), jax.tree.map(jnp.copy, params)
    tree = compile_step("gradxform", whole(gx.adam(1e-3)), (p1, gx.adam(1e-3).init(p1)), (x, y), "gx")
    ref = compile_step("optax", whole(optax.adam(1e-3)), (p2, optax.adam(1e-3).init(p2)), (x, y))
    t0 = time.perf_counter()
    grad_c = jax.jit(jax.grad(mlp_loss)).lower(params, x, y).compile()
    grc = GradOnly("gradient", grad_c, (), (params, x, y), time.perf_counter() - t0)
    race([flat, tree, ref, grc], reps, iters)
    report("mlp", "gradxform Adam, FlatParams, make_train_step", flat, ref)
    report("mlp", "gradxform Adam, tree, jit_step", tree, ref)
    report("mlp", "the gradient alone (no update)", grc, ref)


# ----------------------------------------------------------------------------- Adadelta

RHO, EPS = 0.9, 1e-6


def adadelta_raw(kind: str) -> Callable:
    """A learning-rate-1 Adadelta step on one leaf, state {nu, delta_sq}, written one way (see ADADELTA_ATTEMPTS)."""

    def step(params, state, grads):
        p, g, v, w = params, grads, state["nu"], state["delta_sq"]
        v = RHO * v + (1 - RHO) * g * g
        w_new = RHO * w + (1 - RHO) * (w + EPS) * (g * g) / (v + EPS)
        if kind == "direct":  # Delta from the old w (the block's form before)
            return p - g * jnp.sqrt((w + EPS) / (v + EPS)), {"nu": v, "delta_sq": w_new}
        if kind == "barrier":  # the direct form, the new parameters computed before a barrier the new w follows
            p_new = p - g * jnp.sqrt((w + EPS) / (v + EPS))
            p_new, w, v, g = jax.lax.optimization_barrier((p_new, w, v, g))
            return p_new, {"nu": v, "delta_sq": RHO * w + (1 - RHO) * (w + EPS) * (g * g) / (v + EPS)}
        # "delta_sq": the new w from Delta^2; the root is shared, so XLA computes it once and stores it
        delta = g * jnp.sqrt((w + EPS) / (v + EPS))
        return p - delta, {"nu": v, "delta_sq": RHO * w + (1 - RHO) * delta * delta}

    return step


def _tx(tx) -> tuple[Callable, Callable]:
    return opt_step(tx), tx.init


ADADELTA_ATTEMPTS = [
    # (label, (step, init)); the gradxform block first, the reference Adam last
    ("`gx.adadelta`: Delta from the new w (the block)", lambda: _tx(gx.adadelta(1.0))),
    ("Delta from the old w (the block's form before)", lambda: (adadelta_raw("direct"), None)),
    ("the old form + `optimization_barrier((new params, w, v, g))`", lambda: (adadelta_raw("barrier"), None)),
    ("the old form, new w from Delta^2", lambda: (adadelta_raw("delta_sq"), None)),
    (
        "the unfused chain: `ratio(...)`, `scale_by_update_rms`",
        lambda: _tx(
            gx.chain(
                gx.ratio(None, gx.chain(gx.ema_sq(RHO), gx.add_eps(EPS), gx.sqrt())),
                gx.scale_by_update_rms(RHO, EPS),
                gx.scale_by_learning_rate(1.0),
            )
        ),
    ),
    ("`optax.adadelta`", lambda: _tx(optax.adadelta(1.0))),
    ("`gx.adam` (reference)", lambda: _tx(gx.adam(1e-3))),
]


def adadelta(reps: int, iters: int, full: bool) -> None:
    g = jax.random.normal(jax.random.key(4), (BIG,), jnp.float32) * 1e-3
    pairs = []
    attempts = ADADELTA_ATTEMPTS if full else [ADADELTA_ATTEMPTS[i] for i in (0, 1, -1)]
    for label, make in attempts:
        step, init = make()
        init = init or (lambda p: {"nu": jnp.zeros_like(p), "delta_sq": jnp.zeros_like(p)})
        pair = []
        for how in ("plain", "gx"):
            p = jnp.zeros(BIG, jnp.float32)
            pair.append(compile_step(how, step, (p, init(p)), (g,), how))
        pairs.append((label, pair))
    race([c for _, pair in pairs for c in pair], reps, iters)
    for _, pair in pairs:
        for c in pair:
            c.count_faults()
    for label, (plain, opts) in pairs:
        report("adadelta", label, plain, opts)


# ----------------------------------------------------------------------------- bfloat16 moments


def bf16_moments(steps: int) -> dict:
    """State bytes per parameter and final loss of Adam with bfloat16 vs float32 moments.

    The task is tests/test_flat.py's: a 2-32-32-1 tanh MLP on 2048 points of
    sin(x0) cos(x1) + 0.1 noise, full batch. Its loss floor is the noise
    variance (0.01) and it cannot memorize the noise, so the final loss
    measures convergence.
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
        moments = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim > 0]  # without the step count
        bpp = gx.state_bytes_per_param(moments, params)
        step = gx.make_train_step(loss, tx)
        for _ in range(steps):
            params, state, lv = step(params, state, x, y)
        out[label] = dict(bytes=bpp, loss=float(loss(params, x, y)))
    return out


# ----------------------------------------------------------------------------- report


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
        optax=optax.__version__,
        backend=jax.default_backend(),
    )


def f2(x: float, nd: int = 2) -> str:
    return "n/a" if x != x else f"{x:.{nd}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def span(values: list[float]) -> str:
    return f"{min(values):.2f}" if len(values) == 1 else f"{min(values):.2f} to {max(values):.2f}"


def leaf_section(copy_gbs: float) -> list[str]:
    rows, ratios = [], []
    for r in RESULTS["leaf"]:
        a, b = r["a"], r["b"]
        ratios.append(a.ms / b.ms)
        gbs = r["floor"] * BIG / (a.ms * 1e-3) / 1e9
        rows.append([r["name"], f2(a.ms), f2(b.ms), f2(a.ms / b.ms), f"{gbs:.0f} ({100 * gbs / copy_gbs:.0f}%)"])
    return [
        "## Is gradxform's step as fast as optax's on one large leaf?",
        "",
        "One leaf of 16.8M float32 parameters; the update plus `params + updates`, both jitted by `jax.jit` "
        "with the parameters and state donated.",
        "",
        *table(["optimizer", "gradxform ms", "optax ms", "gradxform / optax", "gradxform GB/s (% of copy)"], rows),
        "",
        f"Ratios {span(ratios)}. Both libraries compile these steps to the same large kernels (next-but-one "
        "table), so the ratio is 1 up to noise. GB/s counts the minimum traffic of the step (SGD 12 bytes a "
        "parameter, momentum and RMSProp 20, Adam and AdamW 28) against the donated `x + 1` copy.",
    ]


def small_section() -> list[str]:
    rows, ratios = [], []
    for r in RESULTS["small"]:
        a, b = r["a"], r["b"]
        ratios.append(a.ms / b.ms)
        (la, ia), (lb, ib) = r["counts"]
        rows.append(
            [
                r["name"],
                f2(a.ms * 1e3, 1),
                f2(b.ms * 1e3, 1),
                f2(a.ms / b.ms),
                f"{la} / {lb}",
                f"{ia} / {ib}",
                f"{a.hlo.kernels - a.hlo.scalars} / {b.hlo.kernels - b.hlo.scalars}",
                f"{a.hlo.scalars} / {b.hlo.scalars}",
            ]
        )
    shapes = ", ".join(str(s) for s in SMALL_SHAPES)
    return [
        "## What does a step cost on a small tree, where per-step overhead dominates?",
        "",
        f"A tree of 3 float32 leaves of shapes {shapes}; jitted, donated step as above. The state's leaves "
        "and integer scalars (step counts), and the compiled step's kernels over arrays and over scalars, "
        "as gradxform / optax.",
        "",
        *table(
            [
                "optimizer",
                "gradxform us",
                "optax us",
                "ratio",
                "state leaves",
                "int scalars",
                "array kernels",
                "scalar kernels",
            ],
            rows,
        ),
        "",
        f"Ratios {span(ratios)}. The state is optax's: one int32 step count, kept only by the optimizers whose "
        "blocks read it (bias correction). The kernels over arrays are the same; Adam and AdamW run two more "
        "scalar kernels, because XLA turns each division by the bias correction 1 - b^t into a multiplication "
        "by its reciprocal, computed apart since the scalar leaf reads 1 - b^t itself (optax divides every "
        "element instead, which is why gradxform's Adam is the faster one on the 256 x 256 leaf). Writing the "
        "block as `u * (1 / (1 - b^t))` removes the two kernels, but in a scratch A/B on a tree of (16, 16), "
        "(16,), () leaves it changed nothing measurable (28.0 against 28.3 us a step, optax 27.6 to 28.6), so "
        "the block keeps the division.",
    ]


def bytes_section() -> list[str]:
    rows = []
    for r in RESULTS["leaf"]:
        a, b = r["a"].hlo, r["b"].hlo
        rows.append(
            [
                r["name"],
                f"{a.big} / {b.big}",
                f"{a.kernels - a.big} / {b.kernels - b.big}",
                f"{a.copies} / {b.copies}",
                f"{a.bytes / BIG:.1f} / {b.bytes / BIG:.1f}",
                str(r["floor"]),
            ]
        )
    same = all(r["a"].hlo.bytes <= r["b"].hlo.bytes and r["a"].hlo.big <= r["b"].hlo.big for r in RESULTS["leaf"])
    return [
        "## Does computing in float32 between blocks cost extra passes over memory?",
        "",
        "The compiled steps of the first table, as XLA reports them (gradxform / optax): kernels over the "
        "16.8M-element leaf, scalar kernels, copies, and the bytes the whole step accesses per parameter "
        '(`compiled.cost_analysis()["bytes accessed"]`), beside the minimum.',
        "",
        *table(
            [
                "optimizer",
                "leaf kernels",
                "scalar kernels",
                "copies",
                "bytes accessed / param",
                "minimum bytes / param",
            ],
            rows,
        ),
        "",
        ("Equal in every row: " if same else "Not equal everywhere: ")
        + "on float32 parameters the casts to the compute dtype and back are no-ops that XLA removes, and the "
        "chain of blocks fuses into the same loops as optax's. Both libraries make one pass per output array "
        "(XLA on CPU does not fuse sibling outputs into one loop), so Adam moves 40 bytes a parameter, not 28.",
    ]


def many_section() -> list[str]:
    rows = []
    for r in RESULTS["many"]:
        a, b = r["a"], r["b"]
        rows.append([r["name"], f2(a.ms), f2(a.ms / b.ms), f2(a.compile_s), f2(a.compile_s / b.compile_s)])
    ref = RESULTS["many"][0]["b"]
    rows.append(["optax Adam on the tree (reference)", f2(ref.ms), "1.00", f2(ref.compile_s), "1.00"])
    flat, tree = RESULTS["many"][0], RESULTS["many"][1]["a"]
    opts = next((r for r in RESULTS["many"] if "CPU_COMPILER_OPTIONS" in r["name"]), None)
    return [
        "## What do many small leaves cost, and what does FlatParams save?",
        "",
        "Adam on a tree of 1000 float32 leaves of 1000 elements; `jax.jit` with donation unless said. "
        "Ratios are against optax's Adam on the tree.",
        "",
        *table(["contender", "step ms", "step ratio", "compile s", "compile ratio"], rows),
        "",
        f"FlatParams (one buffer per dtype) runs the step in {f2(flat['a'].ms / flat['b'].ms)} of optax's time "
        f"and compiles in {f2(flat['a'].compile_s / flat['b'].compile_s)} of it: XLA runs one kernel per leaf "
        f"per output array ({tree.hlo.kernels} kernels in gradxform's tree step, {ref.hlo.kernels} in optax's; "
        f"{tree.hlo.bytes / 1e6:.0f} and {ref.hlo.bytes / 1e6:.0f} MB accessed), so a tree "
        "pays launch overhead per leaf, and the flat buffers pay it once. Each tree row pools its step run on "
        f"{len(tree.spread)} sets of buffers (allocated interleaved); the sets' medians spread over "
        f"{min(tree.spread):.1f} to {max(tree.spread):.1f} ms for gradxform and {min(ref.spread):.1f} to "
        f"{max(ref.spread):.1f} ms for optax: the same executable on different memory."
        + (
            f" Region-based copy insertion (`gx.CPU_COMPILER_OPTIONS`, which `gx.jit_step` passes) costs "
            f"optax's tree step {f2(opts['a'].ms / opts['b'].ms)}x here."
            if opts
            else ""
        ),
    ]


def mlp_section() -> list[str]:
    rows = []
    for r in RESULTS["mlp"]:
        a, b = r["a"], r["b"]
        rows.append([r["name"], f2(a.ms), f2(a.ms / b.ms), f2(a.compile_s), f2(a.compile_s / b.compile_s)])
    ref = RESULTS["mlp"][0]["b"]
    rows.append(["optax Adam, tree, `jax.jit` (reference)", f2(ref.ms), "1.00", f2(ref.compile_s), "1.00"])
    grad = RESULTS["mlp"][2]["a"]
    return [
        "## What does a whole training step cost?",
        "",
        "A 200-layer tanh MLP of width 64 (400 leaves, 832k parameters), batch 32: loss, gradient, Adam "
        "update, apply, with parameters and state donated. Ratios against optax's step.",
        "",
        *table(["contender", "step ms", "step ratio", "compile s", "compile ratio"], rows),
        "",
        f"The gradient alone takes {f2(grad.ms / ref.ms)} of optax's whole step; the optimizer's share is "
        "the rest, and FlatParams mostly saves compile time here.",
    ]


ADADELTA_READING = """
Why the old form needs the option (its HLO above): the step writes three arrays in place into their
donated buffers, the parameters (a loop reading `p, g, v, w`), `nu` (reading `g, nu`) and `delta_sq`
(reading `w, v, g`). The old `delta_sq` is read by two loops, the parameters' and its own, and nothing
orders the parameters' loop first: both read the same inputs, neither reads the other's output. XLA's
default copy insertion orders kernels by data dependencies only, so it cannot show that the parameters'
loop has read the old `delta_sq` before the other loop overwrites it, and copies the moment first. The
copy costs more than its 8 bytes a parameter: it is not split across threads (its backend config has no
`outer_dimension_partitions`, the loops' have two), and it writes into a fresh 64 MiB buffer every step,
which the runtime maps and unmaps each time (`strace` in a scratch run: one `mmap`/`munmap` of 67112960
bytes per step), hence the 16385 page faults, one per 4 KiB page. Region-based copy insertion
(`gx.CPU_COMPILER_OPTIONS`) sees that the loops can be scheduled safely and drops the copy.

The attempts: an `optimization_barrier` holding the new parameters and the moment changes nothing,
because XLA's CPU pipeline expands barriers into plain tuples (pass `cse_barrier_expander`, before
fusion and long before copy insertion) and keeps no ordering from them. Writing the new `w` from
$\\Delta^2$ gives both loops the root to share; XLA stores it once (a fourth loop) and the copy goes, but
the stored root is a fresh 64 MiB temporary with the same page faults. Recovering the old `w` by
subtraction, `(w_t - (1-rho) eps q) / (rho + (1-rho) q)` with `q = g^2/(v+eps)` (a scratch run, not in
the table), removes the conflict but stores `q` (60 bytes a parameter) and cancels. What works is the
identity the block now uses,
$\\frac{w_{t-1}+\\epsilon}{v_t+\\epsilon} = \\frac{w_t+\\rho\\epsilon}{\\rho(v_t+\\epsilon)+(1-\\rho)g_t^2}$:
every term is nonnegative, so nothing cancels, and the parameters' loop reads the new `delta_sq` that
the moment's loop wrote, a data dependency that orders the two loops with or without the option. `nu`
and `delta_sq` are computed exactly as before (bit for bit); the update differs from the direct form by
a few float32 ulp (tests/test_flat.py checks it against the unfused chain at rtol 1e-5).
"""


def adadelta_section() -> list[str]:
    adam = RESULTS["adadelta"][-1]
    rows = []
    for r in RESULTS["adadelta"]:
        for c, how, ref in ((r["a"], "`jax.jit`", adam["a"]), (r["b"], "`gx.jit_step`", adam["b"])):
            h = c.hlo
            rows.append(
                [
                    r["name"],
                    how,
                    f"{h.big - h.copies} + {h.copies}",
                    f"{h.bytes / BIG:.0f}",
                    f"{c.faults:.0f}",
                    f2(c.ms),
                    f2(c.ms / ref.ms),
                ]
            )
    blk, old = RESULTS["adadelta"][0], RESULTS["adadelta"][1]
    return [
        "## Can Adadelta's step be as cheap as Adam's without compiler options?",
        "",
        "One leaf of 16.8M float32 parameters, learning rate 1. Each formulation compiled by `jax.jit` with "
        "donation and by `gx.jit_step` (the same plus `gx.CPU_COMPILER_OPTIONS`); loops over the leaf and "
        "copies, bytes accessed per parameter, minor page faults per step, and the time against `gx.adam` "
        "compiled the same way.",
        "",
        *table(
            ["formulation", "compiled by", "loops + copies", "B / param", "page faults / step", "ms", "x Adam"], rows
        ),
        "",
        f"The block runs at {f2(blk['a'].ms / adam['a'].ms)}x Adam under plain `jax.jit` and "
        f"{f2(blk['b'].ms / adam['b'].ms)}x with the option (the form before: {f2(old['a'].ms / adam['a'].ms)}x "
        f"and {f2(old['b'].ms / adam['b'].ms)}x). It moves 48 bytes a parameter against Adam's 40, in three "
        "loops either way. The form before, under plain `jax.jit` (XLA's optimized HLO, entry computation):",
        "",
        "```",
        *old["a"].hlo.entry,
        "```",
        "",
        "and the block, under plain `jax.jit`:",
        "",
        "```",
        *blk["a"].hlo.entry,
        "```",
        "",
        ADADELTA_READING.strip(),
    ]


USAGE = """
## Holding parameters for the fast path (`FlatParams`)

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

Gradients of a loss of `flat` arrive as a `FlatParams` (the backward pass of `unravel` is one
concatenation); any optimizer, gradxform's or optax's, sees one leaf per dtype. Elementwise optimizers
(all of gradxform's) give the tree path's result (tests/test_flat.py: rtol 1e-5 after ten steps).
Transforms that look at leaves separately (per-leaf norms, masks by leaf name) see the buffers instead:
wrap only elementwise optimizers this way.

`make_train_step` passes the leaves' offsets as jit arguments (`gx.flat_offsets(flat)`, applied with
`flat.with_offsets(offsets)`), so slices of same-shaped leaves are one kernel, compiled once. If you write
your own jitted step, do the same:

```python
@gx.jit_step                                  # jax.jit with params and state donated (+ CPU options)
def step(flat, state, offsets, x, y):
    grads = jax.grad(lambda f: loss(f.with_offsets(offsets), x, y))(flat)
    updates, state = tx.update(grads, state, flat)
    return gx.apply_updates(flat, updates), state

flat, state = step(flat, state, gx.flat_offsets(flat), x, y)
```
"""


def write_report(path: str, info: dict, copy_gbs: float, bf16: dict | None, load: tuple, args) -> None:
    lines = [
        "# Performance: gradxform beside optax",
        "",
        f"Measured by `python benchmarks/run.py{' --quick' if args.quick else ''} --out docs/performance.md`: "
        f"each case compiles its contenders, then times {args.reps} interleaved repetitions of each "
        f"({4 * args.reps} on the small tree; the order rotated every round, so load from other processes hits "
        "all alike) and reports medians. A repetition "
        f"is {args.iters} back-to-back steps on one leaf, {args.small_iters} on the small tree, {4 * args.iters} "
        "on the 1000-leaf tree and the MLP. Every step is jitted with the parameters and optimizer state "
        "donated.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, backend {info['backend']}; Python {info['python']}, "
        f"jax {info['jax']}, optax {info['optax']}.",
        f"- Load average (1, 5, 15 min): {load[0]} before the run, {load[1]} after; the machine is shared, so "
        "absolute times are noisy and the ratios, from interleaved runs in one process, are what to read.",
        f"- Copy bandwidth (jitted, donated `x + 1` on 16.8M float32, 8 bytes an element): {copy_gbs:.1f} GB/s.",
        "- Every optimizer of the registry beside optax, on this leaf and the small tree: [its own page]"
        "(performance_registry.md) (`python -m benchmarks.registry_speed --out docs/performance_registry.md`).",
        "",
        "![step and compile time, gradxform / optax](performance.png)",
        "",
    ]
    sections = [
        ("leaf", lambda: leaf_section(copy_gbs)),
        ("small", small_section),
        ("leaf", bytes_section),
        ("many", many_section),
        ("mlp", mlp_section),
        ("adadelta", adadelta_section),
    ]
    for key, make in sections:
        if RESULTS[key]:
            lines += make() + [""]
    if bf16:
        f32, b16 = bf16["float32"], bf16["bfloat16"]
        rel = abs(b16["loss"] - f32["loss"]) / f32["loss"]
        lines += [
            "## What do bfloat16 moments save, and what do they cost in convergence?",
            "",
            f"Adam at 1e-2 on a 2-32-32-1 tanh MLP, 2048 points of sin(x0) cos(x1) + 0.1 noise (loss floor "
            f"0.01), {args.bf16_steps} full-batch steps:",
            "",
            *table(
                ["moments", "bytes / parameter", "final loss"],
                [
                    ["float32", f"{f32['bytes']:.1f}", f"{f32['loss']:.5f}"],
                    ["bfloat16", f"{b16['bytes']:.1f}", f"{b16['loss']:.5f}"],
                ],
            ),
            "",
            f"Half the state for a final loss {100 * rel:.2f}% apart (`adam(..., mu_dtype=jnp.bfloat16, "
            "nu_dtype=jnp.bfloat16)`; the math still runs in float32).",
            "",
        ]
    lines += [USAGE.strip(), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}")


def plot(path: str) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("one leaf of 16.8M", "leaf"),
        ("3-leaf tree", "small"),
        ("1000 leaves x 1000", "many"),
        ("MLP step", "mlp"),
    ]
    names, step, comp = [], [], []
    for tag, key in groups:
        for r in RESULTS[key]:
            if r["a"].label != "gradxform":  # the gradient alone, optax against itself
                continue
            names.append(f"{tag}: {r['name']}".replace("gradxform ", "").replace("`", ""))
            step.append(r["a"].ms / r["b"].ms)
            comp.append(r["a"].compile_s / r["b"].compile_s)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.8))
    y = np.arange(len(names))
    ax.barh(y - 0.2, step, 0.4, label="step time")
    ax.barh(y + 0.2, comp, 0.4, label="compile time")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ticks = [
        t for t in (0.01, 0.03, 0.1, 0.3, 0.5, 1, 2, 3, 5) if min(step + comp) / 1.5 <= t <= max(step + comp) * 1.5
    ]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("gradxform / optax (below 1: gradxform faster; log scale)")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def wait_for_quiet(max_load: float, max_wait_s: float) -> None:
    t0 = time.time()
    while os.getloadavg()[0] > max_load and time.time() - t0 < max_wait_s:
        print(f"load {os.getloadavg()[0]:.2f} > {max_load}: waiting", flush=True)
        time.sleep(30)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions, fewer 1000-leaf contenders")
    ap.add_argument("--out", default=None, help="markdown file to write (a PNG is written beside it)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--only", default="copy,leaf,small,many,mlp,adadelta,bf16")
    ap.add_argument("--max-load", type=float, default=None, help="wait until the 1-minute load is below this")
    ap.add_argument("--max-wait", type=float, default=600.0, help="seconds to wait for --max-load at most")
    args = ap.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 11)
    args.iters = args.iters or (2 if args.quick else 5)
    args.small_iters = 25 * args.iters
    args.bf16_steps = 300 if args.quick else 1500
    only = set(args.only.split(","))
    if args.max_load is not None:
        wait_for_quiet(args.max_load, args.max_wait)
    load0 = os.getloadavg()
    info = machine()
    print(info, "load", load0, flush=True)
    copy_gbs = copy_bandwidth(args.reps, args.iters) if "copy" in only else float("nan")
    print(f"copy bandwidth {copy_gbs:.1f} GB/s", flush=True)
    if "leaf" in only:
        single_leaf(args.reps, args.iters)
    if "small" in only:
        small_tree(4 * args.reps, args.small_iters)
    if "many" in only:
        many_leaves(args.reps, 4 * args.iters, full=not args.quick)
    if "mlp" in only:
        mlp(args.reps, 4 * args.iters)
    if "adadelta" in only:
        adadelta(args.reps, args.iters, full=not args.quick)
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
