"""Wrappers that train one set of weights and evaluate another.

Each keeps the weights to evaluate (or what computes them) in its state, and marks
its state class with `gradxform.core.state.evaluates`, so `gradxform.eval_params(state,
params)` returns them whatever wraps the optimizer; for every other optimizer it
returns `params`:

* `schedule_free`: the interpolation of Defazio et al.'s schedule-free method;
* `ema_params`: an exponential moving average of the parameters (Polyak/EMA);
* `swa`: stochastic weight averaging, an equal-weight average of iterates;
* `lookahead`: the slow weights of lookahead (the parameters you hold are the fast ones).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import field, map_leaves, require_params, storage, stored
from gradxform.core import GradientTransformation, apply_updates, block_of, make_block, own_step, public
from gradxform.core.state import evaluates, per_param
from gradxform.errors import lead
from gradxform.hyper import CLOSED_UNIT, NONNEGATIVE, Hyperparameter, Range, is_schedule, resolve, validate
from gradxform.hyper.validate import validate_bool, validate_dtype, validate_int
from gradxform.numerics import (
    cast_out,
    check_match,
    compute_dtype,
    copy_like,
    hyper_dtype,
    real_dtype,
    safe_increment,
    zero_count,
    zeros_like,
)

PyTree = Any
OPEN_CLOSED_UNIT = Range(0.0, 1.0, low_open=True)  # (0, 1]: schedule-free's b1, which it divides by


def _scalar(x: jax.Array, like: jax.Array) -> jax.Array:
    """A state scalar in the real compute dtype of a parameter leaf."""
    return x.astype(real_dtype(compute_dtype(like.dtype)))


def _new_params(params: PyTree, out: PyTree) -> PyTree:
    """The parameters after `apply_updates(params, out)`, `out` cast as the optimizer's root casts it."""
    return apply_updates(params, cast_out(out, params))


def _at_least_float32(who: str, state_dtype: Any):
    """The storage rule of an average: `state_dtype`, else the parameter's dtype promoted to at least float32."""
    fixed = validate_dtype(who, "state_dtype", state_dtype)
    return (lambda dt: fixed) if fixed is not None else compute_dtype


def _not_a_schedule(who: str, name: str, value: Any) -> None:
    if is_schedule(value):
        raise TypeError(
            f"{lead(who)}: {name} must be a number (the weights to evaluate are computed with it), not a schedule."
        )


# ----------------------------------------------------------------------------------------------------------
# schedule-free


def _schedule_free_eval(node: Any, params: PyTree) -> PyTree:
    def one(y, z):
        b1 = _scalar(node.b1, y)
        ct = compute_dtype(y.dtype, z.dtype)
        z = z.astype(ct)
        return (z + (y.astype(ct) - z) / b1).astype(y.dtype)  # (y - (1 - b1) z) / b1, exact where y = z

    return jax.tree.map(one, params, node.z)


@evaluates(_schedule_free_eval)
@per_param("z")
class ScheduleFreeState(NamedTuple):
    """`b1` (the interpolation weight, needed to recover $x$), `weight_sum` $\\sum_i \\gamma_{\\max,i}^{p}$,
    `max_lr` the largest learning rate so far, `z` the base optimizer's iterate, `inner_state` its state."""

    b1: jax.Array
    weight_sum: jax.Array
    max_lr: jax.Array
    z: PyTree
    inner_state: Any


