"""Dynamic loss scaling for float16 training: unscale the gradients, skip overflowing steps, adapt the scale."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.core import GradientTransformation, block_of, make_block, own_step, public
from gradxform.errors import lead
from gradxform.hyper import is_concrete, is_schedule
from gradxform.hyper.validate import POSITIVE, Range, check_rounding, validate, validate_int
from gradxform.numerics import INT32_MAX, compute_dtype, real_dtype, safe_increment, zero_count
from gradxform.wrappers.nonfinite import all_finite

PyTree = Any

GROWTH = Range(1.0, low_open=True)
BACKOFF = Range(0.0, 1.0, low_open=True, high_open=True)


class LossScaleState(NamedTuple):
    """`scale`: the loss scale the next gradients carry (float32, read with `gradxform.loss_scale_value`);
    `good_steps`: finite steps in a row since the scale last changed (int32); `skipped`: all steps skipped
    for a non-finite gradient (int32); `inner`: the inner optimizer's state, its own step count included."""

    scale: jax.Array
    good_steps: jax.Array
    skipped: jax.Array
    inner: Any


def _number(who: str, name: str, value: Any, rng: Range) -> Any:
    """A concrete value checked (in float32, the scale's dtype) and returned as a float; a traced one (a live
    hyperparameter of `inject_hyperparams`) as it is."""
    if is_schedule(value):
        raise TypeError(f"{lead(who)}: {name} must be a number, not a schedule (the scale has no step count).")
    validate(who, name, value, rng)
    if not is_concrete(value):
        return value
    check_rounding(who, name, value, rng, jnp.float32)  # the scale is float32 whatever the parameters are
    return float(np.asarray(value))


