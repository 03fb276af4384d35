"""Objective evaluations of gradxform's curvature methods against scipy.optimize.minimize on the MGH problems.

Run from the repository root: ``python -m benchmarks.curvature_vs_scipy``. It runs
``bfgs``, ``lbfgs``, ``conjugate_gradient`` and ``newton_cg_trust`` against scipy's
BFGS, L-BFGS-B, CG and trust-ncg on the Moré-Garbow-Hillstrom problems of
``tests/mgh_problems.py`` (the same runs ``tests/test_curvature.py`` asserts on),
prints the tables and writes them into ``docs/curvature.md`` between the markers
``<!-- begin curvature_vs_scipy -->`` and ``<!-- end curvature_vs_scipy -->``
(``--print-only`` leaves the file alone). It exits with status 1 if a method misses
the targets: every problem scipy solves solved, evaluation ratios with geometric
mean <= 1 and none above 2 (for ``newton_cg_trust``, a comparison only).
"""

from __future__ import annotations

import pathlib
import re
import sys

from tests.mgh_problems import (
    MAX_STEPS,
    MGH,
    SCIPY_METHOD,
    TEST_SET,
    TOL,
    compare,
    our_run,
    scipy_run,
    shared_runs,
)

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "curvature.md"
BEGIN, END = "<!-- begin curvature_vs_scipy -->", "<!-- end curvature_vs_scipy -->"
METHODS = list(SCIPY_METHOD)
TARGETED = ("bfgs", "lbfgs", "conjugate_gradient")


def _cell(method: str, name: str) -> str:
    o, s = our_run(method, name), scipy_run(method, name)
    mark = "" if s.solved else " †"
    if s.solved and not o.solved:
        mark += " ‡"
    return f"{o.evals} / {s.evals} = {o.evals / s.evals:.2f}{mark}"


def tables() -> tuple[str, dict]:
    comps = {m: compare(m) for m in METHODS}
    head = "| problem | n | " + " | ".join(f"`{m}` / {SCIPY_METHOD[m][0]}" for m in METHODS) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(METHODS)]
    for name, p in MGH.items():
        lines.append(f"| {name} | {len(p.x0)} | " + " | ".join(_cell(m, name) for m in METHODS) + " |")
    lines.append(
        "| **geometric mean** (problems scipy solves) | | "
        + " | ".join(f"**{comps[m].geomean:.3f}**" for m in METHODS)
        + " |"
    )
    lines.append("| **worst ratio** | | " + " | ".join(f"**{comps[m].worst:.2f}**" for m in METHODS) + " |")
    solved = []
    for m in METHODS:
        ours = sum(our_run(m, n).solved for n in MGH)
        theirs = sum(scipy_run(m, n).solved for n in MGH)
        solved.append(f"{ours} / {theirs}")
    lines.append("| solved (ours / scipy's) | | " + " | ".join(solved) + " |")
    main = "\n".join(lines)

    # iterations, gradients, Hessian-vector products: totals over the problems both solve
    rows = [
        "| method (scipy) | iterations, ours / scipy | evaluations, ours / scipy nfev | "
        "gradients, ours / scipy njev | Hessian-vector products, ours / scipy nhev |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in METHODS:
        both = [n for n in MGH if our_run(m, n).solved and scipy_run(m, n).solved]
        t = {
            k: (sum(getattr(our_run(m, n), k) for n in both), sum(getattr(scipy_run(m, n), k) for n in both))
            for k in ("iterations", "evals", "grad_evals", "hvps")
        }
        hv = f"{t['hvps'][0]} / {t['hvps'][1]}" if m == "newton_cg_trust" else "-"
        rows.append(
            f"| `{m}` ({SCIPY_METHOD[m][0]}), {len(both)} problems | {t['iterations'][0]} / {t['iterations'][1]} | "
            f"{t['evals'][0]} / {t['evals'][1]} | {t['grad_evals'][0]} / {t['grad_evals'][1]} | {hv} |"
        )
    # the test suite's runs (one compiled program per method): where their counts differ from standalone runs
    diffs = []
    for m in TARGETED:
        shared = shared_runs(m, TEST_SET)
        c = compare(m, TEST_SET, shared)
        d = [f"{n} {shared[n].evals} (standalone {our_run(m, n).evals})" for n in TEST_SET
             if shared[n].evals != our_run(m, n).evals]  # fmt: skip
        diffs.append(
            f"`{m}`: geometric mean {c.geomean:.3f}, worst {c.worst:.2f}; "
            + ("counts as standalone" if not d else "differing: " + ", ".join(d))
        )
    test_runs = "Test-suite runs (`TEST_SET`, one compiled program per method): " + "; ".join(diffs) + "."
    return main + "\n\n" + "\n".join(rows) + "\n\n" + test_runs, comps


def main(argv: list[str]) -> int:
    text, comps = tables()
    print(f"tolerance {TOL:g}, at most {MAX_STEPS} iterations\n")
    print(text)
    ok = True
    for m in METHODS:
        c = comps[m]
        missed = c.unsolved_by_us
        print(f"{m}: geometric mean {c.geomean:.3f}, worst {c.worst:.2f}, not solved where scipy did: {missed}")
        if m in TARGETED and (c.unsolved_by_us or c.geomean > 1.0 or c.worst > 2.0):
            ok = False
    if "--print-only" not in argv:
        doc = DOC.read_text()
        block = f"{BEGIN}\n{text}\n{END}"
        new, n = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
        if n != 1:
            print(f"{DOC}: markers not found", file=sys.stderr)
            return 2
        DOC.write_text(new)
        print(f"wrote the tables into {DOC}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
