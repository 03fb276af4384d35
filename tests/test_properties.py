"""Property-based tests: every registry entry on random pytrees, at its default and its parity settings.

Each numeric hyperparameter is drawn as a Python float, a JAX scalar or a
constant schedule. Properties, for each optimizer: finite inputs give finite outputs; updates keep
the gradients' shapes and dtypes and the state keeps its own; ``jit`` equals
eager (to the rounding of the leaf's dtype: XLA may fuse differently); ``init``
works on ``jax.ShapeDtypeStruct`` leaves and agrees with ``jax.eval_shape``.
Trees mix nested dicts, lists, tuples, None leaves, 0-d and 0-size arrays, and
float32 / bfloat16 / complex64 leaves (float64 under ``jax.enable_x64``).

Kept affordable on shared CPUs: derandomized, no example database, few examples.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import gradxform as gx
from tests.helpers import fit_ranks
from tests.refs import entries

PROFILE = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure is reported as drawn
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SHAPES = [(), (0,), (3,), (2, 3), (0, 2), (1, 1, 2)]
STEPS = 3


def _leaf(dtypes):
    return st.tuples(st.sampled_from(SHAPES), st.sampled_from(dtypes)).map(lambda sd: ("leaf",) + sd)


def trees(dtypes):
    base = st.one_of(_leaf(dtypes), st.just(None))
    return st.recursive(
        base,
        lambda kids: st.one_of(
            st.dictionaries(st.sampled_from("abcde"), kids, max_size=3),
            st.lists(kids, max_size=3),
            st.lists(kids, max_size=2).map(tuple),
        ),
        max_leaves=6,
    )


def _materialize(spec, rng, scale):
    """A spec tree -> a tree of arrays drawn from N(0, scale^2) (complex: both parts)."""
    if spec is None:
        return None
    if isinstance(spec, tuple) and spec and spec[0] == "leaf":
        _, shape, dtype = spec
        x = rng.normal(size=shape) * scale
        if np.issubdtype(np.dtype(dtype), np.complexfloating):
            x = x + 1j * rng.normal(size=shape) * scale
        return jnp.asarray(x, dtype)
    if isinstance(spec, dict):
        return {k: _materialize(v, rng, scale) for k, v in spec.items()}
    if isinstance(spec, tuple):
        return tuple(_materialize(v, rng, scale) for v in spec)
    return [_materialize(v, rng, scale) for v in spec]


def _settings(entry):
    """The settings an entry is exercised at: its default build, and each parity case's arguments."""
    return [None] + [dict(c.kwargs) for c in entry.cases]


def _takes_schedule(entry, kwargs, name):
    """Whether the factory accepts a schedule for `name` (init-only values, such as Adagrad's initial
    accumulator, refuse one with a TypeError)."""
    try:
        entry.factory(**{**kwargs, name: lambda c: kwargs[name]})
    except TypeError:
        return False
    return True


def _forms(data, entry, kwargs):
    """Each numeric argument as drawn: a Python float, a JAX scalar, or a constant schedule."""
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, float) and not isinstance(v, bool):
            forms = ["float", "array"] + (["schedule"] if _takes_schedule(entry, kwargs, k) else [])
            form = data.draw(st.sampled_from(forms), label=k)
            v = v if form == "float" else jnp.float32(v) if form == "array" else (lambda c, v=v: v)
        out[k] = v
    return out


def _build(data, entry):
    setting = data.draw(st.sampled_from(_settings(entry)), label="setting")
    if setting is None:
        return entry.build(1e-2)
    return entry.factory(**_forms(data, entry, setting))


def _ulps(dtype):
    """Tolerance in units of the dtype's epsilon: rounding flips compound over STEPS steps
    (a bfloat16 moment or parameter rounded differently feeds the next step)."""
    dtype = jnp.dtype(dtype)
    eps = float(
        jnp.finfo(jnp.float32 if dtype == jnp.complex64 else jnp.float64 if dtype == jnp.complex128 else dtype).eps
    )
    return (4 if dtype == jnp.bfloat16 else 64) * eps


