"""Learning-rate-free step sizes: estimates of the distance to a solution, and coin betting.

Each block reads whole-tree reductions (norms, inner products, sums) of the updates,
the parameters and the start point $x_0$, and keeps its estimates as scalars:

* `scale_by_dog`, `scale_by_dowg`: distance over gradients (Ivgi et al. 2023; Khaled et
  al. 2023), both from `max_distance_from_start`'s running maximum of $\\|x_t - x_0\\|$;
* `scale_by_prodigy`, `scale_by_dadapt_adam`: Adam whose step is a lower bound on the
  distance to the solution, raised by `d_estimate` (Mishchenko & Defazio 2023;
  Defazio & Mishchenko 2023);
* `scale_by_cocob`: coin betting, one bettor per parameter (Orabona & Tommasi 2017);
* `scale_by_mechanic`: a scale learned by betting on top of any optimizer (Cutkosky et al. 2023).

Scalars are kept in the parameters' compute dtype (float32, or float64 for float64
trees): a bfloat16 model keeps its estimates in float32. Per-parameter fields (the start
point, moments) are stored in the parameter's dtype and marked `per_param`.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform.blocks.base import field, map_leaves, require_params, stored
from gradxform.blocks.correction import debias
from gradxform.core.state import per_param
from gradxform.core.transform import GradientTransformation, block_of, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import (
    ANY,
    NONNEGATIVE,
    POSITIVE,
    UNIT,
    Range,
    check_rounding,
    validate,
    validate_bool,
    validate_int,
)
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.counts import safe_increment
from gradxform.numerics.dtypes import compute_dtype, dtype_of, hyper_dtype, real_dtype
from gradxform.numerics.tree_math import _placed_like, abs_sq, full_like

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
    """$\\sum_\\ell \\mathrm{Re}\\langle a_\\ell, b_\\ell \\rangle$ in `dtype`.

    A sum of products in each leaf's own shape, not `jnp.vdot`: flattening a sharded leaf would gather it.
    """
    parts = []
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        ct = compute_dtype(x.dtype, y.dtype)
        x, y = x.astype(ct), y.astype(ct)
        prod = jnp.real(jnp.conj(x) * y) if jnp.iscomplexobj(x) or jnp.iscomplexobj(y) else x * y
        parts.append(jnp.sum(prod).astype(dtype))
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

    $$
    \begin{aligned}
    &\bar r_t = \max(\bar r_{t-1}, \|x_t - x_0\|), \quad \bar r_0 = r_\epsilon, \quad G_t = G_{t-1} + \|g_t\|^2, \\
    &\text{output } \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\,g_t
    \end{aligned}
    $$

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

    $$
    \begin{aligned}
    &\bar r_t^2 = \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), \quad \bar r_0^2 = r_0^2, \\
    &v_t = v_{t-1} + \bar r_t^2\,\|g_t\|^2, \quad \text{output } \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\,g_t
    \end{aligned}
    $$

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


# ---------------------------------------------------------------------------------------------------------
# D-Adaptation and Prodigy: Adam whose step is a lower bound on the distance to a solution.


def d_estimate(previous: jax.Array, numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """$d_t = \\max(d_{t-1}, \\text{numerator} / \\text{denominator})$: the distance estimate never shrinks.

    The lower bound on $\\|x_0 - x_*\\|$ that D-Adaptation and Prodigy raise step by step. While the
    denominator (a sum of absolute values) is still zero, e.g. after zero gradients only, $d$ stays
    (optax divides and returns NaN).
    """
    safe = jnp.where(denominator > 0, denominator, 1)
    return jnp.where(denominator > 0, jnp.maximum(previous, numerator / safe), previous)


def adam_step_correction(b1: jax.Array, b2: jax.Array, t: jax.Array) -> jax.Array:
    """$\\sqrt{1 - \\beta_2^t} / (1 - \\beta_1^t)$: Adam's two bias corrections folded into the step."""
    return jnp.sqrt(debias(b2, t)) / debias(b1, t)


def leafwise(fn: Callable[..., tuple], n: int, *trees: PyTree) -> list[PyTree]:
    """`fn(*leaves) -> n results` per leaf, every input in the leaves' common compute dtype; one tree per result."""
    out = jax.tree.map(lambda *xs: fn(*(x.astype(compute_dtype(*(y.dtype for y in xs))) for x in xs)), *trees)
    return [field(trees[0], out, i) for i in range(n)]


