"""Sharding tests on 8 simulated CPU devices. Not collected directly: tests/test_sharding.py runs this
file in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8, so the rest of the suite
keeps its single device.

The optimizers are the registry's: every entry of kind optimizer, torch or wrapper, each built by
`entry.build(LR)`, so a new entry is covered without editing this file. Elementwise optimizers compile to
updates without communication; those whose math takes whole matrices (registry `matrix_math`: Muon,
SOAP) must communicate where a matrix is sharded, and are held to placement and numbers.

State leaves are matched to parameters by their key path (a state leaf whose path ends in a parameter's
name belongs to that parameter, however deep it sits: under `StepState`, in a chain collapsed to its one
stateful member, in a `masked` or `partition` subtree), independently of the library's own matching
(the `per_param` marks).
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform.compat import torch as gxt
from gradxform.core import Layout, make_block, per_param
from gradxform.core.state import has_marks
from gradxform.distributed import init_sharded, map_state, state_sharding, zero1, zero1_sharding
from gradxform.numerics.quantize import decode, is_quantized
from tests.refs import registry_entries

LR = 1e-2
STEPS = 4
# Entries that take only some ranks (registry `param_ranks`: torch.optim.Muon takes only matrices) cannot run on
# this tree of vectors and scalars; `gradxform.muon`, built on the same blocks, is sharded here.
ENTRIES = {
    e.name: e for e in registry_entries() if e.kind in ("optimizer", "torch", "wrapper") and e.param_ranks is None
}
SHAPES = {"w": (32, 16), "b": (16,), "v": (6,), "s": ()}
# Tensor/FSDP-style: each parameter sharded its own way, some replicated.
SPECS = {"w": P("data", "model"), "b": P("model"), "v": P(), "s": P()}
# Data parallel (replicated over 'data'), model-sharded where it applies: what ZeRO-1 starts from.
DP_SPECS = {"w": P(None, "model"), "b": P("model"), "v": P(), "s": P()}
# What the wrappers leave out: masked keeps state for w and v only; partition sends b and v to momentum.
MASK = {"w": True, "b": False, "v": True, "s": False}
LABELS = {"w": "x", "b": "y", "v": "y", "s": "x"}
MODES = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}
# skip_nonfinite asks whether every gradient, update and new moment is finite: one all-reduce of booleans across
# devices, and nothing else.
GLOBAL_FLAG = {"skip_nonfinite"}
FLAG_ALL_REDUCE = re.compile(r"= \(?pred\[\](, (/\*index=\d+\*/)?pred\[\])*\)? all-reduce(-start)?\(")
# Entries that are not elementwise reduce over whole leaves or the whole tree (norms, inner products, sums, row or
# column means: LARS's and LAMB's trust ratios, Adafactor's factored statistics, DoG's distances), and those whose
# update takes a global norm (`Entry.global_reduction`): sharded, each such
# reduction is an all-reduce of scalars or vectors, and nothing else crosses devices (no moment or parameter is
# gathered).
_VEC = r"(pred|f32|f64)\[\d*\](\{0\})?"  # a scalar or a vector (with its layout)
SCALAR_ALL_REDUCE = re.compile(rf"= \(?{_VEC}(, (/\*index=\d+\*/)?{_VEC})*\)? all-reduce(-start)?\(")
# Any collective of scalars and vectors only: what an entry with replicated state (`Entry.replicated_state`, SM3's
# cover-set accumulators) may also move to gather those vectors.
VECTOR_RESULT = re.compile(
    rf"= \(?{_VEC}(, (/\*index=\d+\*/)?{_VEC})*\)? (all-gather|all-reduce|collective-permute|all-to-all)(-start)?\("
)


def _allowed(name: str, c: str) -> bool:
    """A collective that entry `name` may need: its flags' all-reduce, or scalar all-reduces if it reduces (or
    reads the loss, which the suites compute from the sharded parameters inside the step: a sum over the leaves)."""
    if name in GLOBAL_FLAG and FLAG_ALL_REDUCE.search(c):
        return True
    e = ENTRIES[name]
    reduces = not e.elementwise or e.global_reduction or "value" in e.extra_args
    return reduces and bool(SCALAR_ALL_REDUCE.search(c))


def _gathers_replicated(name: str, c: str) -> bool:
    """A collective of vectors by an entry with replicated state: its accumulators gathered from a sharded leaf's
    maxima (under ZeRO-1 they are counted instead, element by element)."""
    return ENTRIES[name].replicated_state and bool(VECTOR_RESULT.search(c))


COLLECTIVE = re.compile(r"\b(all-gather|all-reduce|reduce-scatter|collective-permute|all-to-all)(-start)?\(")


@pytest.fixture(autouse=True)
def _eight_devices():
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


def test_registry_is_covered():
    assert len(ENTRIES) >= 21
    assert {e.kind for e in ENTRIES.values()} == {"optimizer", "torch", "wrapper"}
    assert {"adam", "compat.torch.NAdam", "accumulate", "masked", "partition", "skip_nonfinite"} <= set(ENTRIES)


def host_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    host = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(STEPS)]
    return host, grads


def make(mode: str, specs: dict, seed: int = 0):
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(MODES[mode],) * 2)
    host, grads = host_data(seed)
    shard = {k: NamedSharding(mesh, specs[k]) for k in SHAPES}
    return mesh, host, shard, place(host, shard), grads


def place(tree, shard):
    return {k: jax.device_put(tree[k], shard[k]) for k in SHAPES}


def wrap(kind: str, tx, shard=None):
    """`tx` inside `masked`, `partition` or `zero1`."""
    if kind == "masked":
        return gx.masked(tx, MASK)
    if kind == "partition":
        return gx.partition({"x": tx, "y": gx.momentum(LR)}, LABELS)
    if kind == "zero1":
        return zero1(tx, shard, axis="data")
    raise ValueError(kind)


def _factor_specs(name: str, leaf_shape: tuple, spec: tuple) -> list[tuple]:
    """The specs of `name`'s axes that a leaf of `leaf_shape` keeps, for each way it is the parameter less one axis."""
    shape = SHAPES[name]
    spec = tuple(spec) + (None,) * (len(shape) - len(spec))
    return [spec[:k] + spec[k + 1 :] for k in range(len(shape)) if shape[:k] + shape[k + 1 :] == tuple(leaf_shape)]


