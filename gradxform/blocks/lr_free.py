"""Learning-rate-free step sizes: estimates of the distance to a solution, and coin betting.

Each block reads whole-tree reductions (norms, inner products, sums) of the updates,
the parameters and the start point $x_0$, and keeps its estimates as scalars:

* `scale_by_dog`, `scale_by_dowg`: distance over gradients (Ivgi et al. 2023; Khaled et
  al. 2023), both from `max_distance_from_start`'s running maximum of $\\|x_t - x_0\\|$;
* `scale_by_prodigy`, `scale_by_dadapt_adam`: Adam whose step is a lower bound on the
  distance to the solution, raised by `d_estimate` (Mishchenko & Defazio 2023;
  Defazio & Mishchenko 2023);
* `scale_by_cocob`: coin betting, one bettor per parameter (Orabona & Tommasi 2017);
* `mechanize`: a scale learned by betting on top of any optimizer (Cutkosky et al. 2023).

Scalars are kept in the parameters' compute dtype (float32, or float64 for float64
trees): a bfloat16 model keeps its estimates in float32. Per-parameter fields (the start
point, moments) are stored in the parameter's dtype and marked `per_param`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import require_params
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import Range, check_rounding, validate
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.dtypes import compute_dtype, dtype_of, hyper_dtype, real_dtype
from gradxform.numerics.tree_math import _placed_like, abs_sq

PyTree = Any


# ---------------------------------------------------------------------------------------------------------
# Shared pieces: the start point, the dtype of scalar estimates, whole-tree reductions, hyperparameters.


def start_point(params: PyTree) -> PyTree:
    """A copy of the parameters, $x_0$, each leaf a buffer of its own (state can be donated with the params).

    Abstract leaves (`jax.ShapeDtypeStruct`) give zeros in their shape and sharding: the
    start point is only known from real parameters (as optax's, these optimizers' `init`
    wants them).
    """

    def one(x):
        if isinstance(x, jax.ShapeDtypeStruct):
            return _placed_like(x, 0, x.dtype)
        return jnp.copy(x)

    return jax.tree.map(one, params)


def estimate_dtype(tree: PyTree) -> jnp.dtype:
    """The dtype scalar estimates are kept in: the real compute dtype of the leaves (float32 at least)."""
    return real_dtype(compute_dtype(*(dtype_of(x) for x in jax.tree.leaves(tree))))


def tree_sq_norm(tree: PyTree, dtype: Any) -> jax.Array:
    """$\\sum_\\ell \\sum_i |u_{\\ell,i}|^2$ in `dtype` (each leaf in its compute dtype, optax's order)."""
    parts = [jnp.sum(abs_sq(u.astype(compute_dtype(u.dtype)))).astype(dtype) for u in jax.tree.leaves(tree)]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], dtype)


def tree_sq_distance(a: PyTree, b: PyTree, dtype: Any) -> jax.Array:
    """$\\|a - b\\|^2$ over the whole tree, in `dtype`."""
    parts = [
        jnp.sum(abs_sq(x.astype(compute_dtype(x.dtype, y.dtype)) - y.astype(compute_dtype(x.dtype, y.dtype))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ]
    parts = [p.astype(dtype) for p in parts]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], dtype)


def tree_inner(a: PyTree, b: PyTree, dtype: Any) -> jax.Array:
    """$\\sum_\\ell \\mathrm{Re}\\langle a_\\ell, b_\\ell \\rangle$ in `dtype`."""
    parts = []
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        ct = compute_dtype(x.dtype, y.dtype)
        parts.append(jnp.real(jnp.vdot(x.astype(ct), y.astype(ct))).astype(dtype))
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], dtype)


def tree_abs_sum(tree: PyTree, dtype: Any) -> jax.Array:
    """$\\sum_\\ell \\sum_i |u_{\\ell,i}|$ in `dtype`."""
    parts = [jnp.sum(jnp.abs(u.astype(compute_dtype(u.dtype)))).astype(dtype) for u in jax.tree.leaves(tree)]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros([], dtype)


