"""Parameters kept flat: one buffer per dtype, viewed as the user's tree inside the loss.

On CPU, XLA runs at least one kernel per leaf for every array an optimizer
step writes, so a tree of many small leaves costs microseconds of launch
overhead per leaf and per output, and compile time grows with the number of
leaves. Holding the parameters as `FlatParams` (one 1-D buffer per
dtype) makes the optimizer see one leaf per dtype, whatever the model:

```python
flat = gradxform.flatten_params(params)        # once, outside jit
state = tx.init(flat)                          # moments are flat too

def loss(flat, batch):
    params = flat.unravel()                    # cheap views of the buffers
    ...

grads = jax.grad(loss)(flat, batch)            # a FlatParams: gradients arrive flat
updates, state = tx.update(grads, state, flat) # one elementwise kernel per dtype
flat = gradxform.apply_updates(flat, updates)
```

`unravel` splits each buffer with `jnp.split` and reshapes the pieces;
the gradient of a split is one concatenation, so the backward pass writes the
flat gradient in a single kernel. `FlatParams` is a pytree whose
leaves are the buffers (sorted by dtype name) and whose static part is the
layout, so it goes through `jit` (with donation), `grad`, `vmap` and
every gradxform or optax transform unchanged. Transforms that mix
parameters (a global norm clip, a per-leaf statistic such as LAMB's trust
ratio) then see one leaf per dtype instead of the user's leaves: that is the
one behavioural difference, and elementwise optimizers (all of
`gradxform.optimizers`) are unaffected.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.numerics import PyTree, dtype_of, path_str, shape_of


@dataclasses.dataclass(frozen=True)
class FlatLayout:
    """Where each leaf of the original tree lives: static, hashable, compared by value.

    `leaves[i] = (dtype name, shape, offset)` for leaf `i` of `treedef`;
    `dtypes` are the buffers' dtype names, sorted; `sizes` their lengths.
    """

    treedef: Any
    leaves: tuple[tuple[str, tuple[int, ...], int], ...]
    dtypes: tuple[str, ...]
    sizes: tuple[int, ...]


@jax.tree_util.register_pytree_node_class
class FlatParams:
    """Parameters as one 1-D buffer per dtype, plus the static layout to view them as a tree."""

    __slots__ = ("buffers", "layout", "offsets")
    __gradxform_flat__ = True  # transforms that look at whole leaves refuse it (gradxform.core.Block.per_leaf)

    def __init__(self, buffers: tuple, layout: FlatLayout, offsets: tuple | None = None):
        self.buffers = tuple(buffers)
        self.layout = layout
        self.offsets = offsets  # runtime offsets for unravel; not part of the pytree (see with_offsets)

    def tree_flatten(self):
        return self.buffers, self.layout

    @classmethod
    def tree_unflatten(cls, layout, buffers):
        return cls(buffers, layout)

    def unravel(self) -> PyTree:
        """The tree the buffers were made from: each leaf a reshaped slice of its dtype's buffer."""
        return unflatten_params(self)

    def with_offsets(self, offsets: tuple) -> FlatParams:
        """The same buffers, viewed at the runtime `offsets` of `flat_offsets` by `unravel`.

        Inside `jit` a slice at a constant offset is a kernel of its own, and XLA on CPU compiles
        each distinct kernel separately (hundreds of leaves: seconds). With the offsets passed in as
        jit *arguments*, the slices of same-shaped leaves are one kernel, compiled once.
        `gradxform.make_train_step` does this for you. The offsets are not pytree leaves, so
        call this inside the function you differentiate (they are lost through `grad`'s flattening).
        """
        if len(offsets) != len(self.layout.leaves):
            raise ValueError(
                f"FlatParams.with_offsets: got {len(offsets)} offsets for {len(self.layout.leaves)} leaves; "
                "pass gradxform.flat_offsets(flat)."
            )
        return FlatParams(self.buffers, self.layout, tuple(offsets))

    @property
    def size(self) -> int:
        """The number of parameters (all dtypes)."""
        return int(sum(self.layout.sizes))

    def __repr__(self) -> str:
        parts = ", ".join(f"{d}[{n}]" for d, n in zip(self.layout.dtypes, self.layout.sizes))
        return f"FlatParams({parts}; {len(self.layout.leaves)} leaves)"


