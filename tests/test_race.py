"""The race CLI: exact numbers on the ravine, optax parity on digits, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradxform.cli import main
from gradxform.race import make_problem, table, train

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def test_ravine_sgd_matches_closed_form_and_steps_to_target(tmp_path):
    # f = (0.1 x^2 + 10 y^2) / 2 from (-9, 1): SGD multiplies x by (1 - 0.1 lr) and y by (1 - 10 lr) per step.
    steps, lr = 300, 0.15
    code = main(["race", "--problem", "ravine", "--optimizers", "sgd", "--steps", str(steps), "--out", str(tmp_path)])
    assert code == 0
    res = json.loads((tmp_path / "results.json").read_text())["results"][0]
    t = np.arange(steps + 1)
    x, y = -9.0 * (1 - 0.1 * lr) ** t, 1.0 * (1 - 10 * lr) ** t
    exact = 0.5 * (0.1 * x**2 + 10 * y**2)
    np.testing.assert_allclose(res["final_loss"], exact[-1], rtol=1e-4)
    assert res["steps_to_target"] == int(np.flatnonzero(exact <= 1e-3)[0])  # 275
    png = (tmp_path / "race.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_momentum_beats_sgd_on_the_ravine_and_adam_escapes_the_saddle_first():
    ravine = make_problem("ravine", 0)
    sgd, mom = train(ravine, "sgd", 0.15, 300, 0), train(ravine, "momentum", 0.03, 300, 0)
    assert mom.steps_to_target < sgd.steps_to_target / 2  # 96 vs 275
    saddle = make_problem("saddle", 0)
    sgd_s, adam_s = train(saddle, "sgd", 0.05, 300, 0), train(saddle, "adam", 0.05, 300, 0)
    assert adam_s.steps_to_target < sgd_s.steps_to_target  # 27 vs 86: Adam's step does not shrink with |grad|
    np.testing.assert_allclose(adam_s.final_loss, -1.0, atol=1e-4)  # the minimum f(0, sqrt 2) = -1
    assert "never (<= 0.001)" in table([train(ravine, "sgd", 0.15, 100, 0)])


def test_digits_adam_matches_an_optax_loop_and_generalises():
    prob = make_problem("digits", 0)
    steps = 200
    ours = train(prob, "adam", 3e-3, steps, 0)

    opt = optax.adam(3e-3)
    params = prob.init(0)

    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(prob.loss)(p)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), length=steps)
    ref = np.append(np.asarray(losses), float(prob.loss(params)))
    np.testing.assert_allclose(ours.losses, ref, rtol=2e-4, atol=1e-6)
    assert ours.final_accuracy == pytest.approx(float(prob.accuracy(params)), abs=1 / 360)
    assert ours.final_accuracy > 0.93  # 360 held-out digits
    assert prob.extra == {"n_train": 1437, "n_test": 360}


@pytest.mark.parametrize(
    "args, says",
    [
        (["race", "--optimizers", "sgd,no_such_optimizer"], "unknown optimizer 'no_such_optimizer'"),
        (["race", "--steps", "-5"], "-5 must be a positive integer"),
        (["race", "--steps", "ten"], "'ten' is not an integer"),
        (["race", "--problem", "beale"], "unknown problem 'beale'"),
        (["race", "--lr", "-1"], "-1 must be a positive finite number"),
        (["race", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "choose a command: race"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args, says, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and err.startswith("gradxform")


def test_unwritable_out_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["race", "--problem", "ravine", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a writable folder" in err
    assert not os.path.exists(blocker / "sub")


def test_python_dash_m_prints_no_traceback():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", "gradxform", "race", "--optimizers", "nope"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stdout == ""


def test_learning_rate_table_covers_every_problem_and_optimizer():
    from gradxform.race import DEFAULT_FIELD, PROBLEM_NAMES, learning_rate, raceable

    assert set(DEFAULT_FIELD) <= set(raceable())
    for name in raceable():
        for problem in PROBLEM_NAMES:
            assert learning_rate(problem, name) > 0
    assert jnp.isfinite(make_problem("rosenbrock", 0).loss(jnp.array([1.0, 1.0]))) and float(
        make_problem("rosenbrock", 0).loss(jnp.array([1.0, 1.0]))
    ) == pytest.approx(0.0)
