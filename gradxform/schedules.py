r"""Schedules: hyperparameters as pure functions of the step count.

A schedule is a function ``step -> value``. Pass one wherever a
hyperparameter is accepted (learning rate, momentum, ``b1``, weight decay,
RMSProp's ``decay``, ...): every block resolves it with its *own* step count
through :func:`gradxform.hyper.resolve`.

**Which step the first update sees.** A block evaluates its schedules at its
count *before* the update, so the first update sees step ``0``, the second
step ``1``, and so on (as in optax and Keras). ``schedule(0)`` is the value
used by the first update.

**Dtype.** Every schedule here returns a scalar of
:func:`gradxform.tree.hyper_dtype` (float32, float64 under ``jax_enable_x64``),
computed in that dtype whatever the dtype of the step or of the parameters:
a bfloat16 model still gets a float32 ``0.999``.

**Pure, jit and vmap safe.** A schedule has no state and never branches in
Python on the step, so it runs under ``jit``, ``vmap`` and ``grad``. Its
*numeric* arguments (``init_value``, ``decay_rate``, ``end_value``, ``alpha``,
``power``, ...) may be traced JAX scalars, so a sweep can ``vmap`` over them.
Concrete arguments are validated when the schedule is built (``ValueError``
naming the argument, its value and the allowed range); traced ones are not.
Structural arguments (``staircase``, the boundaries of
:func:`piecewise_constant_schedule` and :func:`join_schedules`) must be
concrete.

Names and arguments are optax's where optax has the same schedule, so
``optax.<name>(...)`` ports by changing the module. :func:`inverse_time_decay`
(seed 001's "learning rate decay" and its staircase "scheduled learning rate
decay", Keras' ``InverseTimeDecay``) has no optax counterpart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.hyper import Schedule, is_concrete, validate
from gradxform.tree import hyper_dtype

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_schedule",
    "piecewise_constant_schedule",
    "polynomial_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


def _f(x: Any) -> jax.Array:
    """``x`` as a scalar of the hyperparameter dtype."""
    return jnp.asarray(x).astype(hyper_dtype())


def _step(step: Any) -> jax.Array:
    """The step count as a float of the hyperparameter dtype (exact up to ``2**24`` in float32)."""
    return _f(step)


def _steps(who: str, name: str, value: Any, positive: bool) -> Any:
    """Validates a step-count argument: a non-negative (or positive) integer, if concrete."""
    if callable(value):
        raise TypeError(f"{who}: {name} is a number of steps; it cannot be a schedule.")
    validate(who, name, value, 0.0, low_open=positive)
    if is_concrete(value) and float(np.asarray(value)) != int(np.asarray(value)):
        raise ValueError(f"{who}: {name}={value!r} must be a whole number of steps.")
    return value


def _number(who: str, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    if callable(value):
        raise TypeError(f"{who}: {name} must be a number or a JAX scalar, not a schedule.")
    return validate(who, name, value, *args, **kwargs)


def _between(t: jax.Array, v: jax.Array, a: Any, b: Any, steps: Any) -> jax.Array:
    """A transition's value ``v`` at ``t in [0, steps]``: exactly ``a`` at 0, ``b`` at ``steps``, never beyond.

    Under ``jit`` XLA may fold constants (``c * (t / T)`` into ``t * (c / T)``),
    which moves a value by an ulp; this keeps a transition's ends exact and
    stops it overshooting them (e.g. a learning rate of ``-3e-9`` where it
    should be ``0``).
    """
    a, b = _f(a), _f(b)
    v = jnp.clip(v, jnp.minimum(a, b), jnp.maximum(a, b))
    return jnp.where(t <= 0, a, jnp.where(t >= _f(steps), b, v))


def _is_zero(value: Any) -> bool:
    return is_concrete(value) and float(np.asarray(value)) == 0.0


def constant_schedule(value: Any) -> Schedule:
    r"""The same value at every step: :math:`v(t) = v`."""
    _number("constant_schedule", "value", value)

    def schedule(step):
        return jnp.broadcast_to(_f(value), jnp.shape(step)) if jnp.ndim(step) else _f(value)

    return schedule


def polynomial_schedule(
    init_value: Any, end_value: Any, power: Any, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    r"""Polynomial transition from ``init_value`` :math:`I` to ``end_value`` :math:`E`.

    .. math::
        v(t) = (I - E)\left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^{P} + E

    with :math:`T` = ``transition_steps``, :math:`B` = ``transition_begin``,
    :math:`P` = ``power``: :math:`I` until step :math:`B`, :math:`E` from step
    :math:`B + T` on. ``transition_steps=0`` holds :math:`I` forever (as optax).
    """
    who = "polynomial_schedule"
    _number(who, "init_value", init_value)
    _number(who, "end_value", end_value)
    _number(who, "power", power)
    _steps(who, "transition_steps", transition_steps, positive=False)
    _steps(who, "transition_begin", transition_begin, positive=False)
    if _is_zero(transition_steps):
        return constant_schedule(init_value)
    # A whole concrete power is taken by repeated multiplication (as optax does), others by pow.
    whole = is_concrete(power) and float(np.asarray(power)).is_integer()
    p = int(np.asarray(power)) if whole else None

    def schedule(step):
        t = jnp.clip(_step(step) - _f(transition_begin), 0, _f(transition_steps))
        frac = (_f(transition_steps) - t) / _f(transition_steps)  # exactly 0 from B + T on
        v = (_f(init_value) - _f(end_value)) * (frac**p if whole else frac ** _f(power)) + _f(end_value)
        return _between(t, v, init_value, end_value, transition_steps)

    return schedule


def linear_schedule(init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0) -> Schedule:
    r"""Linear transition: :math:`v(t) = I + \frac{\min(\max(t-B,0),T)}{T}(E - I)`.

    ``init_value`` :math:`I` until step ``transition_begin`` :math:`B`,
    ``end_value`` :math:`E` from step :math:`B + T` on. Seed 000's momentum
    "initialized at 0.5 and gradually annealed to 0.9" is
    ``linear_schedule(0.5, 0.9, T)``.
    """
    who = "linear_schedule"
    _number(who, "init_value", init_value)
    _number(who, "end_value", end_value)
    _steps(who, "transition_steps", transition_steps, positive=False)
    _steps(who, "transition_begin", transition_begin, positive=False)
    if _is_zero(transition_steps):
        return constant_schedule(init_value)

    def schedule(step):
        t = jnp.clip(_step(step) - _f(transition_begin), 0, _f(transition_steps))
        v = _f(init_value) + (_f(end_value) - _f(init_value)) * (t / _f(transition_steps))
        return _between(t, v, init_value, end_value, transition_steps)

    return schedule


def piecewise_constant_schedule(init_value: Any, boundaries_and_scales: Mapping[int, Any] | None = None) -> Schedule:
    r"""``init_value`` multiplied by every scale whose boundary has been reached.

    .. math:: v(t) = I \prod_{i:\, t \ge b_i} s_i

    ``boundaries_and_scales`` is ``{b_i: s_i}``; boundaries are concrete
    non-negative integers, scales non-negative numbers (they may be traced).
    """
    who = "piecewise_constant_schedule"
    _number(who, "init_value", init_value)
    items = sorted((boundaries_and_scales or {}).items())
    for b, s in items:
        if not is_concrete(b):
            raise TypeError(f"{who}: the boundaries must be concrete integers, got a traced {b!r}.")
        _steps(who, "boundary", b, positive=False)
        _number(who, f"the scale at boundary {b}", s, 0.0)

    def schedule(step):
        t = _step(step)
        v = _f(init_value)
        for b, s in items:
            v = jnp.where(t >= _f(b), v * _f(s), v)
        return v

    return schedule


def exponential_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any | None = None,
) -> Schedule:
    r"""Exponential decay: :math:`v(t) = I\,r^{(t - B)/T}` for :math:`t > B`, :math:`I` before.

    With ``staircase`` the exponent is :math:`\lfloor (t-B)/T \rfloor`.
    ``end_value`` bounds the decay (a floor when :math:`r < 1`, a ceiling when
    :math:`r > 1`). ``decay_rate`` :math:`r > 0`; ``transition_steps``
    :math:`T = 0` holds :math:`I` forever (as optax). Keras'
    ``ExponentialDecay(I, T, r, staircase)`` is this with :math:`B = 0`.
    """
    who = "exponential_decay"
    _number(who, "init_value", init_value)
    _steps(who, "transition_steps", transition_steps, positive=False)
    _number(who, "decay_rate", decay_rate, 0.0, low_open=True)
    _steps(who, "transition_begin", transition_begin, positive=False)
    _number(who, "end_value", end_value, allow_none=True)
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"{who}: staircase must be True or False, got {staircase!r}.")
    if _is_zero(transition_steps):
        return constant_schedule(init_value)

    def schedule(step):
        t = _step(step) - _f(transition_begin)
        p = t / _f(transition_steps)
        if staircase:
            p = jnp.floor(p)
        v = jnp.where(t <= 0, _f(init_value), _f(init_value) * _f(decay_rate) ** p)
        if end_value is not None:
            e = _f(end_value)
            v = jnp.where(_f(decay_rate) < 1, jnp.maximum(v, e), jnp.minimum(v, e))
        return v

    return schedule


def inverse_time_decay(init_value: Any, decay_rate: Any, decay_steps: int, staircase: bool = False) -> Schedule:
    r"""Inverse-time decay (seed 001's "learning rate decay"; Keras' ``InverseTimeDecay``).

    .. math::
        v(t) = \frac{v_0}{1 + r\,t / T}
        \qquad\text{or, with staircase,}\qquad
        v(t) = \frac{v_0}{1 + r\,\lfloor t / T \rfloor}

    with :math:`v_0` = ``init_value``, :math:`r` = ``decay_rate``
    :math:`\ge 0` and :math:`T` = ``decay_steps`` :math:`> 0`. Seed 001 counts
    epochs: :math:`\alpha = \alpha_0 / (1 + \text{decay\_rate}\cdot\text{epoch\_num})`
    is ``decay_steps=steps_per_epoch`` with ``staircase=True``, and its
    "scheduled learning rate decay" :math:`\alpha_0 / (1 + \text{decay\_rate}
    \cdot \lfloor \text{epoch\_num}/\text{time\_interval} \rfloor)` is
    ``decay_steps=steps_per_epoch * time_interval`` with ``staircase=True``.
    The first update (step 0) gets :math:`v_0`.
    """
    who = "inverse_time_decay"
    _number(who, "init_value", init_value)
    _number(who, "decay_rate", decay_rate, 0.0)
    _steps(who, "decay_steps", decay_steps, positive=True)
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"{who}: staircase must be True or False, got {staircase!r}.")

    def schedule(step):
        p = _step(step) / _f(decay_steps)
        if staircase:
            p = jnp.floor(p)
        return _f(init_value) / (1 + _f(decay_rate) * p)

    return schedule


def cosine_decay_schedule(init_value: Any, decay_steps: int, alpha: Any = 0.0, exponent: Any = 1.0) -> Schedule:
    r"""Cosine decay (Loshchilov & Hutter's SGDR without restarts).

    .. math::
        v(t) = I\left[(1-\alpha)\left(\tfrac12\left(1 + \cos\frac{\pi \min(t, T)}{T}\right)\right)^{p}
        + \alpha\right]

    ``init_value`` :math:`I`, ``decay_steps`` :math:`T > 0`, ``alpha`` the
    final fraction of :math:`I`, ``exponent`` :math:`p`. Held at
    :math:`\alpha I` after step :math:`T`.
    """
    who = "cosine_decay_schedule"
    _number(who, "init_value", init_value)
    _steps(who, "decay_steps", decay_steps, positive=True)
    _number(who, "alpha", alpha)
    _number(who, "exponent", exponent)

    def schedule(step):
        t = jnp.minimum(_step(step), _f(decay_steps))
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / _f(decay_steps)))
        return _f(init_value) * ((1 - _f(alpha)) * cosine ** _f(exponent) + _f(alpha))

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    Each schedule sees the steps since its own boundary: from step
    :math:`b_i` on the value is ``schedules[i+1](t - b_i)``. Boundaries are
    concrete, non-negative and non-decreasing; there is one fewer boundary
    than schedules.
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
        _steps(who, "boundary", b, positive=False)
    if any(b1 > b2 for b1, b2 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"{who}: boundaries={boundaries} must be non-decreasing.")

    def schedule(step):
        step = jnp.asarray(step)
        out = _f(schedules[0](step))
        for b, s in zip(boundaries, schedules[1:]):
            out = jnp.where(step < b, out, _f(s(step - b)))
        return out

    return schedule


def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: int) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant."""
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    .. math::
        v(t) = \begin{cases} I + \frac{t}{W}(P - I) & t < W \\
        E + (P - E)\left(\tfrac12\left(1+\cos\frac{\pi\min(t-W,\,D-W)}{D-W}\right)\right)^{p} & t \ge W
        \end{cases}

    ``decay_steps`` :math:`D` counts the warmup too (as optax), so
    :math:`D > W`.
    """
    who = "warmup_cosine_decay_schedule"
    _number(who, "peak_value", peak_value)
    _number(who, "end_value", end_value)
    _steps(who, "warmup_steps", warmup_steps, positive=False)
    _steps(who, "decay_steps", decay_steps, positive=True)
    if is_concrete(warmup_steps) and is_concrete(decay_steps) and not decay_steps > warmup_steps:
        raise ValueError(
            f"{who}: decay_steps={decay_steps} counts the warmup too, so it must exceed warmup_steps={warmup_steps}."
        )
    alpha = 0.0 if _is_zero(peak_value) else end_value / peak_value
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any | None = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value`` over ``warmup_steps``, then :func:`exponential_decay` from it."""
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            exponential_decay(peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value),
        ],
        [warmup_steps],
    )
