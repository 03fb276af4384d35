"""Checkpoints: exact round trips, bitwise resume, and faults (killed write, truncation, bit flips) lose nothing."""

import collections
import errno
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import checkpoint
from gradxform.io.checkpoint import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _params():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {"w": jax.random.normal(k1, (3, 4)), "b": jax.random.normal(k2, (4,)), "empty": jnp.zeros((0, 3))}


def _grad(p, i):
    return jax.tree.map(lambda x: jnp.sin(x * (i + 1)) + 0.01 * i, p)


def _assert_bitwise(a, b):
    la, da = jax.tree.flatten(a)
    lb, db = jax.tree.flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_round_trip_is_exact_for_every_dtype(tmp_path):
    tree = {
        "bf16": jnp.array([1.5, -2.25, 3e-3], jnp.bfloat16),
        "c64": jnp.array([1 + 2j, -0.5j], jnp.complex64),
        "f32": jnp.array([[np.pi, -0.0, np.inf]], jnp.float32),
        "count": jnp.array(7, jnp.int32),
        "flag": jnp.array(True),
        "none": None,
        "empty": jnp.zeros((2, 0), jnp.float16),
        "nested": (jnp.arange(3, dtype=jnp.uint8), [jnp.array(-1, jnp.int8)]),
    }
    path = tmp_path / "t.ckpt"
    checkpoint.save(path, tree)
    _assert_bitwise(checkpoint.restore(path, tree), tree)
    # an abstract template (no arrays allocated) works too
    _assert_bitwise(checkpoint.restore(path, jax.eval_shape(lambda: tree)), tree)


def test_round_trip_float64_under_x64(tmp_path):
    with jax.enable_x64(True):
        tree = {"x": jnp.array([1 / 3, 1e-300], jnp.float64), "c": jnp.array([1j / 3], jnp.complex128)}
        checkpoint.save(tmp_path / "x64.ckpt", tree)
        _assert_bitwise(checkpoint.restore(tmp_path / "x64.ckpt", tree), tree)


@pytest.mark.parametrize(
    "make", [lambda: gx.adam(1e-2, mu_dtype=jnp.bfloat16), lambda: gx.skip_nonfinite(gx.accumulate(gx.nadam(1e-2), 2))]
)
def test_resume_is_bitwise_identical_to_uninterrupted_run(tmp_path, make):
    tx = make()
    update = jax.jit(tx.update)
    p0 = _params()

    def run(p, s, start, stop):
        traj = []
        for i in range(start, stop):
            u, s = update(_grad(p, i), s, p)
            p = gx.apply_updates(p, u)
            traj.append(p)
        return p, s, traj

    _, s_full, traj_full = run(p0, tx.init(p0), 0, 10)
    p5, s5, _ = run(p0, tx.init(p0), 0, 5)
    path = tmp_path / "run.ckpt"
    checkpoint.save(path, {"params": p5, "opt_state": s5})
    del p5, s5
    template = jax.eval_shape(lambda: {"params": p0, "opt_state": tx.init(p0)})
    restored = checkpoint.restore(path, template)
    _, s_resumed, traj_resumed = run(restored["params"], restored["opt_state"], 5, 10)
    for a, b in zip(traj_full[5:], traj_resumed):
        _assert_bitwise(a, b)
    _assert_bitwise(s_full, s_resumed)