def _cover_sets(name: str, leaf_shape: tuple) -> bool:
    """A leaf of one accumulator per slice along each axis of a parameter with two or more, concatenated (SM3's):
    a vector of length the sum of the parameter's dimensions."""
    shape = SHAPES[name]
    return len(shape) >= 2 and tuple(leaf_shape) == (sum(shape),)


def _kronecker_axis(name: str, leaf_shape: tuple) -> int | None:
    """The parameter axis whose square factor a `(d, d)` leaf is (SOAP's L, Q_L of the first axis, R, Q_R of the
    last), or `None`."""
    shape = SHAPES[name]
    if len(leaf_shape) != 2 or leaf_shape[0] != leaf_shape[1] or not shape or tuple(leaf_shape) == shape:
        return None
    axes = [a for a in {0, len(shape) - 1} if shape[a] == leaf_shape[0]]
    assert len(axes) <= 1, (name, leaf_shape)  # the test shapes never make this ambiguous
    return axes[0] if axes else None


def expected_sharding(name: str, leaf_shape: tuple, sharding: NamedSharding) -> NamedSharding:
    """A parameter's state leaf's sharding, from its shape alone.

    The parameter's shape: the parameter's sharding. A factor (the parameter's shape less one axis, Adafactor's row
    and column statistics): the parameter's spec on the axes it keeps. A square `(d, d)` Kronecker factor of the
    parameter's first or last axis (d entries; SOAP's statistics and eigenbases): that axis's spec on its first
    axis. A 1-element placeholder (a factor the parameter does not use), a scalar statistic of the whole leaf, or
    the concatenated accumulators of the slices along each axis (SM3's cover sets, maxima over whole slices):
    replicated.
    """
    if tuple(leaf_shape) == SHAPES[name]:
        return sharding
    axis = _kronecker_axis(name, tuple(leaf_shape))
    if axis is not None:
        spec = tuple(sharding.spec) + (None,) * (len(SHAPES[name]) - len(sharding.spec))
        return NamedSharding(sharding.mesh, P(spec[axis], None))
    kept = _factor_specs(name, leaf_shape, sharding.spec)
    if kept:
        assert len(set(kept)) == 1, (name, leaf_shape, kept)  # the test shapes never make this ambiguous
        return NamedSharding(sharding.mesh, P(*kept[0]))
    # a placeholder, a per-leaf scalar (NovoGrad's), or cover-set accumulators
    assert tuple(leaf_shape) in ((1,), ()) or _cover_sets(name, leaf_shape), (name, leaf_shape)
    return NamedSharding(sharding.mesh, P())


