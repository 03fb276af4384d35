"""Formula tests for the blocks of adan, the optimistic methods, AdEMAMix, ADOPT, MADGRAD, noisy SGD, ASGD and SM3:
closed forms of the first steps, the papers' rules, and what the registry-driven suites cannot see (ASGD's averaged
iterate against torch.optim's `ax`, SM3 on 0-d and 1-d leaves, the noise's statistics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform.compat import torch as gxt
from tests.refs import require_torch, scan_trajectory


def _steps(tx, params, grads):
    """The updates of `tx` for the gradients `grads` (a list), applying each."""
    state, out = tx.init(params), []
    for g in grads:
        u, state = tx.update(g, state, params)
        params = gx.apply_updates(params, u)
        out.append(u)
    return out, state, params


G1, G2, G3 = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.5, 1.0, -1.0]), jnp.array([-1.5, 0.25, 2.0])
X0 = jnp.array([0.3, -0.2, 1.0])


def test_optimistic_gradient_first_step_is_alpha_g_then_extrapolates():
    (u1, u2, u3), _, _ = _steps(gx.optimistic_gradient(0.7, 0.3), X0, [G1, G2, G3])
    np.testing.assert_allclose(u1, 0.7 * G1, rtol=1e-6)  # g_0 = g_1: (a + b) g - b g = a g
    np.testing.assert_allclose(u2, 1.0 * G2 - 0.3 * G1, rtol=1e-6)
    np.testing.assert_allclose(u3, 1.0 * G3 - 0.3 * G2, rtol=1e-6)
    # alpha = beta = 1: the classic optimistic step 2 g_t - g_{t-1}
    (_, v2), _, _ = _steps(gx.optimistic_gradient_descent(0.1), X0, [G1, G2])
    np.testing.assert_allclose(v2, -0.1 * (2 * G2 - G1), rtol=1e-6)


def test_optimistic_gradient_descent_converges_on_a_bilinear_game_where_gda_spirals_out():
    """min_x max_y x*y from (1, 1): simultaneous gradient descent-ascent diverges; the optimistic step converges."""

    def run(tx):
        p = jnp.array([1.0, 1.0])
        s = tx.init(p)
        for _ in range(2000):
            x, y = p
            g = jnp.array([y, -x])  # descend in x, ascend in y
            u, s = tx.update(g, s, p)
            p = gx.apply_updates(p, u)
        return float(jnp.linalg.norm(p))

    assert run(gx.sgd(0.1)) > 10.0
    assert run(gx.optimistic_gradient_descent(0.1)) < 1e-2


def test_plus_adds_its_branches():
    tx = gx.plus(gx.scale(2.0), None, gx.chain(gx.ema(0.5), gx.scale(-1.0)))
    (u1, u2), _, _ = _steps(tx, X0, [G1, G2])
    np.testing.assert_allclose(u1, 2 * G1 + G1 - 0.5 * G1, rtol=1e-6)
    np.testing.assert_allclose(u2, 2 * G2 + G2 - (0.25 * G1 + 0.5 * G2), rtol=1e-6)
    with pytest.raises(ValueError, match="^plus: needs at least one branch"):
        gx.plus()


def test_adan_first_two_steps_closed_form():
    b1, b2, b3, eps = 0.9, 0.8, 0.95, 1e-8
    (u1, u2), state, _ = _steps(gx.scale_by_adan(b1, b2, b3, eps, 0.0), X0, [G1, G2])
    # Step 1: no difference; each moment divided by (1 - b) is the gradient itself: u = g / (|g| + eps).
    np.testing.assert_allclose(u1, G1 / (jnp.abs(G1) + eps), rtol=1e-6)
    d = G2 - G1
    m = (b1 * (1 - b1) * G1 + (1 - b1) * G2) / (1 - b1**2)
    v = (1 - b2) * d / (1 - b2**2)
    n = (b3 * (1 - b3) * G1**2 + (1 - b3) * (G2 + (1 - b2) * d) ** 2) / (1 - b3**2)
    np.testing.assert_allclose(u2, (m + (1 - b2) * v) / (jnp.sqrt(n) + eps), rtol=1e-5)
    np.testing.assert_allclose(gx.tree_get(state, "prev"), G2)


def test_previous_rms_divides_by_the_moment_before_this_gradient():
    (u1, u2, u3), state, _ = _steps(gx.scale_by_previous_rms(0.9, 1e-3), X0, [G1, G2, G3])
    np.testing.assert_allclose(u1, G1 / 1e-3, rtol=1e-6)  # nu_0 = 0: only the floor
    np.testing.assert_allclose(u2, G2 / jnp.abs(G1), rtol=1e-6)  # nu_1 = g_1^2 (b2 is 0 on the first step)
    nu2 = 0.9 * G1**2 + 0.1 * G2**2
    np.testing.assert_allclose(u3, G3 / jnp.sqrt(nu2), rtol=1e-6)
    np.testing.assert_allclose(gx.tree_get(state, "nu"), 0.9 * nu2 + 0.1 * G3**2, rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_adopt_first_update_is_zero_and_second_is_clipped(nesterov):
    (u1, u2, u3), _, _ = _steps(gx.adopt(0.1, b1=0.5, b2=0.9, nesterov=nesterov), X0, [G1, G2, G3])
    np.testing.assert_array_equal(u1, 0.0)  # the first step only fills nu
    x2 = jnp.clip(G2 / jnp.abs(G1), -1.0, 1.0)  # c_1 = 1^(1/4)
    m2 = 0.5 * x2
    np.testing.assert_allclose(u2, -0.1 * ((0.5 * m2 + 0.5 * x2) if nesterov else m2), rtol=1e-6)
    x3 = jnp.clip(G3 / jnp.sqrt(0.9 * G1**2 + 0.1 * G2**2), -(2**0.25), 2**0.25)
    m3 = 0.5 * m2 + 0.5 * x3
    np.testing.assert_allclose(u3, -0.1 * ((0.5 * m3 + 0.5 * x3) if nesterov else m3), rtol=1e-6)


def test_ema_nesterov_is_the_look_ahead():
    (u1, u2), _, _ = _steps(gx.ema(0.8, nesterov=True), X0, [G1, G2])
    m1 = 0.2 * G1
    np.testing.assert_allclose(u1, 0.8 * m1 + 0.2 * G1, rtol=1e-6)
    m2 = 0.8 * m1 + 0.2 * G2
    np.testing.assert_allclose(u2, 0.8 * m2 + 0.2 * G2, rtol=1e-6)


def test_madgrad_first_steps_closed_form_and_x0_from_the_first_update():
    lr, c, eps = 0.1, 0.9, 1e-6
    (u1, u2), state, _ = _steps(gx.madgrad(lr, momentum=c, eps=eps), X0, [G1, G2])
    lam1 = lr + eps
    z1 = X0 - lam1 * G1 / (jnp.cbrt(lam1 * G1**2) + eps)
    x1 = (1 - c) * z1 + c * X0
    np.testing.assert_allclose(u1, x1 - X0, rtol=1e-5, atol=1e-7)
    lam2 = (lr + eps) * np.sqrt(2.0)
    z2 = X0 - (lam1 * G1 + lam2 * G2) / (jnp.cbrt(lam1 * G1**2 + lam2 * G2**2) + eps)
    np.testing.assert_allclose(u2, (1 - c) * z2 + c * x1 - x1, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(gx.tree_get(state, "x0"), X0)
    # init on abstract leaves gives the same state as on the arrays: x0 is taken at the first update
    abstract = gx.madgrad(lr).init(jax.ShapeDtypeStruct(X0.shape, X0.dtype))
    assert jax.tree.structure(abstract) == jax.tree.structure(gx.madgrad(lr).init(X0))
    with pytest.raises(ValueError, match="^madgrad: update needs the parameters"):
        tx = gx.madgrad(lr)
        tx.update(G1, tx.init(X0))


def test_noise_same_key_same_noise_and_annealed_variance():
    p = jnp.zeros(200_000)
    g = jnp.zeros_like(p)
    (n1, n2, n3), _, _ = _steps(gx.add_noise(0.04, 0.5, key=7), p, [g, g, g])
    (m1, _, _), _, _ = _steps(gx.add_noise(0.04, 0.5, key=jax.random.key(7)), p, [g, g, g])
    np.testing.assert_array_equal(n1, m1)  # an integer seed and jax.random.key(seed) are the same key
    for t, n in enumerate((n1, n2, n3), start=1):
        assert abs(float(jnp.std(n)) / np.sqrt(0.04 / t**0.5) - 1) < 0.01
        assert abs(float(jnp.mean(n))) < 3 * np.sqrt(0.04 / t**0.5 / p.size) + 1e-6
    assert not np.allclose(n1, n2)  # a fresh key each step
    (o1, _), _, _ = _steps(gx.add_noise(0.04, 0.5, key=8), p, [g, g])
    assert not np.allclose(n1, o1)
    # bfloat16 parameters get the float32 noise rounded once
    (b1,), _, _ = _steps(gx.noisy_sgd(1.0, eta=0.04, key=7), p.astype(jnp.bfloat16), [g.astype(jnp.bfloat16)])
    np.testing.assert_array_equal(b1, (-n1).astype(jnp.bfloat16))


def test_noisy_sgd_bad_key_is_refused_by_name():
    with pytest.raises(TypeError, match="^noisy_sgd: key must be an integer seed or a JAX PRNG key"):
        gx.noisy_sgd(0.1, key="seven")
    with pytest.raises(TypeError, match="^noisy_sgd: key must be"):
        gx.noisy_sgd(0.1, key=1.5)
    with pytest.raises(ValueError, match="^noisy_sgd: key must be a single key"):
        gx.noisy_sgd(0.1, key=jax.random.split(jax.random.key(0), 3))


def test_asgd_average_is_the_mean_of_the_iterates_after_t0():
    t0, lr = 3.0, 0.1
    tx = gx.asgd(lr, lambd=0.0, t0=t0)
    p = X0
    state = tx.init(p)
    np.testing.assert_array_equal(gx.eval_params(state, p), p)  # before any step: the parameters
    iterates = []
    for g in [G1, G2, G3, G1, G2, G3, G1]:
        u, state = tx.update(g, state, p)
        p = gx.apply_updates(p, u)
        np.testing.assert_allclose(u, -lr * g, rtol=1e-6)  # lambd = 0: a constant step
        iterates.append(p)
        t = len(iterates)
        want = p if t <= t0 + 2 else jnp.mean(jnp.stack(iterates[int(t0) + 1 :]), axis=0)
        np.testing.assert_allclose(gx.eval_params(state, p), want, rtol=1e-6, atol=1e-7)
    # the step decays as lr / (1 + lambd lr (t - 1))^alpha, and lambd also shrinks the parameters
    (u1, u2, u3), _, _ = _steps(gx.asgd(lr, lambd=0.5, alpha=0.75), X0, [G1, G1, G1])
    theta = X0
    for t, u in enumerate((u1, u2, u3), start=1):
        eta = lr / (1 + 0.5 * lr * (t - 1)) ** 0.75
        np.testing.assert_allclose(u, -eta * (G1 + 0.5 * theta), rtol=1e-6)
        theta = theta + u


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (lambda: gx.asgd(0.02, lambd=1e-3, alpha=0.6, t0=100.0, weight_decay=1e-2), {}),
        (lambda: gxt.ASGD(lr=0.02, lambd=1e-3, alpha=0.6, t0=100.0, weight_decay=1e-2), {}),
        (lambda: gxt.ASGD(lr=0.01, t0=20.0, maximize=True), dict(lr=0.01, t0=20.0, maximize=True)),
    ],
)
def test_asgd_parameters_and_averaged_iterate_match_torch(make, kwargs):
    """300 float64 steps: the parameters and `eval_params` against torch's parameters and `state['ax']`, 1e-12."""
    torch = require_torch()
    kwargs = kwargs or dict(lr=0.02, lambd=1e-3, alpha=0.6, t0=100.0, weight_decay=1e-2)
    shapes = {"w": (3, 4), "b": (4,), "s": (), "c": (2, 3, 2)}
    rng = np.random.default_rng(0)
    init = {k: rng.normal(size=s) for k, s in shapes.items()}
    grads = [{k: rng.normal(size=s) * np.exp(rng.normal()) for k, s in shapes.items()} for _ in range(300)]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
        opt = torch.optim.ASGD(list(tp.values()), **kwargs)
        seen = []
        for g in grads:
            for k, p in tp.items():
                p.grad = torch.tensor(g[k])
            opt.step()
            seen.append(
                (
                    {k: p.detach().numpy().copy() for k, p in tp.items()},
                    {k: opt.state[p]["ax"].numpy().copy() for k, p in tp.items()},
                )
            )
    finally:
        torch.set_default_dtype(old)
    with jax.enable_x64(True):
        tx = make()
        p = jax.tree.map(jnp.asarray, init)
        state = tx.init(p)
        step = jax.jit(lambda g, s, p: tx.update(g, s, p))
        worst_p = worst_a = 0.0
        for g, (tp_t, ax_t) in zip(grads, seen):
            u, state = step(jax.tree.map(jnp.asarray, g), state, p)
            p = gx.apply_updates(p, u)
            avg = gx.eval_params(state, p)
            for k in shapes:
                worst_p = max(worst_p, float(np.max(np.abs(np.asarray(p[k]) - tp_t[k]) / (1 + np.abs(tp_t[k])))))
                worst_a = max(worst_a, float(np.max(np.abs(np.asarray(avg[k]) - ax_t[k]) / (1 + np.abs(ax_t[k])))))
    print(f"ASGD {kwargs}: parameters {worst_p:.2e}, averaged iterate {worst_a:.2e}")
    assert worst_p <= 1e-12 and worst_a <= 1e-12
    assert float(np.max(np.abs(seen[-1][1]["w"] - seen[-1][0]["w"]))) > 1e-3  # the average differs from the iterate


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: gx.adan(0.1, b3=1.0), r"^adan: b3=1.0 is out of range"),
        (lambda: gx.optimistic_gradient_descent(0.1, beta=-1.0), r"^optimistic_gradient_descent: beta=-1.0 is out"),
        (lambda: gx.optimistic_adam_v2(0.1, nesterov="yes"), r"^optimistic_adam_v2: nesterov='yes' must be True"),
        (lambda: gx.ademamix(0.1, alpha=-2.0), r"^ademamix: alpha=-2.0 is out of range"),
        (lambda: gx.adopt(0.1, clip_value_fn=3), r"^adopt: clip_value_fn must be a function"),
        (lambda: gx.madgrad(0.1, momentum=1.0), r"^madgrad: momentum=1.0 is out of range"),
        (lambda: gx.noisy_sgd(0.1, gamma=-0.5), r"^noisy_sgd: gamma=-0.5 is out of range"),
        (lambda: gx.asgd(0.1, t0=-1.0), r"^asgd: t0=-1.0 is out of range"),
        (lambda: gxt.ASGD(lambd=-1.0), r"^ASGD: lambd=-1.0 is out of range"),
    ],
)
def test_bad_arguments_are_named(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_madgrad_refuses_complex_parameters_by_name():
    tx = gx.madgrad(0.1)
    with pytest.raises(TypeError, match="^madgrad: MADGRAD is defined for real parameters only"):
        tx.init(jnp.ones(2, jnp.complex64))


def test_asgd_state_is_one_count_and_the_offset():
    p = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    state = gx.asgd(0.1).init(p)
    assert isinstance(state, gx.StepState)
    assert jax.tree.structure(gx.tree_get(state, "offset")) == jax.tree.structure(p)
    _ = scan_trajectory  # the registry suites run the 300-step trajectories


def test_polyak_step_closed_form_over_the_whole_tree():
    p = {"a": X0, "b": jnp.array([2.0, -1.0])}
    g = {"a": G1, "b": jnp.array([0.5, 0.5])}
    sq = float(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))
    tx = gx.polyak_sgd(max_learning_rate=10.0, scaling=2.0, f_min=1.0, eps=1e-3)
    u, _ = tx.update(g, tx.init(p), p, value=jnp.float32(4.0))
    step = (4.0 - 1.0) / (4.0 * sq + 1e-3)  # the norm is of the scaled direction -2 g
    for k in p:
        np.testing.assert_allclose(u[k], -2.0 * step * g[k], rtol=1e-6)
    # the cap, the sps+ clip of a negative gap, and a vanishing direction
    u, _ = gx.polyak_sgd(max_learning_rate=0.01).update(g, tx.init(p), p, value=100.0)
    np.testing.assert_allclose(u["a"], -0.01 * G1, rtol=1e-6)
    u, _ = gx.polyak_sgd(f_min=5.0, variant="sps+").update(g, tx.init(p), p, value=1.0)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))
    u, _ = gx.polyak_sgd(f_min=5.0).update(g, tx.init(p), p, value=1.0)  # sps: a negative gap steps uphill
    assert float(jnp.vdot(u["a"], G1)) > 0
    zero = jax.tree.map(jnp.zeros_like, g)
    u, _ = gx.polyak_sgd().update(zero, tx.init(p), p, value=1.0)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))


