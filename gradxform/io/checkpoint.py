"""Checkpoints of any pytree of arrays (optimizer state, parameters, both), safe to load.

File format (version 2), all integers little-endian:

```python
magic      8 bytes   b"GXFCKPT\\n"
hlen       8 bytes   length of the header in bytes (uint64), at most `MAX_HEADER_BYTES`
hcrc       4 bytes   CRC-32 of the header bytes (uint32)
header     hlen      UTF-8 JSON: {"format_version": 2,
                       "nodes": [[path, kind], ...],
                       "leaves": [{"path", "shape", "dtype", "offset", "nbytes", "crc32"}, ...]}
data                 each leaf's raw little-endian bytes, C order, at its offset
```

`nodes` lists every node of the tree in pre-order (the order `jax.tree.flatten`
visits them), each as its key path (`jax.tree_util.keystr`) and its kind:
`leaf`, `None`, `dict`, `list`, `tuple`, `namedtuple Name(field, ...)`,
or `module.QualifiedName` for any other registered node (a flax `TrainState`,
an equinox `Module`, an `OrderedDict`). The kinds never hold a node's auxiliary
data (static fields, functions, bound methods), so a file written by one
process restores in another. `leaves` lists the leaves in the same order.

Nothing in the file is executed or unpickled: the header is JSON, dtypes are
looked up by name in a fixed table, and data are raw bytes. `restore` refuses
anything but a regular file, then reads the file in order, each part only once
what came before bounds it: the prefix (magic, then a header length no larger
than `MAX_HEADER_BYTES` nor than the file), the header (CRC-32, JSON, every
field's type and range), the data's length against the file's, every leaf
against the template (key path, shape, dtype, then node kinds), and only then
the data, leaf by leaf, each against its CRC-32. Every fault is a
`CheckpointError` naming the first mismatch; it returns a state only when all
of it is right, never a partial one.

`save` is atomic: it writes a temporary file with a short random name in the
target's directory (it keeps an existing target's permission bits, else the
process umask applies as with `open`), flushes and fsyncs it, `os.replace`-s it
over the target and fsyncs the directory, so a crash at any point leaves either
the old file or the new one; on any error the temporary file is removed.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
import struct
import sys
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.numerics import PyTree, dtype_of, path_str, shape_of

MAGIC = b"GXFCKPT\n"
FORMAT_VERSION = 2
_PREFIX = struct.Struct("<8sQI")

# The header is parsed into Python objects (a few hundred bytes of them per leaf), so its size is
# bounded: 64 MiB holds about 200,000 leaves (a leaf costs about 300 header bytes), far more than any
# model's state, and parsing it costs well under 1 GiB. `save` refuses a tree whose header would be
# larger, so every file it writes can be read back.
MAX_HEADER_BYTES = 1 << 26

_INT64_MAX = (1 << 63) - 1
_MAX_NDIM = 64  # numpy's limit
_TMP_PREFIX, _TMP_SUFFIX = ".gxf-", ".tmp"
_LEAF_KEYS = ("crc32", "dtype", "nbytes", "offset", "path", "shape")

# The only dtypes a checkpoint may hold, by name (no other name is ever resolved).
_DTYPES = {
    name: jnp.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
    )
}  # fmt: skip


class CheckpointError(ValueError):
    """A checkpoint path that is not a regular file, a file that is not a readable checkpoint (corrupt,
    truncated, another format), one that does not fit the template, or a tree too large to save in one file."""


# ---- tree structure: key paths and node kinds, never reprs ----


def _kind(node: Any) -> str:
    if node is None:
        return "None"
    t = type(node)
    if t in (dict, list, tuple):
        return t.__name__
    if isinstance(node, tuple) and isinstance(getattr(t, "_fields", None), tuple):
        return f"namedtuple {t.__name__}({', '.join(map(str, t._fields))})"
    return f"{t.__module__}.{t.__qualname__}"


def _nodes(tree: PyTree) -> list[tuple[str, str]]:
    """Every node of `tree` in pre-order (jax's flattening order), as (key path, kind)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[tuple, Any]] = [((), tree)]
    while stack:
        path, node = stack.pop()
        children, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x, node=node: x is not node)
        if len(children) == 1 and children[0][0] == ():
            out.append((path_str(path), "leaf"))
            continue
        out.append((path_str(path), _kind(node)))
        stack.extend((path + key, child) for key, child in reversed(children))
    return out


