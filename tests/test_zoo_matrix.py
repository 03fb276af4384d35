"""Matrix-aware optimizers: Muon's blocks and leaf routing (and torch.optim's Muon); their formulas and errors.

The registry suites cover parity over 300 steps, low precision, properties, jit/vmap/grad, inject,
checkpoints and sharding; this file tests what is new: the Newton-Schulz iteration's algebra, which
leaves Muon takes and how (dimension numbers), and the errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import MuonDimensionNumbers as OD

import gradxform as gx
from gradxform.blocks.orthogonal import NS_COEFFS, as_matrices, newton_schulz
from tests.refs import rel_err

D = gx.MuonDimensionNumbers


def _quintic(s, steps=5, coeffs=NS_COEFFS):
    a, b, c = coeffs
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return s


@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (16, 16), (40, 9)])
def test_newton_schulz_keeps_singular_vectors_and_maps_singular_values_by_the_quintic(shape):
    """NS(M) = U p(S / |M|_F) V^T: the scalar quintic applied to each singular value (float64, 1e-10)."""
    with jax.enable_x64(True):
        m = np.random.default_rng(0).normal(size=shape)
        out = np.asarray(newton_schulz(jnp.asarray(m), jnp.asarray([NS_COEFFS] * 5), eps=0.0))
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        want = u @ np.diag(_quintic(s / np.linalg.norm(m))) @ vt
        np.testing.assert_allclose(out, want, atol=1e-10)
        # optax's coefficients put every singular value in a band around 1 (not exactly 1)
        sv = np.linalg.svd(out, compute_uv=False)
        assert sv.min() > 0.6 and sv.max() < 1.25, sv
        # and it is optax's iteration
        ref = optax.contrib._muon.orthogonalize_via_newton_schulz(jnp.asarray(m), jnp.asarray(NS_COEFFS), 5, eps=0.0)
        np.testing.assert_allclose(out, np.asarray(ref), rtol=1e-12, atol=1e-14)


def test_orthogonal_input_keeps_its_direction_up_to_the_fixed_point():
    """An orthogonal Q has one singular value, 1/sqrt(n) after the normalization: NS(Q) = p(1/sqrt(n)) Q."""
    with jax.enable_x64(True):
        q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
        out = np.asarray(newton_schulz(jnp.asarray(q), jnp.asarray([NS_COEFFS] * 5), eps=0.0))
        scale = _quintic(1 / np.sqrt(8))
        np.testing.assert_allclose(out, scale * q, atol=1e-12)
        assert 0.6 < scale < 1.25
        # many more steps: the iteration's fixed points are where p(s) = s; Q only changes scale
        many = np.asarray(newton_schulz(jnp.asarray(q), jnp.asarray([NS_COEFFS] * 50), eps=0.0))
        np.testing.assert_allclose(many / many[0, 0] * q[0, 0], q, atol=1e-10)
        fixed = _quintic(1 / np.sqrt(8), steps=50)
        assert abs(_quintic(fixed, 2) - fixed) < 0.6  # it cycles in the band, it does not converge to 1
        # with classic Newton-Schulz coefficients (1.5, -0.5, 0) the fixed point is exactly 1: Q itself
        exact = np.asarray(newton_schulz(jnp.asarray(q), jnp.asarray([(1.5, -0.5, 0.0)] * 40), eps=0.0))
        np.testing.assert_allclose(exact, q, atol=1e-10)


def test_dimension_numbers_reshape_to_stacks_of_matrices():
    x = jnp.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    stack, back = as_matrices(x, D((0, 1, 2), 3))  # a conv kernel (h, w, c_in, c_out)
    assert stack.shape == (1, 24, 5)
    np.testing.assert_array_equal(back(stack), x)
    stack, back = as_matrices(x, D(1, 3))  # batch axes 0 and 2
    assert stack.shape == (8, 3, 5)
    np.testing.assert_array_equal(back(stack), x)
    np.testing.assert_array_equal(stack[1], x[0, :, 1, :])


def _real_tree(dtype=jnp.float64, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"dense": (6, 4), "tall": (9, 2), "stacked": (3, 4, 5), "conv": (3, 3, 2, 4), "bias": (4,), "s": ()}
    return {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in shapes.items()}


def _dims(cls):
    def fn(p):
        table = {"dense": cls(), "tall": cls(), "stacked": cls(1, 2), "conv": cls((0, 1, 2), 3)}
        return {k: table.get(k) for k in p}

    return fn


def _run(tx, params, steps=20, seed=3):
    rng = np.random.default_rng(seed)
    p, s = params, tx.init(params)
    step = jax.jit(tx.update)
    for _ in range(steps):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), p)
        u, s = step(g, s, p)
        p = gx.apply_updates(p, u)
    return p, s


def test_muon_on_a_real_tree_dense_tall_stacked_conv_and_vectors_matches_optax():
    """Stacked layers (1, 2) and a conv kernel ((0, 1, 2), 3) by dimension numbers, the rest AdamW: optax's
    numbers (float64, 1e-12), and the routing is what the dimension numbers say."""
    with jax.enable_x64(True):
        params = _real_tree()
        kw = dict(learning_rate=0.02, weight_decay=0.05, adam_learning_rate=0.003)
        p1, s1 = _run(gx.muon(**kw, muon_weight_dimension_numbers=_dims(D)), params)
        p2, s2 = _run(optax.contrib.muon(**kw, muon_weight_dimension_numbers=_dims(OD)), params)
        assert rel_err(p1, p2) <= 1e-12
        nu = gx.tree_get(s1, "nu")  # AdamW's second moment: only on the leaves Muon does not take
        assert {k for k, v in nu.items() if v is not None} == {"bias", "s"}
        mu_muon = gx.tree_get(s1, "muon")  # the Muon branch's momentum, beside optax's MuonState.mu
        theirs = s2.inner_states["muon"].inner_state[0].mu
        for k in ("dense", "tall", "stacked", "conv"):
            np.testing.assert_allclose(mu_muon.mu[k], theirs[k], rtol=1e-12, atol=1e-15)
        # By default (no dimension numbers) only the 2-d leaves are matrices; the stacked and conv go to AdamW.
        _, s3 = _run(gx.muon(0.02), params, steps=1)
        nu = gx.tree_get(s3, "nu")
        assert {k for k, v in nu.items() if v is not None} == {"stacked", "conv", "bias", "s"}


def test_a_stacked_leaf_is_each_layer_orthogonalized_on_its_own():
    with jax.enable_x64(True):
        g = jnp.asarray(np.random.default_rng(4).normal(size=(3, 4, 5)))
        tx = gx.orthogonalize(dimension_numbers=D(1, 2))
        out, _ = tx.update({"w": g}, tx.init({"w": g}))
        for i in range(3):
            alone, _ = gx.orthogonalize().update({"w": g[i]}, gx.orthogonalize().init({"w": g[i]}))
            np.testing.assert_allclose(out["w"][i], alone["w"], rtol=1e-13, atol=1e-15)


def test_vector_leaves_take_adamw_with_their_own_learning_rate():
    """Where no leaf is a matrix (the race's 2-d surfaces), Muon is optax's AdamW with Nesterov (NAdamW);
    a zero Muon learning rate leaves the matrices where they are."""
    with jax.enable_x64(True):
        params = {"v": jnp.asarray([1.0, -2.0]), "b": jnp.asarray([0.5, 0.1, 0.3])}
        p1, _ = _run(gx.muon(0.02, adam_learning_rate=0.1, adam_weight_decay=0.01), params)
        p2, _ = _run(optax.adamw(0.1, eps=1e-8, weight_decay=0.01, nesterov=True), params)
        assert rel_err(p1, p2) <= 1e-13
        params = _real_tree()
        p3, _ = _run(gx.muon(0.0, adam_learning_rate=0.1), params, steps=3)
        np.testing.assert_array_equal(p3["dense"], params["dense"])
        assert not np.allclose(p3["bias"], params["bias"])


def test_width_and_rms_scaling():
    g = {"w": jnp.asarray(np.random.default_rng(5).normal(size=(2, 8)), jnp.float32)}
    out, _ = gx.scale_by_shape().update(g, gx.scale_by_shape().init(g))
    np.testing.assert_allclose(out["w"], 2.0 * g["w"], rtol=1e-6)  # sqrt(max(1, 8 / 2))
    out, _ = gx.scale_by_shape(consistent_rms=0.2).update(g, gx.scale_by_shape().init(g))
    np.testing.assert_allclose(out["w"], 0.2 * np.sqrt(8.0) * g["w"], rtol=1e-6)


# bad arguments of muon (tested below, with soap's): each refused by name
MUON_BAD = [
    (lambda: gx.muon(0.02, ns_steps=0), r"^muon: ns_steps=0 must be an int >= 1"),
    (lambda: gx.muon(0.02, ns_coeffs=(1.0, 2.0)), r"^muon: ns_coeffs=\(1.0, 2.0\) must be three finite numbers"),
    (lambda: gx.muon(0.02, ns_coeffs="polar"), r"^muon: ns_coeffs='polar' is not a preset"),
    (lambda: gx.muon(0.02, ns_coeffs=gx.blocks.orthogonal.DION_NS_COEFFS, ns_steps=6), r"^muon: ns_coeffs has 5"),
    (lambda: gx.muon(0.02, preconditioning="svd"), r"^muon: preconditioning='svd' is not one of"),
    (lambda: gx.muon(0.02, beta=1.0), r"^muon: beta=1.0 is out of range; allowed: \[0, 1\)"),
    (lambda: gx.muon(-1.0), r"^muon: learning_rate=-1.0 is out of range"),
    (lambda: gx.muon(0.02, adam_learning_rate=-1.0), r"^muon: adam_learning_rate=-1.0 is out of range"),
    (lambda: gx.muon(0.02, consistent_rms=0.0), r"^muon: consistent_rms=0.0 is out of range"),
    (lambda: gx.muon(0.02, nesterov="yes"), r"^muon: nesterov='yes' must be True or False"),
]


def test_bad_dimension_numbers_are_refused_at_init_and_change_nothing():
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(4)}
    with pytest.raises(ValueError, match=r"^muon: a leaf of shape \(4,\) has dimension numbers"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(), "b": D()}).init(params)
    with pytest.raises(ValueError, match=r"^muon: dimension numbers .* do not fit a leaf of shape \(3, 4\)"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(0, 2), "b": None}).init(params)
    with pytest.raises(ValueError, match=r"^muon: dimension numbers .* repeat an axis"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(0, 0), "b": None}).init(params)
    with pytest.raises(ValueError, match=r"^muon: muon_weight_dimension_numbers does not match"):
        gx.muon(0.02, muon_weight_dimension_numbers={"w": D(), "x": None}).init(params)
    # a bad update (gradients of another shape) is refused before anything is computed; the state still works
    tx = gx.muon(0.02)
    state = tx.init(params)
    before = jax.tree.map(np.asarray, state)
    with pytest.raises(ValueError, match=r"^muon: "):
        tx.update({"w": jnp.ones((4, 3)), "b": jnp.ones(4)}, state, params)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


def test_flat_params_are_refused_by_name():
    flat = gx.flatten_params({"w": jnp.ones((3, 4)), "b": jnp.ones(4)})
    with pytest.raises(TypeError, match=r"^muon: this transform looks at whole leaves"):
        gx.muon(0.02).init(flat)


def test_torch_muon_newton_schulz_is_torchs_bit_for_bit():
    """The bfloat16 iteration, products accumulated in float32 and addmm fused, on 300 small matrices (x64)."""
    torch = pytest.importorskip("torch")
    from torch.optim._muon import _zeropower_via_newtonschulz

    from gradxform.compat.torch.optimizers import _bf16_newton_schulz

    rng = np.random.default_rng(6)
    with jax.enable_x64(True):
        for i in range(300):
            m = rng.normal(size=[(3, 4), (6, 2), (4, 4), (5, 3), (2, 7)][i % 5]) * np.exp(rng.normal())
            ref = _zeropower_via_newtonschulz(torch.tensor(m), NS_COEFFS, 5, 1e-7).float().numpy()
            ours = np.asarray(_bf16_newton_schulz(jnp.asarray(m), NS_COEFFS, 5, jnp.asarray(1e-7)).astype(jnp.float32))
            np.testing.assert_array_equal(ours, ref)


def test_torch_muon_refuses_what_torch_refuses():
    from gradxform.compat import torch as gxt

    with pytest.raises(ValueError, match=r"^Muon: torch.optim.Muon only supports 2-d parameters; the leaf at \['b'\]"):
        gxt.Muon().init({"w": jnp.ones((3, 4)), "b": jnp.ones(4)})
    with pytest.raises(ValueError, match=r"^Muon: adjust_lr_fn='rms' is not supported"):
        gxt.Muon(adjust_lr_fn="rms")
    with pytest.raises(ValueError, match=r"^Muon: ns_steps=100 must be less than 100"):
        gxt.Muon(ns_steps=100)
    with pytest.raises(ValueError, match=r"^Muon: ns_coefficients must be a tuple of exactly 3 values"):
        gxt.Muon(ns_coefficients=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"^Muon: momentum=-0.5 is out of range"):
        gxt.Muon(momentum=-0.5)
    with pytest.raises(TypeError, match=r"^Muon: this transform looks at whole leaves"):
        gxt.Muon().init(gx.flatten_params({"w": jnp.ones((3, 4))}))


def test_muon_state_checkpoints_and_resumes_bitwise(tmp_path):
    from gradxform.io import checkpoint

    params = _real_tree(jnp.float32)
    tx = gx.muon(0.02, muon_weight_dimension_numbers=_dims(D))
    rng = np.random.default_rng(7)
    grads = [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), params) for _ in range(6)]
    step = jax.jit(tx.update)

    def run(p, s, gs):
        for g in gs:
            u, s = step(g, s, p)
            p = gx.apply_updates(p, u)
        return p, s

    p_full, s_full = run(params, tx.init(params), grads)
    p3, s3 = run(params, tx.init(params), grads[:3])
    checkpoint.save(tmp_path / "muon.ckpt", {"params": p3, "opt_state": s3})
    restored = checkpoint.restore(tmp_path / "muon.ckpt", jax.eval_shape(lambda: {"params": params, "opt_state": s3}))
    p_res, s_res = run(restored["params"], restored["opt_state"], grads[3:])
    for a, b in zip(jax.tree.leaves((p_full, s_full)), jax.tree.leaves((p_res, s_res))):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------------------
# SOAP: Adam in the eigenbasis of Shampoo's factors.


def _soap_numpy(
    params, grads, lr, b1, b2, bs, eps, wd, f, max_dim=10000, precondition_1d=False, normalize=False, correct_bias=True
):
    """SOAP as the paper's Algorithm 3 writes it, in NumPy float64, one leaf at a time.

    The momentum M is kept in the original space and rotated each step (M' = Q_L^T M Q_R); V lives in the
    rotated space. The first step only gathers L, R and takes their eigenvectors (decreasing eigenvalues);
    Adam's steps k = t - 1 follow; after step k with k % f == 0 each basis is sorted by diag(Q^T P Q)
    (V re-ordered with it) and refreshed by one power step, QR(P Q). Leaves of rank >= 2 are the matrix
    (prod(shape[:-1]), shape[-1]); vectors have a left factor only with `precondition_1d`; scalars none.
    Returns the updates of every step.
    """
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    st = {}
    for k, v in p.items():
        shape = v.shape
        if v.ndim == 0:
            m = n = None
        elif v.ndim == 1:
            m, n = (shape[0] if precondition_1d and shape[0] <= max_dim else None), None
        else:
            rows = int(np.prod(shape[:-1]))
            m, n = (rows if rows <= max_dim else None), (shape[-1] if shape[-1] <= max_dim else None)
        st[k] = dict(
            m=m,
            n=n,
            L=None if m is None else np.zeros((m, m)),
            R=None if n is None else np.zeros((n, n)),
            QL=None,
            QR=None,
            M=np.zeros(shape),
            V=np.zeros(shape),
        )
    out = []
    for t, g in enumerate(grads, start=1):
        upd = {}
        for key, G in g.items():
            s = st[key]
            X = (
                np.array(G, np.float64).reshape(-1, 1)
                if G.ndim < 2
                else np.array(G, np.float64).reshape(-1, G.shape[-1])
            )
            shape = np.shape(G)

            def rot(A, s=s):
                A = A if s["QL"] is None else s["QL"].T @ A
                return A if s["QR"] is None else A @ s["QR"]

            def back(A, s=s):
                A = A if s["QL"] is None else s["QL"] @ A
                return A if s["QR"] is None else A @ s["QR"].T

            if t == 1:
                N = np.zeros(shape)
            else:
                k = t - 1
                Gp = rot(X)
                s["M"] = b1 * s["M"] + (1 - b1) * X.reshape(shape)
                Mp = rot(s["M"].reshape(X.shape))
                s["V"] = b2 * s["V"] + (1 - b2) * (Gp * Gp).reshape(shape)
                V = s["V"].reshape(X.shape)
                if correct_bias:
                    Np = (Mp / (1 - b1**k)) / (np.sqrt(V / (1 - b2**k)) + eps)
                else:
                    Np = Mp / (np.sqrt(V) + eps)
                N = back(Np).reshape(shape)
                if normalize:
                    N = N / (1e-30 + np.sqrt(np.mean(N**2)))
            upd[key] = -lr * (N + wd * p[key])
            if s["L"] is not None:
                s["L"] = bs * s["L"] + (1 - bs) * X @ X.T
            if s["R"] is not None:
                s["R"] = bs * s["R"] + (1 - bs) * X.T @ X
            if t == 1:
                s["QL"] = None if s["L"] is None else np.linalg.eigh(s["L"])[1][:, ::-1]
                s["QR"] = None if s["R"] is None else np.linalg.eigh(s["R"])[1][:, ::-1]
            elif (t - 1) % f == 0:
                V = s["V"].reshape(X.shape)
                for side in ("L", "R"):
                    P, Q = s[side], s["Q" + side]
                    if P is None:
                        continue
                    order = np.argsort(-np.diag(Q.T @ P @ Q), kind="stable")
                    V = V[order, :] if side == "L" else V[:, order]
                    s["Q" + side] = np.linalg.qr(P @ Q[:, order])[0]
                s["V"] = V.reshape(shape)
        for key in p:
            p[key] = p[key] + upd[key]
        out.append(upd)
    return out


def _soap_tree(seed=0):
    rng = np.random.default_rng(seed)
    # (5, 4) and (3, 4): after the first step L (or R) has one zero eigenvalue, whose eigenvector is then
    # unique up to its sign, so the basis the updates depend on is the same in NumPy and in JAX
    shapes = {"w": (5, 4), "u": (3, 4), "v": (2,), "s": ()}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    grads = [{k: rng.normal(size=s) * (1 + 0.5 * np.sin(t)) for k, s in shapes.items()} for t in range(50)]
    return params, grads


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(precondition_1d=True, normalize_grads=True, correct_bias=False, max_precond_dim=4),
    ],
    ids=["adam-inside", "1d-normalized-uncorrected-capped"],
)
def test_soap_matches_a_numpy_transcription_of_algorithm_3_over_50_steps(kwargs):
    """Every update of 50 steps (refreshes every 10) within 1e-9 of the NumPy float64 transcription."""
    lr, b1, b2, bs, eps, wd, f = 0.05, 0.9, 0.99, 0.97, 1e-8, 0.05, 10
    params, grads = _soap_tree()
    want = _soap_numpy(
        params,
        grads,
        lr,
        b1,
        b2,
        bs,
        eps,
        wd,
        f,
        max_dim=kwargs.get("max_precond_dim", 10000),
        precondition_1d=kwargs.get("precondition_1d", False),
        normalize=kwargs.get("normalize_grads", False),
        correct_bias=kwargs.get("correct_bias", True),
    )
    with jax.enable_x64(True):
        tx = gx.soap(lr, b1=b1, b2=b2, shampoo_beta=bs, eps=eps, weight_decay=wd, precondition_frequency=f, **kwargs)
        p = {k: jnp.asarray(v) for k, v in params.items()}
        state = tx.init(p)
        step = jax.jit(tx.update)
        worst = 0.0
        for t, g in enumerate(grads):
            u, state = step({k: jnp.asarray(v) for k, v in g.items()}, state, p)
            p = gx.apply_updates(p, u)
            for k in u:
                got, ref = np.asarray(u[k]), want[t][k]
                err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
                worst = max(worst, err)
                assert err < 1e-9, (t, k, err)
        assert 0 < worst < 1e-9
        # the state: the rotated second moment is basis-dependent only through the eigenvectors' order
        assert int(gx.tree_get(state, "count")) == 50


def test_eigenbasis_of_diagonal_statistics_is_the_identity():
    """Diagonal L, R with distinct decreasing entries: the first basis is I up to signs, and a power step keeps it."""
    from gradxform.blocks.eigenbasis import power_step, rotate, singular_bases

    with jax.enable_x64(True):
        # a first gradient with distinct decreasing entries on its diagonal: L = (1-b) G G^T and R = (1-b) G^T G are
        # diagonal, decreasing (L's last entry is its kernel, 0)
        g = jnp.zeros((4, 3)).at[jnp.arange(3), jnp.arange(3)].set(jnp.asarray([3.0, 2.0, -1.0]))
        q_l, q_r = singular_bases(g)
        np.testing.assert_allclose(np.abs(np.asarray(q_l)), np.eye(4), atol=1e-15)
        np.testing.assert_allclose(np.abs(np.asarray(q_r)), np.eye(3), atol=1e-15)
        # the optimizer's state after its first step holds that basis
        tx = gx.soap(0.1)
        _, state = tx.update({"w": g}, tx.init({"w": g}), {"w": g})
        np.testing.assert_allclose(np.abs(np.asarray(gx.tree_get(state, "q_l")["w"])), np.eye(4), atol=1e-15)
        np.testing.assert_allclose(np.abs(np.asarray(gx.tree_get(state, "q_r")["w"])), np.eye(3), atol=1e-15)
        np.testing.assert_allclose(np.asarray(gx.tree_get(state, "l")["w"]), 0.05 * np.diag([9.0, 4.0, 1.0, 0.0]))
        # increasing entries: the basis is the reversed identity (eigenvalues in decreasing order)
        q_l, _ = singular_bases(jnp.diag(jnp.asarray([1.0, 2.0, 3.0])))
        np.testing.assert_allclose(np.abs(np.asarray(q_l)), np.eye(3)[:, ::-1], atol=1e-15)
        # a power step from the eigenbasis keeps it; from a shuffled one it sorts it back (the order that re-orders V)
        d = jnp.diag(jnp.asarray([5.0, 3.0, 2.0, 0.5]))
        new, order = power_step(d, jnp.eye(4))
        np.testing.assert_array_equal(np.asarray(order), np.arange(4))
        np.testing.assert_allclose(np.abs(np.asarray(new)), np.eye(4), atol=1e-15)
        new, order = power_step(d, jnp.eye(4)[:, [2, 0, 3, 1]])
        np.testing.assert_array_equal(np.asarray(order), [1, 3, 0, 2])
        np.testing.assert_allclose(np.abs(np.asarray(new)), np.eye(4), atol=1e-15)
        # rotation by (signed) identities changes at most signs
        g = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
        ql, qr = jnp.diag(jnp.asarray([1.0, -1, 1, -1])), jnp.diag(jnp.asarray([-1.0, 1, 1]))
        np.testing.assert_allclose(np.abs(np.asarray(rotate(g, ql, qr))), np.abs(np.asarray(g)), atol=0)


def test_soap_with_fixed_singular_vectors_keeps_a_diagonal_second_moment():
    """G_t = U diag(s_t) V^T, f = 1: the basis stays (U, V) up to order and signs, V is diagonal and holds the
    moving average of s_t^2, and each update is U diag(m_hat / (sqrt(v_hat) + eps)) V^T."""
    rng = np.random.default_rng(4)
    # eps well above the rounding noise off the diagonal of G' (1e-16): noise / eps stays below 1e-12
    m, n, b1, b2, eps, lr = 5, 4, 0.9, 0.95, 1e-3, 0.1
    u_mat = np.linalg.qr(rng.normal(size=(m, n)))[0]
    v_mat = np.linalg.qr(rng.normal(size=(n, n)))[0]
    base = np.array([4.0, 3.0, 2.0, 1.0])
    svals = [base * (1 + 0.1 * rng.uniform(size=n)) for _ in range(12)]
    with jax.enable_x64(True):
        tx = gx.soap(lr, b1=b1, b2=b2, eps=eps, weight_decay=0.0, precondition_frequency=1)
        p = {"w": jnp.zeros((m, n))}
        state = tx.init(p)
        step = jax.jit(tx.update)
        mu, nu = np.zeros(n), np.zeros(n)
        for t, s in enumerate(svals, start=1):
            g = {"w": jnp.asarray(u_mat @ np.diag(s) @ v_mat.T)}
            upd, state = step(g, state, p)
            if t == 1:
                np.testing.assert_array_equal(np.asarray(upd["w"]), 0.0)
                continue
            k = t - 1
            mu, nu = b1 * mu + (1 - b1) * s, b2 * nu + (1 - b2) * s**2
            want = -lr * u_mat @ np.diag((mu / (1 - b1**k)) / (np.sqrt(nu / (1 - b2**k)) + eps)) @ v_mat.T
            np.testing.assert_allclose(np.asarray(upd["w"]), want, atol=1e-10)
            v_rot = np.asarray(gx.tree_get(state, "nu")["w"])
            want_v = np.zeros((m, n))
            want_v[np.arange(n), np.arange(n)] = nu  # s stays sorted: the order of the basis; row m - 1 is L's kernel
            np.testing.assert_allclose(v_rot, want_v, rtol=1e-10, atol=1e-20)


def test_soap_with_identity_bases_is_adamw_one_step_late():
    """No factors (max_precond_dim=0): the first step only decays, then the steps are AdamW's on g_2, g_3, ..."""
    params, grads = _soap_tree(seed=5)
    with jax.enable_x64(True):
        p = {k: jnp.asarray(v) for k, v in params.items()}
        gs = [{k: jnp.asarray(v) for k, v in g.items()} for g in grads[:15]]
        kw = dict(b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.05)
        tx = gx.soap(0.05, max_precond_dim=0, **kw)
        state = tx.init(p)
        u, state = tx.update(gs[0], state, p)
        for k in p:
            np.testing.assert_allclose(np.asarray(u[k]), -0.05 * 0.05 * np.asarray(p[k]), rtol=1e-14)
        p = gx.apply_updates(p, u)
        ref = gx.adamw(0.05, **kw)
        ref_state = ref.init(p)
        for g in gs[1:]:
            u, state = tx.update(g, state, p)
            v, ref_state = ref.update(g, ref_state, p)
            assert rel_err(u, v) < 1e-14
            p = gx.apply_updates(p, u)
        np.testing.assert_allclose(
            np.asarray(gx.tree_get(state, "mu")["w"]), np.asarray(gx.tree_get(ref_state, "mu")["w"])
        )


SOAP_BAD = [
    (lambda: gx.soap(-1.0), r"^soap: learning_rate=-1.0 is out of range"),
    (lambda: gx.soap(1e-3, b1=1.0), r"^soap: b1=1.0 is out of range; allowed: \[0, 1\)"),
    (lambda: gx.soap(1e-3, shampoo_beta=1.5), r"^soap: shampoo_beta=1.5 is out of range"),
    (lambda: gx.soap(1e-3, precondition_frequency=0), r"^soap: precondition_frequency=0 must be an int >= 1"),
    (lambda: gx.soap(1e-3, precondition_frequency=2.5), r"^soap: precondition_frequency=2.5 must be an int"),
    (lambda: gx.soap(1e-3, max_precond_dim=-1), r"^soap: max_precond_dim=-1 must be an int >= 0"),
    (lambda: gx.soap(1e-3, precondition_1d="yes"), r"^soap: precondition_1d='yes' must be True or False"),
    (lambda: gx.soap(1e-3, mu_dtype="int8"), r"^soap: mu_dtype="),
]


@pytest.mark.parametrize("build, match", MUON_BAD + SOAP_BAD)
def test_bad_arguments_are_refused_by_name(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_soap_bad_input_is_refused_by_name_and_changes_nothing():
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(4)}
    with pytest.raises(TypeError, match=r"^soap: the leaf at .* has dtype complex64"):
        gx.soap(1e-3).init({"w": jnp.ones((3, 4), jnp.complex64)})
    with pytest.raises(TypeError, match=r"^soap: this transform looks at whole leaves"):
        gx.soap(1e-3).init(gx.flatten_params(params))
    tx = gx.soap(1e-3)
    state = tx.init(params)
    before = jax.tree.map(np.asarray, state)
    with pytest.raises(ValueError, match=r"^soap: "):
        tx.update({"w": jnp.ones((4, 3)), "b": jnp.ones(4)}, state, params)
    other = gx.soap(1e-3).init({"w": jnp.ones((4, 3)), "b": jnp.ones(4)})
    with pytest.raises(ValueError, match=r"^soap: "):
        tx.update(jax.tree.map(jnp.ones_like, params), other, params)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


def test_soap_on_digits_reaches_tuned_adams_final_held_out_loss_in_fewer_steps():
    """The digits MLP of docs/optimizers/soap.md (64-128-10, minibatches of 64, fixed seeds, 600 steps): Adam at its
    tuned learning rate (5e-3, the best of six by final held-out loss) ends at a held-out loss SOAP, at the same
    learning rate, reaches in fewer steps than Adam itself first does, and SOAP ends lower."""
    from benchmarks.soap_digits import first_at_or_below, held_out_curve

    adam = held_out_curve(gx.adam(5e-3), 600)
    soap = held_out_curve(gx.soap(5e-3), 600)
    target = adam[-1]
    adam_first, soap_first = first_at_or_below(adam, target), first_at_or_below(soap, target)
    assert soap_first is not None and soap_first < adam_first <= 600, (soap_first, adam_first)
    assert soap[-1] < target, (soap[-1], target)