@per_param("exp_avg", "exp_avg_sq", "grad_sum", "init_params")
class ProdigyState(NamedTuple):
    """`exp_avg`, `exp_avg_sq`: Adam's moments of $d\\,g$; `grad_sum`: $s_t$; `init_params`: $x_0$;
    `estim_lr`: $d_t$; `numerator_weighted`: $r_t$."""

    exp_avg: PyTree
    exp_avg_sq: PyTree
    grad_sum: PyTree
    init_params: PyTree
    estim_lr: jax.Array
    numerator_weighted: jax.Array


def scale_by_prodigy(
    learning_rate: Hyperparameter = 1.0,
    betas: tuple[Hyperparameter, Hyperparameter] = (0.9, 0.999),
    beta3: Hyperparameter | None = None,
    eps: Hyperparameter = 1e-8,
    estim_lr0: Hyperparameter = 1e-6,
    estim_lr_coef: Hyperparameter = 1.0,
    weight_decay: Hyperparameter = 0.0,
    safeguard_warmup: bool = False,
) -> GradientTransformation:
    r"""Prodigy's step (Mishchenko & Defazio 2023): Adam on $d_t g_t$, with $d_t$ raised by `d_estimate`.

    $$\begin{aligned}
    \hat\eta_t &= d_t\,\eta_t\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, &
    d_{t+1} &= \max\Big(d_t, \frac{c\,r_t}{\|s_t\|_1}\Big),\\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,d_t g_t, &
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,d_t^2 g_t^2,\\
    s_t &= \beta_3 s_{t-1} + \frac{d_t\,\hat\eta_t}{d_0}\,g_t, &
    r_t &= \beta_3 r_{t-1} + \frac{d_t\,\hat\eta_t}{d_0}\,\langle g_t, x_0 - x_t\rangle,\\
    \Delta x_t &= -\hat\eta_t\Big(\frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon} + \lambda x_t\Big)
    \end{aligned}$$

    With `safeguard_warmup`, $s_t$ accumulates $\frac{d_t^2}{d_0} g_t$ (no $\eta_t$, no bias correction).
    Products over the tree: $\langle\cdot,\cdot\rangle$ and $\|\cdot\|_1$ are whole-tree sums.

    Args:
      learning_rate: $\eta_t \ge 0$, a factor on the step (1.0: none); may be a schedule.
      betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
      beta3: $\beta_3 \in [0, 1)$, or `None` for $\sqrt{\beta_2}$.
      eps: $\epsilon \ge 0$, scaled by $d_{t+1}$.
      estim_lr0: $d_0 > 0$.
      estim_lr_coef: $c > 0$.
      weight_decay: $\lambda \ge 0$, decoupled, scaled by $\hat\eta_t$.
      safeguard_warmup: leave $\eta_t$ and the bias correction out of $s_t$.
    """
    name = "scale_by_prodigy"
    b1, b2 = _betas(name, betas)
    validate_bool(name, "safeguard_warmup", safeguard_warmup)
    hyper = {
        "learning_rate": (learning_rate, NONNEGATIVE),
        "b1": (b1, UNIT),
        "b2": (b2, UNIT),
        "eps": (eps, NONNEGATIVE),
        "estim_lr0": (estim_lr0, POSITIVE),
        "estim_lr_coef": (estim_lr_coef, POSITIVE),
        "weight_decay": (weight_decay, NONNEGATIVE),
    }
    if beta3 is not None:
        hyper["beta3"] = (beta3, UNIT)
    validated(name, hyper)
    if is_schedule(estim_lr0):
        raise TypeError(f"{lead(name)}: estim_lr0 is d's first value, set at init; it cannot be a schedule.")

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        zeros = functools.partial(full_like, params, 0)
        d0 = jnp.asarray(estim_lr0, hyper_dtype()).astype(dt)
        return ProdigyState(zeros(), zeros(), zeros(), start_point(params), d0, jnp.zeros([], dt))

    def update(updates, state, params, count, extra_args):
        _check_start(name, updates, params, state.init_params)
        for f in ("exp_avg", "exp_avg_sq", "grad_sum"):
            check_match(updates, getattr(state, f), name, lambda dt: dt)
        dt = state.estim_lr.dtype
        h = types.SimpleNamespace(**resolved(name, hyper, count, dt))
        b3 = h.beta3 if beta3 is not None else jnp.sqrt(h.b2)
        d = state.estim_lr
        dlr = d * h.learning_rate * adam_step_correction(h.b1, h.b2, safe_increment(count).astype(dt))
        weight = d if safeguard_warmup else dlr
        inner = tree_inner(updates, jax.tree.map(lambda a, b: a - b, state.init_params, params), dt)

        def moments(g, m, v, s):
            dg = d.astype(g.dtype) * g
            m = h.b1.astype(g.dtype) * m + (1 - h.b1.astype(g.dtype)) * dg
            v = h.b2.astype(g.dtype) * v + (1 - h.b2.astype(g.dtype)) * dg * dg
            s = b3.astype(g.dtype) * s + weight.astype(g.dtype) * dg / h.estim_lr0.astype(g.dtype)
            return m, v, s

        m, v, s = leafwise(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        r = b3 * state.numerator_weighted + (d / h.estim_lr0) * dlr * inner
        d_new = d_estimate(d, h.estim_lr_coef * r, tree_abs_sum(s, dt))

        def step(m, v, p):
            c = lambda x: x.astype(m.dtype)  # noqa: E731
            return -c(h.weight_decay) * c(dlr) * p - c(dlr) * m / (jnp.sqrt(v) + c(d_new) * c(h.eps))

        (out,) = leafwise(lambda m, v, p: (step(m, v, p),), 1, m, v, params)
        new = ProdigyState(
            stored(m, state.exp_avg),
            stored(v, state.exp_avg_sq),
            stored(s, state.grad_sum),
            state.init_params,
            d_new,
            r,
        )
        return out, new

    return make_block(name, init, update, needs_step=True, per_leaf=True)


def _betas(who: str, betas: Any) -> tuple[Any, Any]:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"{lead(who)}: betas must be a pair (b1, b2), got {betas!r}.")
    return betas[0], betas[1]


