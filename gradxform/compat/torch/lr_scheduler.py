"""torch.optim.lr_scheduler's schedules as gradxform schedules, so a PyTorch recipe ports with its schedule.

Each function takes torch's arguments (the base learning rate first, since there is
no optimizer to read it from) and returns a schedule `count -> lr` whose value at
`count = k` is torch's `scheduler.get_last_lr()` after `k` calls of
`scheduler.step()`: the learning rate of the `k`-th update (0-based), which is what a
gradxform optimizer's schedule receives. Pass it as the learning rate:

    tx = gx.compat.torch.AdamW(lr=gx.compat.torch.lr_scheduler.CosineAnnealingLR(1e-3, T_max=10_000))

torch computes several of these by recurrence (each value from the last); these are
the closed forms that recurrence follows (equal to 1e-9 over 500 steps, tested).
Step counts are taken in integers, and the arithmetic is in the hyperparameter
dtype (float32, float64 under x64). Schedules torch applies to momentum
(`OneCycleLR`'s and `CyclicLR`'s `cycle_momentum`) are not included: pass a
momentum schedule separately if you need one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from gradxform.errors import lead
from gradxform.hyper import is_concrete, validate, validate_int
from gradxform.schedules.base import Schedule, as_hyper, steps_since

__all__ = [
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolynomialLR",
    "StepLR",
]


def _lr(who: str, lr: Any) -> Any:
    if callable(lr) or not is_concrete(lr):
        raise TypeError(f"{lead(who)}: lr must be a concrete number (the base learning rate), got {lr!r}.")
    return validate(who, "lr", lr, 0.0)


def _count(step: Any) -> Any:
    return steps_since(step, 0)  # the step as a float, from an exact integer


def StepLR(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""`torch.optim.lr_scheduler.StepLR`: $\eta_k = \eta\,\gamma^{\lfloor k / s \rfloor}$.

    Args:
      lr: the base learning rate $\eta$.
      step_size: $s$, an int >= 1.
      gamma: $\gamma \ge 0$.
    """
    who = "StepLR"
    _lr(who, lr)
    validate_int(who, "step_size", step_size, 1)
    validate(who, "gamma", gamma, 0.0)

    def schedule(step):
        k = jnp.asarray(step)
        n = (k // step_size) if jnp.issubdtype(k.dtype, jnp.integer) else jnp.floor(_count(k) / step_size)
        return as_hyper(lr) * as_hyper(gamma) ** as_hyper(n)

    return schedule


def MultiStepLR(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""`torch.optim.lr_scheduler.MultiStepLR`: $\eta_k = \eta\,\gamma^{\#\{m_i \le k\}}$.

    Args:
      lr: the base learning rate $\eta$.
      milestones: the steps $m_i$ (ints >= 0; repeated milestones count twice, as in torch).
      gamma: $\gamma \ge 0$.
    """
    who = "MultiStepLR"
    _lr(who, lr)
    ms = sorted(validate_int(who, "milestone", m, 0) for m in milestones)
    validate(who, "gamma", gamma, 0.0)

    def schedule(step):
        n = sum((steps_since(step, m) >= 0).astype(as_hyper(0).dtype) for m in ms) if ms else as_hyper(0)
        return as_hyper(lr) * as_hyper(gamma) ** n

    return schedule


def ExponentialLR(lr: float, gamma: float) -> Schedule:
    r"""`torch.optim.lr_scheduler.ExponentialLR`: $\eta_k = \eta\,\gamma^k$.

    Args:
      lr: the base learning rate $\eta$.
      gamma: $\gamma \ge 0$.
    """
    who = "ExponentialLR"
    _lr(who, lr)
    validate(who, "gamma", gamma, 0.0)
    return lambda step: as_hyper(lr) * as_hyper(gamma) ** _count(step)


def _half_cos_sum(angle):
    return (1 + jnp.cos(angle)) / 2


def CosineAnnealingLR(lr: float, T_max: int, eta_min: float = 0.0) -> Schedule:
    r"""`torch.optim.lr_scheduler.CosineAnnealingLR`: a cosine from $\eta$ to $\eta_{min}$ over $T$ steps.

    $$\eta_k = \eta_{min} + (\eta - \eta_{min})\tfrac12(1 + \cos(\pi k / T))$$

    As torch's, it keeps following the cosine after $T$ (back up over the next $T$ steps).

    Args:
      lr: the base learning rate $\eta$.
      T_max: $T$, an int >= 1.
      eta_min: $\eta_{min} \ge 0$.
    """
    who = "CosineAnnealingLR"
    _lr(who, lr)
    validate_int(who, "T_max", T_max, 1)
    validate(who, "eta_min", eta_min, 0.0)
    return lambda step: (
        as_hyper(eta_min) + (as_hyper(lr) - as_hyper(eta_min)) * _half_cos_sum(jnp.pi * _count(step) / T_max)
    )


def CosineAnnealingWarmRestarts(lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> Schedule:
    r"""`torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` (SGDR): cosine cycles of growing length.

    The cycles last $T_0, T_0 m, T_0 m^2, \dots$ steps.

    $\eta_k = \eta_{min} + (\eta - \eta_{min})\tfrac12(1 + \cos(\pi T_{cur} / T_i))$, with
    $T_{cur}$ the steps since the current cycle began and $T_i$ its length.

    Args:
      lr: the base learning rate $\eta$.
      T_0: the first cycle's length, an int >= 1.
      T_mult: $m$, an int >= 1.
      eta_min: $\eta_{min} \ge 0$.
    """
    who = "CosineAnnealingWarmRestarts"
    _lr(who, lr)
    validate_int(who, "T_0", T_0, 1)
    validate_int(who, "T_mult", T_mult, 1)
    validate(who, "eta_min", eta_min, 0.0)
    # cycle i starts at s_i = T_0 (1 + m + ... + m^(i-1)); enough cycles to pass 2**31 steps
    starts, lengths, s, length = [0], [T_0], 0, T_0
    while T_mult > 1 and s + length < 2**31:
        s += length
        length *= T_mult
        starts.append(s)
        lengths.append(length)

    def schedule(step):
        if T_mult == 1:
            k = jnp.asarray(step)
            t_cur = (
                (k % T_0).astype(as_hyper(0).dtype) if jnp.issubdtype(k.dtype, jnp.integer) else jnp.mod(_count(k), T_0)
            )
            t_i = as_hyper(T_0)
        else:
            t_cur, t_i = _count(step), as_hyper(T_0)
            for start, n in zip(starts[1:], lengths[1:]):
                past = steps_since(step, start) >= 0
                t_cur = jnp.where(past, steps_since(step, start), t_cur)
                t_i = jnp.where(past, as_hyper(n), t_i)
        return as_hyper(eta_min) + (as_hyper(lr) - as_hyper(eta_min)) * _half_cos_sum(jnp.pi * t_cur / t_i)

    return schedule


def LinearLR(lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5) -> Schedule:
    r"""`torch.optim.lr_scheduler.LinearLR`: the factor goes linearly from `start_factor` to `end_factor`.

    $\eta_k = \eta\,\bigl(f_0 + (f_1 - f_0)\min(k, N)/N\bigr)$.

    Args:
      lr: the base learning rate $\eta$.
      start_factor: $f_0 \in (0, 1]$.
      end_factor: $f_1 \in [0, 1]$.
      total_iters: $N$, an int >= 1.
    """
    who = "LinearLR"
    _lr(who, lr)
    validate(who, "start_factor", start_factor, 0.0, 1.0, low_open=True)
    validate(who, "end_factor", end_factor, 0.0, 1.0)
    validate_int(who, "total_iters", total_iters, 1)
    return lambda step: (
        as_hyper(lr)
        * (
            as_hyper(start_factor)
            + (as_hyper(end_factor) - as_hyper(start_factor)) * jnp.minimum(_count(step), total_iters) / total_iters
        )
    )


def PolynomialLR(lr: float, total_iters: int = 5, power: float = 1.0) -> Schedule:
    r"""`torch.optim.lr_scheduler.PolynomialLR`: $\eta_k = \eta\,(1 - \min(k, N)/N)^p$.

    Args:
      lr: the base learning rate $\eta$.
      total_iters: $N$, an int >= 1.
      power: $p \ge 0$.
    """
    who = "PolynomialLR"
    _lr(who, lr)
    validate_int(who, "total_iters", total_iters, 1)
    validate(who, "power", power, 0.0)
    return lambda step: (
        as_hyper(lr) * ((total_iters - jnp.minimum(_count(step), total_iters)) / total_iters) ** as_hyper(power)
    )


def OneCycleLR(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    r"""`torch.optim.lr_scheduler.OneCycleLR` (the learning rate; not its momentum cycling).

    From `max_lr / div_factor` up to `max_lr` over `pct_start` of `total_steps`, then
    down to `max_lr / (div_factor * final_div_factor)` (with `three_phase`, first back
    to the initial value, then down), each phase annealed by a half cosine (`"cos"`) or
    linearly (`"linear"`) as torch does. Held at its last value after `total_steps`
    (torch raises there).

    Args:
      max_lr: the peak learning rate.
      total_steps: the cycle's length, an int >= 1.
      pct_start: the fraction spent rising, in [0, 1].
      anneal_strategy: `"cos"` or `"linear"`.
      div_factor: the initial learning rate is `max_lr / div_factor`.
      final_div_factor: the last is the initial one divided by this.
      three_phase: use torch's three phases.
    """
    who = "OneCycleLR"
    _lr(who, max_lr)
    validate_int(who, "total_steps", total_steps, 1)
    validate(who, "pct_start", pct_start, 0.0, 1.0)
    validate(who, "div_factor", div_factor, 0.0, low_open=True)
    validate(who, "final_div_factor", final_div_factor, 0.0, low_open=True)
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"{lead(who)}: anneal_strategy={anneal_strategy!r} must be 'cos' or 'linear'.")
    initial = max_lr / div_factor
    lowest = initial / final_div_factor
    if three_phase:
        phases = [
            (float(pct_start * total_steps) - 1, initial, max_lr),
            (float(2 * pct_start * total_steps) - 2, max_lr, initial),
            (total_steps - 1, initial, lowest),
        ]
    else:
        phases = [(float(pct_start * total_steps) - 1, initial, max_lr), (total_steps - 1, max_lr, lowest)]

    def anneal(start, end, pct):
        if anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)
        return (end - start) * pct + start

    def schedule(step):
        k = jnp.minimum(_count(step), total_steps)
        out, begin, chosen = as_hyper(0), 0.0, jnp.zeros([], bool)
        for i, (end_step, a, b) in enumerate(phases):
            pct = (k - begin) / (end_step - begin) if end_step != begin else as_hyper(0)
            here = ~chosen & ((k <= end_step) | (i == len(phases) - 1))
            out = jnp.where(here, anneal(as_hyper(a), as_hyper(b), pct), out)
            chosen = chosen | here
            begin = end_step
        return out

    return schedule


def CyclicLR(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    r"""`torch.optim.lr_scheduler.CyclicLR` (the learning rate; not its momentum cycling).

    A triangle from `base_lr` to `max_lr` and back, `step_size_up` steps up and
    `step_size_down` down; its height scaled by 1 (`"triangular"`), by $2^{-(c-1)}$ in
    cycle $c$ (`"triangular2"`), or by $\gamma^k$ at step $k$ (`"exp_range"`).

    Args:
      base_lr: the lower bound.
      max_lr: the upper bound.
      step_size_up: steps rising, an int >= 1.
      step_size_down: steps falling (default: `step_size_up`).
      mode: `"triangular"`, `"triangular2"` or `"exp_range"`.
      gamma: the factor of `"exp_range"`, in (0, 1].
    """
    who = "CyclicLR"
    validate(who, "base_lr", base_lr, 0.0)
    validate(who, "max_lr", max_lr, 0.0)
    validate_int(who, "step_size_up", step_size_up, 1)
    validate_int(who, "step_size_down", step_size_down, 1, allow_none=True)
    if mode not in ("triangular", "triangular2", "exp_range"):
        raise ValueError(f"{lead(who)}: mode={mode!r} must be 'triangular', 'triangular2' or 'exp_range'.")
    validate(who, "gamma", gamma, 0.0, 1.0, low_open=True)
    up = float(step_size_up)
    total = up + float(step_size_down if step_size_down is not None else step_size_up)
    ratio = up / total

    def schedule(step):
        k = _count(step)
        cycle = jnp.floor(1 + k / total)
        x = 1.0 + k / total - cycle
        scale = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if mode == "triangular":
            factor = as_hyper(1)
        elif mode == "triangular2":
            factor = 1 / (2.0 ** (cycle - 1))
        else:
            factor = as_hyper(gamma) ** k
        return as_hyper(base_lr) + (as_hyper(max_lr) - as_hyper(base_lr)) * scale * factor

    return schedule
