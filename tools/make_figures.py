"""Draws the site's figures from the code: per optimizer, per schedule, and the race.

    python tools/make_figures.py                     # everything below
    python tools/make_figures.py optimizers [NAME ...]  # docs/figures/optimizers/<name>.png, every registry optimizer
    python tools/make_figures.py schedules           # docs/figures/schedules/schedules.png
    python tools/make_figures.py race                # docs/figures/race.png and the tables in docs/race.md
    python tools/make_figures.py --check             # exit 1, naming what is missing (no drawing)

**Optimizers.** For every optimizer of the registry (`gradxform.registry.entries("optimizer")`), its
trajectory on the race's ravine and Rosenbrock problems (`gradxform.race.problems`, 500 steps, the
entry's `race_lr`; an entry without one gets the best of a small grid, said in the caption) beside
Adam's (Adam's own figure puts SGD beside it), over the contours, and both losses per step. The figure
is embedded in `docs/optimizers/<name>.md` by one line, `figure_line` below, with a caption, before the
page's first `## ` section (this command puts them there). `tests/test_docs.py` and `tools/check_docs.py` check that
every registry optimizer's page shows its figure, so a new optimizer needs only this command.

**Schedules.** One panel per name of `gradxform.schedules.__all__`, from the example call in
`SCHEDULES` (the tool fails on a schedule without one, so a new schedule needs an example here).

**Race.** The default race (`gradxform race`: ten optimizers, four problems, 500 steps) with its figure
copied to `docs/figures/race.png` and one table per problem written into `docs/race.md` between the
`RACE_BEGIN` and `RACE_END` markers.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

import gradxform as gx  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
PAGES = ROOT / "docs" / "optimizers"
STEPS = 500
REFERENCE = "adam"
GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
PROBLEMS = ("ravine", "rosenbrock")
DPI = 90
METADATA = {"Software": None}  # no matplotlib version in the PNG: figures change only when they change

RACE_BEGIN = "<!-- race-tables: begin (tools/make_figures.py race) -->"
RACE_END = "<!-- race-tables: end -->"


def save(fig: plt.Figure, path: pathlib.Path) -> None:
    """Writes `fig` as a palette PNG (a third of the size of matplotlib's RGBA, the same to the eye)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata=METADATA)
    plt.close(fig)
    _quantize(path, buffer)


def _quantize(path: pathlib.Path, source=None) -> None:
    from PIL import Image

    image = Image.open(source or path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)


def figure_line(name: str) -> str:
    """The line that embeds optimizer `name`'s figure in its page (what the checks look for)."""
    return f"![{name} beside {reference_of(name)} on the ravine and Rosenbrock](../figures/optimizers/{name}.png)"


def reference_of(name: str) -> str:
    return "sgd" if name == REFERENCE else REFERENCE


def caption(name: str, grid: dict[str, float]) -> str:
    ref = reference_of(name)
    lr = (
        "its race learning rates"
        if not grid
        else "learning rates chosen from a grid (" + ", ".join(f"{p} {v:g}" for p, v in grid.items()) + ")"
    )
    return (
        f"*{STEPS} steps of `{name}` ({lr}, every other argument at its default) beside `{ref}` (grey), "
        "over the contours of the ravine $\\tfrac12(0.1x^2 + 10y^2)$ and Rosenbrock's valley, and the loss "
        "per step on both. Drawn by `tools/make_figures.py` from the registry.*"
    )


# --------------------------------------------------------------------------------------------- optimizers


def _run(problem, name: str, lr: float):
    from gradxform.race.engine import train

    return train(problem, name, lr, STEPS, seed=0)


def _best_of_grid(problem, name: str):
    best = None
    for lr in GRID:
        try:
            r = _run(problem, name, lr)
        except Exception:  # noqa: BLE001 - a learning rate the optimizer rejects
            continue
        if np.isfinite(r.final_loss) and (best is None or r.final_loss < best.final_loss):
            best = r
    if best is None:
        raise RuntimeError(f"{name}: no learning rate of the grid gives a finite loss on {problem.name}")
    return best


def runs(name: str) -> tuple[dict, dict[str, float]]:
    """`({problem: Result}, {problem: lr chosen from the grid})` for optimizer `name`."""
    from gradxform.race.problems import make_problem

    entry = gx.registry.entry(name)
    out, grid = {}, {}
    for p in PROBLEMS:
        problem = make_problem(p, 0)
        if entry.race_lr is not None:
            out[p] = _run(problem, name, entry.race_lr[p])
        else:
            out[p] = _best_of_grid(problem, name)
            grid[p] = out[p].learning_rate
    return out, grid


def _contours(ax, problem) -> None:
    x0, x1, y0, y1 = problem.window
    xs, ys = np.meshgrid(np.linspace(x0, x1, 240), np.linspace(y0, y1, 240))
    import jax
    import jax.numpy as jnp

    zs = np.asarray(jax.vmap(problem.loss)(jnp.stack([xs.ravel(), ys.ravel()], 1).astype(jnp.float32)))
    ax.contour(xs, ys, np.log10(zs.reshape(xs.shape) - problem.floor + 1e-3), levels=22, cmap="Greys",
               linewidths=0.5, alpha=0.8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def draw_optimizer(name: str, mine: dict, ref: dict) -> plt.Figure:
    from gradxform.race.problems import make_problem

    colour = {"ravine": "tab:blue", "rosenbrock": "tab:red"}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.25, 1, 1.1]})
    for ax, p in zip(axes[:2], PROBLEMS):
        problem = make_problem(p, 0)
        _contours(ax, problem)
        r, q = mine[p], ref[p]
        ax.plot(*q.trajectory.T, "-", color="0.55", lw=1.2, label=f"{q.optimizer} (lr {q.learning_rate:g})")
        ax.plot(*r.trajectory.T, "-", color=colour[p], lw=1.4, label=f"{name} (lr {r.learning_rate:g})")
        ax.plot(*r.trajectory[0], "ko", ms=4)
        minimum = (0.0, 0.0) if p == "ravine" else (1.0, 1.0)
        ax.plot(*minimum, "k*", ms=10)
        start = ", ".join(f"{float(v):.3g}" for v in r.trajectory[0])
        ax.set_title(f"{p}: {STEPS} steps from ({start})", fontsize=10)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.legend(fontsize=8, loc="upper right" if p == "ravine" else "lower right")
    bx = axes[2]
    for p in PROBLEMS:
        r, q = mine[p], ref[p]
        floor = make_problem(p, 0).floor
        bx.semilogy(np.maximum(q.losses - floor, 1e-30), "--", color=colour[p], lw=1, alpha=0.6,
                    label=f"{q.optimizer}, {p}")
        bx.semilogy(np.maximum(r.losses - floor, 1e-30), "-", color=colour[p], lw=1.4, label=f"{name}, {p}")
    bx.set_xlabel("step")
    bx.set_ylabel("loss (log scale)")
    bx.set_title("loss per step", fontsize=10)
    bx.legend(fontsize=8)
    fig.suptitle(f"{name} beside {reference_of(name)}", fontsize=11)
    fig.tight_layout()
    return fig


