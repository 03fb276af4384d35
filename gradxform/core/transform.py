"""The transform type, and the inner form that combinators compose.

A transform is a pair of pure functions over pytrees::

    state = tx.init(params)
    updates, state = tx.update(grads, state, params)   # params optional for most
    params = apply_updates(params, updates)

The field names and call signatures are optax's, so a gradxform transform can sit
inside `optax.chain` and an optax transform inside `gradxform.chain`.

**Blocks and the optimizer's root.** Every gradxform transform carries its
`Block`: an `init` that builds only the block's own state and an
`update` that also receives the optimizer's step count. Combinators
(`gradxform.chain`, `gradxform.ratio`, the wrappers) compose blocks.
The `init`/`update` pair a user calls is the block's *root* form
(`as_transform`), which does the three things that must happen once per
optimizer and not once per block:

0. takes Python numbers as arrays, refuses integer and boolean parameters at
   `init` and integer gradients at `update`, and checks the incoming updates
   against the parameters when they are passed, naming the first differing path;
1. keeps the single step count, in a `gradxform.core.state.StepState`,
   if some block reads it, and hands it to every block;
2. casts the outgoing updates to the parameters' dtype (the incoming updates'
   when no parameters are passed), once, at the end, so blocks pass each other
   updates in at least float32, and bfloat16 gradients of float32 parameters
   (mixed precision) give float32 updates;
3. leads every error message raised inside with the name of the function the
   user called (`gradxform.errors`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.core.state import StepState
from gradxform.errors import lead, user_function
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.counts import safe_increment, zero_count
from gradxform.numerics.tree_math import cast_out

PyTree = Any
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
    """A pure `(init, update)` pair.

    `init(params) -> state` builds the state (a pytree of arrays) for a
    parameter tree. `update(updates, state, params=None, **extra_args) ->
    (updates, state)` maps incoming updates (gradients, for the first
    transform of a chain) to outgoing ones. `extra_args` carry what some
    transforms need besides the gradient (the loss value, a function to
    evaluate it); a transform ignores those it does not use.
    """

    init: InitFn
    update: UpdateFn


class EmptyState(NamedTuple):
    """The state of a stateless transform: an empty pytree."""


BlockUpdate = Callable[[Updates, OptState, "Params | None", "jax.Array | None", dict], tuple]


@dataclasses.dataclass(frozen=True, eq=False)
class Block:
    """A transform's inner form, what combinators compose.

    Attributes:
      name: the public function that built it (leads its error messages), or
        `None` to let each inner block name itself.
      init: `params -> state`, the block's own state only (no step count).
      update: `(updates, state, params, count, extra_args) -> (updates, state)`;
        `count` is the optimizer's step count before this update (`None` if no
        block of the optimizer reads it). Outgoing updates are in the compute dtype.
      needs_step: the block reads `count`.
      stateless: the block's state is always `EmptyState()`; `gradxform.chain`
        then keeps no slot for it.
      per_leaf: the block looks at whole leaves (their norms or shapes), so its result
        changes if the leaves are concatenated; `gradxform.FlatParams` refuses it.
      extra_args: the keyword arguments of `update` the block reads (`"value"`: the loss at
        `params`; `"value_fn"`: `params -> loss`; `"grad_fn"`: `params -> gradient`); the root form
        refuses an update without them, and `gradxform.train_step` passes them.
    """

    name: str | None
    init: Callable[[Params], OptState]
    update: BlockUpdate
    needs_step: bool = False
    stateless: bool = False
    per_leaf: bool = False
    extra_args: tuple[str, ...] = ()


EXTRA_ARGS = {
    "value": "the loss at params",
    "value_fn": "a function params -> loss",
    "grad_fn": "a function params -> gradient of the loss",
}
"""The extra arguments a block may read, and what each is."""


def union_extra_args(blocks: Any) -> tuple[str, ...]:
    """The extra arguments any of `blocks` reads, in first-seen order."""
    out: list[str] = []
    for b in blocks:
        out += [n for n in b.extra_args if n not in out]
    return tuple(out)


_BLOCK = "__gradxform_block__"


def _accepts_extra_args(update: Callable) -> bool:
    try:
        params = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def call_update(tx: Any, updates: Updates, state: OptState, params: Params | None, extra_args: dict) -> tuple:
    """Calls `tx.update`, passing `extra_args` only if it accepts `**kwargs` (plain optax transforms do not)."""
    if extra_args and not _accepts_extra_args(tx.update):
        return tx.update(updates, state, params)
    return tx.update(updates, state, params, **extra_args)


def require_transform(tx: Any, where: str) -> Any:
    """`tx` if it has `init` and `update`, else a `TypeError` saying what was passed instead."""
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"{lead(where)}: expected a gradient transformation (an object with init and update), "
            f"got {type(tx).__name__}. Did you pass an optimizer factory without calling it, "
            "e.g. gradxform.adam instead of gradxform.adam(1e-3)?"
        )
    return tx


def block_of(tx: Any, where: str = "block_of") -> Block:
    """The `Block` of a gradxform transform; a foreign (e.g. optax) transform wrapped as one.

    A foreign transform keeps its own state (and counts) and gets no step count.
    """
    tx = require_transform(tx, where)
    block = getattr(tx.update, _BLOCK, None)
    if block is not None:
        return block

    def update(updates, state, params, count, extra_args):
        return call_update(tx, updates, state, params, extra_args)

    return Block(None, tx.init, update)


def as_arrays(tree: PyTree) -> PyTree:
    """Python and NumPy number leaves as JAX arrays (`tx.update(1.0, state)` works like `jnp.asarray(1.0)`)."""
    if tree is None:
        return None
    return jax.tree.map(lambda x: jnp.asarray(x) if isinstance(x, (int, float, complex, np.number)) else x, tree)


def _is_flat(x: Any) -> bool:
    return bool(getattr(type(x), "__gradxform_flat__", False))


def own_step(block: Block) -> Block:
    """`block` keeping its own step count in a `StepState` (if it reads one), so it needs none from outside.

    What a wrapper uses for an inner optimizer whose steps it does not take every
    time (`skip_nonfinite`, `accumulate`): the inner count advances only when the
    inner update is taken.
    """
    if not block.needs_step:
        return block

    def init(params):
        return StepState(zero_count(), block.init(params))

    def update(updates, state, params, count, extra_args):
        if not isinstance(state, StepState):
            raise TypeError(
                f"{lead(block.name or 'chain')}: expected the state this optimizer's init made (a StepState holding "
                f"its step count), got {type(state).__name__}."
            )
        out, inner = block.update(updates, state.inner_state, params, state.count, extra_args)
        return out, StepState(safe_increment(state.count), inner)

    return dataclasses.replace(block, init=init, update=update, needs_step=False, stateless=False)


def as_transform(block: Block) -> GradientTransformation:
    """The root form of `block`: what a user calls (see the module docstring)."""
    root = own_step(block)
    who = block.name or "chain"  # a chain the user assembled leaves its blocks to name themselves

    def init(params: Params) -> OptState:
        with user_function(block.name):
            params = as_arrays(params)
            check_inexact(params, who)  # also for stateless optimizers, whose blocks build nothing
            if block.per_leaf and any(map(_is_flat, jax.tree.leaves(params, is_leaf=_is_flat))):
                raise TypeError(
                    f"{lead(who)}: this transform looks at whole leaves (their norms or shapes), so it cannot "
                    "run on FlatParams, whose buffers concatenate the leaves; pass the parameter tree itself."
                )
            return root.init(params)

    def update(updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any):
        with user_function(block.name):
            updates, params = as_arrays(updates), as_arrays(params)
            check_inexact(updates, who, "updates")
            missing = [n for n in block.extra_args if extra_args.get(n) is None]
            if missing:
                raise TypeError(
                    f"{lead(who)}: update needs "
                    + ", ".join(f"{n}= ({EXTRA_ARGS.get(n, 'an extra argument')})" for n in missing)
                    + "; call tx.update(grads, state, params, "
                    + ", ".join(f"{n}=..." for n in missing)
                    + "), or let gradxform.train_step pass it."
                )
            if params is not None:  # before anything is computed; stateless optimizers have no state to check
                check_match(updates, params, who, against="params")
            out, state = root.update(updates, state, params, None, extra_args)
            return cast_out(out, updates if params is None else params), state

    setattr(update, _BLOCK, block)
    return GradientTransformation(init, update)


def make_block(
    name: str | None,
    init: Callable[[Params], OptState],
    update: BlockUpdate,
    *,
    needs_step: bool = False,
    stateless: bool = False,
    per_leaf: bool = False,
    extra_args: tuple[str, ...] = (),
) -> GradientTransformation:
    """A gradxform transform from a block's `init` and `update` (see `Block`)."""
    unknown = [n for n in extra_args if n not in EXTRA_ARGS]
    if unknown:
        raise ValueError(f"make_block: unknown extra arguments {unknown}; known: {', '.join(EXTRA_ARGS)}.")
    return as_transform(Block(name, init, update, needs_step, stateless, per_leaf, tuple(extra_args)))


def renamed(tx: GradientTransformation, name: str) -> GradientTransformation:
    """`tx` whose errors are led by `name` (what a public factory returns)."""
    return as_transform(dataclasses.replace(block_of(tx, name), name=name))


def public(fn: Callable[..., GradientTransformation]) -> Callable[..., GradientTransformation]:
    """Decorates a public factory: its construction, and its optimizer's errors, are led by its name."""
    name = fn.__name__

    @functools.wraps(fn)
    def factory(*args: Any, **kwargs: Any) -> GradientTransformation:
        with user_function(name):
            tx = fn(*args, **kwargs)
        return renamed(tx, name)

    return factory
