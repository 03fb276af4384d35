"""Every bad input the library recognises: the exact message the user sees, and nothing changed.

Each case triggers one error, checks its type and its exact text, and checks
that the inputs it was given (parameters, states, files on disk) are unchanged.
``docs/errors.md`` lists the same messages; ``test_docs_list_every_message``
keeps the two in step. Paths of temporary files appear as ``<path>``.
"""

import collections
import json
import os
import pathlib
import struct
import zlib
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import checkpoint
from gradxform.io.checkpoint import CheckpointError

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def P():
    return {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}


def _snapshot(tree):
    return [np.array(x) for x in jax.tree.leaves(tree)], jax.tree.structure(tree)


def _unchanged(before, tree):
    leaves, treedef = _snapshot(tree)
    assert treedef == before[1]
    for a, b in zip(leaves, before[0]):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _x64(fn):
    with jax.enable_x64(True):
        return fn()


def _adam_state():
    return gx.adam(1e-3).init(P())


def _saved(tmp, tree, name="c.ckpt"):
    path = tmp / name
    checkpoint.save(path, tree)
    return path


def _flip(path, at):
    blob = bytearray(path.read_bytes())
    blob[at] ^= 0x10
    path.write_bytes(bytes(blob))


# Each case: (id, what the user did, exception type, message, make(tmp) -> (trigger, watched))
# `watched` is a pytree of arrays or a path whose bytes must not change.
CASES = [
    (
        "grads-missing-leaf",
        "gradients missing a parameter",
        ValueError,
        "adam: the update tree does not match the state made by init: the updates lack ['w'], which it has. "
        "Pass gradients for the same parameters that were given to init.",
        lambda tmp: ((lambda s: gx.adam(1e-3).update({"b": jnp.zeros(3)}, s)), _adam_state()),
    ),
    (
        "grads-renamed-leaf",
        "gradients with a different key",
        ValueError,
        "adam: the update tree does not match the state made by init: the updates have ['v'] where it has "
        "['w']. Pass gradients for the same parameters that were given to init.",
        lambda tmp: ((lambda s: gx.adam(1e-3).update({"b": jnp.zeros(3), "v": jnp.ones((2, 3))}, s)), _adam_state()),
    ),
    (
        "grads-wrong-shape",
        "a gradient of the wrong shape",
        ValueError,
        "adam: the update at ['w'] has shape [3, 2] but the state made by init has shape [2, 3].",
        lambda tmp: ((lambda s: gx.adam(1e-3).update({"b": jnp.zeros(3), "w": jnp.ones((3, 2))}, s)), _adam_state()),
    ),
    (
        "grads-wrong-dtype",
        "float64 gradients for the float32 parameters given to init",
        ValueError,
        "sgd: the update at ['b'] is float64[3] but the state made by init holds float32[3]; init and update "
        "must see the same dtypes (cast the gradients, or call init again).",
        lambda tmp: (
            (lambda s: _x64(lambda: gx.sgd(0.1, 0.9).update(jax.tree.map(lambda x: x.astype(jnp.float64), P()), s))),
            gx.sgd(0.1, 0.9).init(P()),
        ),
    ),
    (
        "int-leaf",
        "an integer leaf in the parameters",
        TypeError,
        "adam: the leaf at ['step'] has dtype int32; optimizers need float or complex leaves. Keep integer "
        "and boolean leaves out of the tree you optimize (split them off, or wrap the optimizer so it does "
        "not see them).",
        lambda tmp: ((lambda p: gx.adam(1e-3).init(p)), {"w": jnp.ones(2), "step": jnp.array(3)}),
    ),
    (
        "bool-leaf",
        "a boolean leaf in the parameters",
        TypeError,
        "momentum: the leaf at ['mask'] has dtype bool; optimizers need float or complex leaves. Keep "
        "integer and boolean leaves out of the tree you optimize (split them off, or wrap the optimizer so "
        "it does not see them).",
        lambda tmp: ((lambda p: gx.momentum(0.1).init(p)), {"mask": jnp.array([True]), "w": jnp.ones(2)}),
    ),
    (
        "lr-negative",
        "a negative learning rate",
        ValueError,
        "adam: learning_rate=-0.001 is out of range; allowed: [0, inf).",
        lambda tmp: ((lambda _: gx.adam(-1e-3)), None),
    ),
    (
        "b1-one",
        "b1 = 1 (the EMA would never move)",
        ValueError,
        "adam: b1=1.0 is out of range; allowed: [0, 1).",
        lambda tmp: ((lambda _: gx.adam(1e-3, b1=1.0)), None),
    ),
    (
        "eps-nan",
        "a NaN hyperparameter",
        ValueError,
        "rmsprop: eps=nan is out of range; allowed: [0, inf).",
        lambda tmp: ((lambda _: gx.rmsprop(1e-3, eps=float("nan"))), None),
    ),
    (
        "hyper-array",
        "an array where a scalar hyperparameter is expected",
        ValueError,
        "sgd: learning_rate must be a scalar, got an array of shape [2].",
        lambda tmp: ((lambda _: gx.sgd(jnp.array([0.1, 0.2]))), None),
    ),
    (
        "hyper-bool",
        "a boolean hyperparameter",
        TypeError,
        "momentum: beta must be a number, got the boolean True.",
        lambda tmp: ((lambda _: gx.momentum(0.1, beta=True)), None),
    ),
    (
        "hyper-string",
        "a string hyperparameter",
        TypeError,
        "adam: learning_rate must be a number, got the string '1e-3'.",
        lambda tmp: ((lambda _: gx.adam("1e-3")), None),
    ),
    (
        "schedule-shape",
        "a schedule that returns an array instead of a scalar",
        ValueError,
        "sgd: the schedule for learning_rate returned shape [2]; a schedule must return a scalar.",
        lambda tmp: (
            (lambda s: gx.sgd(lambda c: jnp.array([0.1, 0.1])).update(P(), s)),
            gx.sgd(lambda c: jnp.array([0.1, 0.1])).init(P()),
        ),
    ),
    (
        "nesterov-no-momentum",
        "nesterov=True without a momentum",
        ValueError,
        "sgd: nesterov=True needs a momentum (e.g. momentum=0.9).",
        lambda tmp: ((lambda _: gx.sgd(0.1, nesterov=True)), None),
    ),
    (
        "state-dtype-int",
        "an integer state dtype",
        TypeError,
        "sgd: state_dtype=<class 'jax.numpy.int32'> must be a floating dtype (e.g. jnp.bfloat16) or "
        "gradxform.quantized(...).",
        lambda tmp: ((lambda _: gx.sgd(0.1, 0.9, state_dtype=jnp.int32)), None),
    ),
    (
        "accumulator-schedule",
        "a schedule for Adagrad's initial accumulator (used once, at init)",
        TypeError,
        "sum_sq: initial_accumulator_value is used once, at init; it cannot be a schedule.",
        lambda tmp: ((lambda _: gx.sum_sq(lambda c: 0.1)), None),
    ),
    (
        "factory-not-called",
        "an optimizer factory passed without calling it",
        TypeError,
        "chain (argument 0): expected a gradient transformation (an object with init and update), got function. "
        "Did you pass an optimizer factory without calling it, e.g. gradxform.adam instead of gradxform.adam(1e-3)?",
        lambda tmp: ((lambda _: gx.chain(gx.adam, gx.scale(1.0))), None),
    ),
    (
        "chain-wrong-state",
        "the state of another chain",
        ValueError,
        "chain: the state has 2 parts but 3 are expected; use the state this chain's init made.",
        lambda tmp: (
            (lambda s: gx.chain(gx.ema(0.9), gx.ema(0.5), gx.ema_sq(0.9)).update(P(), s)),
            gx.chain(gx.ema(0.9), gx.ema(0.5)).init(P()),
        ),
    ),
    (
        "decay-without-params",
        "weight decay without passing the parameters to update",
        ValueError,
        "adamw: update needs the parameters: call tx.update(grads, state, params).",
        lambda tmp: ((lambda s: gx.adamw(1e-3).update(P(), s)), gx.adamw(1e-3).init(P())),
    ),
    (
        "apply-updates-mismatch",
        "apply_updates with updates for other parameters",
        ValueError,
        "apply_updates: the update at ['w'] has shape [3] but the parameter has shape [2, 3].",
        lambda tmp: ((lambda p: gx.apply_updates(p, {"b": jnp.zeros(3), "w": jnp.zeros(3)})), P()),
    ),
    (
        "clip-negative",
        "a negative clipping bound",
        ValueError,
        "clip: max_delta=-1.0 is out of range; allowed: [0, inf).",
        lambda tmp: ((lambda _: gx.clip(-1.0)), None),
    ),
    (
        "clip-norm-zero",
        "a zero global-norm bound",
        ValueError,
        "clip_by_global_norm: max_norm=0.0 is out of range; allowed: (0, inf).",
        lambda tmp: ((lambda _: gx.clip_by_global_norm(0.0)), None),
    ),
    (
        "skip-negative",
        "a negative max_consecutive",
        ValueError,
        "skip_nonfinite: max_consecutive=-1 must be an int >= 0 (non-finite steps in a row to skip before giving up).",
        lambda tmp: ((lambda _: gx.skip_nonfinite(gx.sgd(0.1), -1)), None),
    ),
    (
        "accumulate-k-zero",
        "accumulation over 0 micro-steps",
        ValueError,
        "accumulate: k=0 must be an int >= 1 (the number of micro-steps per update).",
        lambda tmp: ((lambda _: gx.accumulate(gx.sgd(0.1), 0)), None),
    ),
    (
        "mask-extra-key",
        "a mask with a key the parameters do not have",
        ValueError,
        "masked: the mask does not match the parameters: the mask has an entry at ['bias'] that the parameters "
        "do not have. Give the mask the parameters' structure (or a prefix of it), or a function params -> mask.",
        lambda tmp: ((lambda p: gx.masked(gx.sgd(0.1), {"w": True, "bias": False}).init(p)), P()),
    ),
    (
        "mask-missing-key",
        "a mask that leaves a parameter out",
        ValueError,
        "masked: the mask does not match the parameters: the parameter at ['b'] has no entry in the mask. "
        "Give the mask the parameters' structure (or a prefix of it), or a function params -> mask.",
        lambda tmp: ((lambda p: gx.masked(gx.sgd(0.1), {"w": True}).init(p)), P()),
    ),
    (
        "mask-not-bool",
        "a mask holding arrays instead of Python bools",
        TypeError,
        "masked: the mask entry at ['b'] is 1; mask entries must be Python bools (True: the leaf is selected).",
        lambda tmp: ((lambda p: gx.masked(gx.sgd(0.1), {"w": True, "b": 1}).init(p)), P()),
    ),
    (
        "partition-unknown-label",
        "a label with no transform in partition",
        ValueError,
        "partition: a leaf has the label 'frozen' but transforms has no entry for it; the labels with a "
        "transform are [\"'adam'\"].",
        lambda tmp: ((lambda p: gx.partition({"adam": gx.adam(1e-3)}, {"w": "adam", "b": "frozen"}).init(p)), P()),
    ),
    (
        "ckpt-other-optimizer",
        "restoring a momentum checkpoint into an Adam state",
        CheckpointError,
        "checkpoint.restore: <path>: leaf 0 of the file is at .trace['b'] but leaf 0 of the template is at "
        ".count; was it saved from another optimizer or another model?",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, gx.adam(1e-3).init(P()))),
            _saved(tmp, gx.momentum(0.1).init(P())),
        ),
    ),
    (
        "ckpt-other-model",
        "restoring into a template with one parameter more",
        CheckpointError,
        "checkpoint.restore: <path>: the file has 2 leaves and the template 3; only the template has ['z']; "
        "was it saved from another optimizer or another model?",
        lambda tmp: ((lambda path: checkpoint.restore(path, {**P(), "z": jnp.ones(1)})), _saved(tmp, P())),
    ),
    (
        "ckpt-shape",
        "restoring into a template of another shape",
        CheckpointError,
        "checkpoint.restore: <path>: the leaf at ['w'] has shape [2, 3] in the file but [3, 2] in the template.",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, {"b": jnp.zeros(3), "w": jnp.ones((3, 2))})),
            _saved(tmp, P()),
        ),
    ),
    (
        "ckpt-dtype",
        "restoring into a template of another dtype",
        CheckpointError,
        "checkpoint.restore: <path>: the leaf at ['b'] has dtype float32 in the file but bfloat16 in the template.",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, {"b": jnp.zeros(3, jnp.bfloat16), "w": jnp.ones((2, 3))})),
            _saved(tmp, P()),
        ),
    ),
    (
        "ckpt-structure",
        "restoring into a state of another type whose leaves have the same key paths",
        CheckpointError,
        "checkpoint.restore: <path>: the tree structure differs from the template's at <root>: the file has "
        "namedtuple EmaState(mu), the template namedtuple NesterovEmaState(mu, mu_product).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, gx.NesterovEmaState(jnp.zeros(3), None))),
            _saved(tmp, gx.EmaState(jnp.zeros(3))),
        ),
    ),
    (
        "ckpt-truncated",
        "a truncated checkpoint file",
        CheckpointError,
        "checkpoint.restore: <path>: the data section is 32 bytes but the header lists 36 (truncated or corrupted).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _truncate(_saved(tmp, P()), 4)),
    ),
    (
        "ckpt-bitflip-data",
        "a flipped bit in the data",
        CheckpointError,
        "checkpoint.restore: <path>: the data of the leaf at ['w'] fail their checksum (the file is corrupted).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _flip_at(_saved(tmp, P()), -1)),
    ),
    (
        "ckpt-bitflip-header",
        "a flipped bit in the header",
        CheckpointError,
        "checkpoint.restore: <path>: the header checksum does not match (the file is corrupted).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _flip_at(_saved(tmp, P()), 40)),
    ),
    (
        "ckpt-not-a-checkpoint",
        "a file that is not a gradxform checkpoint",
        CheckpointError,
        "checkpoint.restore: <path>: not a gradxform checkpoint (wrong magic bytes).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _write(tmp / "x.npy", b"\x93NUMPY" + b"\0" * 64)),
    ),
    (
        "ckpt-empty-file",
        "an empty file",
        CheckpointError,
        "checkpoint.restore: <path>: the file is 0 bytes, too short to be a gradxform checkpoint (truncated?).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _write(tmp / "e.ckpt", b"")),
    ),
    (
        "ckpt-future-version",
        "a checkpoint from a newer format version",
        CheckpointError,
        "checkpoint.restore: <path>: format version 3 is not supported (this gradxform reads version 2).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _set(_saved(tmp, P()), "format_version", 3)),
    ),
    (
        "ckpt-save-tracer",
        "saving inside jit",
        TypeError,
        "checkpoint.save: the leaf at ['x'] is a traced value; save outside jit/vmap/grad.",
        lambda tmp: (
            (lambda path: jax.jit(lambda x: checkpoint.save(path, {"x": x}) or x)(jnp.ones(2))),
            _saved(tmp, {"x": jnp.zeros(2)}),
        ),
    ),
    (
        "ckpt-save-object",
        "saving a tree with a non-array leaf",
        TypeError,
        "checkpoint.save: the leaf at ['name'] is a str; a checkpoint holds arrays and numbers only.",
        lambda tmp: ((lambda path: checkpoint.save(path, {"name": "run-1"})), _saved(tmp, {"x": jnp.zeros(2)})),
    ),
    (
        "ckpt-structure-node",
        "restoring into a template whose inner node is of another type (OrderedDict for dict)",
        CheckpointError,
        "checkpoint.restore: <path>: the tree structure differs from the template's at ['a']: the file has dict, "
        "the template collections.OrderedDict.",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, {"a": collections.OrderedDict(x=jnp.zeros(2))})),
            _saved(tmp, {"a": {"x": jnp.zeros(2)}}),
        ),
    ),
    (
        "ckpt-structure-extra-node",
        "restoring into a template with an extra empty node (None)",
        CheckpointError,
        "checkpoint.restore: <path>: the tree structure differs from the template's: only the template has None "
        "at ['z'].",
        lambda tmp: ((lambda path: checkpoint.restore(path, {**P(), "z": None})), _saved(tmp, P())),
    ),
    (
        "ckpt-old-version",
        "a checkpoint written by an earlier gradxform (format version 1)",
        CheckpointError,
        "checkpoint.restore: <path>: format version 1 is not supported (this gradxform reads version 2).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _set(_saved(tmp, P()), "format_version", 1)),
    ),
    (
        "ckpt-restore-directory",
        "restoring from a directory (e.g. an orbax checkpoint)",
        CheckpointError,
        "checkpoint.restore: <path>: is a directory, not a regular file (a checkpoint is one file).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _mkdir(tmp / "run")),
    ),
    (
        "ckpt-save-directory",
        "saving to a path that is a directory",
        CheckpointError,
        "checkpoint.save: <path>: is a directory, not a regular file; nothing was written.",
        lambda tmp: ((lambda path: checkpoint.save(path, P())), _mkdir(tmp / "run")),
    ),
    (
        "ckpt-save-header-too-large",
        "saving a tree whose header would exceed the header limit",
        CheckpointError,
        "checkpoint.save: the tree has 2 leaves, so its header would be 307 bytes, over the limit of 300; "
        "save it in parts (one file per sub-tree). Nothing was written.",
        lambda tmp: (
            (lambda path: _with_header_limit(300, lambda: checkpoint.save(path, P()))),
            _saved(tmp, P()),
        ),
    ),
    (
        "ckpt-header-too-large",
        "a file whose header length is over the limit",
        CheckpointError,
        f"checkpoint.restore: <path>: the header length is {2**40} bytes, over the limit of "
        f"{checkpoint.MAX_HEADER_BYTES} (corrupted, or not written by gradxform).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, P())),
            _write(tmp / "h.ckpt", checkpoint.MAGIC + struct.pack("<QI", 2**40, 0) + b"{}"),
        ),
    ),
    (
        "ckpt-header-past-end",
        "a file whose header length is larger than the file",
        CheckpointError,
        "checkpoint.restore: <path>: the header runs past the end of the file (truncated or corrupted).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, P())),
            _write(tmp / "h.ckpt", checkpoint.MAGIC + struct.pack("<QI", 1000, 0) + b"{}"),
        ),
    ),
    (
        "ckpt-header-not-json",
        "a header that is not a JSON object",
        CheckpointError,
        "checkpoint.restore: <path>: the header is not a JSON object (corrupted, or not written by gradxform).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _write(tmp / "h.ckpt", _crafted(b"[1, 2]"))),
    ),
    (
        "ckpt-header-too-deep",
        "a header of deeply nested JSON",
        CheckpointError,
        "checkpoint.restore: <path>: the header nests too deeply (corrupted, or not written by gradxform).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, P())),
            _write(tmp / "h.ckpt", _crafted(b"[" * 100_000 + b"]" * 100_000)),
        ),
    ),
    (
        "ckpt-header-bool",
        "a header with a boolean where an integer belongs",
        CheckpointError,
        "checkpoint.restore: <path>: the header field format_version is True; expected an integer (corrupted, "
        "or not written by gradxform).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _set(_saved(tmp, P()), "format_version", True)),
    ),
    (
        "ckpt-header-huge-shape",
        "a header with a dimension of 10**30",
        CheckpointError,
        "checkpoint.restore: <path>: the header field leaves[0].shape[0] is 1000000000000000000000000000000; "
        "expected an integer in [0, 2**63) (corrupted, or not written by gradxform).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _set_leaf(_saved(tmp, P()), 0, "shape", [10**30])),
    ),
    (
        "ckpt-header-dtype",
        "a header whose dtype name is not a string",
        CheckpointError,
        "checkpoint.restore: <path>: the header field leaves[0].dtype is a list of 1; expected one of bool, int8, "
        "int16, int32, int64, uint8, uint16, uint32, uint64, float16, bfloat16, float32, float64, complex64, "
        "complex128 (corrupted, or not written by gradxform).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, P())),
            _set_leaf(_saved(tmp, P()), 0, "dtype", ["float32"]),
        ),
    ),
    (
        "ckpt-header-overlap",
        "a header whose leaves overlap",
        CheckpointError,
        "checkpoint.restore: <path>: the header field leaves[1].offset is 0; expected 12, where the previous leaf "
        "ends (corrupted, or not written by gradxform).",
        lambda tmp: ((lambda path: checkpoint.restore(path, P())), _set_leaf(_saved(tmp, P()), 1, "offset", 0)),
    ),
    (
        "ckpt-header-nodes",
        "a header whose node list does not match its leaf list",
        CheckpointError,
        "checkpoint.restore: <path>: the header's node list does not match its leaf list (corrupted, or not "
        "written by gradxform).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, P())),
            _set(_saved(tmp, P()), "nodes", [["<root>", "dict"]]),
        ),
    ),
    (
        "ckpt-bool-byte",
        "a crafted file whose boolean leaf holds a byte other than 0 and 1 (with matching checksums)",
        CheckpointError,
        "checkpoint.restore: <path>: the data of the leaf at ['m'] hold booleans other than 0 and 1 (corrupted, "
        "or not written by gradxform).",
        lambda tmp: (
            (lambda path: checkpoint.restore(path, {"m": jnp.zeros(3, bool)})),
            _bool_byte(_saved(tmp, {"m": jnp.array([True, False, True])}), 2),
        ),
    ),
    (
        "ckpt-save-no-directory",
        "saving into a directory that does not exist",
        FileNotFoundError,
        "checkpoint.save: <path>/state.ckpt: the directory <path> does not exist; nothing was written.",
        lambda tmp: ((lambda path: checkpoint.save(path / "state.ckpt", P())), _mkdir(tmp / "gone", remove=True)),
    ),
    (
        "ckpt-shrunk-while-read",
        "a file truncated while restore reads it",
        CheckpointError,
        "checkpoint.restore: <path>: the file ended at byte 359, before the 363 its size promised (truncated "
        "while being read?).",
        lambda tmp: ((lambda path: _shrinking(path, 4, lambda: checkpoint.restore(path, P()))), _saved(tmp, P())),
    ),
    (
        "loss-scale-backoff",
        "a backoff factor that would raise the scale",
        ValueError,
        "loss_scale: backoff_factor=1.5 is out of range; allowed: (0, 1).",
        lambda tmp: ((lambda _: gx.loss_scale(gx.adam(1e-3), backoff_factor=1.5)), None),
    ),
    (
        "loss-scale-floor",
        "a floor above the initial scale",
        ValueError,
        "loss_scale: min_scale=4.0 is above initial_scale=2.0; the scale may not start below its floor.",
        lambda tmp: ((lambda _: gx.loss_scale(gx.adam(1e-3), initial_scale=2.0, min_scale=4.0)), None),
    ),
    (
        "loss-scale-none",
        "asking for the loss scale of a state that holds none",
        ValueError,
        "loss_scale_value: this state (StepState) holds no loss scale; build the optimizer with "
        "gradxform.loss_scale(inner, ...) and pass its state.",
        lambda tmp: (gx.loss_scale_value, _adam_state()),
    ),
]


