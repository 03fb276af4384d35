"""Applying a transform to some leaves only: ``masked``, ``partition`` and ``freeze``.

What a masked-out leaf receives is a deliberate choice, stated once here:

* :func:`masked` passes masked-out leaves through **unchanged** (as
  ``optax.masked``). It is a *modifier inside a chain*, e.g.
  ``chain(adam_ratio, masked(add_decayed_weights(wd), not_bias), lr)``: the
  biases must keep Adam's update and only skip the decay. As the *whole*
  optimizer, ``masked(adam(...), mask)`` would add the raw gradient to the
  masked-out parameters (optax issue #159), so for "train some leaves, keep the
  others fixed" use :func:`partition` with :func:`freeze` (or
  ``chain(masked(opt, m), freeze(not m))``), which gives them exact zeros.
* :func:`freeze` gives zeros: the leaves never move.
* :func:`partition` sends every leaf through exactly one transform, chosen by its
  label; no leaf is passed through by accident (a label with no transform is an
  error).

Masks and labels are static: Python bools / hashable labels in a tree with the
parameters' structure (or a prefix of it, a value on a subtree applying to all
its leaves), or a function ``params -> tree``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.core import EmptyState, GradientTransformation, OptState, _as_transform, call_update
from gradxform.tree import PyTree
from gradxform.wrappers._labels import bool_label, hashable_label, leaf_labels, merge, select

Mask = PyTree | Callable[[PyTree], PyTree]


class MaskedState(NamedTuple):
    """The inner transform's state, built on the selected leaves only."""

    inner_state: OptState


def masked(inner: GradientTransformation, mask: Mask) -> GradientTransformation:
    r"""Applies ``inner`` to the leaves where ``mask`` is True; the others pass through unchanged.

    .. math:: u_\ell \leftarrow \begin{cases} \text{inner}(u)_\ell & m_\ell \\ u_\ell & \text{otherwise}\end{cases}

    ``inner`` sees (and keeps state for) only the selected leaves: the others
    are ``None`` in the trees it is given. Same semantics as ``optax.masked``.
    See the module docstring for why masked-out leaves pass through and what to
    use to freeze them.
    """
    inner = _as_transform(inner, "masked (inner)")

    def labels(tree):
        return leaf_labels("masked", "mask", mask, tree, bool_label)

    def init(params):
        return MaskedState(inner.init(select(params, labels(params), True)))

    def update(updates, state, params=None, **extra_args):
        flat = labels(updates)
        sub_params = None if params is None else select(params, flat, True)
        out, inner_state = call_update(inner, select(updates, flat, True), state.inner_state, sub_params, extra_args)
        parts = {True: out, False: select(updates, flat, False)}
        return merge(updates, flat, parts), MaskedState(inner_state)

    return GradientTransformation(init, update)


def _zeros(updates: PyTree, params: PyTree | None = None) -> PyTree:
    return jax.tree.map(jnp.zeros_like, updates)


def freeze(mask: Mask | None = None) -> GradientTransformation:
    r"""Zero updates for the frozen leaves: :math:`u_\ell \leftarrow 0` where ``mask`` is True.

    With ``mask=None`` every leaf is frozen (use it as a :func:`partition`
    entry). Other leaves pass through unchanged. Stateless; zeros keep each
    leaf's dtype, so frozen parameters stay bitwise identical.
    """

    def init(params):
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        return _zeros(updates), state

    zero_all = GradientTransformation(init, update)
    return zero_all if mask is None else masked(zero_all, mask)


class PartitionState(NamedTuple):
    """One inner state per label, each built on that label's leaves only."""

    inner_states: dict


def partition(
    transforms: Mapping[Any, GradientTransformation], labels: PyTree | Callable[[PyTree], PyTree]
) -> GradientTransformation:
    r"""A different transform per label: :math:`u_\ell \leftarrow T_{\text{label}(\ell)}(u)_\ell`.

    ``labels`` gives each leaf a label (a tree with the parameters' structure
    or a prefix of it, or a function ``params -> tree``); ``transforms`` maps
    each label to its transform. Every leaf goes through exactly one
    transform. A transform whose label no leaf has still gets an (empty)
    state. Same semantics as ``optax.partition``. Example, no weight decay on
    biases::

        partition({"decay": adamw(1e-3, weight_decay=0.1), "no_decay": adam(1e-3)},
                  lambda p: {k: "no_decay" if k == "b" else "decay" for k in p})
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"partition: transforms must be a non-empty dict label -> transform, got {type(transforms).__name__}."
        )
    txs = {lab: _as_transform(t, f"partition (transform for label {lab!r})") for lab, t in transforms.items()}

    def flat_labels(tree):
        flat = leaf_labels("partition", "labels", labels, tree, hashable_label)
        for lab in flat:
            if lab not in txs:
                raise ValueError(
                    f"partition: a leaf has the label {lab!r} but transforms has no entry for it; "
                    f"the labels with a transform are {sorted(map(repr, txs))}."
                )
        return flat

    def init(params):
        flat = flat_labels(params)
        return PartitionState({lab: t.init(select(params, flat, lab)) for lab, t in txs.items()})

    def update(updates, state, params=None, **extra_args):
        flat = flat_labels(updates)
        outs, states = {}, {}
        for lab, t in txs.items():
            sub_params = None if params is None else select(params, flat, lab)
            outs[lab], states[lab] = call_update(
                t, select(updates, flat, lab), state.inner_states[lab], sub_params, extra_args
            )
        return merge(updates, flat, outs), PartitionState(states)

    return GradientTransformation(init, update)
