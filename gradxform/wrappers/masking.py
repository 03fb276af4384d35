"""Applying a transform to some leaves only: `masked`, `partition` and `freeze`.

What a masked-out leaf receives is a deliberate choice, stated once here:

* `masked` passes masked-out leaves through **unchanged** (as `optax.masked`). It
  is a *modifier inside a chain*, e.g. `chain(adam_ratio, masked(add_decayed_weights(wd),
  not_bias), lr)`: the biases must keep Adam's update and only skip the decay. As
  the *whole* optimizer, `masked(adam(...), mask)` would add the raw gradient to the
  masked-out parameters (optax issue #159), so for "train some leaves, keep the
  others fixed" use `partition` with `freeze` (or `chain(masked(opt, m),
  freeze(not m))`), which gives them exact zeros.
* `freeze` gives zeros: the leaves never move.
* `partition` sends every leaf through exactly one transform, chosen by its label;
  no leaf is passed through by accident (a label with no transform is an error).

Masks and labels are static: Python bools / hashable labels in a tree with the
parameters' structure (or a prefix of it, a value on a subtree applying to all its
leaves), or a function `params -> tree`. The inner transforms share the
optimizer's step count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import EmptyState, GradientTransformation, block_of, make_block, public, union_extra_args
from gradxform.errors import lead
from gradxform.wrappers.labels import bool_label, hashable_label, leaf_labels, merge, select

PyTree = Any
Mask = PyTree | Callable[[PyTree], PyTree]


class MaskedState(NamedTuple):
    """The inner transform's state, built on the selected leaves only."""

    inner_state: Any


@public
def masked(inner: GradientTransformation, mask: Mask) -> GradientTransformation:
    r"""Applies `inner` to the leaves where `mask` is True; the others pass through unchanged.

    $$u_\ell \leftarrow \begin{cases} \text{inner}(u)_\ell & m_\ell \\ u_\ell & \text{otherwise}\end{cases}$$

    `inner` sees (and keeps state for) only the selected leaves: the others are
    `None` in the trees it is given. Same semantics as `optax.masked`.

    Args:
      inner: the transform for the selected leaves.
      mask: a tree of bools (the parameters' structure or a prefix of it), or a function `params -> tree`.
    """
    block = block_of(inner, "masked (inner)")

    def labels(tree):
        return leaf_labels("masked", "mask", mask, tree, bool_label)

    def init(params):
        return MaskedState(block.init(select(params, labels(params), True)))

    def update(updates, state, params, count, extra_args):
        flat = labels(updates)
        sub_params = None if params is None else select(params, flat, True)
        out, inner_state = block.update(select(updates, flat, True), state.inner_state, sub_params, count, extra_args)
        return merge(updates, flat, {True: out, False: select(updates, flat, False)}), MaskedState(inner_state)

    # Masks choose whole leaves, so on FlatParams (one leaf per dtype) they would mean something else: refused.
    return make_block("masked", init, update, needs_step=block.needs_step, per_leaf=True, extra_args=block.extra_args)


@public
def freeze(mask: Mask | None = None) -> GradientTransformation:
    r"""Zero updates for the frozen leaves: $u_\ell \leftarrow 0$ where `mask` is True.

    With `mask=None` every leaf is frozen (use it as a `partition` entry). Other
    leaves pass through unchanged. Stateless; frozen parameters stay bitwise
    identical.

    Args:
      mask: as for `masked`, or `None` for every leaf.
    """

    def update(updates, state, params, count, extra_args):
        return jax.tree.map(jnp.zeros_like, updates), state

    zero_all = make_block("freeze", lambda params: EmptyState(), update, stateless=True)
    return zero_all if mask is None else masked(zero_all, mask)


class PartitionState(NamedTuple):
    """One inner state per label, each built on that label's leaves only."""

    inner_states: dict


@public
def partition(
    transforms: Mapping[Any, GradientTransformation], labels: PyTree | Callable[[PyTree], PyTree]
) -> GradientTransformation:
    r"""A different transform per label: $u_\ell \leftarrow T_{\text{label}(\ell)}(u)_\ell$.

    Every leaf goes through exactly one transform. A transform whose label no leaf
    has still gets an (empty) state. Same semantics as `optax.partition`. Example,
    no weight decay on biases:

        partition({"decay": adamw(1e-3, weight_decay=0.1), "no_decay": adam(1e-3)},
                  lambda p: {k: "no_decay" if k == "b" else "decay" for k in p})

    Args:
      transforms: `{label: transform}`.
      labels: a label per leaf (a tree with the parameters' structure or a prefix of
        it), or a function `params -> tree`.
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"{lead('partition')}: transforms must be a non-empty dict label -> transform, "
            f"got {type(transforms).__name__}."
        )
    blocks = {lab: block_of(t, f"partition (transform for label {lab!r})") for lab, t in transforms.items()}

    def flat_labels(tree):
        flat = leaf_labels("partition", "labels", labels, tree, hashable_label)
        for lab in flat:
            if lab not in blocks:
                raise ValueError(
                    f"{lead('partition')}: a leaf has the label {lab!r} but transforms has no entry for it; "
                    f"the labels with a transform are {sorted(map(repr, blocks))}."
                )
        return flat

    def init(params):
        flat = flat_labels(params)
        return PartitionState({lab: b.init(select(params, flat, lab)) for lab, b in blocks.items()})

    def update(updates, state, params, count, extra_args):
        flat = flat_labels(updates)
        outs, states = {}, {}
        for lab, b in blocks.items():
            sub_params = None if params is None else select(params, flat, lab)
            outs[lab], states[lab] = b.update(
                select(updates, flat, lab), state.inner_states[lab], sub_params, count, extra_args
            )
        return merge(updates, flat, outs), PartitionState(states)

    return make_block(
        "partition",
        init,
        update,
        needs_step=any(b.needs_step for b in blocks.values()),
        per_leaf=True,  # labels choose whole leaves
        extra_args=union_extra_args(blocks.values()),
    )