def _truncate(path, n):
    path.write_bytes(path.read_bytes()[:-n])
    return path


def _flip_at(path, at):
    _flip(path, at if at >= 0 else len(path.read_bytes()) + at)
    return path


def _write(path, blob):
    path.write_bytes(blob)
    return path


def _mkdir(path, remove=False):
    path.mkdir()
    if remove:  # a path that names nothing: the "file" watched is its absence
        path.rmdir()
    return path


def _bool_byte(path, byte):
    """Sets the first data byte to `byte`, with the leaf's and the header's checksums made to match."""
    blob = path.read_bytes()
    _, hlen, _ = struct.unpack_from("<8sQI", blob)
    header = json.loads(blob[20 : 20 + hlen])
    data = bytearray(blob[20 + hlen :])
    data[0] = byte
    header["leaves"][0]["crc32"] = zlib.crc32(data[: header["leaves"][0]["nbytes"]])
    path.write_bytes(_crafted(json.dumps(header, sort_keys=True).encode(), bytes(data)))
    return path


def _crafted(raw_header, data=b""):
    """A file with a valid prefix (magic, length, CRC-32) around any header bytes."""
    return struct.pack("<8sQI", checkpoint.MAGIC, len(raw_header), zlib.crc32(raw_header)) + raw_header + data


