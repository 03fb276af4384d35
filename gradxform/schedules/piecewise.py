"""Schedules assembled from pieces: constant pieces scaled at boundaries, and schedules joined in sequence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from gradxform.hyper import is_concrete
from gradxform.schedules.base import Schedule, as_hyper, check_number, check_steps, reached


def piecewise_constant_schedule(init_value: Any, boundaries_and_scales: Mapping[int, Any] | None = None) -> Schedule:
    r"""`init_value` multiplied by every scale whose boundary has been reached.

    $$v(t) = I \prod_{i:\, t \ge b_i} s_i$$

    `boundaries_and_scales` is `{b_i: s_i}`; boundaries are concrete
    non-negative integers, scales non-negative numbers (they may be traced).

    Args:
      init_value: $I$.
      boundaries_and_scales: `{b_i: s_i}`, or `None` for a constant.

    Returns:
      A `Schedule`.
    """
    who = "piecewise_constant_schedule"
    check_number(who, "init_value", init_value)
    items = sorted((boundaries_and_scales or {}).items())
    for b, s in items:
        if not is_concrete(b):
            raise TypeError(f"{who}: the boundaries must be concrete integers, got a traced {b!r}.")
        check_steps(who, "boundary", b, positive=False)
        check_number(who, f"the scale at boundary {b}", s, 0.0)

    def schedule(step):
        v = as_hyper(init_value)
        for b, s in items:
            v = jnp.where(reached(step, b), v * as_hyper(s), v)
        return v

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Runs `schedules[0]` until `boundaries[0]`, then `schedules[1]`, and so on.

    Each schedule sees the steps since its own boundary: from step
    $b_i$ on the value is `schedules[i+1](t - b_i)`. Boundaries are
    concrete, non-negative and non-decreasing; there is one fewer boundary
    than schedules.

    Args:
      schedules: the schedules, in order.
      boundaries: the steps $b_i$ where each next schedule takes over.

    Returns:
      A `Schedule`.
    """
    who = "join_schedules"
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError(f"{who}: give at least one schedule.")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"{who}: schedules[{i}] is {s!r}, not a schedule; wrap a number in constant_schedule.")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"{who}: {len(schedules)} schedules need {len(schedules) - 1} boundaries, got {len(boundaries)}."
        )
    for b in boundaries:
        if not is_concrete(b):
            raise TypeError(f"{who}: the boundaries must be concrete integers, got a traced {b!r}.")
        check_steps(who, "boundary", b, positive=False)
    if any(b1 > b2 for b1, b2 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"{who}: boundaries={boundaries} must be non-decreasing.")

    def schedule(step):
        step = jnp.asarray(step)
        out = as_hyper(schedules[0](step))
        for b, s in zip(boundaries, schedules[1:]):
            out = jnp.where(step < b, out, as_hyper(s(step - b)))
        return out

    return schedule
