"""Iteration counts of gradxform's curvature methods against scipy.optimize.minimize.

Run from the repository root: ``python -m benchmarks.curvature_vs_scipy``. Prints the
markdown table that docs/curvature.md reproduces (same problems and tolerances as
tests/test_curvature.py).
"""

from __future__ import annotations

import jax
import numpy as np

from tests._problems import PROBLEMS
from tests.test_curvature import METHODS, our_result, scipy_result


def main() -> None:
    with jax.enable_x64(True):
        print("| problem | method (scipy) | ours: iters | scipy: iters | ratio | ours: max abs err | scipy: err |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for problem, (_, _, xstar) in PROBLEMS.items():
            for name, (_, sp) in METHODS.items():
                r, s = our_result(problem, name), scipy_result(problem, sp)
                err = np.max(np.abs(np.asarray(r.params) - xstar))
                serr = np.max(np.abs(s.x - xstar))
                k = int(r.num_steps)
                print(f"| {problem} | {name} ({sp}) | {k} | {s.nit} | {k / s.nit:.2f} | {err:.1e} | {serr:.1e} |")


if __name__ == "__main__":
    main()