def insert_figure_line(name: str, grid: dict[str, float]) -> bool:
    """Puts the figure and its caption in the optimizer's page, before its first `## ` section (the end of
    the introduction), moving or refreshing them if they are there; True if the page changed."""
    page = PAGES / f"{name}.md"
    if not page.exists():
        print(f"warning: {name}: no page {page.relative_to(ROOT)}; the figure is drawn but not shown", file=sys.stderr)
        return False
    text = page.read_text()
    block = f"{figure_line(name)}\n\n{caption(name, grid)}\n\n"
    # Take out what an earlier run put in (the line, and the caption paragraph under it).
    bare = re.sub(re.escape(figure_line(name)) + r"\n\n(?:\*[^\n]*\*\n\n?)?", "", text)
    lines = bare.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    head = "".join(lines[:at])
    if head and not head.endswith("\n\n"):
        head = head.rstrip("\n") + "\n\n"
    new = head + block + "".join(lines[at:])
    if new != text:
        page.write_text(new)
        return True
    return False


def optimizers(names: list[str]) -> list[str]:
    """Draws the figures; returns the names that failed (the others are drawn)."""
    (FIGURES / "optimizers").mkdir(parents=True, exist_ok=True)
    every = [e.name for e in gx.registry.entries("optimizer")]
    unknown = [n for n in names if n not in every]
    if unknown:
        raise SystemExit(f"not registry optimizers: {', '.join(unknown)}; the registry has {', '.join(every)}")
    cache: dict[str, tuple] = {}

    def get(n):
        if n not in cache:
            cache[n] = runs(n)
        return cache[n]

    failed = []
    for name in names or every:
        try:
            mine, grid = get(name)
            ref, _ = get(reference_of(name))
            fig = draw_optimizer(name, mine, ref)
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            print(f"FAILED {name}: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(name)
            continue
        path = FIGURES / "optimizers" / f"{name}.png"
        save(fig, path)
        changed = insert_figure_line(name, grid)
        print(f"{path.relative_to(ROOT)}" + (f" (page {name}.md updated)" if changed else ""))
    return failed


# ---------------------------------------------------------------------------------------------- schedules

# name -> (example call, steps to draw). Every name of gradxform.schedules.__all__ needs one.
SCHEDULES = {
    "constant_schedule": ("constant_schedule(1e-3)", 1000),
    "linear_schedule": ("linear_schedule(1e-3, 1e-4, transition_steps=600, transition_begin=200)", 1000),
    "polynomial_schedule": ("polynomial_schedule(1e-3, 1e-5, power=2, transition_steps=800)", 1000),
    "exponential_decay": ("exponential_decay(1e-3, transition_steps=100, decay_rate=0.7, staircase=True)", 1000),
    "inverse_time_decay": ("inverse_time_decay(1e-3, decay_rate=0.5, decay_steps=100)", 1000),
    "cosine_decay_schedule": ("cosine_decay_schedule(1e-3, decay_steps=800, alpha=0.1)", 1000),
    "piecewise_constant_schedule": ("piecewise_constant_schedule(1e-3, {300: 0.5, 600: 0.2})", 1000),
    "piecewise_interpolate_schedule": (
        "piecewise_interpolate_schedule('cosine', 1e-4, {200: 10.0, 600: 0.5, 900: 0.2})", 1000),
    "join_schedules": (
        "join_schedules([linear_schedule(0.0, 1e-3, 100), cosine_decay_schedule(1e-3, 900)], [100])", 1000),
    "warmup_constant_schedule": ("warmup_constant_schedule(0.0, 1e-3, warmup_steps=200)", 1000),
    "warmup_cosine_decay_schedule": (
        "warmup_cosine_decay_schedule(0.0, 1e-3, warmup_steps=100, decay_steps=1000, end_value=1e-5)", 1000),
    "warmup_exponential_decay_schedule": (
        "warmup_exponential_decay_schedule(0.0, 1e-3, warmup_steps=100, transition_steps=100, decay_rate=0.7)",
        1000),
    "linear_onecycle_schedule": ("linear_onecycle_schedule(1000, peak_value=1e-3)", 1000),
    "cosine_onecycle_schedule": ("cosine_onecycle_schedule(1000, peak_value=1e-3)", 1000),
    "sgdr_schedule": (
        "sgdr_schedule([dict(init_value=1e-4, peak_value=1e-3, warmup_steps=50, decay_steps=300)] * 3 "
        "+ [dict(init_value=1e-4, peak_value=5e-4, warmup_steps=10, decay_steps=100)])", 1000),
    "warmup_stable_decay_schedule": (
        "warmup_stable_decay_schedule(1e-3, warmup_steps=100, stable_steps=600, decay_steps=300, "
        "decay_shape='1-sqrt')", 1000),
}


def schedules() -> None:
    names = list(gx.schedules.__all__)
    missing = [n for n in names if n not in SCHEDULES]
    if missing:
        raise SystemExit(f"no example in tools/make_figures.py SCHEDULES for: {', '.join(missing)}")
    cols = 2
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.7 * rows), squeeze=False)
    env = {n: getattr(gx.schedules, n) for n in names}
    for ax, name in zip(axes.flat, names):
        call, steps = SCHEDULES[name]
        schedule = eval(call, env)  # noqa: S307 - our own example strings
        t = np.arange(steps + 1)
        import jax

        v = np.asarray(jax.vmap(schedule)(t))
        ax.plot(t, v, lw=1.5)
        text = _wrap(call[len(name):])
        ax.set_title(name, fontsize=11, pad=5 + 10 * (text.count("\n") + 1))
        ax.text(0.5, 1.015, text, transform=ax.transAxes, fontsize=8, ha="center", va="bottom",
                family="monospace", color="0.3")
        ax.set_ylim(bottom=0.0 if v.min() >= 0 else None, top=v.max() * 1.08 if v.max() > 0 else None)
        ax.tick_params(labelsize=7)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:.3g}"))
        if ax in axes[-1]:
            ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    (FIGURES / "schedules").mkdir(parents=True, exist_ok=True)
    path = FIGURES / "schedules" / "schedules.png"
    save(fig, path)
    print(path.relative_to(ROOT))


