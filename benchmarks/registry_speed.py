"""Every optimizer of the registry beside its optax reference: one 16.8M float32 leaf and a 3-leaf tree.

Run from the repository root::

    python -m benchmarks.registry_speed                       # every entry with an optax case
    python -m benchmarks.registry_speed --only lion,adan      # some of them
    python -m benchmarks.registry_speed --out docs/performance_registry.md
    python -m benchmarks.registry_speed --only lamb --trees leaf1024,mlp50   # other trees

`--trees` picks the trees (default `leaf,small`, the two above): `leaf1024` is one
1024x1024 float32 matrix, `mlp50` a 50-leaf MLP (25 layers of a 256x256 weight and a
256 bias), where optimizers that look at whole leaves (norms, factored moments) show
their per-leaf cost.

Each row builds gradxform's optimizer and the optax reference of the entry's first
optax parity case (the same, non-default settings on both sides), compiles the
donated step `update + apply` with `jax.jit`, and times interleaved repetitions in one
process (the order rotated each round); reported: medians and the ratio
gradxform / optax, and the state's leaves and integer scalars on the small tree.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import gradxform as gx  # noqa: E402
from benchmarks.run import BIG, SMALL_SHAPES, compile_step, machine, opt_step, race, wait_for_quiet  # noqa: E402
from tests.refs import reference, supplied  # noqa: E402


def _counts(state) -> str:
    leaves = jax.tree.leaves(state)
    ints = sum(1 for x in leaves if jnp.issubdtype(x.dtype, jnp.integer) and x.ndim == 0)
    return f"{len(leaves)}/{ints}"


def _own_buffers(state):
    """The state with every leaf a buffer of its own: some optax states hold the parameters themselves (DoG's
    `init_params`), and params and state are both donated."""
    return jax.tree.map(jnp.copy, state)


def _pair(entry):
    """Ours and optax's at the first optax case; both given the extra arguments the entry reads (the loss of
    the parameters, `tests.refs.loss_of`, computed inside the step on both sides)."""
    case = next(c for c in entry.cases if c.reference.library == "optax")
    ours = supplied(entry.factory(**case.kwargs))
    theirs = reference(case, entry.extra_args)
    return ours, theirs, case.label


# name: (parameter shapes, iterations per timed round); "leaf" and "small" are measured below as they always were.
EXTRA_TREES = {
    "leaf1024": (((1024, 1024),), 20),
    "mlp50": (tuple(s for _ in range(25) for s in ((256, 256), (256,))), 20),
}
TREES = ("leaf", "small", *EXTRA_TREES)


def _tree_ratio(ours, theirs, shapes, reps: int, iters: int) -> tuple[float, float]:
    """Medians (ms) of the donated step of `ours` and `theirs` on a tree of `shapes`."""
    keys = jax.random.split(jax.random.key(5), len(shapes))
    grads = {f"p{i:02d}": jax.random.normal(k, s) * 1e-3 for i, (k, s) in enumerate(zip(keys, shapes))}
    cs = []
    for who, tx in (("gradxform", ours), ("optax", theirs)):
        p = {f"p{i:02d}": jnp.ones(s, jnp.float32) for i, s in enumerate(shapes)}
        cs.append(compile_step(who, opt_step(tx), (p, tx.init(p)), (grads,)))
    race(cs, reps, iters)
    return cs[0].ms, cs[1].ms


def measure_trees(entry, reps: int, trees: tuple[str, ...]) -> dict:
    """The entry beside optax on the named extra trees: `{tree: (gx ms, optax ms)}`."""
    ours, theirs, label = _pair(entry)
    row = dict(name=entry.name, setting=label)
    for t in trees:
        shapes, iters = EXTRA_TREES[t]
        row[t] = _tree_ratio(ours, theirs, shapes, reps, iters)
    print(
        f"{entry.name:28s} "
        + "  ".join(f"{t} {row[t][0]:.3f}/{row[t][1]:.3f} ms = {row[t][0] / row[t][1]:5.2f}" for t in trees),
        flush=True,
    )
    return row


def measure(entry, reps: int, iters_leaf: int, iters_small: int) -> dict:
    ours, theirs, label = _pair(entry)
    row = dict(name=entry.name, setting=label)
    g = jax.random.normal(jax.random.key(0), (BIG,), jnp.float32) * 1e-3
    cs = []
    for who, tx in (("gradxform", ours), ("optax", theirs)):
        p = jnp.ones(BIG, jnp.float32)
        cs.append(compile_step(who, opt_step(tx), (p, _own_buffers(tx.init(p))), (g,)))
    race(cs, reps, iters_leaf)
    row["leaf"] = (cs[0].ms, cs[1].ms)
    keys = jax.random.split(jax.random.key(3), len(SMALL_SHAPES))
    grads = {f"p{i}": jax.random.normal(k, s) * 1e-3 for i, (k, s) in enumerate(zip(keys, SMALL_SHAPES))}
    cs, counts = [], []
    for who, tx in (("gradxform", ours), ("optax", theirs)):
        p = {f"p{i}": jnp.ones(s, jnp.float32) for i, s in enumerate(SMALL_SHAPES)}
        state = _own_buffers(tx.init(p))
        counts.append(_counts(state))
        cs.append(compile_step(who, opt_step(tx), (p, state), (grads,)))
    race(cs, reps, iters_small)
    row["small"] = (cs[0].ms * 1e3, cs[1].ms * 1e3)
    row["counts"] = counts
    print(
        f"{entry.name:28s} leaf {row['leaf'][0] / row['leaf'][1]:5.2f}  small {row['small'][0] / row['small'][1]:5.2f}"
        f"  state {counts[0]} vs {counts[1]}",
        flush=True,
    )
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated registry names (default: all with an optax case)")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--out", default=None, help="markdown file to write")
    ap.add_argument("--max-load", type=float, default=None)
    ap.add_argument(
        "--trees", default="leaf,small", help=f"comma-separated trees, of {', '.join(TREES)} (default: leaf,small)"
    )
    args = ap.parse_args(argv)
    trees = tuple(args.trees.split(","))
    unknown = [t for t in trees if t not in TREES]
    if unknown:
        ap.error(f"unknown tree {unknown[0]!r}; the trees are {', '.join(TREES)}")
    names = args.only.split(",") if args.only else None
    entries = [
        e
        for e in gx.registry.entries()
        if any(c.reference.library == "optax" for c in e.cases) and (names is None or e.name in names)
    ]
    if args.max_load is not None:
        wait_for_quiet(args.max_load, 600.0)
    load = os.getloadavg()
    if trees != ("leaf", "small"):
        extra = tuple(t for t in trees if t in EXTRA_TREES)
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        for e in entries:
            if {"leaf", "small"} & set(trees):
                measure(e, args.reps, 5, 125)
            if extra:
                measure_trees(e, args.reps, extra)
        print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    rows = [measure(e, args.reps, 5, 125) for e in entries]
    if args.out:
        info = machine()
        lines = [
            "---",
            "hide:",
            "  - toc  # the page has no sections, and the table needs the width",
            "---",
            "",
            "# Every optimizer beside optax",
            "",
            "Written by `python -m benchmarks.registry_speed --out docs/performance_registry.md`: for each registry "
            "entry, gradxform's optimizer and optax's at the entry's first optax parity setting, a jitted, donated "
            f"step (update and apply), {args.reps} interleaved repetitions, medians.",
            "",
            "A step on the 3-leaf tree takes tens of microseconds, and there the ratio moves between processes on "
            "a shared machine (novograd's: 1.25 to 1.43 in four runs of this script, 0.67 to 1.27 in three runs of "
            "a standalone one); read the 16.8M-leaf column for the cost per parameter, and "
            "[Performance](performance.md) for the small tree measured at length.",
            "",
            f"- Machine: {info['cpu']}, {info['cores']} cores, backend {info['backend']}; Python {info['python']}, "
            f"jax {info['jax']}, optax {info['optax']}; load average before the run {load[0]:.1f}, {load[1]:.1f}, "
            f"{load[2]:.1f}.",
            "",
            # seven columns, so the table fits the page: each pair of numbers is gradxform's, then optax's
            "| optimizer | setting | 16.8M leaf: ms, gx / optax | ratio | 3-leaf tree: us, gx / optax | ratio "
            "| state leaves/ints, gx / optax |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            (a, b), (c, d) = r["leaf"], r["small"]
            lines.append(
                f"| {r['name']} | {r['setting']} | {a:.2f} / {b:.2f} | {a / b:.2f} | {c:.1f} / {d:.1f} | {c / d:.2f} "
                f"| {r['counts'][0]} / {r['counts'][1]} |"
            )
        lines.append("")
        with open(args.out, "w") as f:
            f.write("\n".join(lines))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