def param_leaves(state, allow_none: bool = False):
    """(param name, leaf) for every state leaf whose key path ends in a parameter name.

    Such a leaf has its parameter's shape, or is a factor of it, a Kronecker factor, a placeholder or cover-set
    accumulators (see `expected_sharding`).
    Asserts that the rest are scalars, replicated small vectors or integer data (a raw PRNG key), and (unless
    `allow_none`) that there is some.
    """
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        last = path[-1] if path else None
        if isinstance(last, jax.tree_util.DictKey) and last.key in SHAPES:
            k = last.key
            assert (
                leaf.shape in (SHAPES[k], (1,), ())
                or _factor_specs(k, leaf.shape, ())
                or _kronecker_axis(k, leaf.shape) is not None
                or _cover_sets(k, leaf.shape)
            ), (path, leaf.shape)
            out.append((last.key, leaf))
        else:
            # a scalar (a count, an estimate), a small replicated vector of them (Mechanic's bettors), or integer
            # data (a raw PRNG key); a sharded float leaf that is not a scalar would be an unmarked moment
            where = jax.tree_util.keystr(path)
            floating = jnp.issubdtype(leaf.dtype, jnp.floating)
            assert leaf.ndim == 0 or not floating or leaf.sharding.is_fully_replicated, (
                f"non-parameter state leaf {where} is sharded"
            )
            if hasattr(leaf, "sharding"):
                assert leaf.sharding.is_fully_replicated, jax.tree_util.keystr(path)
    assert out or allow_none
    return out


def stateless(tx) -> bool:
    """No per-parameter state: no state at all, or none in a `per_param` field (noisy SGD keeps only its key)."""
    state = jax.eval_shape(tx.init, {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in SHAPES.items()})
    return not jax.tree.leaves(state) or not has_marks(state)


def assert_sharded_like(state, shard, allow_none: bool = False):
    """Every parameter's leaf has its parameter's sharding; returns the names of the parameters seen."""
    names = set()
    for name, leaf in param_leaves(state, allow_none):
        s, want = leaf.sharding, expected_sharding(name, leaf.shape, shard[name])
        assert s.is_equivalent_to(want, leaf.ndim), f"{name}: state {s} vs {want} (param {shard[name]})"
        names.add(name)
    return names


def collectives(compiled_text: str) -> list[str]:
    return [line.strip() for line in compiled_text.splitlines() if COLLECTIVE.search(line)]


def beyond_leaf_norms(name: str, coll: list[str]) -> list[str]:
    """The collectives other than the all-reduces of leaf norms and means (which non-elementwise entries need)."""
    if ENTRIES[name].elementwise:
        return coll
    return [c for c in coll if not SCALAR_ALL_REDUCE.search(c)]


def mesh_ctx(mesh, mode):
    return jax.set_mesh(mesh) if mode == "explicit" else contextlib.nullcontext()


def train(tx, state, params, grads, shard):
    """`len(grads)` compiled steps (update, then apply) on the mesh.

    Returns (params, last updates, state, the compiled step's HLO text).
    """

    @jax.jit
    def step(g, state, p):
        u, state = tx.update(g, state, p)
        return gx.apply_updates(p, u), u, state

    hlo = step.lower(place(grads[0], shard), state, params).compile().as_text()
    p = params
    for g in grads:
        p, u, state = step(place(g, shard), state, p)
    return p, u, state, hlo


def nested(tx):
    """`masked` inside `partition`: w goes through `tx` (s is masked out of it), b and v through momentum."""
    return gx.partition({"x": gx.masked(tx, MASK), "y": gx.momentum(LR)}, LABELS)


@functools.cache
def reference(name: str, wrapper=None):
    """The same run on one device: (params, state) after the steps, of the entry (inside `wrapper`)."""
    tx = ENTRIES[name].build(LR)
    return one_device(tx if wrapper is None else wrapper(tx))


def one_device(tx):
    """(params, state) after the steps of `host_data()` on one device."""
    host, grads = host_data()
    p = {k: jnp.asarray(v) for k, v in host.items()}
    s = tx.init(p)
    step = jax.jit(tx.update)
    for g in grads:
        u, s = step({k: jnp.asarray(v) for k, v in g.items()}, s, p)
        p = gx.apply_updates(p, u)
    return p, s


def assert_close(got, want, products: bool = False):
    """Leaf by leaf within 1e-6 relative (1e-7 absolute). With `products` (the state of a `matrix_math` entry),
    the absolute part is 1e-7 of each leaf's largest entry: a sum of products over a sharded axis (SOAP's
    $GG^\top$) is added up in another order than on one device, so an entry that cancels keeps the rounding of
    the terms it summed, not its own."""
    g_leaves, g_def = jax.tree.flatten(got)
    w_leaves, w_def = jax.tree.flatten(want)
    assert g_def == w_def, (g_def, w_def)
    for x, y in zip(g_leaves, w_leaves):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        if x.dtype == bool:
            np.testing.assert_array_equal(x, y)
        else:
            scale = float(np.max(np.abs(y), initial=1.0)) if products and np.issubdtype(y.dtype, np.floating) else 1.0
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7 * scale)


def assert_updates_like(u, shard):
    for k in SHAPES:
        assert u[k].sharding.is_equivalent_to(shard[k], u[k].ndim), (k, u[k].sharding)


def abstract(shard):
    return {k: jax.ShapeDtypeStruct(SHAPES[k], jnp.float32, sharding=shard[k]) for k in SHAPES}


