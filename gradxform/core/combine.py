"""Combining transforms: in sequence (`chain`), not at all (`identity`), or by a function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradxform.core.transform import (
    Block,
    EmptyState,
    GradientTransformation,
    Params,
    Updates,
    as_transform,
    block_of,
    make_block,
    union_extra_args,
)
from gradxform.errors import lead


def pack(states: list) -> Any:
    """The state of a combination of stateful parts: `EmptyState()`, the one part's state, or a tuple."""
    if not states:
        return EmptyState()
    return states[0] if len(states) == 1 else tuple(states)


def unpack(state: Any, n: int, who: str) -> list:
    """The inverse of `pack` for `n` stateful parts."""
    if n == 0:
        return []
    if n == 1:
        return [state]
    if not isinstance(state, tuple) or len(state) != n:
        got = f"{len(state)} parts" if isinstance(state, tuple) else type(state).__name__
        raise ValueError(
            f"{lead(who)}: the state has {got} but {n} are expected; use the state this chain's init made."
        )
    return list(state)


def chain_blocks(blocks: list[Block], name: str | None = None) -> GradientTransformation:
    """The transform that applies `blocks` in sequence (see `chain`)."""
    stateful = [b for b in blocks if not b.stateless]

    def init(params):
        return pack([b.init(params) for b in stateful])

    def update(updates, state, params, count, extra_args):
        states = iter(unpack(state, len(stateful), "chain"))
        new = []
        for b in blocks:
            if b.stateless:
                updates, _ = b.update(updates, EmptyState(), params, count, extra_args)
            else:
                updates, s = b.update(updates, next(states), params, count, extra_args)
                new.append(s)
        return updates, pack(new)

    return as_transform(
        Block(
            name,
            init,
            update,
            needs_step=any(b.needs_step for b in blocks),
            stateless=not stateful,
            per_leaf=any(b.per_leaf for b in blocks),
            extra_args=union_extra_args(blocks),
        )
    )


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Applies transforms in sequence: $u \\leftarrow t_k(\\dots t_2(t_1(u)))$.

    The state holds the states of the stateful transforms only: `EmptyState()` if
    there is none, that one's state if there is one, else a tuple of them in order.
    Extra arguments of `update` reach every transform that accepts them, and the
    optimizer's single step count reaches every gradxform block.

    Args:
      *transforms: gradxform or optax transforms.
    """
    return chain_blocks([block_of(t, f"chain (argument {i})") for i, t in enumerate(transforms)])


def stateless(fn: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """A transform with no state: $u \\leftarrow \\mathrm{fn}(u, \\theta)$.

    Args:
      fn: `fn(updates, params) -> updates`; `params` may be `None`.
    """

    def update(updates, state, params, count, extra_args):
        return fn(updates, params), state

    return make_block(None, lambda params: EmptyState(), update, stateless=True)


def identity() -> GradientTransformation:
    """Passes updates through unchanged: $u \\leftarrow u$."""
    return stateless(lambda updates, params=None: updates)