# ---- save ----


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


def _encode(tree: PyTree) -> list[bytes]:
    """The file as a list of chunks: prefix and header, then each leaf's bytes."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
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
    nodes = [list(n) for n in _nodes(tree)]
    header = json.dumps({"format_version": FORMAT_VERSION, "nodes": nodes, "leaves": entries}, sort_keys=True).encode(
        "utf-8"
    )
    if len(header) > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"checkpoint.save: the tree has {len(leaves)} leaves, so its header would be {len(header)} bytes, "
            f"over the limit of {MAX_HEADER_BYTES}; save it in parts (one file per sub-tree). Nothing was written."
        )
    return [_PREFIX.pack(MAGIC, len(header), zlib.crc32(header)) + header, *chunks]


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"  # pragma: no cover - door/port/whiteout files exist only on other systems


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(directory: str) -> tuple[int, str]:
    """A new file with a short random name in `directory` (so it fits NAME_MAX whatever the target's
    name), created with mode 0o666 so the kernel applies the umask (and default ACLs) as `open` would."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f"{_TMP_PREFIX}{secrets.token_hex(8)}{_TMP_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
    raise FileExistsError(f"checkpoint.save: no free temporary name in {directory}")  # pragma: no cover


def _write_atomic(path: str, chunks: list[bytes]) -> None:
    # Like `open(path, "wb")`, follow a symlink: the link stays, and the file it points to is replaced.
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise CheckpointError(
            f"checkpoint.save: {path}: is {_file_kind(st.st_mode)}, not a regular file; nothing was written."
        )
    directory = os.path.dirname(target)
    try:
        fd, tmp = _create_temp(directory)
    except FileNotFoundError:  # name the directory the user gave, not the temporary file
        given = os.path.dirname(path) or "."
        err = FileNotFoundError(f"checkpoint.save: {path}: the directory {given} does not exist; nothing was written.")
        err.errno = errno.ENOENT  # (a filename or strerror would change str(err) to the "[Errno 2] ..." form)
        raise err from None
    f = None
    try:
        if st is not None:  # keep the existing file's permission bits (before any byte is written)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
            else:  # pragma: no cover - Windows before Python 3.13
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
        f = os.fdopen(fd, "wb")
        with f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if f is None:
            os.close(fd)
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
    An existing file keeps its permission bits; a new one gets the umask's
    default, as with `open`. A symlink is followed (the file it names is
    replaced, the link stays). On any error the previous file is untouched
    and no temporary file is left.

    Args:
      path: the file to write.
      tree: the pytree to save.
    """
    _write_atomic(os.fspath(path), _encode(tree))


# ---- restore ----


def _fail(path: Any, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint.restore: {os.fspath(path)}: {what}")


def _shown(value: Any) -> str:
    """A header value for a message: containers by their type only (their repr may be huge or deep)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_field(path: Any, where: str, value: Any, expected: str) -> CheckpointError:
    return _fail(
        path,
        f"the header field {where} is {_shown(value)}; expected {expected} (corrupted, or not written by gradxform).",
    )


def _is_int(x: Any) -> bool:
    return type(x) is int  # not bool, not float


def _check_header(path: Any, header: Any) -> None:
    """Every field of a version-2 header of the right type and range, the leaves contiguous from 0, and the
    node list consistent with the leaf list. Raises `CheckpointError` naming the first bad field."""
    nodes, leaves = header.get("nodes"), header.get("leaves")
    if not isinstance(nodes, list):
        raise _bad_field(path, "nodes", nodes, "a list of [path, kind] pairs")
    for i, n in enumerate(nodes):
        if not (isinstance(n, list) and len(n) == 2 and all(isinstance(s, str) for s in n)):
            raise _bad_field(path, f"nodes[{i}]", n, "a [path, kind] pair of strings")
    if not isinstance(leaves, list):
        raise _bad_field(path, "leaves", leaves, "a list of leaf entries")
    offset = 0
    for i, e in enumerate(leaves):
        at = f"leaves[{i}]"
        if not (isinstance(e, dict) and sorted(e) == list(_LEAF_KEYS)):
            raise _bad_field(path, at, e, f"an object with exactly the keys {', '.join(_LEAF_KEYS)}")
        if not isinstance(e["path"], str):
            raise _bad_field(path, f"{at}.path", e["path"], "a string")
        shape = e["shape"]
        if not (isinstance(shape, list) and len(shape) <= _MAX_NDIM):
            raise _bad_field(path, f"{at}.shape", shape, f"a list of at most {_MAX_NDIM} integers")
        for j, d in enumerate(shape):
            if not (_is_int(d) and 0 <= d <= _INT64_MAX):
                raise _bad_field(path, f"{at}.shape[{j}]", d, "an integer in [0, 2**63)")
        if not (isinstance(e["dtype"], str) and e["dtype"] in _DTYPES):
            raise _bad_field(path, f"{at}.dtype", e["dtype"], f"one of {', '.join(_DTYPES)}")
        itemsize = _DTYPES[e["dtype"]].itemsize
        if math.prod(max(d, 1) for d in shape) * itemsize > _INT64_MAX:  # what numpy can address
            raise _bad_field(path, f"{at}.shape", shape, "a shape of fewer than 2**63 bytes")
        if not (_is_int(e["offset"]) and e["offset"] == offset):
            raise _bad_field(path, f"{at}.offset", e["offset"], f"{offset}, where the previous leaf ends")
        nbytes = math.prod(shape) * itemsize
        if not (_is_int(e["nbytes"]) and e["nbytes"] == nbytes):
            raise _bad_field(path, f"{at}.nbytes", e["nbytes"], f"{nbytes}, the shape's size times the itemsize")
        if not (_is_int(e["crc32"]) and 0 <= e["crc32"] < 1 << 32):
            raise _bad_field(path, f"{at}.crc32", e["crc32"], "an integer in [0, 2**32)")
        offset += nbytes
    if [p for p, kind in nodes if kind == "leaf"] != [e["path"] for e in leaves]:
        raise _fail(
            path, "the header's node list does not match its leaf list (corrupted, or not written by gradxform)."
        )


def _open_regular(path: Any):
    """The file at `path` opened for reading, refusing anything but a regular file without blocking on it
    (a fifo would block `open` until a writer comes, and /dev/zero would never end)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, f"is {_file_kind(st.st_mode)}, not a regular file (a checkpoint is one file).")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)  # the file opened, not the one stat-ed (it may have been swapped)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(path, f"is {_file_kind(st.st_mode)}, not a regular file (a checkpoint is one file).")
        if os.name == "posix":
            os.set_blocking(fd, True)
        return open(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_exact(path: Any, f: Any, n: int, at: int) -> bytearray:
    """Exactly `n` bytes (the caller has checked they are within the file's size)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise _fail(
                path,
                f"the file ended at byte {at + got}, before the {at + n} its size promised "
                "(truncated while being read?).",
            )
        got += k
    return buf


def _read_header(path: Any, f: Any, size: int) -> dict:
    if size < _PREFIX.size:
        raise _fail(path, f"the file is {size} bytes, too short to be a gradxform checkpoint (truncated?).")
    magic, hlen, hcrc = _PREFIX.unpack(_read_exact(path, f, _PREFIX.size, 0))
    if magic != MAGIC:
        raise _fail(path, "not a gradxform checkpoint (wrong magic bytes).")
    if hlen > MAX_HEADER_BYTES:
        raise _fail(
            path,
            f"the header length is {hlen} bytes, over the limit of {MAX_HEADER_BYTES} (corrupted, or not written "
            "by gradxform).",
        )
    if _PREFIX.size + hlen > size:
        raise _fail(path, "the header runs past the end of the file (truncated or corrupted).")
    raw = _read_exact(path, f, hlen, _PREFIX.size)
    if zlib.crc32(raw) != hcrc:
        raise _fail(path, "the header checksum does not match (the file is corrupted).")
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _fail(path, "the header nests too deeply (corrupted, or not written by gradxform).") from None
    except ValueError:  # (UnicodeDecodeError and json.JSONDecodeError are ValueErrors)
        raise _fail(path, "the header is not a JSON object (corrupted, or not written by gradxform).") from None
    if not isinstance(header, dict):
        raise _fail(path, "the header is not a JSON object (corrupted, or not written by gradxform).")
    version = header.get("format_version")
    if not _is_int(version):
        raise _bad_field(path, "format_version", version, "an integer")
    if version != FORMAT_VERSION:
        raise _fail(path, f"format version {version} is not supported (this gradxform reads version {FORMAT_VERSION}).")
    _check_header(path, header)
    need = sum(e["nbytes"] for e in header["leaves"])
    have = size - _PREFIX.size - hlen
    if have != need:
        raise _fail(path, f"the data section is {have} bytes but the header lists {need} (truncated or corrupted).")
    return header


def _structure_error(path: Any, file_nodes: list, t_nodes: list) -> CheckpointError | None:
    for i, (fn, tn) in enumerate(zip(file_nodes, t_nodes)):
        if fn != tn:
            if fn[0] == tn[0]:
                what = f" at {fn[0]}: the file has {fn[1]}, the template {tn[1]}."
            else:
                what = f": node {i} is {fn[1]} at {fn[0]} in the file but {tn[1]} at {tn[0]} in the template."
            return _fail(path, f"the tree structure differs from the template's{what}")
    if len(file_nodes) != len(t_nodes):
        side, (p, kind) = (
            ("file", file_nodes[len(t_nodes)])
            if len(file_nodes) > len(t_nodes)
            else ("template", t_nodes[len(file_nodes)])
        )
        return _fail(path, f"the tree structure differs from the template's: only the {side} has {kind} at {p}.")
    return None


def _check_template(path: Any, header: dict, template: PyTree) -> Any:
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
    err = _structure_error(path, [tuple(n) for n in header["nodes"]], _nodes(template))
    if err is not None:
        raise err
    return t_def


def restore(path: str | os.PathLike, template: PyTree) -> PyTree:
    """Reads the tree saved at `path`, checked against `template`; returns it with `template`'s structure.

    `template` is a tree of the same structure, e.g. `tx.init(params)` or
    `jax.eval_shape(tx.init, params)` (its leaves may be arrays or
    `jax.ShapeDtypeStruct`; only their shapes and dtypes are used, and its
    nodes' static data, such as a flax `TrainState`'s `apply_fn` and `tx`,
    come back from the template). Raises `CheckpointError` (a `ValueError`)
    naming the first difference in key path, shape, dtype or node kind, or
    saying how the file is damaged. Reads no more than the file's size
    announces, and its data only once the header and template agree.

    Args:
      path: the file to read.
      template: a tree of the expected structure, shapes and dtypes.

    Returns:
      The restored tree.

    Raises:
      CheckpointError: the file does not match `template` or is damaged.
    """
    f, size = _open_regular(path)
    with f:
        header = _read_header(path, f, size)
        t_def = _check_template(path, header, template)
        bufs = []
        for e in header["leaves"]:
            buf = _read_exact(path, f, e["nbytes"], f.tell())
            if zlib.crc32(buf) != e["crc32"]:
                raise _fail(path, f"the data of the leaf at {e['path']} fail their checksum (the file is corrupted).")
            if e["dtype"] == "bool" and np.frombuffer(buf, np.uint8).max(initial=0) > 1:  # numpy would keep a 2
                raise _fail(
                    path,
                    f"the data of the leaf at {e['path']} hold booleans other than 0 and 1 (corrupted, or not "
                    "written by gradxform).",
                )
            bufs.append(buf)
    out = []
    for i, e in enumerate(header["leaves"]):
        arr = np.frombuffer(bufs[i], dtype=_DTYPES[e["dtype"]]).reshape(e["shape"])
        bufs[i] = None
        if sys.byteorder != "little":  # pragma: no cover
            arr = arr.byteswap()
        out.append(jnp.asarray(arr))
    return jax.tree_util.tree_unflatten(t_def, out)
