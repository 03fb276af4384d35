"""The transform type and the four ways to combine transforms.

A transform is a pair of pure functions over pytrees::

    state = tx.init(params)
    updates, state = tx.update(grads, state, params)   # params optional for most
    params = apply_updates(params, updates)

The field names and call signatures are optax's, so a gradxform transform can
sit inside ``optax.chain`` and an optax transform inside :func:`chain`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradxform.tree import PyTree, check_match

Params = PyTree
Updates = PyTree
OptState = Any


class InitFn(Protocol):
    def __call__(self, params: Params) -> OptState: ...


class UpdateFn(Protocol):
    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """A pure ``(init, update)`` pair.

    ``init(params) -> state`` builds the state (a pytree of arrays) for a
    parameter tree. ``update(updates, state, params=None, **extra_args) ->
    (updates, state)`` maps incoming updates (gradients, for the first
    transform of a chain) to outgoing ones. ``extra_args`` carry what some
    transforms need besides the gradient (the loss value, a function to
    evaluate it); a transform ignores those it does not use.
    """

    init: InitFn
    update: UpdateFn


class EmptyState(NamedTuple):
    """The state of a stateless transform: an empty pytree."""


def _accepts_extra_args(update: Callable) -> bool:
    try:
        params = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def call_update(tx: Any, updates: Updates, state: OptState, params: Params | None, extra_args: dict) -> tuple:
    """Calls ``tx.update``, passing ``extra_args`` only if it accepts ``**kwargs``.

    Lets plain optax transforms (whose ``update`` takes no extra arguments)
    sit beside ours in :func:`chain` and :func:`gradxform.ratio`.
    """
    if extra_args and not _accepts_extra_args(tx.update):
        return tx.update(updates, state, params)
    return tx.update(updates, state, params, **extra_args)


def _as_transform(tx: Any, where: str) -> Any:
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"{where}: expected a gradient transformation (an object with init and update), "
            f"got {type(tx).__name__}. Did you pass an optimizer factory without calling it, "
            "e.g. gradxform.adam instead of gradxform.adam(1e-3)?"
        )
    return tx


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Applies transforms in sequence: ``u <- t_k(... t_2(t_1(u)))``.

    The state is the tuple of the transforms' states. Extra arguments of
    ``update`` reach every transform that accepts them.
    """
    txs = tuple(_as_transform(t, f"chain (argument {i})") for i, t in enumerate(transforms))

    def init(params: Params) -> tuple:
        return tuple(t.init(params) for t in txs)

    def update(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(txs):
            raise ValueError(
                f"chain: the state has {len(state) if isinstance(state, tuple) else 'no'} parts "
                f"but the chain has {len(txs)} transforms; use the state this chain's init made."
            )
        new_state = []
        for t, s in zip(txs, state):
            updates, s = call_update(t, updates, s, params, extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def identity() -> GradientTransformation:
    """Passes updates through unchanged: ``u <- u``."""
    return stateless(lambda updates, params=None: updates)


def stateless(fn: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """A transform with no state: ``u <- fn(u, params)``."""

    def init(params: Params) -> EmptyState:
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        return fn(updates, params), state

    return GradientTransformation(init, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """``p <- p + u`` for each leaf, the result keeping the parameter's dtype.

    ``None`` leaves in ``params`` stay ``None``. A tree mismatch raises
    ``ValueError`` naming the first differing path.
    """
    check_match(updates, params, "apply_updates")
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.result_type(p)),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