def test_polyak_sgd_needs_the_loss_and_a_known_variant():
    tx = gx.polyak_sgd()
    with pytest.raises(TypeError, match="^polyak_sgd: update needs value="):
        tx.update(G1, tx.init(X0), X0)
    with pytest.raises(ValueError, match="^polyak_sgd: value= must be a scalar loss"):
        tx.update(G1, tx.init(X0), X0, value=jnp.ones(2))
    with pytest.raises(ValueError, match=r"^polyak_sgd: variant='sps-' is not one of sps, sps\+"):
        gx.polyak_sgd(variant="sps-")


def test_polyak_sgd_solves_an_interpolating_problem_without_a_learning_rate():
    """On an interpolating least-squares problem (f* = 0) the Polyak step needs no learning rate."""
    a = jnp.array([[2.0, 0.0], [0.0, 0.5], [1.0, 1.0]])
    b = a @ jnp.array([1.0, -2.0])

    def loss(x):
        return 0.5 * jnp.sum((a @ x - b) ** 2)

    tx = gx.polyak_sgd(max_learning_rate=10.0)
    x, state = jnp.zeros(2), tx.init(jnp.zeros(2))
    for _ in range(200):
        value, g = jax.value_and_grad(loss)(x)
        u, state = tx.update(g, state, x, value=value)
        x = gx.apply_updates(x, u)
    assert float(loss(x)) < 1e-6


