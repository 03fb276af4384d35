"""Executes each notebook in notebooks/ (nbclient) and checks its key claims from outside.

The notebooks are stored with their outputs (written and executed by `tools/make_notebooks.py`).
Each one ends by building a `claims` dict and asserting on it; this test checks that the stored
cells are the ones the tool writes, executes the notebook again (with a cell that prints `claims`
as JSON), checks that the claims and the number of figures stored in the notebook (and copied to
`docs/figures/notebooks/` for the site) are current, and asserts the same claims again, so a
notebook whose asserts were weakened still fails here.
"""

from __future__ import annotations

import base64
import pathlib
import sys

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "tools"))
import make_notebooks  # noqa: E402

REGENERATE = "stale: run python tools/make_notebooks.py"


def close(fresh, stored, path="claims"):
    """Claims equal up to float noise: the same keys, ints and strings exact, floats to 1e-4."""
    if isinstance(stored, dict):
        assert isinstance(fresh, dict) and set(fresh) == set(stored), f"{path}: keys differ; {REGENERATE}"
        for k in stored:
            close(fresh[k], stored[k], f"{path}[{k!r}]")
    elif isinstance(stored, list):
        assert isinstance(fresh, list) and len(fresh) == len(stored), f"{path}: lengths differ; {REGENERATE}"
        for i, (a, b) in enumerate(zip(fresh, stored)):
            close(a, b, f"{path}[{i}]")
    elif isinstance(stored, float):
        np.testing.assert_allclose(fresh, stored, rtol=1e-4, atol=1e-12, err_msg=f"{path}: {REGENERATE}")
    else:
        assert fresh == stored, f"{path}: {fresh!r} != stored {stored!r}; {REGENERATE}"


def execute(name: str) -> dict:
    stored = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    written = make_notebooks.build(name)
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in written.cells], (
        f"{name}: the stored cells are not tools/make_notebooks.py's; {REGENERATE}"
    )
    stored_figures = make_notebooks.figures(stored)
    assert stored_figures, f"{name}: stored without outputs (no figure); {REGENERATE}"
    for k, png in enumerate(stored_figures):
        path = make_notebooks.figure_path(name, k)
        assert path.exists() and path.read_bytes() == png, f"{path.name}: not figure {k + 1}; {REGENERATE}"
    assert not make_notebooks.figure_path(name, len(stored_figures)).exists(), f"{name}: a figure too many"
    fresh, claims = make_notebooks.execute(written, timeout=300)
    assert len(make_notebooks.figures(fresh)) == len(stored_figures), f"{name}: figure count changed; {REGENERATE}"
    close(claims, stored.metadata["gradxform"]["claims"])
    for png in make_notebooks.figures(fresh):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(base64.b64encode(png)) > 1000
    return claims


def test_01_pathological_curvature():
    c = execute("01_pathological_curvature")
    assert c["flips_sgd"] >= 50 and c["flips_momentum"] <= c["flips_sgd"] // 5
    assert c["steps_momentum"] < c["steps_sgd"] / 2
    assert c["ema_shrink_y"] < 0.1 and c["ema_shrink_x"] > 0.5
    np.testing.assert_allclose(c["rmsprop_first_step"], [0.03 / np.sqrt(0.1)] * 2, rtol=1e-5)


def test_02_ewa_bias_correction():
    c = execute("02_ewa_bias_correction")
    np.testing.assert_allclose(c["first_raw"], 0.02 * c["theta_1"], rtol=1e-5)
    np.testing.assert_allclose(c["first_corrected"], c["theta_1"], rtol=1e-5)
    assert c["err_corrected_early"] < c["err_raw_early"] / 3
    np.testing.assert_allclose(c["late_gap"], 0.98**200, rtol=1e-3)


def test_03_adagrad_vanishing_lr():
    c = execute("03_adagrad_vanishing_lr")
    ts = np.array([1, 10, 100, 1000])
    np.testing.assert_allclose(c["adagrad"], 0.1 / np.sqrt(0.1 + ts + 1e-7), rtol=1e-5)
    np.testing.assert_allclose(c["rmsprop"], 0.1 / (np.sqrt(1 - 0.9**ts) + 1e-8), rtol=1e-5)
    assert (
        c["adadelta"][0] < c["adadelta"][1] < c["adadelta"][2] < c["adadelta"][3]
        and c["adadelta"][3] > 3 * c["adadelta"][0]
    )
    assert c["reach"]["Adagrad"] < 40 and abs(c["reach"]["RMSProp"] - 50) < 1


def test_04_digits_experiment():
    c = execute("04_digits_experiment")
    sgd, mom, adam = c["SGD (lr 0.01)"], c["SGD + momentum (lr 0.01)"], c["Adam (lr 0.001)"]
    decayed = c["SGD + momentum + decay (lr0 1)"]
    assert adam["loss"] < mom["loss"] / 2 and adam["loss"] < sgd["loss"] / 2
    assert abs(mom["loss"] - sgd["loss"]) < 0.25 * sgd["loss"]
    assert decayed["loss"] <= adam["loss"] and decayed["acc"] >= adam["acc"] - 0.01


def test_05_lr_momentum_sweep():
    c = execute("05_lr_momentum_sweep")
    np.testing.assert_allclose(c["lr_star"], 4 / (np.sqrt(10) + np.sqrt(0.1)) ** 2, rtol=1e-12)
    assert 0.5 * c["lr_star"] <= c["best_lr"] <= 2 * c["lr_star"] and abs(c["best_beta"] - c["beta_star"]) <= 0.2
    np.testing.assert_allclose(c["single_run"], c["best_loss"], rtol=1e-3, atol=1e-30)
    assert c["best_loss"] < 1e-6 * c["sgd_best"]


def test_06_curvature_vs_first_order():
    c = execute("06_curvature_vs_first_order")
    assert set(c["second_order_steps"]) == {
        "Newton (damped)",
        "Newton-CG",
        "BFGS",
        "L-BFGS (m=10)",
        "CG (Polak-Ribiere+)",
    }
    assert max(c["second_order_error"].values()) < 1e-6 and max(c["second_order_steps"].values()) < 100
    first = [k for k in c["first_order_steps_1e-3"].values() if k is not None]
    assert first and min(first) > 4 * max(c["second_order_steps"].values())