def test_write_that_raises_halfway_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "state.ckpt"
    old = {"x": jnp.arange(1000.0)}
    checkpoint.save(path, old)
    before = path.read_bytes()

    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, blob):
            self.f.write(blob[: len(blob) // 2])
            raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(path, {"x": jnp.zeros(1000)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["state.ckpt"]  # the partial temp file was removed
    _assert_bitwise(checkpoint.restore(path, old), old)


def test_writer_process_killed_mid_write_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "state.ckpt"
    old = {"x": jnp.arange(50_000.0), "count": jnp.array(3, jnp.int32)}
    checkpoint.save(path, old)
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {ROOT!r})
        import jax.numpy as jnp
        from gradxform import checkpoint
        real_fdopen = os.fdopen
        class Stall:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *a): self.f.close()
            def write(self, blob):
                self.f.write(blob[: len(blob) // 2]); self.f.flush(); os.fsync(self.f.fileno())
                print("HALF", flush=True)
                time.sleep(120)
        checkpoint.os.fdopen = lambda fd, mode: Stall(real_fdopen(fd, mode))
        checkpoint.save({str(path)!r}, {{"x": jnp.zeros(50_000), "count": jnp.array(4, jnp.int32)}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HALF"
        temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert len(temps) == 1 and 0 < os.path.getsize(tmp_path / temps[0]) < len(before)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    _assert_bitwise(checkpoint.restore(path, old), old)
    # the half-written temp file is never mistaken for a checkpoint
    with pytest.raises(CheckpointError):
        checkpoint.restore(tmp_path / temps[0], old)


def _small_file(tmp_path):
    tree = {"m": jnp.array([1.0, 2.0, 3.0]), "c": jnp.array(5, jnp.int32), "h": jnp.array([0.5], jnp.bfloat16)}
    path = tmp_path / "s.ckpt"
    checkpoint.save(path, tree)
    return tree, path, path.read_bytes()


def test_every_truncation_raises(tmp_path):
    tree, path, blob = _small_file(tmp_path)
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        with pytest.raises(CheckpointError, match="truncated|too short|corrupted"):
            checkpoint.restore(path, tree)
    path.write_bytes(blob + b"\0")
    with pytest.raises(CheckpointError, match="data section is"):
        checkpoint.restore(path, tree)


def test_every_single_bit_flip_raises(tmp_path):
    tree, path, blob = _small_file(tmp_path)
    flips = 0
    for i in range(len(blob)):
        for bit in (0, 3, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            path.write_bytes(bytes(bad))
            with pytest.raises(CheckpointError):
                checkpoint.restore(path, tree)
            flips += 1
    assert flips == 3 * len(blob)
    path.write_bytes(blob)
    _assert_bitwise(checkpoint.restore(path, tree), tree)


# ---- structure: key paths and node kinds, never reprs or addresses ----


@jax.tree_util.register_pytree_with_keys_class
class _Holder:
    """A custom node whose auxiliary data (a fresh function per instance) has an address in its repr."""

    def __init__(self, x, fn):
        self.x, self.fn = x, fn

    def tree_flatten_with_keys(self):
        return ((jax.tree_util.GetAttrKey("x"), self.x),), self.fn

    @classmethod
    def tree_unflatten(cls, fn, children):
        return cls(children[0], fn)


def _header(path):
    blob = path.read_bytes()
    _, hlen, _ = struct.unpack_from("<8sQI", blob)
    return json.loads(blob[20 : 20 + hlen]), blob[20 + hlen :]


def test_structure_check_ignores_aux_data_reprs_and_addresses(tmp_path):
    saved = _Holder({"w": jnp.arange(3.0)}, lambda: 1)
    other = _Holder({"w": jnp.zeros(3)}, lambda: 2)  # another function object: another address
    assert str(jax.tree.structure(saved)) != str(jax.tree.structure(other))  # what the old check compared
    path = tmp_path / "h.ckpt"
    checkpoint.save(path, saved)
    restored = checkpoint.restore(path, other)
    assert restored.fn is other.fn  # static data come from the template
    _assert_bitwise(restored.x, saved.x)
    header, _ = _header(path)
    assert header["nodes"] == [
        ["<root>", f"{__name__}._Holder"],
        [".x", "dict"],
        [".x['w']", "leaf"],
    ]
    assert "0x" not in json.dumps(header) and "lambda" not in json.dumps(header)


def test_node_kinds_recorded_for_every_node_type(tmp_path):
    tree = {
        "ema": gx.EmaState(jnp.ones(2)),
        "od": collections.OrderedDict(a=jnp.ones(1)),
        "l": [jnp.ones(1), None, ()],
        "t": (jnp.ones(1),),
        "n": 3.0,
    }
    path = tmp_path / "k.ckpt"
    checkpoint.save(path, tree)
    header, _ = _header(path)
    assert header["nodes"] == [
        ["<root>", "dict"],
        ["['ema']", "namedtuple EmaState(mu)"],
        ["['ema'].mu", "leaf"],
        ["['l']", "list"],
        ["['l'][0]", "leaf"],
        ["['l'][1]", "None"],
        ["['l'][2]", "tuple"],
        ["['n']", "leaf"],
        ["['od']", "collections.OrderedDict"],
        ["['od']['a']", "leaf"],
        ["['t']", "tuple"],
        ["['t'][0]", "leaf"],
    ]
    assert [e["path"] for e in header["leaves"]] == [
        jax.tree_util.keystr(p) for p, _ in jax.tree.leaves_with_path(tree)
    ]
    restored = checkpoint.restore(path, tree)
    assert restored["n"].dtype == jnp.float32 and float(restored["n"]) == 3.0  # a Python number comes back an array
    _assert_bitwise({**restored, "n": None}, {**tree, "n": None})


class _PairA(NamedTuple):
    a: jax.Array
    b: jax.Array


class _PairB(NamedTuple):
    a: jax.Array
    b: jax.Array


class _PairC(NamedTuple):
    a: jax.Array
    c: jax.Array


@pytest.mark.parametrize(
    "saved, template, message",
    [
        (  # same fields, another NamedTuple class
            {"s": _PairA(jnp.ones(1), jnp.ones(1))},
            {"s": _PairB(jnp.ones(1), jnp.ones(1))},
            "the tree structure differs from the template's at ['s']: the file has namedtuple _PairA(a, b), "
            "the template namedtuple _PairB(a, b).",
        ),
        (  # a list where the template has a tuple (same key paths)
            {"s": [jnp.ones(1)]},
            {"s": (jnp.ones(1),)},
            "the tree structure differs from the template's at ['s']: the file has list, the template tuple.",
        ),
        (  # an empty node of another kind
            {"x": jnp.ones(1), "y": None},
            {"x": jnp.ones(1), "y": ()},
            "the tree structure differs from the template's at ['y']: the file has None, the template tuple.",
        ),
        (  # empty nodes at other key paths
            {"x": jnp.ones(1), "y": None},
            {"x": jnp.ones(1), "z": None},
            "the tree structure differs from the template's: node 2 is None at ['y'] in the file but None at "
            "['z'] in the template.",
        ),
        (  # one empty node more in the file
            {"x": jnp.ones(1), "y": {}},
            {"x": jnp.ones(1)},
            "the tree structure differs from the template's: only the file has dict at ['y'].",
        ),
        (  # a custom node where the template has a dict
            _Holder({"w": jnp.ones(1)}, None),
            {"x": {"w": jnp.ones(1)}},
            "leaf 0 of the file is at .x['w'] but leaf 0 of the template is at ['x']['w']; was it saved from "
            "another optimizer or another model?",
        ),
    ],
    ids=["namedtuple-class", "list-tuple", "none-tuple", "empty-node-path", "extra-empty-node", "custom-node"],
)
def test_structure_mismatch_names_first_differing_path(tmp_path, saved, template, message):
    path = tmp_path / "s.ckpt"
    checkpoint.save(path, saved)
    with pytest.raises(CheckpointError) as info:
        checkpoint.restore(path, template)
    assert str(info.value) == f"checkpoint.restore: {path}: {message}"


def test_namedtuple_with_other_fields_is_refused(tmp_path):
    path = tmp_path / "s.ckpt"
    checkpoint.save(path, _PairA(jnp.ones(1), jnp.ones(1)))
    with pytest.raises(CheckpointError, match=r"leaf 1 of the file is at \.b but leaf 1 of the template is at \.c"):
        checkpoint.restore(path, _PairC(jnp.ones(1), jnp.ones(1)))


def test_deep_tree_round_trips(tmp_path):
    tree = jnp.ones(1)
    for _ in range(900):  # near Python's recursion limit (jax itself flattens up to about 1000 levels)
        tree = [tree]
    path = tmp_path / "deep.ckpt"
    checkpoint.save(path, tree)
    _assert_bitwise(checkpoint.restore(path, tree), tree)


# ---- malformed headers: always CheckpointError, naming the field ----


def _write_crafted(path, raw_header, data=b""):
    path.write_bytes(
        struct.pack("<8sQI", checkpoint.MAGIC, len(raw_header), zlib.crc32(raw_header)) + raw_header + data
    )


def _two_leaf_file(tmp_path):
    tree = {"a": jnp.arange(3.0), "b": jnp.array(7, jnp.int32)}
    path = tmp_path / "two.ckpt"
    checkpoint.save(path, tree)
    header, data = _header(path)
    return tree, path, header, data


def _edits():
    """(id, edit(header) -> None, expected text in the message): header fields of a wrong type or range."""
    out = []
    for bad in (True, False, 2.0, "2", None, [2], {"v": 2}):
        out.append((f"version-{bad!r}", lambda h, v=bad: h.__setitem__("format_version", v), "format_version is"))
    out.append(("version-missing", lambda h: h.pop("format_version"), "format_version is None"))
    for key in ("nodes", "leaves"):
        out.append((f"{key}-missing", lambda h, k=key: h.pop(k), f"field {key} is None"))
        out.append((f"{key}-dict", lambda h, k=key: h.__setitem__(k, {}), f"field {key} is an object"))
    for bad in (["<root>"], ["<root>", "dict", "x"], ["<root>", 3], "<root>", None):
        out.append((f"node-{bad!r}", lambda h, v=bad: h["nodes"].__setitem__(0, v), "field nodes[0] is"))
    out.append(("leaf-not-object", lambda h: h["leaves"].__setitem__(0, [1]), "field leaves[0] is a list of 1"))
    out.append(("leaf-extra-key", lambda h: h["leaves"][0].__setitem__("x", 1), "field leaves[0] is an object"))
    out.append(("leaf-missing-key", lambda h: h["leaves"][0].pop("crc32"), "field leaves[0] is an object"))
    out.append(("path-int", lambda h: h["leaves"][0].__setitem__("path", 0), "leaves[0].path is 0; expected a string"))
    shapes = {
        "shape-huge": ([10**30], "leaves[0].shape[0] is 1000000000000000000000000000000"),
        "shape-2**63": ([2**63], "leaves[0].shape[0] is 9223372036854775808"),
        "shape-negative": ([-3], "leaves[0].shape[0] is -3"),
        "shape-bool": ([True, True, True], "leaves[0].shape[0] is True"),
        "shape-float": ([3.0], "leaves[0].shape[0] is 3.0"),
        "shape-nested": ([[3]], "leaves[0].shape[0] is a list of 1"),
        "shape-null": ([None], "leaves[0].shape[0] is None"),
        "shape-not-list": (3, "leaves[0].shape is 3"),
        "shape-65-dims": ([1] * 65, "leaves[0].shape is a list of 65; expected a list of at most 64"),
        "shape-int64-wrap": ([2**32, 2**32], "leaves[0].shape is a list of 2; expected a shape of fewer than 2**63"),
        "shape-zero-size-huge": ([0, 2**62, 2**62], "leaves[0].shape is a list of 3; expected a shape of fewer"),
        "shape-wrong": ([4], "leaves[0].nbytes is 12; expected 16"),
    }
    for name, (shape, text) in shapes.items():
        out.append((name, lambda h, s=shape: h["leaves"][0].__setitem__("shape", s), text))
    dtypes = {
        "dtype-list": (["float32"], "leaves[0].dtype is a list of 1"),
        "dtype-object": ({"name": "float32"}, "leaves[0].dtype is an object"),
        "dtype-int": (5, "leaves[0].dtype is 5"),
        "dtype-null": (None, "leaves[0].dtype is None"),
        "dtype-unknown": ("object", "leaves[0].dtype is 'object'"),
        "dtype-numpy-code": ("<f4", "leaves[0].dtype is '<f4'"),
        "dtype-other-size": ("float64", "leaves[0].nbytes is 12; expected 24"),
    }
    for name, (dt, text) in dtypes.items():
        out.append((name, lambda h, d=dt: h["leaves"][0].__setitem__("dtype", d), text))
    ints = {
        "offset": [(True, 1), (-12, 1), (10**30, 1), (0.0, 0), (None, 0), (0, 1), (13, 1), (11, 1)],
        "nbytes": [(True, 0), (-12, 0), (10**30, 0), (12.0, 0), (0, 0), (None, 0)],
        "crc32": [(True, 0), (-1, 0), (2**32, 0), (1.0, 0), ("0", 0), (None, 0)],
    }
    for key, cases in ints.items():
        for bad, i in cases:
            out.append(
                (
                    f"{key}-{i}-{bad!r}",
                    lambda h, k=key, v=bad, i=i: h["leaves"][i].__setitem__(k, v),
                    f"leaves[{i}].{key} is",
                )
            )
    out.append(
        (
            "nodes-renamed-leaf",
            lambda h: h["nodes"][1].__setitem__(0, "['z']"),
            "node list does not match its leaf list",
        )
    )
    out.append(("nodes-no-leaf", lambda h: h["nodes"].pop(), "node list does not match its leaf list"))
    out.append(("nodes-extra-leaf", lambda h: h["nodes"].append(["['z']", "leaf"]), "node list does not match"))
    return out


EDITS = _edits()


@pytest.mark.parametrize("edit, text", [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_malformed_header_field_raises_checkpoint_error(tmp_path, edit, text):
    tree, path, header, data = _two_leaf_file(tmp_path)
    edit(header)
    _write_crafted(path, json.dumps(header).encode(), data)
    with pytest.raises(CheckpointError) as info:  # never TypeError, OverflowError, KeyError, ...
        checkpoint.restore(path, tree)
    assert text in str(info.value)
    assert str(info.value).startswith(f"checkpoint.restore: {path}: ")


def test_untouched_header_of_the_malformed_field_cases_restores(tmp_path):
    # the baseline of the cases above: re-encoding the header unchanged restores the tree
    tree, path, header, data = _two_leaf_file(tmp_path)
    _write_crafted(path, json.dumps(header).encode(), data)
    _assert_bitwise(checkpoint.restore(path, tree), tree)


_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "raw, text",
    [
        (_DEEP, "nests too deeply"),
        (b'{"format_version": 2, "nodes": [], "leaves": [{"shape": ' + _DEEP + b"}]}", "nests too deeply"),
        (b'{"format_version": 2, "nodes": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}", "nests too deeply"),
        (b"\xff\xfe{}", "not a JSON object"),
        (b'{"format_version": 2', "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"", "not a JSON object"),
        (b'{"format_version": ' + b"9" * 5000 + b"}", "not a JSON object"),  # past int-to-str's digit limit
        (b'{"format_version": 1e999}', "format_version is inf"),
        (b'{"format_version": NaN}', "format_version is nan"),
    ],
    ids=["deep-lists", "deep-shape", "deep-objects", "not-utf8", "cut-json", "list", "string", "null", "empty",
         "5000-digits", "inf", "nan"],
)  # fmt: skip
def test_unparseable_header_raises_checkpoint_error(tmp_path, raw, text):
    path = tmp_path / "bad.ckpt"
    _write_crafted(path, raw)
    with pytest.raises(CheckpointError, match=text):
        checkpoint.restore(path, {"x": jnp.zeros(1)})


def test_version_1_file_is_refused_by_version(tmp_path):
    tree, path, header, data = _two_leaf_file(tmp_path)
    v1 = {"format_version": 1, "treedef": str(jax.tree.structure(tree)), "leaves": header["leaves"]}
    _write_crafted(path, json.dumps(v1).encode(), data)
    with pytest.raises(CheckpointError, match=r"format version 1 is not supported \(this gradxform reads version 2\)"):
        checkpoint.restore(path, tree)


@pytest.mark.parametrize("hlen", [checkpoint.MAX_HEADER_BYTES + 1, 2**40, 2**64 - 1])
def test_header_length_over_limit_raises_before_reading(tmp_path, hlen):
    path = tmp_path / "big.ckpt"
    path.write_bytes(checkpoint.MAGIC + struct.pack("<QI", hlen, 0) + b"{}")
    with pytest.raises(CheckpointError, match=f"the header length is {hlen} bytes, over the limit of"):
        checkpoint.restore(path, {"x": jnp.zeros(1)})


def test_header_length_past_end_of_file_raises(tmp_path):
    path = tmp_path / "h.ckpt"
    path.write_bytes(checkpoint.MAGIC + struct.pack("<QI", 3, zlib.crc32(b"{}")) + b"{}")
    with pytest.raises(CheckpointError, match="the header runs past the end of the file"):
        checkpoint.restore(path, {"x": jnp.zeros(1)})


def test_header_limit_holds_on_both_sides(tmp_path, monkeypatch):
    tree = {"x": jnp.zeros(2)}
    path = tmp_path / "c.ckpt"
    checkpoint.save(path, tree)
    _, hlen, _ = struct.unpack_from("<8sQI", path.read_bytes())
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", hlen)  # exactly at the limit: written and read
    checkpoint.save(path, tree)
    _assert_bitwise(checkpoint.restore(path, tree), tree)
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", hlen - 1)
    with pytest.raises(CheckpointError, match=f"over the limit of {hlen - 1}"):
        checkpoint.restore(path, tree)
    with pytest.raises(CheckpointError, match=f"header would be {hlen} bytes, over the limit of {hlen - 1}"):
        checkpoint.save(path, tree)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.ckpt"]


# ---- bounded reading ----


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


GIB = 1 << 30


def test_large_non_checkpoint_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + b"\0" * 100)
        f.truncate(GIB)  # sparse: 1 GiB long, nothing on disk
    tree = {"x": jnp.zeros(1)}

    def go():
        with pytest.raises(CheckpointError, match="wrong magic bytes"):
            checkpoint.restore(path, tree)

    assert _peak_bytes(go) < 1 << 20


def test_large_file_with_huge_header_length_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "big.ckpt"
    with open(path, "wb") as f:
        f.write(checkpoint.MAGIC + struct.pack("<QI", GIB - 20, 0))
        f.truncate(GIB)

    def go():
        with pytest.raises(CheckpointError, match="over the limit"):
            checkpoint.restore(path, {"x": jnp.zeros(1)})

    assert _peak_bytes(go) < 1 << 20


def test_data_is_not_read_when_the_template_does_not_fit(tmp_path):
    # a valid header listing 1 GiB of data (sparse), restored into a template of another shape
    n = GIB // 4
    header = {
        "format_version": 2,
        "nodes": [["<root>", "dict"], ["['x']", "leaf"]],
        "leaves": [{"path": "['x']", "shape": [n], "dtype": "float32", "offset": 0, "nbytes": GIB, "crc32": 0}],
    }
    path = tmp_path / "big.ckpt"
    _write_crafted(path, json.dumps(header).encode())
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) + GIB)

    def go():
        with pytest.raises(CheckpointError, match=rf"has shape \[{n}\] in the file but \[3\] in the template"):
            checkpoint.restore(path, {"x": jnp.zeros(3)})

    assert _peak_bytes(go) < 1 << 20


def test_restore_reads_each_byte_once_and_no_more_than_the_file(tmp_path, monkeypatch):
    tree, path, blob = _small_file(tmp_path)
    read = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def readinto(self, b):
            k = self.f.readinto(b)
            read.append(k)
            return k

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr("builtins.open", lambda *a, **k: Counting(real_open(*a, **k)))
    _assert_bitwise(checkpoint.restore(path, tree), tree)
    assert sum(read) == len(blob)


def test_file_shrinking_while_read_raises(tmp_path, monkeypatch):
    tree, path, blob = _small_file(tmp_path)
    real_fstat = os.fstat

    def fstat(fd):  # the size when restore looked; the file is shorter when it reads
        st = list(real_fstat(fd))
        st[6] = len(blob)
        return os.stat_result(st)

    path.write_bytes(blob[:-3])
    monkeypatch.setattr(checkpoint.os, "fstat", fstat)
    with pytest.raises(CheckpointError, match=f"the file ended at byte {len(blob) - 3}, before the {len(blob)}"):
        checkpoint.restore(path, tree)


# ---- paths: directories, fifos, devices, symlinks ----


def test_restore_refuses_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory, not a regular file"):
        checkpoint.restore(tmp_path, {"x": jnp.zeros(1)})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos")
def test_restore_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = []

    def go():
        try:
            checkpoint.restore(fifo, {"x": jnp.zeros(1)})
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            result.append(e)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(timeout=60)
    if t.is_alive():  # it blocked in open(): unblock it by opening the writing end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(timeout=60)
        pytest.fail("restore blocked on a fifo")
    assert isinstance(result[0], CheckpointError) and "is a fifo, not a regular file" in str(result[0])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_restore_refuses_a_device(device):
    with pytest.raises(CheckpointError, match="is a character device, not a regular file"):
        checkpoint.restore(device, {"x": jnp.zeros(1)})


def test_restore_follows_symlinks(tmp_path):
    tree, path, blob = _small_file(tmp_path)
    link = tmp_path / "latest.ckpt"
    link.symlink_to(path.name)
    _assert_bitwise(checkpoint.restore(link, tree), tree)
    (tmp_path / "dangling").symlink_to("nowhere.ckpt")
    with pytest.raises(FileNotFoundError):
        checkpoint.restore(tmp_path / "dangling", tree)
    (tmp_path / "to-dir").symlink_to(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory"):
        checkpoint.restore(tmp_path / "to-dir", tree)


def test_restore_of_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        checkpoint.restore(tmp_path / "none.ckpt", {"x": jnp.zeros(1)})


def _listing(d):
    return sorted(os.listdir(d))


def test_save_refuses_a_directory_and_leaves_it_alone(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "keep").write_bytes(b"k")
    with pytest.raises(CheckpointError, match=r"checkpoint.save: .*run: is a directory, not a regular file"):
        checkpoint.save(target, {"x": jnp.zeros(1)})
    assert _listing(tmp_path) == ["run"] and _listing(target) == ["keep"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos")
def test_save_refuses_a_fifo_and_leaves_it_alone(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="pipe: is a fifo, not a regular file; nothing was written"):
        checkpoint.save(fifo, {"x": jnp.zeros(1)})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _listing(tmp_path) == ["pipe"]


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "state.ckpt"
    checkpoint.save(real, {"x": jnp.zeros(2)})
    os.chmod(real, 0o640)
    link = tmp_path / "latest.ckpt"
    link.symlink_to(os.path.join("runs", "state.ckpt"))
    new = {"x": jnp.arange(2.0)}
    checkpoint.save(link, new)
    assert link.is_symlink() and os.readlink(link) == os.path.join("runs", "state.ckpt")
    _assert_bitwise(checkpoint.restore(real, new), new)
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    assert _listing(tmp_path) == ["latest.ckpt", "runs"] and _listing(tmp_path / "runs") == ["state.ckpt"]
    # a dangling link gets its target created, as open() would
    (tmp_path / "next.ckpt").symlink_to(os.path.join("runs", "next.ckpt"))
    checkpoint.save(tmp_path / "next.ckpt", new)
    _assert_bitwise(checkpoint.restore(tmp_path / "runs" / "next.ckpt", new), new)


# ---- permission bits ----


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o640, 0o664, 0o444, 0o755])
def test_save_keeps_an_existing_files_permission_bits(tmp_path, mode):
    path = tmp_path / "m.ckpt"
    checkpoint.save(path, {"x": jnp.zeros(1)})
    os.chmod(path, mode)
    checkpoint.save(path, {"x": jnp.ones(1)})
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    _assert_bitwise(checkpoint.restore(path, {"x": jnp.ones(1)}), {"x": jnp.ones(1)})


@pytest.mark.skipif(os.name != "posix", reason="umask is POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o027])
def test_save_gives_a_new_file_the_umask_default(tmp_path, umask):
    old = os.umask(umask)
    try:
        checkpoint.save(tmp_path / "new.ckpt", {"x": jnp.zeros(1)})
        with open(tmp_path / "by-open", "wb"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.ckpt").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "new.ckpt").st_mode) == stat.S_IMODE(os.stat(tmp_path / "by-open").st_mode)


def test_temporary_file_gets_the_final_mode_before_any_data(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    checkpoint.save(path, {"x": jnp.zeros(1)})
    os.chmod(path, 0o600)
    seen = []
    real_fdopen = os.fdopen

    def fdopen(fd, mode):
        seen.append((stat.S_IMODE(os.fstat(fd).st_mode), os.fstat(fd).st_size))
        return real_fdopen(fd, mode)

    monkeypatch.setattr(checkpoint.os, "fdopen", fdopen)
    checkpoint.save(path, {"x": jnp.ones(1)})
    assert seen == [(0o600, 0)]


# ---- file names up to NAME_MAX ----


def _name_max(d):
    try:
        return os.pathconf(d, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # pragma: no cover
        return 255


@pytest.mark.parametrize("kind", ["245", "name_max", "name_max-utf8"])
def test_save_and_restore_with_long_file_names(tmp_path, kind):
    n = _name_max(tmp_path)
    if kind == "245":
        name = "c" * 240 + ".ckpt"
    elif kind == "name_max":
        name = "c" * (n - 5) + ".ckpt"
    else:  # n bytes of 3-byte characters and ASCII
        name = "€" * ((n - 5) // 3) + "c" * ((n - 5) % 3) + ".ckpt"
    assert len(os.fsencode(name)) == (245 if kind == "245" else n)
    path = tmp_path / name
    for value in (0.0, 1.0):  # a new file, then over an existing one
        checkpoint.save(path, {"x": jnp.full(2, value)})
        _assert_bitwise(checkpoint.restore(path, {"x": jnp.zeros(2)}), {"x": jnp.full(2, value)})
    assert _listing(tmp_path) == [name]


def test_name_over_name_max_raises_and_leaves_nothing(tmp_path):
    n = _name_max(tmp_path)
    with pytest.raises(OSError) as info:
        checkpoint.save(tmp_path / ("c" * (n + 1)), {"x": jnp.zeros(1)})
    assert info.value.errno == errno.ENAMETOOLONG
    assert _listing(tmp_path) == []


# ---- nothing changed on failure ----


class _Boom(Exception):
    pass


def _raiser(exc):
    def f(*a, **k):
        raise exc

    return f


@pytest.mark.parametrize(
    "where, exc",
    [
        ("fchmod", OSError("fchmod failed (simulated)")),
        ("fdopen", OSError("fdopen failed (simulated)")),
        ("fsync", OSError("fsync failed (simulated)")),
        ("replace", OSError("replace failed (simulated)")),
        ("write", OSError("disk full (simulated)")),
        ("write", KeyboardInterrupt()),
        ("fsync", KeyboardInterrupt()),
    ],
    ids=["fchmod", "fdopen", "fsync", "replace", "write", "write-interrupt", "fsync-interrupt"],
)
def test_every_failing_step_of_save_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch, where, exc):
    path = tmp_path / "state.ckpt"
    old = {"x": jnp.arange(100.0)}
    checkpoint.save(path, old)
    os.chmod(path, 0o640)
    before = path.read_bytes()
    opened = []
    real_open = os.open
    monkeypatch.setattr(checkpoint.os, "open", lambda *a: opened.append(real_open(*a)) or opened[-1])
    if where == "write":
        real_fdopen = os.fdopen

        class Failing:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.f.close()

            def write(self, chunk):
                self.f.write(chunk[:10])
                raise exc

        monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(checkpoint.os, where, _raiser(exc))
    with pytest.raises(type(exc)):
        checkpoint.save(path, {"x": jnp.zeros(100)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert _listing(tmp_path) == ["state.ckpt"]
    for fd in opened:  # every descriptor save opened is closed
        with pytest.raises(OSError):
            os.fstat(fd)
    _assert_bitwise(checkpoint.restore(path, old), old)


def test_temporary_name_is_short_and_in_the_target_directory(tmp_path, monkeypatch):
    names = []
    real_replace = os.replace
    monkeypatch.setattr(checkpoint.os, "replace", lambda a, b: names.append((a, b)) or real_replace(a, b))
    target = tmp_path / ("c" * 240 + ".ckpt")
    checkpoint.save(target, {"x": jnp.zeros(1)})
    ((tmp, dst),) = names
    assert os.path.dirname(tmp) == str(tmp_path) and dst == str(target)
    assert len(os.path.basename(tmp)) <= 32 and os.path.basename(tmp).startswith(".gxf-") and tmp.endswith(".tmp")


def test_save_into_a_missing_directory_names_it_and_keeps_errno(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        checkpoint.save(tmp_path / "gone" / "state.ckpt", {"x": jnp.zeros(1)})
    assert info.value.errno == errno.ENOENT
    assert str(info.value).startswith(f"checkpoint.save: {tmp_path / 'gone' / 'state.ckpt'}: the directory")
    assert _listing(tmp_path) == []