def _optax_sm3_lifted(b2=1.0, eps=1e-8):
    """optax's scale_by_sm3 (momentum 0), each 0-d leaf given as a 1-element vector: optax's fails on 0-d leaves."""
    import optax

    tx = optax.scale_by_sm3(b1=0.0, b2=b2, eps=eps)

    def lift(t):
        return jax.tree.map(lambda x: jnp.reshape(x, (1,)) if x.ndim == 0 else x, t)

    def run(params, grads):
        s, out = tx.init(lift(params)), []
        for g in grads:
            u, s = tx.update(lift(g), s)
            out.append(jax.tree.map(lambda a, x: jnp.reshape(a, x.shape), u, g))
        return out

    return run


@pytest.mark.parametrize("b2", [1.0, 0.9])
def test_sm3_matches_optax_on_every_leaf_kind_and_keeps_sums_of_dims(b2):
    rng = np.random.default_rng(0)
    shapes = {"m": (3, 4), "t": (2, 3, 2), "v": (5,), "s": (), "e": (0,), "z": (0, 2)}
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    grads = [{k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()} for _ in range(20)]
    ours, state, _ = _steps(gx.scale_by_sm3(b2=b2), params, grads)
    drop = lambda t: {k: v for k, v in t.items() if k != "z"}  # noqa: E731 (optax's max fails on a 0-size matrix)
    theirs = _optax_sm3_lifted(b2)(drop(params), [drop(g) for g in grads])
    for a, b in zip(ours, theirs):
        for k in b:
            np.testing.assert_allclose(a[k], b[k], rtol=2e-6, atol=1e-7)
    acc = gx.tree_get(state, "acc")
    np.testing.assert_array_equal(acc["z"], [0.0, 0.0])  # nothing accumulated over the empty axis
    assert {k: acc[k].shape for k in shapes} == {"m": (7,), "t": (7,), "v": (5,), "s": (), "e": (0,), "z": (2,)}