@public
def loss_scale(
    inner: GradientTransformation,
    initial_scale: float = 2.0**15,
    growth_interval: int = 2000,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    min_scale: float = 1.0,
) -> GradientTransformation:
    r"""Dynamic loss scaling: unscales the gradients, skips a step that overflowed, and adapts the scale.

    The loss is multiplied by the scale $S_t$ (`gradxform.loss_scale_value(state)`) before it is
    differentiated, so small float16 gradients do not flush to zero; `gradxform.train_step` and
    `gradxform.run` do this themselves when the optimizer holds a loss scale. The update unscales the
    gradients in (at least) float32 and hands them to `inner` if they are all finite:

    $$
    \begin{aligned}
    &\hat g_t = g_t / S_t, \qquad f_t = [\hat g_t \text{ all finite}], \\
    &u_t = f_t\,\mathrm{inner}(\hat g_t), \qquad
    S_{t+1} = \begin{cases}
      \gamma S_t & f_t,\ n_t + 1 = N,\ \gamma S_t \text{ finite} \\
      S_t & f_t,\ \text{otherwise} \\
      \max(\beta S_t, S_{\min}) & \text{not } f_t
    \end{cases}
    \end{aligned}
    $$

    where $n_t$ counts the finite steps in a row since the scale last changed (`good_steps`), reset to 0
    when the scale grows or backs off, $N$ is `growth_interval`, $\gamma$ `growth_factor` and $\beta$
    `backoff_factor`. On a **skipped** step the output is exact zeros (the parameters stay bitwise as they
    were) and `inner`'s state, its step count included, is unchanged: `inner` keeps its own count, so a
    bias correction or schedule sees only the steps taken. The scale is float32; it grows only while the
    grown value is finite in float32, which is its ceiling.

    This is the rule of `torch.amp.GradScaler` (its scale trajectory is tested equal, step for step) with a
    floor `min_scale` (`jmp.DynamicLossScale`'s `min_loss_scale`); Keras' `LossScaleOptimizer` fixes the
    factors at 2 and 1/2. Only the gradients are checked: a finite gradient that overflows a float16 moment
    of `inner` is not the loss scale's to fix (wrap `inner` in `gradxform.skip_nonfinite` for that). Every
    decision is a `jnp.where` on device: no host synchronisation, and it jits, vmaps and shards as its
    inner optimizer (the finiteness check reduces over every leaf).

    Args:
      inner: the optimizer the unscaled gradients go to.
      initial_scale: the first loss scale $S_0 > 0$.
      growth_interval: $N$, finite steps in a row after which the scale grows, a positive int.
      growth_factor: $\gamma > 1$, what the scale is multiplied by when it grows.
      backoff_factor: $\beta \in (0, 1)$, what the scale is multiplied by at a non-finite gradient.
      min_scale: $S_{\min}$, the floor of the scale, $0 < S_{\min} \le S_0$.
    """
    who = "loss_scale"
    block = own_step(block_of(inner, "loss_scale (inner)"))
    s0 = _number(who, "initial_scale", initial_scale, POSITIVE)
    if hasattr(growth_interval, "shape"):  # a live hyperparameter of inject_hyperparams, or an array
        raise TypeError(
            f"{lead(who)}: growth_interval must be a Python int, got an array; with inject_hyperparams, "
            "name it in static_args=('growth_interval',)."
        )
    validate_int(who, "growth_interval", growth_interval, 1, what="finite steps in a row before the scale grows")
    if growth_interval > INT32_MAX:
        raise ValueError(f"{lead(who)}: growth_interval={growth_interval!r} must be at most {INT32_MAX} (int32).")
    gamma = _number(who, "growth_factor", growth_factor, GROWTH)
    beta = _number(who, "backoff_factor", backoff_factor, BACKOFF)
    floor = _number(who, "min_scale", min_scale, POSITIVE)
    if isinstance(floor, float) and isinstance(s0, float) and floor > s0:
        raise ValueError(
            f"{lead(who)}: min_scale={min_scale!r} is above initial_scale={initial_scale!r}; "
            "the scale may not start below its floor."
        )

    def init(params):
        inner_state = block.init(params)
        if find_loss_scale(inner_state) is not None:
            raise ValueError(
                f"{lead(who)}: the inner optimizer already holds a loss scale; wrap the optimizer in loss_scale once."
            )
        return LossScaleState(jnp.asarray(s0, jnp.float32), zero_count(), zero_count(), inner_state)

    def unscale(g, scale):
        dt = compute_dtype(g.dtype)
        return g.astype(dt) * (1 / scale.astype(real_dtype(dt)))

    def update(updates, state, params, count, extra_args):
        if not isinstance(state, LossScaleState):
            raise TypeError(
                f"{lead(who)}: expected the state this optimizer's init made (a LossScaleState), "
                f"got {type(state).__name__}."
            )
        scale = state.scale
        unscaled = jax.tree.map(lambda g: unscale(g, scale), updates)
        finite = all_finite(unscaled)
        new_updates, new_inner = block.update(unscaled, state.inner, params, None, extra_args)
        out = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), new_updates)
        kept = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_inner, state.inner)
        good = safe_increment(state.good_steps)
        grows = finite & (good >= growth_interval)
        grown = scale * jnp.asarray(gamma, jnp.float32)
        backed_off = jnp.maximum(scale * jnp.asarray(beta, jnp.float32), jnp.asarray(floor, jnp.float32))
        new_scale = jnp.where(finite, jnp.where(grows & jnp.isfinite(grown), grown, scale), backed_off)
        new_state = LossScaleState(
            scale=new_scale,
            good_steps=jnp.where(finite & ~grows, good, zero_count()),
            skipped=jnp.where(finite, state.skipped, safe_increment(state.skipped)),
            inner=kept,
        )
        return out, new_state

    return make_block(who, init, update, per_leaf=block.per_leaf, extra_args=block.extra_args)


def _states(state: PyTree) -> list[LossScaleState]:
    def is_scale(x):
        return isinstance(x, LossScaleState)

    return [x for x in jax.tree.leaves(state, is_leaf=is_scale) if is_scale(x)]


def find_loss_scale(state: PyTree, who: str = "loss_scale_value") -> jax.Array | None:
    """The loss scale held anywhere in `state` (inside `chain`, `inject_hyperparams`, ...), or `None`."""
    found = _states(state)
    if len(found) > 1:
        raise ValueError(
            f"{lead(who)}: the state holds {len(found)} loss scales, but one loss is scaled by one scale; wrap "
            "the whole optimizer in loss_scale once."
        )
    return found[0].scale if found else None


def loss_scale_value(state: PyTree) -> jax.Array:
    """The loss scale to multiply the next loss by: the `scale` of the `gradxform.loss_scale` state in `state`.

    Args:
      state: an optimizer state holding one `LossScaleState`, at its root or anywhere inside (a `chain`'s,
        `inject_hyperparams`' or another wrapper's state).

    Returns:
      The float32 scalar scale.
    """
    scale = find_loss_scale(state)
    if scale is None:
        raise ValueError(
            f"{lead('loss_scale_value')}: this state ({type(state).__name__}) holds no loss scale; build the "
            "optimizer with gradxform.loss_scale(inner, ...) and pass its state."
        )
    return scale