def _wrap(args: str, width: int = 54) -> str:
    out, line = [], ""
    for part in re.split(r"(?<=,) ", args):
        if line and len(line) + len(part) + 1 > width:
            out.append(line)
            line = "  " + part
        else:
            line = f"{line} {part}" if line else part
    out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------- race


def race() -> None:
    from gradxform.race.engine import race as run_race
    from gradxform.race.problems import DEFAULT_FIELD, PROBLEM_NAMES, make_problem
    from gradxform.race.report import figure

    problems = [make_problem(p, 0) for p in PROBLEM_NAMES]
    results = run_race(problems, list(DEFAULT_FIELD), STEPS, seed=0)
    path = FIGURES / "race.png"
    figure(problems, results, str(path), title=f"the race: {len(DEFAULT_FIELD)} optimizers, {STEPS} steps")
    _quantize(path)
    print(path.relative_to(ROOT))
    tables = []
    for problem in problems:
        mine = [r for r in results if r.problem == problem.name]
        acc = problem.accuracy is not None
        head = "| optimizer | lr | final loss | steps to target |" + (" held-out accuracy |" if acc else "")
        rule = "|---|---:|---:|---:|" + ("---:|" if acc else "")
        lines = [f"**{problem.name}** (target: loss $\\le {problem.target:g}$)", "", head, rule]
        for r in sorted(mine, key=lambda r: (r.steps_to_target is None, r.steps_to_target or 0, r.final_loss)):
            hit = "never" if r.steps_to_target is None else str(r.steps_to_target)
            row = f"| `{r.optimizer}` | {r.learning_rate:g} | {r.final_loss:.3g} | {hit} |"
            if acc:
                row += f" {100 * r.final_accuracy:.1f}% |"
            lines.append(row)
        tables.append("\n".join(lines))
    page = ROOT / "docs" / "race.md"
    text = page.read_text()
    start, stop = text.index(RACE_BEGIN), text.index(RACE_END)
    body = (
        f"{RACE_BEGIN}\n\n[![the race: loss curves, trajectories and held-out accuracy](figures/race.png)]"
        "(figures/race.png)\n\n(Click the figure for full size.) "
        "The race as `gradxform race` runs it with its defaults, each problem's table sorted by steps to "
        "target, then final loss; written by "
        "`tools/make_figures.py race`.\n\n" + "\n\n".join(tables) + "\n\n"
    )
    page.write_text(text[:start] + body + text[stop:])
    print("docs/race.md (tables)")


