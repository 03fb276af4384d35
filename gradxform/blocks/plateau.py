"""Reducing the step when the loss stops improving (Keras' and torch's `ReduceLROnPlateau`, optax's)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import map_leaves
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import CLOSED_UNIT, NONNEGATIVE, Range, validate, validate_int
from gradxform.hyper.values import is_schedule, resolve
from gradxform.numerics import hyper_dtype, safe_increment, zero_count

PyTree = Any
OPEN_UNIT = Range(0.0, 1.0, low_open=True, high_open=True)


class ReduceOnPlateauState(NamedTuple):
    """optax's fields: `scale` (the factor applied to the updates), `best_value` (the best averaged loss so far),
    `plateau_count` (windows without improvement), `cooldown_count` (windows left to wait after a reduction),
    `accumulation_count` (losses in the current window; optax's `count`) and `avg_value` (their mean)."""

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    accumulation_count: jax.Array
    avg_value: jax.Array


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
) -> GradientTransformation:
    r"""Scales the updates by $s$, reduced by `factor` when the loss stops improving.

    `update` reads the loss through `value=` (`gradxform.train_step` passes it). Losses
    are averaged over windows of `accumulation_size` updates; at the end of a window with
    mean $\bar f$:

    $$\text{improved} = \bar f < (1 - r)\,f_{\text{best}} - a, \qquad
    f_{\text{best}} \leftarrow \bar f \text{ if improved}$$

    and after `patience` windows in a row without improvement (counted outside the
    cooldown) $s \leftarrow \max(\varphi s, s_{\min})$, followed by `cooldown` windows in
    which nothing is counted. The output is $s\,u$: chain it after an optimizer,
    `chain(adam(lr), reduce_on_plateau())`, which scales the learning rate by $s$.
    Same scales as `optax.contrib.reduce_on_plateau` on the same losses; its state, in at
    least float32 (optax keeps $s$ in the parameters' lowest dtype).

    Args:
      factor: $\varphi \in (0, 1)$.
      patience: windows without improvement before a reduction, an int >= 1.
      rtol: $r \in [0, 1]$, the relative improvement that counts.
      atol: $a \ge 0$, the absolute improvement that counts (`rtol` and `atol` not both 0).
      cooldown: windows to wait after a reduction, an int >= 0.
      accumulation_size: losses averaged per window, an int >= 1 (1: the loss is a validation value;
        more for noisy minibatch losses).
      min_scale: $s_{\min} \ge 0$, below which $s$ is not reduced.
    """
    who = "reduce_on_plateau"
    for name, value in (("factor", factor), ("rtol", rtol), ("atol", atol), ("min_scale", min_scale)):
        if is_schedule(value):
            raise TypeError(f"{lead(who)}: {name} must be a number, not a schedule.")
    validate(who, "factor", factor, OPEN_UNIT)
    validate_int(who, "patience", patience, 1, what="windows without improvement before a reduction")
    validate(who, "rtol", rtol, CLOSED_UNIT)
    validate(who, "atol", atol, NONNEGATIVE)
    validate_int(who, "cooldown", cooldown, 0, what="windows to wait after a reduction")
    validate_int(who, "accumulation_size", accumulation_size, 1, what="losses averaged per window")
    validate(who, "min_scale", min_scale, NONNEGATIVE)
    if not isinstance(rtol, jax.core.Tracer) and not isinstance(atol, jax.core.Tracer):
        if float(rtol) == 0.0 and float(atol) == 0.0:
            raise ValueError(f"{lead(who)}: rtol and atol are both 0; at least one must be positive.")

    def init(params):
        dt = hyper_dtype()
        return ReduceOnPlateauState(
            scale=jnp.ones((), dt),
            best_value=jnp.full((), jnp.inf, dt),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            accumulation_count=zero_count(),
            avg_value=jnp.zeros((), dt),
        )

    def update(updates, state, params, count, extra_args):
        given = extra_args["value"]
        if jnp.shape(given) != ():
            raise ValueError(f"{lead(who)}: value must be a scalar (the loss), got shape {list(jnp.shape(given))}.")
        value = resolve(given, None, "value").astype(state.avg_value.dtype)
        f, r, a, lo = (
            resolve(x, None, n)
            for x, n in ((factor, "factor"), (rtol, "rtol"), (atol, "atol"), (min_scale, "min_scale"))
        )
        n = safe_increment(state.accumulation_count)
        avg = (state.accumulation_count.astype(value.dtype) * state.avg_value + value) / n.astype(value.dtype)
        full = n >= accumulation_size  # >=: a counter restored from a run with a larger size still closes

        def close(st):
            """The end of a window: compare its mean with the best, count the plateau, maybe reduce."""
            improved = st.avg_value < (1 - r.astype(avg.dtype)) * st.best_value - a.astype(avg.dtype)
            plateau = jnp.where(improved, zero_count(), safe_increment(st.plateau_count))
            cooling = st.cooldown_count > 0
            reduce = ~cooling & (plateau >= patience)
            reduced = jnp.where(reduce, st.scale * f.astype(st.scale.dtype), st.scale)
            return ReduceOnPlateauState(
                scale=jnp.where(cooling, st.scale, jnp.maximum(reduced, lo.astype(st.scale.dtype))),
                best_value=jnp.where(improved, st.avg_value, st.best_value),
                plateau_count=jnp.where(cooling | reduce, zero_count(), plateau),
                cooldown_count=jnp.where(
                    cooling, st.cooldown_count - 1, jnp.where(reduce, jnp.int32(cooldown), zero_count())
                ),
                accumulation_count=zero_count(),
                avg_value=jnp.zeros_like(st.avg_value),
            )

        # one conditional for the scalar bookkeeping (as optax): a single small kernel on most steps
        new = jax.lax.cond(full, close, lambda st: st, state._replace(accumulation_count=n, avg_value=avg))
        out = map_leaves(lambda h, u: h.scale * u, {"scale": new.scale}, None, updates)
        return out, new

    return make_block(who, init, update, extra_args=("value",))