def gathered_elements(coll: list[str]) -> int:
    """The elements all-gathered by these collectives (their f32 results); asserts they are all all-gathers."""
    total = 0
    for c in coll:
        assert "all-gather" in c, c
        result = c.split("=", 1)[1].split("all-gather", 1)[0]
        for dims in re.findall(r"f32\[([\d,]*)\]", result):
            total += int(np.prod([int(d) for d in dims.split(",") if d], dtype=int))
    return total


def split_update_elements(shard) -> int:
    """The local (model-sharded) sizes of the parameters ZeRO-1 splits, w and b: what it must all-gather."""
    return sum(int(np.prod(shard[k].shard_shape(SHAPES[k]), dtype=int)) for k in ("w", "b"))


# ---------------------------------------------------------------------------------------------------------
# Every registry entry on sharded parameters: every check on the Auto mesh (where only XLA's propagation
# carries a sharding), the init checks and a few updates on the Explicit one (where the types carry it).

EXPLICIT_UPDATES = {"adam", "compat.torch.NAdam", "adadelta", "accumulate", "skip_nonfinite", "partition"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ENTRIES)
def test_entry_state_sharded_like_params(name, mode):
    mesh, host, shard, params, grads = make(mode, SPECS)
    tx = ENTRIES[name].build(LR)
    none = stateless(tx)
    with mesh_ctx(mesh, mode):
        # 1. plain jax.jit(tx.init), no out_shardings: each moment born with its parameter's sharding.
        state = jax.jit(tx.init)(params)
        seen = assert_sharded_like(state, shard, allow_none=none)
        assert none or seen == set(SHAPES), seen
        # 2. state_sharding says exactly that.
        out_sh = state_sharding(tx, params)
        assert jax.tree.structure(out_sh) == jax.tree.structure(state)
        for leaf, s in zip(jax.tree.leaves(state), jax.tree.leaves(out_sh)):
            # (a state with no per-parameter leaf depends on no parameter: plain jit may leave it on one device)
            assert none or leaf.sharding.is_equivalent_to(s, leaf.ndim), (leaf.sharding, s)
            assert s.is_fully_replicated or not none
        if mode == "explicit":
            # 3. eager init on sharded arrays, init_sharded on arrays and on bare ShapeDtypeStructs.
            assert_sharded_like(tx.init(params), shard, allow_none=none)
            assert_sharded_like(init_sharded(tx, params), shard, allow_none=none)
            assert_sharded_like(init_sharded(tx, abstract(shard)), shard, allow_none=none)
            if name not in EXPLICIT_UPDATES:
                return
        # 4. compiled updates keep it, with no communication at all (but the leaves' norms, for per-leaf methods).
        p, u, state, hlo = train(tx, state, params, grads, shard)
        coll = beyond_leaf_norms(name, collectives(hlo))
        if name in GLOBAL_FLAG:
            assert coll and all(FLAG_ALL_REDUCE.search(c) for c in coll), coll
        elif ENTRIES[name].matrix_math:  # w is a matrix sharded on both axes: its matrix products communicate
            assert coll, "a sharded matrix was multiplied without communication: was it treated as a matrix?"
        elif ENTRIES[name].global_reduction:
            assert coll and all(SCALAR_ALL_REDUCE.search(c) for c in coll), coll
        else:
            assert [c for c in coll if not (_allowed(name, c) or _gathers_replicated(name, c))] == [], coll
        assert assert_sharded_like(state, shard, allow_none=none) == seen
        assert_updates_like(u, shard)
    # 5. the same numbers as one device.
    ref_p, ref_s = reference(name)
    assert_close(p, ref_p)
    assert_close(state, ref_s, products=ENTRIES[name].matrix_math)


# ---------------------------------------------------------------------------------------------------------
# Inside masked, partition and zero1: plain jit init for every registry entry on both meshes; then
# compiled updates of zero1(partition(masked(entry))) on the Explicit mesh. (The registry's own masked
# and partition entries take the Auto-mesh updates above.)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ENTRIES)
def test_plain_jit_init_inside_wrappers(name, mode):
    inner = ENTRIES[name].build
    none = stateless(inner(LR))
    for kind, specs, has_state in (
        ("masked", SPECS, {"w", "v"}),  # nothing for what the mask leaves out
        ("partition", SPECS, set(SHAPES)),  # w, s: the entry; b, v: momentum
        ("zero1", DP_SPECS, set(SHAPES)),
    ):
        mesh, host, shard, params, grads = make(mode, specs)
        tx = wrap(kind, inner(LR), shard)
        want = zero1_sharding(shard, params, "data") if kind == "zero1" else shard
        with mesh_ctx(mesh, mode):
            seen = assert_sharded_like(jax.jit(tx.init)(params), want, allow_none=none)
        if none:
            has_state = {"b", "v"} if kind == "partition" else set()
        assert seen == has_state, (kind, seen)