@public
def schedule_free(
    base_optimizer: GradientTransformation,
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    weight_lr_power: Hyperparameter = 2.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Schedule-free learning (Defazio et al. 2024, "The Road Less Scheduled") around a base optimizer.

    The base optimizer (without momentum) moves $z$; the parameters you hold are $y$, the
    gradient is taken there; the weights to evaluate are $x$, an average of the $z$'s:

    $$\begin{aligned}
    z_{t+1} &= z_t + \mathrm{base}(g_t), \qquad
    c_{t+1} = \frac{\gamma_{\max,t}^{\,p}}{\sum_{i \le t} \gamma_{\max,i}^{\,p}},\\
    x_{t+1} &= (1 - c_{t+1})\,x_t + c_{t+1}\,z_{t+1}, \qquad
    y_{t+1} = \beta_1 x_{t+1} + (1 - \beta_1)\,z_{t+1}
    \end{aligned}$$

    with $z_1 = x_1 = y_1$ the initial parameters, $\gamma_{\max,t}$ the largest learning
    rate so far (the schedule read at step $t = 1, 2, \dots$, as optax) and $p$
    `weight_lr_power`. Only $z$ is stored: $x_t = (y_t - (1-\beta_1) z_t)/\beta_1$ is
    recomputed from the parameters (as $z_t + (y_t - z_t)/\beta_1$), so the state is the
    base optimizer's plus one parameter-sized buffer. The update is computed as
    $y_{t+1} - y_t = (1 - c_{t+1})(1 - \beta_1)\,\mathrm{base}(g_t) + c_{t+1}(z_{t+1} - y_t)$, which
    reads the new $z$: under `jax.jit` with donation XLA then writes $z$ and the parameters in
    two passes without copying either (where $z$ is stored in a narrower dtype than it is
    computed in, the same with $z_t + \mathrm{base}(g_t)$ unrounded).
    `gradxform.eval_params(state, params)` returns $x$. Same trajectory as
    `optax.contrib.schedule_free`.

    Args:
      base_optimizer: the optimizer that moves $z$, without momentum (e.g. `adam(lr, b1=0.0)`).
      learning_rate: $\gamma \ge 0$, the base optimizer's learning rate (a number or a schedule).
      b1: $\beta_1 \in (0, 1]$, the interpolation weight (a number: it also recovers $x$).
      weight_lr_power: $p \ge 0$.
      state_dtype: the dtype $z$ is stored in (default: the parameter's).
    """
    who = "schedule_free"
    block = block_of(base_optimizer, f"{who} (base_optimizer)")
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    _not_a_schedule(who, "b1", b1)
    validate(who, "b1", b1, OPEN_CLOSED_UNIT)
    validate(who, "weight_lr_power", weight_lr_power, NONNEGATIVE)
    rule = storage(who, state_dtype, moment=False)

    def init(params):
        zero = jnp.zeros((), hyper_dtype())
        b = resolve(b1, None, "b1")
        return ScheduleFreeState(b, zero, jnp.zeros((), hyper_dtype()), copy_like(params, rule), block.init(params))

    def update(updates, state, params, count, extra_args):
        require_params(who, updates, params)
        check_match(updates, state.z, who, rule)
        # optax reads the schedule at its own count, which starts at 1
        lr = resolve(learning_rate, None if count is None else safe_increment(count), "learning_rate")
        b = resolve(b1, count, "b1")
        max_lr = jnp.maximum(state.max_lr, lr.astype(state.max_lr.dtype))
        weight = max_lr ** resolve(weight_lr_power, count, "weight_lr_power").astype(max_lr.dtype)
        total = state.weight_sum + weight
        ck = jnp.where(
            jnp.isnan(weight) | jnp.isnan(total),
            jnp.full(weight.shape, jnp.nan, weight.dtype),
            jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf),
        )
        base, inner_state = block.update(updates, state.inner_state, params, count, extra_args)

        def one(h, u, z, y):
            # y_{t+1} - y_t with x_t = z_t + (y_t - z_t) / b1 substituted, written with the new z so that under
            # jax.jit with donation XLA writes z and the parameters in two passes and copies neither (optax's
            # y_{t+1} - y_t reads the old z after it is overwritten: a copy of it). A z stored narrower than
            # its compute dtype is rounded when stored; the update uses it unrounded.
            z_next = z + u
            return (1 - h.ck) * (1 - h.b1) * u + h.ck * (z_next - y), z_next

        results = map_leaves(one, {"b1": b, "ck": ck}, None, base, state.z, params)
        z = stored(field(base, results, 1), state.z)
        return field(base, results, 0), ScheduleFreeState(b, total, max_lr, z, inner_state)

    return make_block(
        who,
        init,
        update,
        needs_step=block.needs_step or is_schedule(learning_rate),
        per_leaf=block.per_leaf,
        extra_args=block.extra_args,
    )


# ----------------------------------------------------------------------------------------------------------
# exponential moving average of the parameters


def _ema_eval(node: Any, params: PyTree) -> PyTree:
    def one(p, e):
        w = _scalar(node.weight, e)
        return jnp.where(w > 0, e / jnp.where(w > 0, w, 1), p).astype(p.dtype)

    return jax.tree.map(one, params, node.ema)


@evaluates(_ema_eval)
@per_param("ema")
class EmaParamsState(NamedTuple):
    """`ema`: the moving average of the parameters (at least float32); `weight`: the total weight it holds
    (1 without debiasing; $1 - \\beta^t$ with it), the average being `ema / weight`; `inner_state`."""

    ema: PyTree
    weight: jax.Array
    inner_state: Any


@public
def ema_params(
    inner: GradientTransformation,
    decay: Hyperparameter = 0.999,
    debias: bool = False,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""An exponential moving average of the parameters, to evaluate (Polyak/EMA averaging).

    $$\bar\theta_0 = \theta_0, \qquad \bar\theta_t = \beta\,\bar\theta_{t-1} + (1-\beta)\,\theta_t$$

    where $\theta_t = \theta_{t-1} + \Delta\theta_t$ are the parameters after `inner`'s
    $t$-th update (`inner`'s updates pass through unchanged).
    `gradxform.eval_params(state, params)` returns $\bar\theta_t$. This is Keras'
    `use_ema` and torch's `AveragedModel` with `get_ema_multi_avg_fn(decay)`, updated
    once before training and after every step.

    With `debias=True` the average starts at zero instead and is divided by the weight
    it holds, $\bar\theta_t = m_t / (1 - \beta^t)$ with $m_t = \beta m_{t-1} + (1-\beta)\theta_t$:
    a weighted mean of the iterates after the first update only (the initial
    parameters weigh nothing); before any update it evaluates $\theta_0$.

    Args:
      inner: the optimizer whose iterates are averaged.
      decay: $\beta \in [0, 1]$ (a number or a schedule); torch's default, Keras' is 0.99.
      debias: start at zero and divide by $1 - \beta^t$.
      state_dtype: the dtype the average is stored in (default: the parameter's, at least float32).
    """
    block = block_of(inner, "ema_params (inner)")
    validate("ema_params", "decay", decay, CLOSED_UNIT)
    validate_bool("ema_params", "debias", debias)
    rule = _at_least_float32("ema_params", state_dtype)

    def init(params):
        ema = zeros_like(params, rule) if debias else copy_like(params, rule)
        weight = jnp.zeros((), hyper_dtype()) if debias else jnp.ones((), hyper_dtype())
        return EmaParamsState(ema, weight, block.init(params))

    def update(updates, state, params, count, extra_args):
        require_params("ema_params", updates, params)
        check_match(updates, state.ema, "ema_params", rule)
        out, inner_state = block.update(updates, state.inner_state, params, count, extra_args)
        d = resolve(decay, count, "decay")

        def one(h, e, p):
            return h.decay * e + (1 - h.decay) * p

        ema = stored(map_leaves(one, {"decay": d}, None, state.ema, _new_params(params, out)), state.ema)
        weight = d.astype(state.weight.dtype) * state.weight + (1 - d.astype(state.weight.dtype))
        return out, EmaParamsState(ema, weight if debias else state.weight, inner_state)

    return make_block(
        "ema_params",
        init,
        update,
        needs_step=block.needs_step or is_schedule(decay),
        per_leaf=block.per_leaf,
        extra_args=block.extra_args,
    )


# ----------------------------------------------------------------------------------------------------------
# stochastic weight averaging


def _swa_eval(node: Any, params: PyTree) -> PyTree:
    return jax.tree.map(lambda p, a: jnp.where(node.n_averaged > 0, a, p).astype(p.dtype), params, node.average)


@evaluates(_swa_eval)
@per_param("average")
class SwaState(NamedTuple):
    """`average`: the mean of the iterates averaged so far (at least float32); `n_averaged`: how many."""

    average: PyTree
    n_averaged: jax.Array
    inner_state: Any


@public
def swa(inner: GradientTransformation, start: int, every: int = 1, state_dtype: Any = None) -> GradientTransformation:
    r"""Stochastic weight averaging (Izmailov et al. 2018): the equal-weight mean of iterates, to evaluate.

    $$\bar\theta = \frac{1}{n}\sum_{k=0}^{n-1} \theta_{s + k e}, \qquad
    \bar\theta \leftarrow \bar\theta + \frac{\theta_t - \bar\theta}{n}\ \text{ at } t = s, s+e, s+2e, \dots$$

    where $\theta_t$ are the parameters after `inner`'s $t$-th update ($\theta_0$ the initial
    ones), $s$ `start` and $e$ `every`; `inner`'s updates pass through unchanged.
    `gradxform.eval_params(state, params)` returns $\bar\theta$ once an iterate has been
    averaged, the parameters before. This is torch's `AveragedModel` with its default
    (equal) average, `update_parameters` called after those steps.

    Args:
      inner: the optimizer whose iterates are averaged.
      start: $s$, the first update whose result is averaged, an int >= 0 (0: the initial parameters too).
      every: $e$, updates between averaged iterates, an int >= 1.
      state_dtype: the dtype the average is stored in (default: the parameter's, at least float32).
    """
    block = block_of(inner, "swa (inner)")
    validate_int("swa", "start", start, 0, what="the first update whose result is averaged")
    validate_int("swa", "every", every, 1, what="updates between averaged iterates")
    rule = _at_least_float32("swa", state_dtype)

    def init(params):
        n = jnp.asarray(1 if start == 0 else 0, jnp.int32)
        return SwaState(copy_like(params, rule), n, block.init(params))

    def update(updates, state, params, count, extra_args):
        require_params("swa", updates, params)
        check_match(updates, state.average, "swa", rule)
        out, inner_state = block.update(updates, state.inner_state, params, count, extra_args)
        t = safe_increment(count)  # this update's number
        member = (t >= start) & ((t - start) % every == 0)
        n = jnp.where(member, safe_increment(state.n_averaged), state.n_averaged)

        def one(h, a, p):
            mean = a + (p - a) / h.n
            return jnp.where(h.first, p, jnp.where(h.member, mean, a))

        values = {"n": n, "member": member, "first": member & (n == 1)}
        average = stored(map_leaves(one, values, None, state.average, _new_params(params, out)), state.average)
        return out, SwaState(average, n, inner_state)

    return make_block("swa", init, update, needs_step=True, per_leaf=block.per_leaf, extra_args=block.extra_args)


# ----------------------------------------------------------------------------------------------------------
# lookahead


def _lookahead_eval(node: Any, params: PyTree) -> PyTree:
    return jax.tree.map(lambda p, s: s.astype(p.dtype), params, node.slow)


@evaluates(_lookahead_eval)
@per_param("slow")
class LookaheadState(NamedTuple):
    """`slow`: the slow weights; `steps_since_sync`: fast steps since they were synchronized (optax's name);
    `inner_state`: the fast optimizer's state."""

    slow: PyTree
    steps_since_sync: jax.Array
    inner_state: Any


@public
def lookahead(
    inner: GradientTransformation,
    sync_period: int,
    slow_step_size: Hyperparameter,
    reset_state: bool = False,
) -> GradientTransformation:
    r"""Lookahead (Zhang et al. 2019, "k steps forward, 1 step back"): fast weights, and slow ones to evaluate.

    `inner` moves the fast weights $\theta$ (the parameters you hold); every $k$-th step the
    slow weights $\phi$ move toward them and the fast weights restart from there:

    $$\phi \leftarrow \phi + \alpha\,(\theta + \Delta\theta - \phi), \qquad \theta \leftarrow \phi$$

    so the update returned on that step is $\Delta\theta - (1-\alpha)(\theta + \Delta\theta - \phi)$,
    and $\Delta\theta$ on the others. `gradxform.eval_params(state, params)` returns $\phi$.
    Same trajectory as `optax.lookahead`, whose parameters are a pair
    (`LookaheadParams(fast, slow)`); here they are plain parameters and $\phi$ is in the state.

    Args:
      inner: the fast optimizer.
      sync_period: $k$, fast steps per synchronization, an int >= 1.
      slow_step_size: $\alpha \in [0, 1]$.
      reset_state: re-initialize `inner`'s state (its step count too) at each synchronization, from the
        fast weights before the step (as optax).
    """
    validate_int("lookahead", "sync_period", sync_period, 1, what="fast steps per synchronization")
    validate("lookahead", "slow_step_size", slow_step_size, CLOSED_UNIT)
    validate_bool("lookahead", "reset_state", reset_state)
    block = block_of(inner, "lookahead (inner)")
    if reset_state:
        block = own_step(block)  # its count restarts with its state

    def init(params):
        return LookaheadState(copy_like(params), zero_count(), block.init(params))

    def update(updates, state, params, count, extra_args):
        require_params("lookahead", updates, params)
        check_match(updates, state.slow, "lookahead")
        out, inner_state = block.update(updates, state.inner_state, params, count, extra_args)
        sync = state.steps_since_sync >= sync_period - 1
        alpha = resolve(slow_step_size, count, "slow_step_size")

        def one(h, u, p, s):
            diff = p + u - s
            return u - h.sync * (1 - h.alpha) * diff, s + h.sync * h.alpha * diff

        results = map_leaves(one, {"alpha": alpha, "sync": sync}, None, out, params, state.slow)
        slow = stored(field(out, results, 1), state.slow)
        if reset_state:
            fresh = block.init(params)
            inner_state = jax.tree.map(lambda a, b: jnp.where(sync, b, a), inner_state, fresh)
        steps = jnp.where(sync, zero_count(), safe_increment(state.steps_since_sync))
        return field(out, results, 0), LookaheadState(slow, steps, inner_state)

    needs_step = block.needs_step or is_schedule(slow_step_size)  # own_step: a reset inner needs none from here
    return make_block(
        "lookahead", init, update, needs_step=needs_step, per_leaf=block.per_leaf, extra_args=block.extra_args
    )