def _rewrite(path, edit):
    blob = path.read_bytes()
    _, hlen, _ = struct.unpack_from("<8sQI", blob)
    header = json.loads(blob[20 : 20 + hlen])
    edit(header)
    path.write_bytes(_crafted(json.dumps(header, sort_keys=True).encode(), blob[20 + hlen :]))
    return path


def _set(path, key, value):
    return _rewrite(path, lambda h: h.__setitem__(key, value))


def _set_leaf(path, i, key, value):
    return _rewrite(path, lambda h: h["leaves"][i].__setitem__(key, value))


def _with_header_limit(limit, fn):
    with mock.patch.object(checkpoint, "MAX_HEADER_BYTES", limit):
        return fn()


def _shrinking(path, n, fn):
    """Runs `fn` while the file at `path` reports its full size to fstat but has lost its last `n` bytes."""
    full = os.stat(path)
    blob = path.read_bytes()
    real_fstat = os.fstat

    def fstat(fd):
        st = list(real_fstat(fd))
        st[6] = full.st_size  # st_size
        return os.stat_result(st)

    path.write_bytes(blob[:-n])
    try:
        with mock.patch.object(checkpoint.os, "fstat", fstat):
            return fn()
    finally:
        path.write_bytes(blob)


def _disk(path):
    """What `path` holds on disk: a directory's listing, a file's bytes, or None for nothing."""
    if not os.path.lexists(path):
        return None
    return sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_error(case, tmp_path):
    _, _, exc, message, make = case
    trigger, watched = make(tmp_path)
    if isinstance(watched, os.PathLike):
        before = _disk(watched)
        listing = sorted(os.listdir(tmp_path))
    else:
        before = _snapshot(watched)
    with pytest.raises(exc) as info:
        trigger(watched)
    got = str(info.value)
    if isinstance(watched, os.PathLike):
        got = got.replace(os.fspath(watched), "<path>")
        assert _disk(watched) == before  # the file (or directory) is untouched
        assert sorted(os.listdir(tmp_path)) == listing  # no stray temp files
    else:
        _unchanged(before, watched)
    assert got == message


def test_at_least_twenty_cases_with_distinct_messages():
    assert len(CASES) >= 20
    assert len({c[3] for c in CASES}) == len(CASES)


def test_docs_list_every_message():
    text = DOC.read_text()
    for case_id, _, exc, message, _ in CASES:
        assert f"`{case_id}`" in text, case_id
        assert message in text, case_id
        assert exc.__name__ in text