@per_param("exp_avg", "exp_avg_sq", "grad_sum")
class DAdaptAdamWState(NamedTuple):
    """`exp_avg`: $m_t$ (of $\\hat\\eta g$); `exp_avg_sq`: $v_t$; `grad_sum`: $s_t$; `estim_lr`: $d_t$;
    `numerator_weighted`: $r_t$."""

    exp_avg: PyTree
    exp_avg_sq: PyTree
    grad_sum: PyTree
    estim_lr: jax.Array
    numerator_weighted: jax.Array


def scale_by_dadapt_adam(
    learning_rate: Hyperparameter = 1.0,
    betas: tuple[Hyperparameter, Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    estim_lr0: Hyperparameter = 1e-6,
    weight_decay: Hyperparameter = 0.0,
) -> GradientTransformation:
    r"""D-Adaptation's Adam step (Defazio & Mishchenko 2023), its $d_t$ raised by `d_estimate`.

    $$\begin{aligned}
    \hat\eta_t &= d_t\,\eta_t\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t},\\
    d_{t+1} &= \max\Big(d_t, \frac{r_t}{(1-\sqrt{\beta_2})\|s_t\|_1}\Big),\\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,\hat\eta_t g_t,\\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2,\\
    s_t &= \sqrt{\beta_2}\,s_{t-1} + (1-\sqrt{\beta_2})\,\hat\eta_t g_t,\\
    \Delta x_t &= -\frac{m_t}{\sqrt{v_t}+\epsilon} - \lambda\,\hat\eta_t\,x_t,\\
    r_t &= \sqrt{\beta_2}\,r_{t-1} + (1-\sqrt{\beta_2})\,\hat\eta_t
      \Big\langle g_t, \frac{s_{t-1}}{\sqrt{v_{t-1}}+\epsilon}\Big\rangle
    \end{aligned}$$

    Args:
      learning_rate: $\eta_t \ge 0$, a factor on the step (1.0: none); may be a schedule.
      betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
      eps: $\epsilon \ge 0$.
      estim_lr0: $d_0 > 0$.
      weight_decay: $\lambda \ge 0$, decoupled, scaled by $\hat\eta_t$.
    """
    name = "scale_by_dadapt_adam"
    b1, b2 = _betas(name, betas)
    hyper = {
        "learning_rate": (learning_rate, NONNEGATIVE),
        "b1": (b1, UNIT),
        "b2": (b2, UNIT),
        "eps": (eps, NONNEGATIVE),
        "estim_lr0": (estim_lr0, POSITIVE),
        "weight_decay": (weight_decay, NONNEGATIVE),
    }
    validated(name, hyper)
    if is_schedule(estim_lr0):
        raise TypeError(f"{lead(name)}: estim_lr0 is d's first value, set at init; it cannot be a schedule.")

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        zeros = functools.partial(full_like, params, 0)
        d0 = jnp.asarray(estim_lr0, hyper_dtype()).astype(dt)
        return DAdaptAdamWState(zeros(), zeros(), zeros(), d0, jnp.zeros([], dt))

    def update(updates, state, params, count, extra_args):
        require_params(name, updates, params)
        for f in ("exp_avg", "exp_avg_sq", "grad_sum"):
            check_match(updates, getattr(state, f), name, lambda dt: dt)
        dt = state.estim_lr.dtype
        h = types.SimpleNamespace(**resolved(name, hyper, count, dt))
        sb2 = jnp.sqrt(h.b2)
        dlr = state.estim_lr * h.learning_rate * adam_step_correction(h.b1, h.b2, safe_increment(count).astype(dt))
        (weighted,) = leafwise(
            lambda s, v: (s / (jnp.sqrt(v) + h.eps.astype(s.dtype)),), 1, state.grad_sum, state.exp_avg_sq
        )
        inner = tree_inner(updates, weighted, dt)

        def moments(g, m, v, s):
            c = lambda x: x.astype(g.dtype)  # noqa: E731
            m = c(h.b1) * m + (1 - c(h.b1)) * c(dlr) * g
            v = c(h.b2) * v + (1 - c(h.b2)) * g * g
            s = c(sb2) * s + (1 - c(sb2)) * c(dlr) * g
            return m, v, s

        m, v, s = leafwise(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        r = sb2 * state.numerator_weighted + (1 - sb2) * dlr * inner
        d_new = d_estimate(state.estim_lr, r, (1 - sb2) * tree_abs_sum(s, dt))

        def step(m, v, p):
            c = lambda x: x.astype(m.dtype)  # noqa: E731
            return (-c(h.weight_decay) * c(dlr) * p - m / (jnp.sqrt(v) + c(h.eps)),)

        (out,) = leafwise(step, 1, m, v, params)
        new = DAdaptAdamWState(
            stored(m, state.exp_avg), stored(v, state.exp_avg_sq), stored(s, state.grad_sum), d_new, r
        )
        return out, new

    return make_block(name, init, update, needs_step=True, per_leaf=True)


# ---------------------------------------------------------------------------------------------------------
# Coin betting.


@per_param("init_params", "cumulative_gradients", "scale", "subgradients", "reward")
class COCOBState(NamedTuple):
    """Per parameter: `init_params` $x_0$, `cumulative_gradients` $C_t = -\\sum g$, `scale` $L_t$,
    `subgradients` $G_t = \\sum |g|$, `reward` $R_t$."""

    init_params: PyTree
    cumulative_gradients: PyTree
    scale: PyTree
    subgradients: PyTree
    reward: PyTree


def scale_by_cocob(alpha: Hyperparameter = 100.0, eps: Hyperparameter = 1e-8) -> GradientTransformation:
    r"""COCOB-Backprop (Orabona & Tommasi 2017): each parameter bets a fraction of its wealth on its gradients.

    $$\begin{aligned}
    L_t &= \max(L_{t-1}, |g_t|),\ L_0 = \epsilon, \\
    G_t &= G_{t-1} + |g_t|, \\
    R_t &= \max(R_{t-1} - g_t (x_t - x_0), 0), \\
    C_t &= C_{t-1} - g_t,\\
    x_{t+1} &= x_0 + \frac{C_t}{L_t \max(G_t + L_t, \alpha L_t)}\,(L_t + R_t), \\
    \text{output } & x_{t+1} - x_t
    \end{aligned}$$

    elementwise: $L$ is the largest gradient seen, $R$ the reward (wealth won), $C/(L\max(G+L,\alpha L))$ the
    fraction bet. The output is a parameter update already (no learning rate after it).

    Args:
      alpha: $\alpha > 0$, caps the bet while $G_t$ is small.
      eps: $\epsilon > 0$, the first $L$ (used once, at init).
    """
    name = "scale_by_cocob"
    if is_schedule(eps):
        raise TypeError(f"{lead(name)}: eps is the first scale L_0, set at init; it cannot be a schedule.")
    validate(name, "eps", eps, POSITIVE)
    hyper = {"alpha": (alpha, POSITIVE)}
    needs_step = validated(name, hyper)

    def init(params):
        check_inexact(params, name)
        zeros = functools.partial(full_like, params, 0)
        return COCOBState(start_point(params), zeros(), jax.tree.map(first_scale, params), zeros(), zeros())

    def first_scale(x):
        # L_0 = eps, or the storage dtype's smallest positive number where eps rounds to 0 (float16's 1e-8):
        # a zero L would make the bet of a zero gradient 0/0.
        dt = dtype_of(x)
        value = jnp.maximum(jnp.asarray(eps, hyper_dtype()).astype(dt), jnp.finfo(dt).smallest_subnormal)
        return full_like(x, value)  # born where the parameter lives (a sum with zeros would not be)

    def update(updates, state, params, count, extra_args):
        _check_start(name, updates, params, state.init_params)
        for f in COCOBState._fields[1:]:
            check_match(updates, getattr(state, f), name, lambda dt: dt)
        narrow = {real_dtype(compute_dtype(x.dtype)) for x in jax.tree.leaves(updates)}
        for dt in narrow - {hyper_dtype()}:
            check_rounding(name, "alpha", alpha, POSITIVE, dt)
        values = {"alpha": resolve(alpha, count, "alpha")}

        def fn(h, g, x0, c, L, G, R, p):
            L = jnp.maximum(L, jnp.abs(g))
            G = G + jnp.abs(g)
            R = jnp.maximum(R - g * (p - x0), 0)
            c = c - g
            return -p + (x0 + c / (L * jnp.maximum(G + L, h.alpha * L)) * (L + R)), c, L, G, R

        trees = [state.init_params, *(getattr(state, f) for f in COCOBState._fields[1:]), params]
        results = map_leaves(fn, values, None, updates, *trees)
        new = [stored(field(updates, results, i + 1), getattr(state, f)) for i, f in enumerate(COCOBState._fields[1:])]
        return field(updates, results, 0), COCOBState(state.init_params, *new)

    return make_block(name, init, update, needs_step=needs_step)


# ---------------------------------------------------------------------------------------------------------
# Mechanic: a learned scale on top of any optimizer.


@per_param("init_params")
class MechanicState(NamedTuple):
    """`base_optimizer_state`: the inner optimizer's; `r`, `m`, `v`, `s`: one bettor per $\\beta_i$ (vectors of
    `num_betas`); `init_params`: $x_0$."""

    base_optimizer_state: Any
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    init_params: PyTree


def scale_by_mechanic(
    base_optimizer: GradientTransformation,
    weight_decay: Hyperparameter = 1e-2,
    eps: Hyperparameter = 1e-8,
    s_init: Hyperparameter = 1e-6,
    num_betas: int = 6,
) -> GradientTransformation:
    r"""Mechanic (Cutkosky, Defazio & Mehta 2023): a scale $S_t = \sum_i s_{t,i}$ of the inner optimizer's
    steps, learned by coin betting with `num_betas` bettors.

    With $\Delta_t$ the sum of the inner optimizer's updates so far ($x_t = x_0 + S_{t-1}\Delta_t$):

    $$\begin{aligned}
    \tilde g_t &= g_t + \lambda\,S_{t-1}\frac{\|g_t\|}{\|x_t\| + \epsilon}\,x_t, &
    h_t &= \Big\langle \tilde g_t, \frac{x_0 - x_t}{S_{t-1} + \epsilon}\Big\rangle,\\
    m_{t,i} &= \max(\beta_i m_{t-1,i}, |h_t| + \epsilon), &
    v_{t,i} &= \beta_i^2 v_{t-1,i} + h_t^2,\\
    r_{t,i} &= \beta_i r_{t-1,i} + \mathrm{clip}(h_t, \pm m_{t-1,i})\,s_{t-1,i}, &
    s_{t,i} &= \frac{\frac{s_{init}}{n}\,m_{t,i} + \max(r_{t,i}, 0)}{\sqrt{v_{t,i}} + \epsilon},\\
    x_{t+1} &= x_0 - S_t\Big(\frac{x_0 - x_t}{S_{t-1} + \epsilon} - u_t\Big)
    \end{aligned}$$

    with $\beta_i = 1 - 10^{-i}$, $i = 1..n$, $u_t$ the inner optimizer's update and whole-tree norms and
    products. The output is $x_{t+1} - x_t$. optax.contrib's form; its state keeps $x_0$ from `init`
    (optax's from the first update), so `init` wants the real parameters.

    Args:
      base_optimizer: the inner optimizer (any gradxform or optax transform).
      weight_decay: $\lambda \ge 0$.
      eps: $\epsilon > 0$.
      s_init: $s_{init} > 0$, the first total scale $S_0$.
      num_betas: $n \ge 1$ bettors (static).
    """
    name = "scale_by_mechanic"
    inner = block_of(base_optimizer, "scale_by_mechanic (base_optimizer)")
    n = validate_int(name, "num_betas", num_betas, 1)
    hyper = {"weight_decay": (weight_decay, NONNEGATIVE), "eps": (eps, POSITIVE), "s_init": (s_init, POSITIVE)}
    needs_step = validated(name, hyper) or inner.needs_step
    if is_schedule(s_init):
        raise TypeError(f"{lead(name)}: s_init is the bettors' first scale, set at init; it cannot be a schedule.")

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        z = jnp.zeros([n], dt)
        s = jnp.ones([n], dt) * jnp.asarray(s_init, hyper_dtype()).astype(dt)
        return MechanicState(inner.init(params), z, jnp.zeros([n], dt), jnp.zeros([n], dt), s, start_point(params))

    def update(updates, state, params, count, extra_args):
        _check_start(name, updates, params, state.init_params)
        inner_u, inner_state = inner.update(updates, state.base_optimizer_state, params, count, extra_args)
        dt = state.s.dtype
        h = types.SimpleNamespace(**resolved(name, hyper, count, dt))
        s_sum = jnp.sum(state.s)
        g_norm = jnp.sqrt(tree_sq_norm(updates, dt))
        p_norm = jnp.sqrt(tree_sq_norm(params, dt))
        decay = h.weight_decay * s_sum * g_norm / (p_norm + h.eps)
        (delta_prev,) = leafwise(
            lambda x0, p: ((x0 - p) / (s_sum + h.eps).astype(p.dtype),), 1, state.init_params, params
        )
        (decayed,) = leafwise(lambda g, p: (g + decay.astype(g.dtype) * p,), 1, updates, params)
        hh = tree_inner(decayed, delta_prev, dt)
        betas = jnp.asarray([1.0 - 0.1**i for i in range(1, n + 1)], hyper_dtype()).astype(dt)  # constants
        clipped = jnp.clip(hh, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(hh) + h.eps)
        v = betas**2 * state.v + hh**2
        r = betas * state.r + clipped * state.s
        wealth = (h.s_init / n) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + h.eps)
        total = jnp.sum(s)

        def step(x0, d, u, p):
            return ((x0 - total.astype(p.dtype) * (d - u)) - p,)

        (out,) = leafwise(step, 1, state.init_params, delta_prev, inner_u, params)
        return out, MechanicState(inner_state, r, m, v, s, state.init_params)

    return make_block(name, init, update, needs_step=needs_step, per_leaf=True, extra_args=inner.extra_args)


# ---------------------------------------------------------------------------------------------------------
# MoMo: model-based momentum, a Polyak-type step from the loss value.


def momo_step(
    h: Any,
    barf: jax.Array,
    gamma: jax.Array,
    iprod: jax.Array,
    sq_norm: jax.Array,
    lb: jax.Array,
    adapt: bool,
    bc1: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """MoMo's truncated step $\\tau_t$ and the next lower bound (Schaipp et al. 2024), shared by `momo` and
    `momo_adam` (whose first moment is bias-corrected by `bc1`; 1 for `momo`).

    $$\\tau_t = \\min\\Big(\\frac{\\alpha}{\\rho},\\ \\frac{\\big((1+\\alpha\\lambda)
    (\\bar f_t - \\rho\\,f_* - \\gamma_t) + \\langle d_t, x_t\\rangle\\big)_+}{\\|d_t\\|^2}\\Big)$$

    with $\\rho$ = `bc1`, $f_*$ the lower bound (raised from the model's cap when `adapt`) and
    $\\|d_t\\|^2$ the (preconditioned) squared norm of the momentum; 0 where that norm is below float64's eps.
    """
    one = 1 + h.learning_rate * h.weight_decay
    if adapt:
        cap = one * (barf - gamma) + iprod
        lb = jnp.where(cap < one * bc1 * lb, jnp.maximum(cap / (2 * bc1 * one), h.lower_bound), lb)
    tiny = sq_norm <= jnp.finfo(float).eps
    t1 = jnp.maximum(one * (barf - bc1 * lb - gamma) + iprod, 0.0) / jnp.where(tiny, 1, sq_norm)
    tau = jnp.minimum(h.learning_rate / bc1, jnp.where(tiny, 0.0, t1))
    if adapt:
        lb = jnp.maximum(((barf + iprod - gamma) - (1 / 2) * tau * sq_norm) / bc1, h.lower_bound)
    return tau, lb


def _momo_hyper(learning_rate, weight_decay, lower_bound) -> dict:
    return {
        "learning_rate": (learning_rate, NONNEGATIVE),
        "weight_decay": (weight_decay, NONNEGATIVE),
        "lower_bound": (lower_bound, ANY),
    }


@per_param("exp_avg")
class MomoState(NamedTuple):
    """`exp_avg`: $d_t$, the momentum of the gradients; `barf`: $\\bar f_t$, of the losses; `gamma`: $\\gamma_t$,
    of $\\langle g_t, x_t\\rangle$; `lb`: the lower bound $f_*$."""

    exp_avg: PyTree
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array


def scale_by_momo(
    learning_rate: Hyperparameter = 1.0,
    beta: Hyperparameter = 0.9,
    lower_bound: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    r"""MoMo's step (Schaipp, Ohana, Eickenberg, Defazio & Gower 2024): SGD with momentum whose step is the
    Polyak-type `momo_step` from a model of the loss; reads the loss through `update(..., value=)`.

    $$\begin{aligned}
    \beta_t &= \beta\ (t > 1),\ 0\ (t = 1), \\
    d_t &= \beta_t d_{t-1} + (1-\beta_t)\,g_t, \\
    \bar f_t &= \beta_t \bar f_{t-1} + (1-\beta_t)\,f(x_t), \\
    \gamma_t &= \beta_t\gamma_{t-1} + (1-\beta_t)\langle g_t, x_t\rangle,\\
    \Delta x_t &= -\frac{\alpha\lambda}{1+\alpha\lambda}\,x_t - \tau_t\,d_t
    \end{aligned}$$

    Args:
      learning_rate: $\alpha \ge 0$, the largest step; may be a schedule.
      beta: $\beta \in [0, 1)$.
      lower_bound: $f_*$, a lower bound on the loss (used at init, and as a floor when adapting).
      weight_decay: $\lambda \ge 0$.
      adapt_lower_bound: raise $f_*$ from the model (for losses whose minimum is unknown).
    """
    name = "scale_by_momo"
    validate_bool(name, "adapt_lower_bound", adapt_lower_bound)
    if is_schedule(lower_bound):
        raise TypeError(f"{lead(name)}: lower_bound is the first f_*, set at init; it cannot be a schedule.")
    hyper = {**_momo_hyper(learning_rate, weight_decay, lower_bound), "beta": (beta, UNIT)}
    validated(name, hyper)

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        z = jnp.zeros([], dt)
        return MomoState(full_like(params, 0), z, jnp.zeros([], dt), jnp.asarray(lower_bound, hyper_dtype()).astype(dt))

    def update(updates, state, params, count, extra_args):
        require_params(name, updates, params)
        check_match(updates, state.exp_avg, name, lambda dt: dt)
        dt = state.barf.dtype
        h = types.SimpleNamespace(**resolved(name, hyper, count, dt))
        value = resolve(extra_args["value"], None, "value").astype(dt)
        bt = jnp.where(count == 0, jnp.zeros([], dt), h.beta)
        barf = bt * state.barf + (1 - bt) * value
        (exp_avg,) = leafwise(
            lambda m, g: (bt.astype(g.dtype) * m + (1 - bt.astype(g.dtype)) * g,), 1, state.exp_avg, updates
        )
        gamma = bt * state.gamma + (1 - bt) * tree_inner(updates, params, dt)
        sq_norm = tree_sq_norm(exp_avg, dt)
        iprod = tree_inner(exp_avg, params, dt)
        tau, lb = momo_step(h, barf, gamma, iprod, sq_norm, state.lb, adapt_lower_bound, jnp.ones([], dt))
        shrink = h.learning_rate * h.weight_decay / (1 + h.learning_rate * h.weight_decay)
        (out,) = leafwise(lambda m, p: (-shrink.astype(p.dtype) * p - tau.astype(p.dtype) * m,), 1, exp_avg, params)
        return out, MomoState(stored(exp_avg, state.exp_avg), barf, gamma, lb)

    return make_block(name, init, update, needs_step=True, per_leaf=True, extra_args=("value",))


@per_param("exp_avg", "exp_avg_sq")
class MomoAdamState(NamedTuple):
    """`exp_avg`, `exp_avg_sq`: Adam's moments; `barf`, `gamma`, `lb`: as `MomoState`'s."""

    exp_avg: PyTree
    exp_avg_sq: PyTree
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array


def scale_by_momo_adam(
    learning_rate: Hyperparameter = 1e-2,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    lower_bound: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    r"""MoMo-Adam's step (Schaipp et al. 2024): Adam's preconditioned momentum with `momo_step`'s step size.

    $$\begin{aligned}
    d_t &= \beta_1 d_{t-1} + (1-\beta_1)g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2)g_t^2, \\
    D_t &= \epsilon + \sqrt{v_t / (1-\beta_2^t)},\\
    \bar f_t &= \beta_1\bar f_{t-1} + (1-\beta_1) f(x_t), \\
    \gamma_t &= \beta_1\gamma_{t-1} + (1-\beta_1)\langle g_t, x_t\rangle, \\
    \Delta x_t &= -\frac{\alpha\lambda}{1+\alpha\lambda}\,x_t - \tau_t\,\frac{d_t}{D_t}
    \end{aligned}$$

    with $\|d_t\|^2_{D^{-1}} = \langle d_t, d_t / D_t\rangle$ and $\rho = 1 - \beta_1^t$ in `momo_step`.

    Args:
      learning_rate: $\alpha \ge 0$; may be a schedule.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$.
      lower_bound: $f_*$ (used at init, and as a floor when adapting).
      weight_decay: $\lambda \ge 0$.
      adapt_lower_bound: raise $f_*$ from the model.
    """
    name = "scale_by_momo_adam"
    validate_bool(name, "adapt_lower_bound", adapt_lower_bound)
    if is_schedule(lower_bound):
        raise TypeError(f"{lead(name)}: lower_bound is the first f_*, set at init; it cannot be a schedule.")
    hyper = {
        **_momo_hyper(learning_rate, weight_decay, lower_bound),
        "b1": (b1, UNIT),
        "b2": (b2, UNIT),
        "eps": (eps, NONNEGATIVE),
    }
    validated(name, hyper)

    def init(params):
        check_inexact(params, name)
        dt = estimate_dtype(params)
        lb = jnp.asarray(lower_bound, hyper_dtype()).astype(dt)
        return MomoAdamState(full_like(params, 0), full_like(params, 0), jnp.zeros([], dt), jnp.zeros([], dt), lb)

    def update(updates, state, params, count, extra_args):
        require_params(name, updates, params)
        check_match(updates, state.exp_avg, name, lambda dt: dt)
        check_match(updates, state.exp_avg_sq, name, lambda dt: dt)
        dt = state.barf.dtype
        h = types.SimpleNamespace(**resolved(name, hyper, count, dt))
        value = resolve(extra_args["value"], None, "value").astype(dt)
        t = safe_increment(count).astype(dt)
        bc1, bc2 = debias(h.b1, t), debias(h.b2, t)
        barf = h.b1 * state.barf + (1 - h.b1) * value

        def moments(m, v, g):
            c = lambda x: x.astype(g.dtype)  # noqa: E731
            m = c(h.b1) * m + (1 - c(h.b1)) * g
            v = c(h.b2) * v + (1 - c(h.b2)) * g * g
            return m, v, c(h.eps) + jnp.sqrt(v / c(bc2))

        exp_avg, exp_avg_sq, precond = leafwise(moments, 3, state.exp_avg, state.exp_avg_sq, updates)
        (weighted,) = leafwise(lambda m, d: (m / d,), 1, exp_avg, precond)
        sq_norm = tree_inner(exp_avg, weighted, dt)
        gamma = h.b1 * state.gamma + (1 - h.b1) * tree_inner(updates, params, dt)
        iprod = tree_inner(exp_avg, params, dt)
        tau, lb = momo_step(h, barf, gamma, iprod, sq_norm, state.lb, adapt_lower_bound, bc1)
        shrink = h.learning_rate * h.weight_decay / (1 + h.learning_rate * h.weight_decay)
        (out,) = leafwise(lambda w, p: (-shrink.astype(p.dtype) * p - tau.astype(p.dtype) * w,), 1, weighted, params)
        new = MomoAdamState(stored(exp_avg, state.exp_avg), stored(exp_avg_sq, state.exp_avg_sq), barf, gamma, lb)
        return out, new

    return make_block(name, init, update, needs_step=True, per_leaf=True, extra_args=("value",))