def resolved(
    who: str, hyper: Mapping[str, tuple[Hyperparameter, Range]], count: jax.Array | None, dtype: Any
) -> dict[str, jax.Array]:
    """Each hyperparameter at this step, checked as it is used (rounded to `dtype`) and cast to it."""
    out = {}
    for k, (v, rng) in hyper.items():
        if jnp.dtype(dtype) != hyper_dtype():
            check_rounding(who, k, v, rng, dtype)
        out[k] = resolve(v, count, k).astype(dtype)
    return out


def validated(who: str, hyper: Mapping[str, tuple[Hyperparameter, Range]]) -> bool:
    """Validates every hyperparameter; whether one of them is a schedule (the block then reads the count)."""
    for k, (v, rng) in hyper.items():
        validate(who, k, v, rng)
    return any(is_schedule(v) for v, _ in hyper.values())


def _scaled(updates: PyTree, factor: jax.Array) -> PyTree:
    """`factor * u` per leaf, in the leaf's compute dtype."""
    return jax.tree.map(
        lambda u: u.astype(compute_dtype(u.dtype)) * factor.astype(real_dtype(compute_dtype(u.dtype))), updates
    )


def _check_start(who: str, updates: PyTree, params: PyTree, start: PyTree) -> None:
    require_params(who, updates, params)
    check_match(updates, start, who, lambda dt: dt)


# ---------------------------------------------------------------------------------------------------------
# Distance over gradients.


def max_distance_from_start(previous: jax.Array, params: PyTree, start: PyTree, squared: bool = False) -> jax.Array:
    """$\\bar r_t = \\max(\\bar r_{t-1}, \\|x_t - x_0\\|)$ (or its square, with `squared`), in `previous`' dtype.

    The estimate of the distance to a solution that DoG and DoWG share: the farthest
    the iterates have gone from where they started.
    """
    sq = tree_sq_distance(start, params, previous.dtype)
    return jnp.maximum(previous, sq if squared else jnp.sqrt(sq))


@per_param("init_params")
class DoGState(NamedTuple):
    """`init_params`: $x_0$; `max_dist`: $\\bar r_t$; `sum_sq_norm_grads`: $G_t$; `is_init_step`: before the
    first update (only with `init_step=("learning_rate", eta0)`, else `None`)."""

    init_params: PyTree
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array
    is_init_step: jax.Array | None


INIT_STEPS = ("distance", "learning_rate", "heuristic")


def check_init_step(who: str, init_step: Any) -> tuple[str, Any]:
    """`(tag, value)` with a tag of `INIT_STEPS` and a non-negative value (not a schedule: it is used once)."""
    if not (isinstance(init_step, (tuple, list)) and len(init_step) == 2 and isinstance(init_step[0], str)):
        raise TypeError(
            f"{lead(who)}: init_step must be a pair (tag, value) with tag one of {', '.join(INIT_STEPS)}; "
            f"got {init_step!r}."
        )
    tag, value = init_step
    if tag not in INIT_STEPS:
        raise ValueError(f"{lead(who)}: init_step's tag {tag!r} is not one of {', '.join(INIT_STEPS)}.")
    if is_schedule(value):
        raise TypeError(f"{lead(who)}: init_step's value is used once; it cannot be a schedule.")
    validate(who, f"init_step[1] ({tag})", value, Range(0.0, low_open=True))
    return tag, value