def flatten_params(params: PyTree) -> FlatParams:
    """Packs a tree of arrays into `FlatParams`: one 1-D buffer per dtype, leaves in tree order.

    Leaves may have any dtype (a buffer is made for each); `None` leaves
    are not allowed (they would have no place in a buffer). Call it once,
    outside the training step, and keep the result as your parameters.

    Args:
      params: a pytree of arrays.

    Returns:
      The `FlatParams`.
    """
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not leaves_with_path:
        raise ValueError("flatten_params: params has no leaves; pass the tree of arrays you train.")
    offsets: dict[str, int] = {}
    pieces: dict[str, list] = {}
    layout = []
    for path, leaf in leaves_with_path:
        if not hasattr(leaf, "shape") and not isinstance(leaf, (int, float, complex, np.number)):
            raise TypeError(
                f"flatten_params: the leaf at {path_str(path)} is a {type(leaf).__name__}, not an array; "
                "keep only arrays in the tree you flatten."
            )
        dt = dtype_of(leaf).name
        shape = shape_of(leaf)
        off = offsets.get(dt, 0)
        layout.append((dt, tuple(int(s) for s in shape), off))
        offsets[dt] = off + int(np.prod(shape, dtype=np.int64))
        pieces.setdefault(dt, []).append(jnp.ravel(jnp.asarray(leaf, dt)))
    dtypes = tuple(sorted(pieces))
    buffers = tuple(jnp.concatenate(pieces[d]) if len(pieces[d]) > 1 else pieces[d][0] for d in dtypes)
    return FlatParams(buffers, FlatLayout(treedef, tuple(layout), dtypes, tuple(offsets[d] for d in dtypes)))


def flat_offsets(flat: FlatParams) -> tuple:
    """Each leaf's offset in its buffer as an int32 scalar array, for `FlatParams.with_offsets`.

    Args:
      flat: the packed parameters.

    Returns:
      A tuple of int32 scalar arrays, one per leaf.
    """
    return tuple(jnp.asarray(off, jnp.int32) for _, _, off in flat.layout.leaves)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _dynamic_views(layout: FlatLayout, buffers: tuple, offsets: tuple) -> list:
    by_dtype = dict(zip(layout.dtypes, buffers))
    return [
        jax.lax.dynamic_slice(by_dtype[dt], (off,), (int(np.prod(shape, dtype=np.int64)),)).reshape(shape)
        for (dt, shape, _), off in zip(layout.leaves, offsets)
    ]


def _dynamic_views_fwd(layout, buffers, offsets):
    return _dynamic_views(layout, buffers, offsets), None


def _dynamic_views_bwd(layout, _, cts):
    # The leaves tile each buffer in order, so the buffer's cotangent is their concatenation.
    grads = []
    for d in layout.dtypes:
        mine = [jnp.ravel(ct) for ct, (dt, _, _) in zip(cts, layout.leaves) if dt == d]
        grads.append(jnp.concatenate(mine) if len(mine) > 1 else mine[0])
    return tuple(grads), None


_dynamic_views.defvjp(_dynamic_views_fwd, _dynamic_views_bwd)


def unflatten_params(flat: FlatParams) -> PyTree:
    """The tree view of `FlatParams` (same as `flat.unravel()`).

    Inside `jit` the pieces are slices that XLA fuses into their users; under
    `grad` the cotangents of the pieces are concatenated back into one flat
    gradient buffer per dtype.

    Args:
      flat: the packed parameters.

    Returns:
      The parameters as a pytree.
    """
    if not isinstance(flat, FlatParams):
        raise TypeError(
            f"unflatten_params: expected the FlatParams made by gradxform.flatten_params, got {type(flat).__name__}."
        )
    lay = flat.layout
    if flat.offsets is not None:
        leaves = _dynamic_views(lay, flat.buffers, flat.offsets)
        return jax.tree_util.tree_unflatten(lay.treedef, leaves)
    views: dict[str, list] = {}
    for d, buf in zip(lay.dtypes, flat.buffers):
        mine = [(shape, off) for (dt, shape, off) in lay.leaves if dt == d]
        cuts = [off for _, off in mine[1:]]
        parts = jnp.split(buf, cuts) if cuts else [buf]
        views[d] = [p.reshape(shape) for p, (shape, _) in zip(parts, mine)]
    it = {d: iter(v) for d, v in views.items()}
    return jax.tree_util.tree_unflatten(lay.treedef, [next(it[dt]) for dt, _, _ in lay.leaves])
