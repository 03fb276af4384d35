"""Checkpoints of any pytree of arrays (optimizer state, parameters, both), safe to load.

File format (version 1), all integers little-endian::

    magic      8 bytes   b"GXFCKPT\\n"
    hlen       8 bytes   length of the header in bytes (uint64)
    hcrc       4 bytes   CRC-32 of the header bytes (uint32)
    header     hlen      UTF-8 JSON: {"format_version": 1, "treedef": str, "leaves":
                         [{"path", "shape", "dtype", "offset", "nbytes", "crc32"}, ...]}
    data                 each leaf's raw little-endian bytes, C order, at its offset

Nothing in the file is executed or unpickled: the header is JSON, dtypes are
looked up by name in a fixed table, and data are raw bytes. `restore`
reads the whole file, checks magic, version, header CRC, exact length and each
leaf's CRC-32, then checks every leaf against the template (key path, shape,
dtype) and raises naming the first mismatch; it returns a state only when all
of it is right, never a partial one.

`save` is atomic: it writes a temporary file in the target's directory,
flushes and fsyncs it, `os.replace`-s it over the target and fsyncs the
directory, so a crash at any point leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.numerics import PyTree, dtype_of, path_str, shape_of

MAGIC = b"GXFCKPT\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sQI")
_MAX_HEADER = 1 << 28

# The only dtypes a checkpoint may hold, by name (no other name is ever resolved).
_DTYPES = {
    name: jnp.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
    )
}  # fmt: skip


class CheckpointError(ValueError):
    """A checkpoint file that is not readable (corrupt, truncated, another format) or does not fit the template."""


def _leaf_array(path: tuple, leaf: Any) -> np.ndarray:
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(f"checkpoint.save: the leaf at {path_str(path)} is a traced value; save outside jit/vmap/grad.")
    if (
        isinstance(leaf, jax.ShapeDtypeStruct)
        or not hasattr(leaf, "dtype")
        and not isinstance(leaf, (int, float, complex))
    ):
        raise TypeError(
            f"checkpoint.save: the leaf at {path_str(path)} is a {type(leaf).__name__}; a checkpoint holds "
            "arrays and numbers only."
        )
    arr = np.asarray(jax.device_get(leaf if hasattr(leaf, "dtype") else jnp.asarray(leaf)))
    if arr.dtype.name not in _DTYPES:
        raise TypeError(f"checkpoint.save: the leaf at {path_str(path)} has dtype {arr.dtype}, which is not supported.")
    arr = np.array(arr, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
    return arr.byteswap() if sys.byteorder != "little" else arr


def _encode(tree: PyTree) -> bytes:
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    entries, chunks, offset = [], [], 0
    for path, leaf in leaves:
        arr = _leaf_array(path, leaf)
        raw = arr.tobytes()
        entries.append(
            {
                "path": path_str(path),
                "shape": list(arr.shape),
                "dtype": arr.dtype.name,
                "offset": offset,
                "nbytes": len(raw),
                "crc32": zlib.crc32(raw),
            }
        )
        chunks.append(raw)
        offset += len(raw)
    header = json.dumps(
        {"format_version": FORMAT_VERSION, "treedef": str(treedef), "leaves": entries}, sort_keys=True
    ).encode("utf-8")
    return _PREFIX.pack(MAGIC, len(header), zlib.crc32(header)) + header + b"".join(chunks)


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: str, blob: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def save(path: str | os.PathLike, tree: PyTree) -> None:
    """Writes `tree` (any pytree of arrays and numbers) to `path` atomically.

    Save the parameters with the state by saving a tree holding both, e.g.
    `save(path, {"params": params, "opt_state": state})`. The file is fully
    encoded in memory first, so a bad leaf raises before anything is written.
    """
    _write_atomic(os.fspath(path), _encode(tree))


def _fail(path: Any, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint.restore: {os.fspath(path)}: {what}")


def _check_entries(path: Any, header: dict) -> None:
    """Each leaf entry well-typed, its dtype in the table, its bytes contiguous and of the right size."""
    leaves = header.get("leaves")
    if not isinstance(leaves, list) or not isinstance(header.get("treedef"), str):
        raise _fail(path, "the header has no leaf list (corrupted, or not written by gradxform).")
    offset = 0
    for e in leaves:
        ok = (
            isinstance(e, dict)
            and isinstance(e.get("path"), str)
            and isinstance(e.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in e["shape"])
            and e.get("dtype") in _DTYPES
            and e.get("offset") == offset
            and isinstance(e.get("crc32"), int)
            and e.get("nbytes") == int(np.prod(e["shape"], dtype=np.int64)) * _DTYPES[e["dtype"]].itemsize
        )
        if not ok:
            raise _fail(path, f"the header entry {e!r:.200} is malformed (corrupted, or not written by gradxform).")
        offset += e["nbytes"]


def _decode(path: Any, blob: bytes) -> tuple[dict, memoryview]:
    if len(blob) < _PREFIX.size:
        raise _fail(path, f"the file is {len(blob)} bytes, too short to be a gradxform checkpoint (truncated?).")
    magic, hlen, hcrc = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise _fail(path, "not a gradxform checkpoint (wrong magic bytes).")
    if hlen > _MAX_HEADER or _PREFIX.size + hlen > len(blob):
        raise _fail(path, "the header runs past the end of the file (truncated or corrupted).")
    raw_header = blob[_PREFIX.size : _PREFIX.size + hlen]
    if zlib.crc32(raw_header) != hcrc:
        raise _fail(path, "the header checksum does not match (the file is corrupted).")
    try:
        header = json.loads(raw_header.decode("utf-8"))
        version = header.get("format_version")
    except (UnicodeDecodeError, ValueError, AttributeError):
        raise _fail(path, "the header is not a JSON object (corrupted, or not written by gradxform).") from None
    if version != FORMAT_VERSION:
        raise _fail(
            path, f"format version {version!r} is not supported (this gradxform reads version {FORMAT_VERSION})."
        )
    _check_entries(path, header)
    data = memoryview(blob)[_PREFIX.size + hlen :]
    need = sum(e["nbytes"] for e in header["leaves"])
    if len(data) != need:
        raise _fail(
            path, f"the data section is {len(data)} bytes but the header lists {need} (truncated or corrupted)."
        )
    for e in header["leaves"]:
        chunk = data[e["offset"] : e["offset"] + e["nbytes"]]
        if len(chunk) != e["nbytes"] or zlib.crc32(chunk) != e["crc32"]:
            raise _fail(path, f"the data of the leaf at {e['path']} fail their checksum (the file is corrupted).")
    return header, data


def restore(path: str | os.PathLike, template: PyTree) -> PyTree:
    """Reads the tree saved at `path`, checked against `template`; returns it with `template`'s structure.

    `template` is a tree of the same structure, e.g. `tx.init(params)` or
    `jax.eval_shape(tx.init, params)` (its leaves may be arrays or
    `jax.ShapeDtypeStruct`; only their shapes and dtypes are used). Raises
    `CheckpointError` (a `ValueError`) naming the first difference in
    key path, shape or dtype, or saying how the file is damaged.
    """
    with open(path, "rb") as f:
        blob = f.read()
    header, data = _decode(path, blob)
    t_leaves, t_def = jax.tree_util.tree_flatten_with_path(template)
    entries = header["leaves"]
    for i, ((t_path, t_leaf), e) in enumerate(zip(t_leaves, entries)):
        if path_str(t_path) != e["path"]:
            raise _fail(
                path,
                f"leaf {i} of the file is at {e['path']} but leaf {i} of the template is at {path_str(t_path)}; "
                "was it saved from another optimizer or another model?",
            )
        if list(shape_of(t_leaf)) != e["shape"]:
            raise _fail(
                path,
                f"the leaf at {e['path']} has shape {e['shape']} in the file but {list(shape_of(t_leaf))} "
                "in the template.",
            )
        if dtype_of(t_leaf).name != e["dtype"]:
            raise _fail(
                path,
                f"the leaf at {e['path']} has dtype {e['dtype']} in the file but {dtype_of(t_leaf)} in the template.",
            )
    if len(t_leaves) != len(entries):
        side, extra = (
            ("file", entries[len(t_leaves)]["path"])
            if len(entries) > len(t_leaves)
            else ("template", path_str(t_leaves[len(entries)][0]))
        )
        raise _fail(
            path,
            f"the file has {len(entries)} leaves and the template {len(t_leaves)}; only the {side} has {extra}; "
            "was it saved from another optimizer or another model?",
        )
    if header["treedef"] != str(t_def):
        raise _fail(
            path, f"the tree structure differs from the template's: file {header['treedef']}, template {t_def}."
        )
    out = []
    for e in entries:
        dt = _DTYPES[e["dtype"]]
        arr = np.frombuffer(data[e["offset"] : e["offset"] + e["nbytes"]], dtype=dt).reshape(e["shape"])
        if sys.byteorder != "little":  # pragma: no cover
            arr = arr.byteswap()
        out.append(jnp.asarray(arr.copy()))
    return jax.tree_util.tree_unflatten(t_def, out)