def scale_by_dog(
    init_step: tuple[str, Any] = ("heuristic", 1e-6), eps: Hyperparameter = 1e-8
) -> GradientTransformation:
    r"""Distance over Gradients (Ivgi et al. 2023): the step size $\bar r_t / \sqrt{G_t + \epsilon}$.

    $$\bar r_t = \max(\bar r_{t-1}, \|x_t - x_0\|),\quad \bar r_0 = r_\epsilon, \qquad
    G_t = G_{t-1} + \|g_t\|^2, \qquad \text{output } \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\,g_t$$

    Norms are over the whole tree. `init_step` sets the first step: `("distance", r)`
    gives $r_\epsilon = r$; `("heuristic", \alpha)` gives $r_\epsilon = \alpha(1 + \|x_0\|)$;
    `("learning_rate", \eta_0)` gives $r_\epsilon = 0$ and a first step size of $\eta_0$.
    `update` needs the parameters; `init` needs the real ones (it keeps $x_0$).

    Args:
      init_step: `(tag, value)` as above, value $> 0$.
      eps: $\epsilon > 0$, added to $G_t$.
    """
    name = "scale_by_dog"
    tag, value = check_init_step(name, init_step)
    hyper = {"eps": (eps, Range(0.0, low_open=True))}
    needs_step = validated(name, hyper)

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        x0 = start_point(params)
        if tag == "distance":
            r0 = jnp.asarray(value, hyper_dtype()).astype(dt)
        elif tag == "heuristic":
            r0 = jnp.asarray(value, hyper_dtype()).astype(dt) * (1 + jnp.sqrt(tree_sq_norm(x0, dt)))
        else:
            r0 = jnp.zeros([], dt)
        first = jnp.asarray(True) if tag == "learning_rate" else None
        return DoGState(x0, r0, jnp.zeros([], dt), first)

    def update(updates, state, params, count, extra_args):
        _check_start(name, updates, params, state.init_params)
        dt = state.max_dist.dtype
        h = resolved(name, hyper, count, dt)
        max_dist = max_distance_from_start(state.max_dist, params, state.init_params)
        sum_sq = state.sum_sq_norm_grads + tree_sq_norm(updates, dt)
        step = max_dist / jnp.sqrt(sum_sq + h["eps"])
        first = state.is_init_step
        if first is not None:
            step = jnp.where(first, jnp.asarray(value, hyper_dtype()).astype(dt), step)
            first = jnp.zeros_like(first)
        return _scaled(updates, step), DoGState(state.init_params, max_dist, sum_sq, first)

    return make_block(name, init, update, needs_step=needs_step, per_leaf=True)


@per_param("init_params")
class DoWGState(NamedTuple):
    """`init_params`: $x_0$; `estim_sq_dist`: $\\bar r_t^2$; `weighted_sq_norm_grads`: $v_t$."""

    init_params: PyTree
    estim_sq_dist: jax.Array
    weighted_sq_norm_grads: jax.Array


def scale_by_dowg(
    init_estim_sq_dist: Hyperparameter | None = None, eps: Hyperparameter = 1e-4
) -> GradientTransformation:
    r"""Distance over Weighted Gradients (Khaled et al. 2023): $\bar r_t^2 / (\sqrt{v_t} + \epsilon)$.

    $$\bar r_t^2 = \max(\bar r_{t-1}^2, \|x_t - x_0\|^2),\quad \bar r_0^2 = r_0^2, \qquad
    v_t = v_{t-1} + \bar r_t^2\,\|g_t\|^2, \qquad
    \text{output } \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\,g_t$$

    Norms are over the whole tree. `update` needs the parameters; `init` needs the real ones.

    Args:
      init_estim_sq_dist: $r_0^2 > 0$, the first guess of the squared distance to a solution
        (`None`: $\epsilon$, as optax). Used once, at init.
      eps: $\epsilon > 0$.
    """
    name = "scale_by_dowg"
    if is_schedule(init_estim_sq_dist):
        raise TypeError(f"{lead(name)}: init_estim_sq_dist is used once, at init; it cannot be a schedule.")
    validate(name, "init_estim_sq_dist", init_estim_sq_dist, Range(0.0, low_open=True), allow_none=True)
    if is_schedule(eps) and init_estim_sq_dist is None:
        raise TypeError(f"{lead(name)}: eps is also the first squared distance here; it cannot be a schedule.")
    hyper = {"eps": (eps, Range(0.0, low_open=True))}
    needs_step = validated(name, hyper)
    r0 = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        return DoWGState(start_point(params), jnp.asarray(r0, hyper_dtype()).astype(dt), jnp.zeros([], dt))

    def update(updates, state, params, count, extra_args):
        _check_start(name, updates, params, state.init_params)
        dt = state.estim_sq_dist.dtype
        h = resolved(name, hyper, count, dt)
        sq_dist = max_distance_from_start(state.estim_sq_dist, params, state.init_params, squared=True)
        weighted = state.weighted_sq_norm_grads + sq_dist * tree_sq_norm(updates, dt)
        step = sq_dist / (jnp.sqrt(weighted) + h["eps"])
        return _scaled(updates, step), DoWGState(state.init_params, sq_dist, weighted)

    return make_block(name, init, update, needs_step=needs_step, per_leaf=True)
