"""Quantized moments (`gradxform.quantized`): the codes, the round trip, second moments near 0, bytes per
parameter, quality on real data, every `*_dtype` argument of the registry, jit/vmap/inject/checkpoint, and
bad input."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform.numerics import quantize as qz
from tests import quant_problems as qp
from tests.refs import registry_entries

CODES = [qz.code_for(bits, signed) for bits in (8, 4) for signed in (True, False)]


def _id(code):
    return code.name


# ---- the codes ----


@pytest.mark.parametrize("code", CODES, ids=_id)
def test_code_table_is_sorted_ends_at_one_and_encodes_each_entry_to_itself(code):
    v = code.values()
    assert v.dtype == np.float32 and len(v) == 2**code.bits
    k = np.arange(2**code.bits)
    if code.signed:
        half = 2 ** (code.bits - 1)
        mags = v[:half]
        np.testing.assert_array_equal(v[half:], -mags)  # the sign bit flips the sign
        assert mags[0] == 0 and mags[-1] == 1
        keep = k[k != half]  # -0 (the code 100...0) encodes as +0
    else:
        mags = v
        assert mags[-1] == 1 and mags.min() > 0 or mags[0] == 0  # linear: no zero; minifloat: code 0 unused
        keep = k[1:] if mags[0] == 0 else k
    assert np.all(np.diff(mags) > 0)
    back = np.asarray(qz.encode_codes(jnp.asarray(v[keep]), code))
    np.testing.assert_array_equal(back, keep)


@pytest.mark.parametrize("code", CODES, ids=_id)
def test_encoding_is_the_nearest_code(code):
    v = code.values()
    lo = -1.0 if code.signed else 0.0
    y = np.concatenate([np.random.default_rng(0).uniform(lo, 1, 20000), np.geomspace(1e-9, 1, 2000)]).astype(np.float32)
    got = np.asarray(qz.decode_codes(qz.encode_codes(jnp.asarray(y), code), code))
    allowed = v if code.zero else v[v > 0]  # a code without zero never rounds to 0
    best = np.min(np.abs(y[:, None] - allowed[None, :]), axis=1)
    np.testing.assert_array_equal(np.abs(got - y), best)
    if not code.zero:
        assert got.min() > 0


@pytest.mark.parametrize("code", [c for c in CODES if not c.linear], ids=_id)
def test_float_codes_round_to_nearest_ties_to_even_on_a_dense_sweep_of_float32(code):
    # the bit-arithmetic encoder against the format's definition, in float64: each y is first put in the
    # format's units, w = y * top in float32 (the encoder's one rounding), and w goes to the nearest of the
    # format's values, ties to the even code (IEEE rounding), never below the smallest code without zero.
    # y: every 101st float32 in [0, 1] and the neighbours of every tie between two codes
    m, emax = code.man_bits, 2**code.exp_bits - 1
    top = np.float32(2.0 - 2.0**-m)
    k = np.arange(2 ** (code.exp_bits + m))
    e, mm = k >> m, k & ((1 << m) - 1)
    fmt = np.where(e == 0, mm * 2.0 ** (1 - emax - m), 2.0 ** (e - emax) * (1 + mm / 2.0**m))  # float64
    ties = ((fmt[:-1] + fmt[1:]) / 2 / top).astype(np.float32)
    near = np.concatenate([np.nextafter(ties, -np.inf), ties, np.nextafter(ties, np.inf)]).astype(np.float32)
    y = np.concatenate([np.arange(0, 0x3F800001, 101, dtype=np.int64).astype(np.int32).view(np.float32), near])
    y = y[(y >= 0) & (y <= 1)]
    w = (y * top).astype(np.float64)  # float32 product, exactly as the encoder forms it
    hi = np.searchsorted(fmt, w).clip(1, len(fmt) - 1)
    lo = hi - 1
    d_lo, d_hi = w - fmt[lo], fmt[hi] - w
    want = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    want = np.where(w <= fmt[0], 0, want)
    if not code.zero:
        want = np.maximum(want, 1)
    assert np.any(np.isin(w, (fmt[:-1] + fmt[1:]) / 2))  # the sweep does hit exact ties
    got = np.asarray(qz.encode_codes(jnp.asarray(y), code))
    np.testing.assert_array_equal(got, want)
    if code.signed:  # the sign bit on top; a negative value that rounds to 0 may keep it (-0 reads back as 0)
        got = np.asarray(qz.encode_codes(jnp.asarray(-y), code))
        sign = 1 << (code.bits - 1)
        np.testing.assert_array_equal(np.where(got == sign, 0, got), np.where(want == 0, 0, want | sign))


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("signed", [True, False])
def test_round_trip_error_per_block_is_within_half_the_codes_spacing(bits, signed):
    code = qz.code_for(bits, signed)
    block = 256 if bits == 8 else 128
    rng = np.random.default_rng(1)
    x = rng.standard_t(3, size=(37, 1000)).astype(np.float32) * np.float32(1e-3)  # heavy tails, like moments
    if not signed:
        x = x * x
    q = qz.encode(jnp.asarray(x), code, block)
    assert q.codes.dtype == jnp.uint8 and q.scales.dtype == jnp.float32
    assert q.scales.shape == (37, 4 if bits == 8 else 8)
    assert q.codes.shape == ((37, 1000) if bits == 8 else (37, 500))
    back = np.asarray(qz.decode(q))
    v = code.values()
    mags = np.unique(np.abs(v))
    nb = q.scales.shape[-1]
    for j in range(nb):
        cols = slice(j * block, min((j + 1) * block, 1000))
        s = np.abs(x[:, cols]).max(axis=1, keepdims=True)
        got = np.asarray(q.scales)[:, j : j + 1]
        # the block's maximum rounded up: to a power of two (8-bit float codes), to 7 mantissa bits (4-bit)
        assert np.all(got >= s) and np.all(got <= s * (2.0 if code.scale_bits == 0 else 1 + 2.0**-7))
        if code.scale_bits == 0:
            np.testing.assert_array_equal(np.log2(got), np.round(np.log2(got)))
        s = got
        err = np.abs(back[:, cols] - x[:, cols]) / s  # in units of the block's scale
        y = np.abs(x[:, cols]) / s
        # the gap between the two codes around |y|: half of it bounds the error
        hi = np.searchsorted(mags, y, side="left").clip(1, len(mags) - 1)
        gap = mags[hi] - mags[hi - 1]
        floor = mags[mags > 0].min() if not code.zero else 0.0
        bound = np.maximum(gap / 2, np.where(y < floor, floor - y, 0)) * (1 + 1e-6)
        assert np.all(err <= bound)
        if not code.linear:  # relative error in the normal range: half the relative spacing 2^-m
            normal = y >= 2.0 ** (2 - 2**code.exp_bits)
            rel = err[normal] / y[normal]
            assert rel.max() <= 2.0 ** -(code.man_bits + 1) * (1 + 1e-6)


def test_second_moments_near_zero_never_read_back_as_zero():
    # a block with one large entry, exact zeros and tiny values: every nonzero is at least the smallest code,
    # zeros too (the zero-point problem: nu = 0 would make mu / (sqrt(nu) + eps) a step of mu / eps)
    x = np.zeros((2, 256), np.float32)
    x[0, 0] = 1.0
    x[0, 1:100] = np.geomspace(1e-30, 1e-3, 99)
    for bits in (8, 4):
        code = qz.code_for(bits, signed=False)
        back = np.asarray(qz.decode(qz.encode(jnp.asarray(x), code, 256)))
        smallest = code.values()[code.values() > 0].min()
        assert back[0].min() == pytest.approx(smallest) and smallest > 0
        assert smallest <= (2e-6 if bits == 8 else 1 / 16)
        np.testing.assert_array_equal(back[1], 0)  # a block of zeros stays exactly zero (scale 0)
    signed = qz.code_for(8, signed=True)
    back = np.asarray(qz.decode(qz.encode(jnp.asarray(x), signed, 256)))
    assert back[0, 1] == 0 and back[0, 99] > 0  # signed moments keep their zero


def test_adam_steps_stay_bounded_where_nu_is_tiny_in_a_block_with_a_large_entry():
    # one huge gradient and many tiny ones in one block: with nu rounded to 0 the tiny entries would step
    # mu / eps = 1e5 lr; with the code without zero they step at most about lr (Adam's own bound)
    g = jnp.concatenate([jnp.array([1e3]), jnp.full((255,), 1e-6)])
    p = jnp.zeros(256)
    for bits in (8, 4):
        q = gx.quantized(bits)
        tx = gx.adam(1.0, mu_dtype=q, nu_dtype=q)
        s, step = tx.init(p), jax.jit(tx.update)
        for _ in range(5):
            u, s = step(g, s, p)
            assert float(jnp.max(jnp.abs(u[1:]))) <= 1.0  # Adam's |step| <= lr, where nu is tiny
            assert abs(float(u[0])) <= 1.25  # the large entry: 1 but for the codes' rounding of mu and nu


def test_constant_initial_values_are_stored_exactly():
    p = {"w": jnp.zeros((4, 300)), "s": jnp.zeros(())}
    for bits in (8, 4):
        st = gx.adagrad(0.1, initial_accumulator_value=0.1, state_dtype=gx.quantized(bits)).init(p)
        got = gx.tree_get(st, "sum_sq")
        for leaf, q in zip(jax.tree.leaves(p), jax.tree.leaves(got, is_leaf=qz.is_quantized)):
            np.testing.assert_allclose(np.asarray(qz.decode(q)), np.full(leaf.shape, 0.1, np.float32), rtol=0)


# ---- bytes and quality ----


def test_bytes_per_parameter_on_a_140k_mlp():
    params = qp.mlp_params()
    n = sum(x.size for x in jax.tree.leaves(params))
    assert 140_000 <= n <= 143_000
    got = {
        bits: gx.state_bytes_per_param(
            gx.adam(1e-3, mu_dtype=gx.quantized(bits), nu_dtype=gx.quantized(bits)).init(params), params
        )
        for bits in (8, 4)
    }
    assert got[8] <= 2.1 and got[4] <= 1.1
    leaves = jax.tree.leaves(gx.adam(1e-3, mu_dtype=gx.quantized(8), nu_dtype=gx.quantized(8)).init(params))
    assert max(x.size for x in leaves if x.dtype == jnp.float32) < 0.01 * n  # nothing float32 of parameter size


@pytest.fixture(scope="module")
def digits_runs():
    return {name: qp.digits(qp.digits_optimizer(qp.STORAGE[name])) for name in ("float32", "8-bit", "4-bit")}


def test_digits_8bit_within_half_a_point_and_5_percent_loss_of_float32(digits_runs):
    f, q = digits_runs["float32"], digits_runs["8-bit"]
    assert f["accuracy"] > 95
    assert abs(q["accuracy"] - f["accuracy"]) <= 0.5
    assert abs(q["loss"] - f["loss"]) <= 0.05 * f["loss"]
    assert q["bytes"] <= 2.1


def test_digits_4bit_within_one_point_of_float32(digits_runs):
    f, q = digits_runs["float32"], digits_runs["4-bit"]
    assert abs(q["accuracy"] - f["accuracy"]) <= 1.0
    assert q["bytes"] <= 1.1


def test_noisy_regression_8bit_final_loss_within_3_percent_of_float32():
    f = qp.regression(qp.regression_optimizer(None))
    q = qp.regression(qp.regression_optimizer(gx.quantized(8)))
    assert f < 0.0105  # at the noise floor (0.01)
    assert abs(q - f) <= 0.03 * f


# ---- every *_dtype argument of the registry ----


def _dtype_args():
    out = []
    for e in registry_entries():
        if e.kind not in ("optimizer", "torch") or e.lr_arg is None:
            continue
        for name in inspect.signature(e.factory).parameters:
            if name.endswith("_dtype") or name.startswith("dtype_"):
                out.append(pytest.param(e, name, id=f"{e.name}-{name}"))
    return out


DTYPE_ARGS = _dtype_args()


def _loss(p):
    return sum(jnp.sum((x - 0.5) ** 2 * (1 + jnp.arange(x.size).reshape(x.shape) % 7)) for x in jax.tree.leaves(p))


def _params():
    rng = np.random.default_rng(0)
    return {"w": jnp.asarray(rng.normal(size=(8, 64)), jnp.float32), "b": jnp.asarray(rng.normal(size=64), jnp.float32)}


def _extra(e, p):
    return {"value": _loss(p)} if "value" in e.extra_args else {}


def _run(e, tx, steps=10):
    @jax.jit
    def run(p):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(_loss)(p), s, p, **_extra(e, p))
            return (gx.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return p, s

    return run(_params())


def test_the_registry_has_quantizable_moments():
    args = {p.values[1] for p in DTYPE_ARGS}
    assert {"mu_dtype", "nu_dtype", "state_dtype"} <= args and len(DTYPE_ARGS) >= 20


@pytest.mark.parametrize("entry,arg", DTYPE_ARGS)
def test_quantized_storage_shrinks_the_state_and_stays_close(entry, arg):
    # of the defaults and the entry's parity cases, the settings that store the most (sgd: with momentum)
    settings = [{entry.lr_arg: 1e-2}] + [{**c.kwargs, entry.lr_arg: 1e-2} for c in entry.cases]
    kwargs = max(settings, key=lambda kw: gx.state_nbytes(jax.eval_shape(entry.factory(**kw).init, _params())))
    try:
        tx = entry.factory(**{**kwargs, arg: gx.quantized(8)})
    except TypeError as err:  # state that is a copy of the weights (schedule-free's z), or that quantized codes
        # cannot hold (SOAP's second moment in the eigenbasis), is refused, led by the name and the argument
        assert str(err).startswith(f"{entry.name.split('.')[-1]}: {arg}=quantized(")
        assert "not a moment" in str(err) or "store it in a floating dtype" in str(err)
        return
    base = entry.factory(**{**kwargs, arg: jnp.float32})
    p0 = _params()
    pf, sf = _run(entry, base)
    pq, sq = _run(entry, tx)
    assert gx.state_nbytes(sq) < gx.state_nbytes(sf)
    assert any(qz.is_quantized(x) for x in jax.tree.leaves(sq, is_leaf=qz.is_quantized))
    moved = float(jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(pf), jax.tree.leaves(p0)))))
    diff = float(jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(pf), jax.tree.leaves(pq)))))
    assert moved > 0 and diff <= 0.1 * moved

    # vmap: a sweep over two starting points equals the two runs
    p = _params()
    batch = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), p)
    grads = jax.vmap(jax.grad(_loss))(batch)
    extra = jax.vmap(lambda q: _extra(entry, q))(batch)
    states = jax.vmap(tx.init)(batch)
    u_b, s_b = jax.vmap(lambda g, s, q, x: tx.update(g, s, q, **x))(grads, states, batch, extra)
    for i in range(2):
        pi = jax.tree.map(lambda x, i=i: x[i], batch)
        u_i, s_i = tx.update(jax.tree.map(lambda x, i=i: x[i], grads), tx.init(pi), pi, **_extra(entry, pi))
        for a, b in zip(jax.tree.leaves(u_i), jax.tree.leaves(u_b)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i], rtol=1e-6, atol=1e-7)
        for a, b in zip(jax.tree.leaves(s_i), jax.tree.leaves(s_b)):
            assert a.dtype == b.dtype and a.shape == b.shape[1:]

    # inject_hyperparams: the same trajectory with the learning rate in the state
    injected = gx.inject_hyperparams(entry.factory, static_args=entry.static_args)(**{**kwargs, arg: gx.quantized(8)})
    pi, _ = _run(entry, injected)
    for a, b in zip(jax.tree.leaves(pq), jax.tree.leaves(pi)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("bits", [8, 4])
def test_checkpoint_round_trip_is_bitwise_and_resumes(tmp_path, bits):
    q = gx.quantized(bits)
    tx = gx.adamw(1e-2, mu_dtype=q, nu_dtype=q)
    p = {"w": jnp.ones((3, 301)), "b": jnp.ones((5,)), "s": jnp.ones(())}
    s, step = tx.init(p), jax.jit(tx.update)
    for _ in range(3):
        u, s = step(jax.grad(_loss)(p), s, p)
        p = gx.apply_updates(p, u)
    path = tmp_path / "state.ckpt"
    gx.checkpoint.save(path, {"params": p, "opt_state": s})
    back = gx.checkpoint.restore(path, jax.eval_shape(lambda: {"params": p, "opt_state": s}))
    assert jax.tree.structure(back) == jax.tree.structure({"params": p, "opt_state": s})
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves({"params": p, "opt_state": s})):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    u1, _ = step(jax.grad(_loss)(p), s, p)
    u2, _ = step(jax.grad(_loss)(back["params"]), back["opt_state"], back["params"])
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_checkpoint_of_other_storage_is_refused(tmp_path):
    p = {"w": jnp.ones((3, 300))}
    s8 = gx.adam(1e-2, mu_dtype=gx.quantized(8)).init(p)
    s32 = gx.adam(1e-2).init(p)
    path = tmp_path / "state.ckpt"
    gx.checkpoint.save(path, s32)
    with pytest.raises(gx.checkpoint.CheckpointError):
        gx.checkpoint.restore(path, s8)


# ---- bad input ----


@pytest.mark.parametrize(
    "kwargs,kind,message",
    [
        ({"bits": 3}, ValueError, "quantized: bits=3 is not one of (4, 8)."),
        ({"bits": True}, ValueError, "quantized: bits=True is not one of (4, 8)."),
        ({"bits": 8.0}, ValueError, "quantized: bits=8.0 is not one of (4, 8)."),
        ({"bits": 8, "block_size": 255}, ValueError, "quantized: block_size=255 must be an even int >= 2"),
        ({"bits": 4, "block_size": 0}, ValueError, "quantized: block_size=0 must be an even int >= 2"),
        ({"bits": 4, "block_size": 64.0}, TypeError, "quantized: block_size=64.0 must be an even int >= 2."),
    ],
)
def test_bad_specs(kwargs, kind, message):
    with pytest.raises(kind) as err:
        gx.quantized(**kwargs)
    assert str(err.value).startswith(message)


def test_complex_moments_are_refused_by_the_function_called_and_real_ones_taken():
    p = {"w": jnp.ones((4, 8), jnp.complex64)}
    tx = gx.adam(1e-2, mu_dtype=gx.quantized(8), nu_dtype=gx.quantized(8))
    with pytest.raises(TypeError) as err:
        tx.init(p)
    assert str(err.value).startswith("adam: ema's state_dtype=quantized(bits=8, block_size=256) stores real moments")
    tx = gx.adam(1e-2, nu_dtype=gx.quantized(8))  # nu = EMA of |g|^2 is real: quantized
    s = tx.init(p)
    u, _ = tx.update(p, s, p)
    assert u["w"].dtype == jnp.complex64


def test_update_refuses_a_state_of_other_storage():
    p = {"w": jnp.ones((4, 8))}
    s = gx.adam(1e-2).init(p)
    with pytest.raises(ValueError) as err:
        gx.adam(1e-2, mu_dtype=gx.quantized(8)).update(p, s, p)
    assert str(err.value).startswith("adam: the update at ['w'] is float32[4, 8] but the state made by init holds")


def test_weight_copies_are_refused_at_construction():
    with pytest.raises(TypeError) as err:
        gx.schedule_free_adamw(1e-2, state_dtype=gx.quantized(8))
    assert str(err.value).startswith("schedule_free_adamw: state_dtype=quantized(bits=8, block_size=256): this state")


def test_not_a_dtype_names_quantized_as_an_option():
    with pytest.raises(TypeError) as err:
        gx.adam(1e-2, mu_dtype=jnp.int8)
    assert "gradxform.quantized(...)" in str(err.value) and str(err.value).startswith("adam: mu_dtype=")