@pytest.mark.parametrize("name", ENTRIES)
def test_zero1_of_partition_of_masked_updates_keep_sharding_and_match(name):
    mode = "explicit"
    mesh, host, shard, params, grads = make(mode, DP_SPECS)
    tx = zero1(nested(ENTRIES[name].build(LR)), shard, axis="data")
    split = zero1_sharding(shard, params, "data")
    with mesh_ctx(mesh, mode):
        state = jax.jit(tx.init)(params)
        seen = assert_sharded_like(state, split)
        assert {"b", "v"} <= seen <= {"w", "b", "v"}, seen  # momentum's b and v; the entry's w; s masked out
        p, u, state, hlo = train(tx, state, params, grads, shard)
        assert assert_sharded_like(state, split) == seen
        assert_updates_like(u, shard)
    coll = [c for c in collectives(hlo) if not _allowed(name, c)]
    if ENTRIES[name].matrix_math:  # its matrices are gathered whole (explicit mesh), beyond the split updates
        assert gathered_elements(coll) > split_update_elements(shard), coll
    else:
        # (an entry with replicated state also gathers it: SM3's accumulators of w, one per row and column)
        replicated = sum(SHAPES["w"]) if ENTRIES[name].replicated_state else 0
        assert gathered_elements(coll) == split_update_elements(shard) + replicated, coll
    ref_p, ref_s = reference(name, nested)
    assert_close(p, ref_p)
    assert_close(state, ref_s, products=ENTRIES[name].matrix_math)


# ---------------------------------------------------------------------------------------------------------
# Factored state: Adafactor's row and column statistics sharded along the parameter axes they keep.


@pytest.mark.parametrize("mode", MODES)
def test_factored_second_moment_is_sharded_along_the_axes_it_keeps(mode):
    mesh, host, shard, params, grads = make(mode, SPECS)

    def make_tx():
        return gx.adafactor(LR, min_dim_size_to_factor=8, momentum=0.9)  # factors w (32 x 16), P('data', 'model')

    tx = make_tx()
    with mesh_ctx(mesh, mode):
        state = jax.jit(tx.init)(params)
        for st in (state, None):
            if st is None:
                p, u, st, hlo = train(tx, state, params, grads, shard)
                assert_updates_like(u, shard)
            fac = gx.tree_get(st, "FactoredRmsState")  # by its class: the parameter "v" shares the field's name
            v_row, v_col = fac.v_row["w"], fac.v_col["w"]
            assert v_row.shape == (16,) and v_col.shape == (32,)  # w without its largest axis, without the other
            assert v_row.sharding.is_equivalent_to(NamedSharding(mesh, P("model")), 1), v_row.sharding
            assert v_col.sharding.is_equivalent_to(NamedSharding(mesh, P("data")), 1), v_col.sharding
            assert v_row.addressable_shards[0].data.shape == (8,) and v_col.addressable_shards[0].data.shape == (8,)
            assert fac.v["w"].shape == (1,) and fac.v["b"].shape == (16,)  # a placeholder; b's full moment
            assert assert_sharded_like(st, shard) == set(SHAPES)
        out_sh = state_sharding(tx, params)
        for leaf, s in zip(jax.tree.leaves(state), jax.tree.leaves(out_sh)):
            assert leaf.sharding.is_equivalent_to(s, leaf.ndim), (leaf.sharding, s)
        if mode == "explicit":
            assert_sharded_like(init_sharded(tx, abstract(shard)), shard)
    ref_p, ref_s = one_device(make_tx())
    assert_close(p, ref_p)
    assert_close(st, ref_s)


# ---------------------------------------------------------------------------------------------------------
# ZeRO-1.


def test_zero1_sharding_rule():
    mesh, _, shard, _, _ = make("auto", DP_SPECS)
    z = zero1_sharding(shard, {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in SHAPES.items()}, "data")
    assert z["w"].spec == P("data", "model")  # first free dim, 32 % 4 == 0
    assert z["b"].spec == P(("model", "data"))  # only dim already on 'model': 16 % (2*4) == 0
    assert z["v"].spec == P()  # 6 % 4 != 0: stays replicated (small)
    assert z["s"].spec == P()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["adam", "compat.torch.NAdam", "accumulate"])