def test_sm3_on_0d_and_1d_leaves_is_adagrad_per_element():
    """A 0-d leaf is one cover set of one element, a 1-d leaf's slices are its elements: nu_t = sum of g^2."""
    gs = [jnp.float32(0.5), jnp.float32(-2.0), jnp.float32(1.0)]
    out, _, _ = _steps(gx.scale_by_sm3(), jnp.float32(1.0), gs)
    total = 0.0
    for g, u in zip(gs, out):
        total += float(g) ** 2
        np.testing.assert_allclose(u, float(g) / np.sqrt(total + 1e-8), rtol=1e-6)
    vs = [G1, G2, G3]
    out, _, _ = _steps(gx.scale_by_sm3(), X0, vs)
    np.testing.assert_allclose(out[2], G3 / jnp.sqrt(G1**2 + G2**2 + G3**2 + 1e-8), rtol=1e-6)


def test_sm3_matrix_second_step_uses_the_smaller_of_row_and_column_accumulators():
    g1 = jnp.array([[1.0, 3.0], [2.0, 0.5]])
    g2 = jnp.array([[0.5, -1.0], [1.0, 2.0]])
    (u1, u2), state, _ = _steps(gx.scale_by_sm3(eps=0.0), jnp.zeros((2, 2)), [g1, g2])
    np.testing.assert_allclose(u1, jnp.sign(g1), rtol=1e-6)  # the accumulators start at 0: nu_1 = g_1^2
    rows, cols = jnp.max(g1**2, axis=1), jnp.max(g1**2, axis=0)  # (9, 4) and (4, 9)
    nu2 = g2**2 + jnp.minimum(rows[:, None], cols[None, :])
    np.testing.assert_allclose(u2, g2 / jnp.sqrt(nu2), rtol=1e-6)
    np.testing.assert_allclose(gx.tree_get(state, "acc"), jnp.concatenate([nu2.max(1), nu2.max(0)]), rtol=1e-6)