# --------------------------------------------------------------------------------------------------- check


def check() -> list[str]:
    problems = []
    for entry in gx.registry.entries("optimizer"):
        png = FIGURES / "optimizers" / f"{entry.name}.png"
        page = PAGES / f"{entry.name}.md"
        if not png.exists():
            problems.append(f"{png.relative_to(ROOT)}: missing")
        if page.exists() and figure_line(entry.name) not in page.read_text():
            problems.append(f"{page.relative_to(ROOT)}: does not show its figure ({figure_line(entry.name)})")
    missing = [n for n in gx.schedules.__all__ if n not in SCHEDULES]
    if missing:
        problems.append(f"tools/make_figures.py SCHEDULES: no example for {', '.join(missing)}")
    if not (FIGURES / "schedules" / "schedules.png").exists():
        problems.append("docs/figures/schedules/schedules.png: missing")
    if not (FIGURES / "race.png").exists():
        problems.append("docs/figures/race.png: missing")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["optimizers", "schedules", "race", "all"], default="all")
    parser.add_argument("names", nargs="*", help="optimizers: only these registry names")
    parser.add_argument("--check", action="store_true", help="exit 1 naming missing figures; draws nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(f"{p} (run python tools/make_figures.py)", file=sys.stderr)
        return 1 if problems else 0
    failed = []
    if args.what in ("optimizers", "all"):
        failed = optimizers(args.names)
    if args.what in ("schedules", "all"):
        schedules()
    if args.what in ("race", "all"):
        race()
    if failed:
        print(f"could not draw: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