def _assert_close(a, b, dtype):
    """|a - b| <= tol * (|b| + max|b|): a few ulps of the leaf's dtype, relative to the leaf's scale."""
    a, b = np.asarray(a, np.complex128), np.asarray(b, np.complex128)
    if b.size == 0:
        return
    tol = _ulps(dtype)
    np.testing.assert_array_less(np.abs(a - b), tol * (np.abs(b) + np.max(np.abs(b))) + 1e-30)


def _struct(tree):
    return jax.tree.map(lambda x: (x.shape, jnp.dtype(x.dtype)), tree)


def _check_optimizer(tx, params, grads):
    state0 = tx.init(params)
    # init on abstract leaves agrees with eval_shape and with the concrete init
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    assert _struct(jax.eval_shape(tx.init, abstract)) == _struct(state0)
    assert _struct(tx.init(abstract)) == _struct(state0)

    def run(update):
        p, s, outs = params, state0, []
        for g in grads:
            u, s = update(g, s, p)
            p = gx.apply_updates(p, u)
            outs.append(u)
        return outs, s, p

    eager_u, eager_s, eager_p = run(lambda g, s, p: tx.update(g, s, p))
    jit_u, jit_s, jit_p = run(jax.jit(tx.update))
    for u, g in zip(eager_u, grads):
        assert _struct(u) == _struct(g)  # shapes and dtypes kept, None leaves kept
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))
    assert _struct(eager_s) == _struct(state0)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eager_s) if jnp.issubdtype(x.dtype, jnp.inexact))
    for a, b in zip(jax.tree.leaves((eager_u, eager_p)), jax.tree.leaves((jit_u, jit_p))):
        assert a.dtype == b.dtype
        _assert_close(a, b, a.dtype)


def _example(data, entry, dtypes, scale_range=(1e-3, 10.0)):
    tx = _build(data, entry)
    spec = data.draw(trees(dtypes), label="tree")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    scale = data.draw(st.floats(*scale_range), label="scale")
    rng = np.random.default_rng(seed)
    params = fit_ranks(_materialize(spec, rng, 1.0), entry.param_ranks)
    grads = [fit_ranks(_materialize(spec, rng, scale), entry.param_ranks) for _ in range(STEPS)]
    return tx, params, grads


@pytest.mark.parametrize("entry", entries())
@PROFILE
@given(data=st.data())
def test_optimizer_properties_f32_bf16_complex(entry, data):
    dtypes = [jnp.float32, jnp.bfloat16] + ([jnp.complex64] if entry.supports_complex else [])
    tx, params, grads = _example(data, entry, dtypes)
    _check_optimizer(tx, params, grads)


@pytest.mark.parametrize("entry", entries())
@settings(PROFILE, max_examples=4)
@given(data=st.data())
def test_optimizer_properties_float64(entry, data):
    with jax.enable_x64(True):
        dtypes = [jnp.float64, jnp.float32] + ([jnp.complex128] if entry.supports_complex else [])
        tx, params, grads = _example(data, entry, dtypes)
        _check_optimizer(tx, params, grads)


@pytest.mark.parametrize("entry", entries())
def test_every_optimizer_on_a_tree_with_every_leaf_kind(entry):
    """A fixed tree holding each leaf kind at once, so every kind is covered whatever hypothesis draws."""
    spec = {
        "f32": ("leaf", (2, 3), jnp.float32),
        "bf16": [("leaf", (3,), jnp.bfloat16), None],
        "c64": (("leaf", (2,), jnp.complex64), ("leaf", (), jnp.float32)),
        "empty": ("leaf", (0, 2), jnp.bfloat16),
    }
    rng = np.random.default_rng(0)
    if not entry.supports_complex:
        spec["c64"] = (("leaf", (2,), jnp.float32), ("leaf", (), jnp.float32))
    params = fit_ranks(_materialize(spec, rng, 1.0), entry.param_ranks)
    grads = [fit_ranks(_materialize(spec, rng, 2.0), entry.param_ranks) for _ in range(STEPS)]
    _check_optimizer(entry.build(1e-2), params, grads)