def test_sm3_refuses_complex_and_foreign_states():
    with pytest.raises(TypeError, match="^scale_by_sm3: SM3 is defined for real parameters only"):
        gx.scale_by_sm3().init(jnp.ones(2, jnp.complex64))
    tx = gx.scale_by_sm3()
    with pytest.raises(
        ValueError, match=r"^scale_by_sm3: an update of shape \[2, 3\] needs accumulators of shape \[5\]"
    ):
        tx.update(jnp.ones((2, 3)), tx.init(jnp.ones((3, 2, 1))))
    with pytest.raises(ValueError, match="^scale_by_sm3: b2=0.0 is out of range"):
        gx.scale_by_sm3(b2=0.0)


def test_sm3_second_moment_state_is_the_sum_of_dimensions():
    """On a 1024 x 1024 leaf SM3's accumulators are 2048 numbers (0.008 bytes per parameter in float32), beside
    the momentum's 4; optax's sm3 keeps the same, as a list of per-axis vectors."""
    params = {"w": jax.ShapeDtypeStruct((1024, 1024), jnp.float32), "b": jax.ShapeDtypeStruct((1024,), jnp.float32)}
    state = jax.eval_shape(gx.sm3(0.1).init, params)
    acc, mu = gx.tree_get(state, "acc"), gx.tree_get(state, "mu")
    assert acc["w"].shape == (2048,) and acc["b"].shape == (1024,)
    assert acc["w"].size * acc["w"].dtype.itemsize / 1024**2 == pytest.approx(0.0078125)
    assert mu["w"].shape == (1024, 1024)
    import optax

    theirs = jax.eval_shape(optax.sm3(0.1).init, params)
    assert sum(x.size for x in jax.tree.leaves(theirs)) == sum(x.size for x in jax.tree.leaves(state))
