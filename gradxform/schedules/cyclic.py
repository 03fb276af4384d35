"""Schedules that interpolate between scaled values: piecewise interpolation, one-cycle, SGDR (warm restarts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp

from gradxform.errors import lead
from gradxform.hyper import is_concrete
from gradxform.schedules.base import Schedule, as_hyper, check_number, check_steps, half_cosine, steps_since
from gradxform.schedules.piecewise import join_schedules
from gradxform.schedules.warmup import warmup_cosine_decay_schedule

INTERPOLATIONS = ("linear", "cosine")


def _interpolate(kind: str, start, end, done, size):
    if kind == "linear":  # a weighted mean with exact weights: no cancellation between start and end
        return start * ((size - done) / size) + end * (done / size)
    return end + (start - end) * half_cosine(done, size)


def piecewise_interpolate_schedule(
    interpolate_type: str, init_value: Any, boundaries_and_scales: Mapping[int, Any] | None = None
) -> Schedule:
    r"""Interpolates, linearly or by a half cosine, between the values reached at each boundary.

    With boundaries $0 = b_0 < b_1 < \dots < b_n$ and scales $s_i$, the values at the
    boundaries are $v_0 = I$, $v_i = v_{i-1} s_i$; between $b_{i-1}$ and $b_i$ the
    schedule goes from $v_{i-1}$ to $v_i$ (linear: $v_{i-1} + (v_i - v_{i-1})p$; cosine:
    $v_i + \tfrac12(v_{i-1} - v_i)(1 + \cos \pi p)$, with $p$ the fraction of the interval
    done), and holds $v_n$ from $b_n$ on. optax's `piecewise_interpolate_schedule`.

    Args:
      interpolate_type: `"linear"` or `"cosine"`.
      init_value: $I$.
      boundaries_and_scales: `{b_i: s_i}`, concrete non-negative integer boundaries and non-negative scales.
    """
    who = "piecewise_interpolate_schedule"
    if interpolate_type not in INTERPOLATIONS:
        raise ValueError(f"{lead(who)}: interpolate_type={interpolate_type!r} must be 'linear' or 'cosine'.")
    check_number(who, "init_value", init_value)
    items = sorted((boundaries_and_scales or {}).items())
    for b, s in items:
        if not is_concrete(b):
            raise TypeError(f"{lead(who)}: the boundaries must be concrete integers, got a traced {b!r}.")
        check_steps(who, "boundary", b, positive=False)
        check_number(who, f"the scale at boundary {b}", s, 0.0)
    bounds = [0] + [int(b) for b, _ in items]

    def schedule(step):
        values = [as_hyper(init_value)]
        for _, s in items:
            values.append(values[-1] * as_hyper(s))
        out = values[-1]  # from the last boundary on
        for i in range(len(items) - 1, -1, -1):  # the interval [b_i, b_{i+1}) that holds the step
            size = max(bounds[i + 1] - bounds[i], 1)
            done = jnp.clip(steps_since(step, bounds[i]), 0, size)
            inside = (steps_since(step, bounds[i]) >= 0) & (steps_since(step, bounds[i + 1]) < 0)
            out = jnp.where(inside, _interpolate(interpolate_type, values[i], values[i + 1], done, size), out)
        return out

    return schedule


def _onecycle_steps(who: str, transition_steps: Any) -> int:
    if callable(transition_steps) or not is_concrete(transition_steps):
        raise TypeError(f"{lead(who)}: transition_steps must be a concrete number of steps.")
    check_steps(who, "transition_steps", transition_steps, positive=True)
    return int(transition_steps)


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Smith's one-cycle schedule with linear pieces (optax's `linear_onecycle_schedule`).

    From $P/d$ up to the peak $P$ over the first `pct_start` of `transition_steps`, back
    down to $P/d$ by `pct_final`, then to $P/(d f)$ at `transition_steps`, held after
    ($d$ = `div_factor`, $f$ = `final_div_factor`).

    Args:
      transition_steps: the length of the cycle, a positive integer.
      peak_value: $P$.
      pct_start: the fraction of the cycle spent rising.
      pct_final: the fraction at which the fall back to $P/d$ ends.
      div_factor: $d > 0$.
      final_div_factor: $f > 0$.
    """
    who = "linear_onecycle_schedule"
    steps = _onecycle_steps(who, transition_steps)
    check_number(who, "pct_start", pct_start, 0.0, 1.0)
    check_number(who, "pct_final", pct_final, 0.0, 1.0)
    check_number(who, "div_factor", div_factor, 0.0, low_open=True)
    check_number(who, "final_div_factor", final_div_factor, 0.0, low_open=True)
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {int(pct_start * steps): div_factor, int(pct_final * steps): 1.0 / div_factor, steps: 1.0 / final_div_factor},
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Smith's one-cycle schedule with half-cosine pieces (optax's `cosine_onecycle_schedule`).

    From $P/d$ up to $P$ over the first `pct_start` of `transition_steps`, then down to
    $P/(d f)$ at `transition_steps`, both by half cosines.

    Args:
      transition_steps: the length of the cycle, a positive integer.
      peak_value: $P$.
      pct_start: the fraction of the cycle spent rising.
      div_factor: $d > 0$.
      final_div_factor: $f > 0$.
    """
    who = "cosine_onecycle_schedule"
    steps = _onecycle_steps(who, transition_steps)
    check_number(who, "pct_start", pct_start, 0.0, 1.0)
    check_number(who, "div_factor", div_factor, 0.0, low_open=True)
    check_number(who, "final_div_factor", final_div_factor, 0.0, low_open=True)
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {int(pct_start * steps): div_factor, steps: 1.0 / (div_factor * final_div_factor)},
    )


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    r"""Stochastic gradient descent with warm restarts (Loshchilov & Hutter 2017; optax's `sgdr_schedule`).

    One `warmup_cosine_decay_schedule(**kwargs)` per cycle, each restarting where the
    previous one's `decay_steps` end.

    Args:
      cosine_kwargs: the arguments of each cycle's `warmup_cosine_decay_schedule`.
    """
    cycles = [dict(kw) for kw in cosine_kwargs]
    if not cycles:
        raise ValueError(f"{lead('sgdr_schedule')}: give at least one cycle's arguments.")
    schedules, boundaries, step = [], [], 0
    for kw in cycles:
        if "decay_steps" not in kw:
            raise ValueError(f"{lead('sgdr_schedule')}: each cycle needs decay_steps, got {sorted(kw)}.")
        schedules.append(warmup_cosine_decay_schedule(**kw))
        step += int(kw["decay_steps"])
        boundaries.append(step)
    return join_schedules(schedules, boundaries[:-1])