def test_zero1_splits_moments_gathers_only_updates_and_matches(name, mode):
    mesh, host, shard, params, grads = make(mode, DP_SPECS)
    tx = zero1(ENTRIES[name].build(LR), shard, axis="data")
    split = zero1_sharding(shard, params, "data")
    with mesh_ctx(mesh, mode):
        state = jax.jit(tx.init)(params)
        assert_sharded_like(state, split)
        assert_sharded_like(init_sharded(ENTRIES[name].build(LR), params, zero1_axis="data"), split)
        # Each device holds 1/4 ('data') of w's and b's moments, on top of the 1/2 from 'model'.
        for pname, leaf in param_leaves(state):
            local = leaf.addressable_shards[0].data.shape
            full = np.prod(SHAPES[pname], dtype=int)
            want = {"w": full // 8, "b": full // 8, "v": full, "s": 1}[pname]
            assert np.prod(local, dtype=int) == want, (pname, local)
        p, u, state, hlo = train(tx, state, params, grads, shard)
        # Only all-gathers, and only of the outgoing updates: their elements sum to the local
        # (model-sharded) sizes of the split parameters, w and b. A gathered moment would add more.
        coll = collectives(hlo)
        assert gathered_elements(coll) == split_update_elements(shard), coll
        assert_sharded_like(state, split)
        assert_updates_like(u, shard)  # updates come back in the parameters' sharding
    ref_p, ref_s = reference(name)
    assert_close(p, ref_p)
    assert_close(state, ref_s, products=ENTRIES[name].matrix_math)


def test_zero1_data_parallel_training_matches_single_device():
    """A full step: batch split over 'data', gradients all-reduced by jit, ZeRO-1 Adam; 20 steps."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = (x @ rng.normal(size=(16, 4)) + 0.1).astype(np.float32)
    host = {"w": np.zeros((16, 4), np.float32), "b": np.zeros((4,), np.float32)}
    rep = {k: NamedSharding(mesh, P()) for k in host}

    def loss(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    def run(tx, p, xs, ys):
        @jax.jit
        def step(p, s, x, y):
            lv, g = jax.value_and_grad(loss)(p, x, y)
            u, s = tx.update(g, s, p)
            return gx.apply_updates(p, u), s, lv

        s = jax.jit(tx.init)(p)
        losses = []
        for _ in range(20):
            p, s, lv = step(p, s, xs, ys)
            losses.append(float(lv))
        return p, s, losses

    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    ys = jax.device_put(y, NamedSharding(mesh, P("data")))
    params = {k: jax.device_put(v, rep[k]) for k, v in host.items()}
    p, s, losses = run(zero1(gx.adam(0.05), rep), params, xs, ys)
    for field in ("mu", "nu"):
        assert gx.tree_get(s, field)["w"].addressable_shards[0].data.shape == (2, 4)  # 16 rows over 8 devices
    ref_p, _, ref_losses = run(gx.adam(0.05), {k: jnp.asarray(v) for k, v in host.items()}, x, y)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for k in host:
        np.testing.assert_allclose(np.asarray(p[k]), np.asarray(ref_p[k]), rtol=1e-5, atol=1e-6)
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------------------------------------------------
# The marks decide which leaf belongs to which parameter, not shapes.


def _row_sharding(sharding, param_shape, leaf_shape):
    """A row statistic (the parameter's shape without its last axis): the parameter's spec without its last entry."""
    spec = tuple(sharding.spec) + (None,) * (len(param_shape) - len(sharding.spec))
    return NamedSharding(sharding.mesh, P(*spec[: len(leaf_shape)]), memory_kind=sharding.memory_kind)


ROW = Layout("row", _row_sharding)


@per_param("row", layout=ROW)
@per_param("mu")
class FactoredState(NamedTuple):
    """`mu` like the parameter; `row` one statistic per row (Adafactor-style); `scale` a float of its own."""

    mu: Any
    row: Any
    scale: jax.Array


def factored():
    """A toy factored transform: a moving average, a row sum of squares, and a scalar."""

    def init(params):
        rows = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p)[:-1], jnp.float32), params)
        return FactoredState(gx.numerics.zeros_like(params), rows, jnp.ones([], jnp.float32))

    def update(updates, state, params, count, extra_args):
        mu = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, state.mu, updates)
        row = jax.tree.map(lambda r, g: r + (jnp.sum(g * g, axis=-1) if g.ndim else g * g), state.row, updates)
        return mu, FactoredState(mu, row, 0.5 * state.scale)

    return make_block("factored", init, update)


def test_custom_layout_gives_factored_state_its_sharding():
    mesh, host, shard, params, grads = make("auto", SPECS)
    tx = factored()
    sh = state_sharding(tx, params)
    for k in SHAPES:
        assert sh.mu[k].is_equivalent_to(shard[k], len(SHAPES[k])), k
    assert sh.row["w"].spec == P("data")  # w is P('data', 'model'): the row keeps 'data'
    assert sh.row["b"].spec == P() and sh.row["v"].spec == P() and sh.row["s"].spec == P()
    assert sh.scale.spec == P()
    state = init_sharded(tx, params)
    assert state.row["w"].sharding.is_equivalent_to(NamedSharding(mesh, P("data")), 1)
    assert state.row["w"].addressable_shards[0].data.shape == (8,)  # 32 rows over 4 'data' devices
    assert state.scale.sharding.is_fully_replicated
    # Under ZeRO-1 the layout maps the split sharding: w's split is P('data', 'model'), so its row is P('data').
    _, _, dp_shard, dp_params, _ = make("auto", DP_SPECS)
    assert state_sharding(tx, dp_params).row["w"].is_fully_replicated
    assert state_sharding(tx, dp_params, zero1_axis="data").row["w"].spec == P("data")
    # tree_map_params visits mu's and row's leaves (4 each) and nothing else.
    visited = []
    gx.tree_map_params(tx, lambda x: visited.append(x.shape) or x, state)
    assert sorted(visited) == sorted([SHAPES[k] for k in SHAPES] + [SHAPES[k][:-1] for k in SHAPES])


def _which(tx, params):
    """`tx.init(params)` with "P" on each leaf `map_state` takes as per-parameter, "O" on the others."""
    state = tx.init(params)
    return map_state(state, params, lambda layout, sub: jax.tree.map(lambda _: "P", sub), lambda _: "O")


def test_scalar_state_field_is_not_a_scalar_parameters_moment():
    """One scalar parameter: every float scalar in the state has its shape, but only marked fields are its moments."""
    p = jax.device_put(jnp.float32(1.5), NamedSharding(jax.make_mesh((8,), ("data",)), P()))
    got = _which(gxt.NAdam(), p)  # NAdam with momentum decay keeps mu_product, a float scalar of its own
    assert gx.tree_get(got, "mu") == "P" and gx.tree_get(got, "nu") == "P"
    assert gx.tree_get(got, "mu_product") == "O" and gx.tree_get(got, "count") == "O"
    got = _which(factored(), p)
    assert (got.mu, got.row, got.scale) == ("P", "P", "O")
    got = _which(gx.skip_nonfinite(gx.adam(LR)), p)  # its flags and counters are scalars too
    assert jax.tree.leaves(got).count("P") == 2
    assert got.last_finite == "O" and got.total == "O"


def test_foreign_states_fall_back_to_shapes():
    """optax states carry no marks: a subtree shaped like the parameters (None where left out) is per-parameter."""
    import optax

    mesh, host, shard, params, grads = make("auto", SPECS)
    got = _which(optax.adam(LR), jnp.float32(1.5))
    assert (got[0].mu, got[0].nu, got[0].count) == ("P", "P", "O")
    tx = gx.masked(optax.adam(LR), MASK)  # optax's moments inside a gradxform wrapper: None for b and s
    sh = state_sharding(tx, params)
    mu = gx.tree_get(sh, "mu")
    assert mu["b"] is None and mu["s"] is None
    assert mu["w"].is_equivalent_to(shard["w"], 2) and mu["w"].spec == P("data", "model")
    assert gx.tree_get(sh, "count").is_fully_replicated
    state = init_sharded(tx, params)
    assert gx.tree_get(state, "nu")["w"].sharding.is_equivalent_to(shard["w"], 2)


@pytest.mark.parametrize("name", ["compat.torch.NAdam", "partition", "accumulate"])
def test_tree_map_params_maps_exactly_the_marked_leaves(name):
    mesh, host, shard, params, grads = make("auto", SPECS)
    tx = wrap("masked", ENTRIES[name].build(LR))
    state = jax.jit(tx.init)(params)
    mapped = gx.tree_map_params(
        tx, lambda x, s: x.sharding.is_equivalent_to(s, x.ndim), state, shard, transform_non_params=lambda x: "other"
    )
    assert jax.tree.structure(mapped) == jax.tree.structure(state)
    by_path = dict(jax.tree_util.tree_flatten_with_path(mapped)[0])
    params_at = {
        p
        for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]
        if isinstance(p[-1], jax.tree_util.DictKey) and p[-1].key in SHAPES
    }
    assert params_at and {p for p, v in by_path.items() if v != "other"} == params_at
    assert all(by_path[p] is True for p in params_at)  # each mapped leaf is sharded like its parameter
    assert {p[-1].key for p in params_at} == {"w", "v"}  # masked: no state for b and s


def test_errors_name_what_to_do():
    mesh, host, shard, params, _ = make("auto", DP_SPECS)
    with pytest.raises(ValueError, match="axis='batch' is not a mesh axis"):
        zero1(gx.adam(1e-3), shard, axis="batch")
    with pytest.raises(ValueError, match="has no sharding; pass param_sharding="):
        state_sharding(gx.adam(1e-3), {k: np.asarray(v) for k, v in host.items()})
    with pytest.raises(TypeError, match="expected jax.sharding.NamedSharding"):
        state_sharding(gx.adam(1e-3), params, {k: jax.sharding.SingleDeviceSharding(jax.devices()[0]) for k in SHAPES})


# ---------------------------------------------------------------------------------------------------------
# Quantized moments (gradxform.quantized): codes and per-block scales sharded like the parameter.


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_moments_and_their_scales_are_sharded_like_the_parameter(mode, bits):
    mesh, host, shard, params, grads = make(mode, SPECS)
    q = gx.quantized(bits, block_size=8)  # w (32 x 16) on P('data', 'model'): 8 entries of a row per device

    def make_tx():
        return gx.adamw(LR, mu_dtype=q, nu_dtype=q)

    tx = make_tx()
    with mesh_ctx(mesh, mode):
        for how in ("jit", "eager", "init_sharded"):
            if how == "jit":
                state = jax.jit(tx.init)(params)
            elif how == "eager":
                state = tx.init(params)
            else:
                state = init_sharded(tx, params)
            for field in ("mu", "nu"):
                w = gx.tree_get(state, field)["w"]
                assert w.codes.shape == ((32, 16) if bits == 8 else (32, 8)) and w.scales.shape == (32, 2)
                for piece in (w.codes, w.scales):
                    assert piece.sharding.is_equivalent_to(NamedSharding(mesh, P("data", "model")), 2), (how, piece)
                    # each device holds whole blocks: 8 rows, one block of the row's 16 entries
                    assert piece.addressable_shards[0].data.shape[0] == 8
                    assert piece.addressable_shards[0].data.shape[1] == piece.shape[1] // 2
                b = gx.tree_get(state, field)["b"]  # (16,) on P('model'): two blocks, one per device
                assert b.scales.sharding.is_equivalent_to(NamedSharding(mesh, P("model")), 1), (how, b.scales)
        p, u, st, hlo = train(tx, state, params, grads, shard)
        assert_updates_like(u, shard)
        assert collectives(hlo) == [], collectives(hlo)  # no block straddles a device: nothing communicates
        for field in ("mu", "nu"):
            w = gx.tree_get(st, field)["w"]
            for piece in (w.codes, w.scales):
                assert piece.sharding.is_equivalent_to(NamedSharding(mesh, P("data", "model")), 2), piece
    ref_p, ref_s = one_device(make_tx())
    assert_close(p, ref_p)
    # the moments read back: one device's float32 math fused differently may move a scale by an ulp
    decoded = functools.partial(jax.tree.map, lambda x: decode(x) if is_quantized(x) else x, is_leaf=is_quantized)
    assert_close(decoded(st), decoded(ref_s))


def test_quantized_blocks_that_would_straddle_devices_are_refused():
    mesh, host, shard, params, grads = make("auto", SPECS)
    tx = gx.adam(LR, mu_dtype=gx.quantized(8, block_size=16))  # w's rows are split 8 + 8 over 'model'
    with pytest.raises(ValueError) as err:
        state_sharding(tx, params)
    assert str(err.value).startswith("state_sharding: the quantized moment at ") and "straddle" in str(err.value)


@pytest.mark.parametrize("bits", [8, 4])
def test_zero1_splits_quantized_moments_and_matches_one_device(bits):
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    shapes = {"w": (32, 16), "b": (64,)}  # zero1 adds 'data': w's rows 4 ways, b 8 ways (8 entries a device)
    shard = {"w": NamedSharding(mesh, P(None, "model")), "b": NamedSharding(mesh, P("model"))}
    rng = np.random.default_rng(0)
    host = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    grads = [{k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()} for _ in range(STEPS)]
    q = gx.quantized(bits, block_size=8)
    tx = gx.adamw(LR, mu_dtype=q, nu_dtype=q)
    ztx = zero1(tx, shard, axis="data")
    p = {k: jax.device_put(host[k], shard[k]) for k in shapes}
    st = jax.jit(ztx.init)(p)
    step = jax.jit(ztx.update)
    for g in grads:
        u, st = step({k: jax.device_put(g[k], shard[k]) for k in shapes}, st, p)
        p = gx.apply_updates(p, u)
    for field in ("mu", "nu"):
        for name, spec in (("w", P("data", "model")), ("b", P(("model", "data")))):
            piece = gx.tree_get(st, field)[name]
            for arr in (piece.codes, piece.scales):
                assert arr.sharding.is_equivalent_to(NamedSharding(mesh, spec), arr.ndim), (name, arr.sharding)
    ref_p = {k: jnp.asarray(v) for k, v in host.items()}
    ref_s = tx.init(ref_p)
    for g in grads:
        u, ref_s = jax.jit(tx.update)({k: jnp.asarray(v) for k, v in g.items()}, ref_s, ref_p)
        ref_p = gx.apply_updates(ref_p, u)
    assert_close(p, ref_p)
    with pytest.raises(ValueError) as err:  # b of 16 entries split 8 ways: 2 a device, less than a block
        jax.jit(zero1(tx, {"b": shard["b"]}, axis="data").init)({"b": jax.device_put(host["b"][:16], shard["b"])})
    assert str(err.value).startswith("zero1: the quantized moment at ['b'] has blocks of 8") and "straddle" in str(
        err.value
    )
