"""The race's outputs: a text table of the results and a PNG of loss curves and trajectories."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gradxform.race.engine import Result
from gradxform.race.problems import Problem

COLUMNS = ("problem", "optimizer", "lr", "final loss", "held-out acc", "steps to target", "compile s", "run s")


def _fmt_loss(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    """One row of strings per result, in `COLUMNS` order."""
    out = []
    for r in results:
        acc = r.final_accuracy
        hit = r.steps_to_target
        out.append(
            (
                r.problem,
                r.optimizer,
                f"{r.learning_rate:g}",
                _fmt_loss(r.final_loss),
                "" if acc is None else f"{100 * acc:.1f}%",
                f"never (<= {r.target:g})" if hit is None else str(hit),
                f"{r.compile_s:.2f}",
                f"{r.run_s:.3f}",
            )
        )
    return out


def table(results: Sequence[Result]) -> str:
    """A plain-text table, columns padded to their widest cell, problems separated by a rule."""
    body = rows(results)
    widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c) for i, c in enumerate(COLUMNS)]
    right = {2, 3, 4, 5, 6, 7}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "  ".join("-" * w for w in widths)
    lines = [line(COLUMNS), rule]
    for i, row in enumerate(body):
        if i and row[0] != body[i - 1][0]:
            lines.append("")
        lines.append(line(row))
    return "\n".join(lines)


def figure(problems: Sequence[Problem], results: Sequence[Result], path: str, title: str = "") -> None:
    """Writes a PNG: per problem, `loss - floor` against steps (log scale) and, for 2-D surfaces,
    the trajectories over the contour plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r.optimizer for r in results}, key=[r.optimizer for r in results].index)
    colors = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    n = len(problems)
    surfaces = [p for p in problems if p.surface]
    nrows = 2 if surfaces else 1
    fig, axes = plt.subplots(nrows, n, figsize=(4.2 * n, 3.8 * nrows), squeeze=False)
    for j, prob in enumerate(problems):
        ax = axes[0, j]
        for r in (r for r in results if r.problem == prob.name):
            gap = np.maximum(r.losses - prob.floor, 1e-12)
            ax.semilogy(gap, color=colors[r.optimizer], lw=1.2, label=r.optimizer)
        ax.axhline(max(prob.target - prob.floor, 1e-12), color="k", ls=":", lw=0.8)
        ax.set_title(f"{prob.name}: loss - min (dotted: target)" if prob.floor else f"{prob.name}: loss")
        ax.set_xlabel("step")
        if j == 0:
            ax.legend(fontsize=7, ncol=2)
    if surfaces:
        for j, prob in enumerate(problems):
            ax = axes[1, j]
            if not prob.surface:
                _accuracy_panel(ax, prob, results, colors)
                continue
            x0, x1, y0, y1 = prob.window
            xs, ys = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
            zs = np.asarray(prob.loss(np.stack([xs, ys])))
            levels = np.quantile(zs, np.linspace(0, 1, 25) ** 2)
            ax.contour(xs, ys, zs, levels=np.unique(levels), cmap="Greys", linewidths=0.6)
            for r in (r for r in results if r.problem == prob.name):
                t = r.trajectory
                ax.plot(t[:, 0], t[:, 1], "-", color=colors[r.optimizer], lw=1.0, ms=2, label=r.optimizer)
                ax.plot(t[-1, 0], t[-1, 1], "o", color=colors[r.optimizer], ms=3)
            ax.plot(t[0, 0], t[0, 1], "k*", ms=8)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.set_title(f"{prob.name}: trajectories (star: start)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _accuracy_panel(ax, prob: Problem, results: Sequence[Result], colors) -> None:
    for r in (r for r in results if r.problem == prob.name):
        if r.accuracies is not None:
            ax.plot(100 * r.accuracies, color=colors[r.optimizer], lw=1.2, label=r.optimizer)
    ax.set_ylim(80, 100)
    ax.set_title(f"{prob.name}: held-out accuracy (%)")
    ax.set_xlabel("step")
