"""torch.optim's optimizers with torch's argument names, defaults and numerics.

Each constructor returns a `gradxform.GradientTransformation` built as a
chain of gradxform blocks, whose trajectory matches `torch.optim`'s (tested
to 1e-6 in float64 over 500 steps against torch itself). There is no
`params` argument: call `tx.init(params)` as with every gradxform
optimizer. torch's implementation selectors (`foreach`, `fused`,
`capturable`, `differentiable`) have no meaning here and are not accepted.

The torch-specific numerics, and where they differ from `gradxform.adam` and
friends (see `docs/torch.md`):

* `weight_decay` is L2 added to the gradient (coupled) everywhere except
  `AdamW` (and `decoupled_weight_decay=True`), where the parameters are
  shrunk by $1 - \\eta\\lambda$ before the step;
* SGD's momentum buffer starts at the first gradient, undampened;
* RMSprop and Adagrad put eps outside the square root; Adadelta inside;
* AMSGrad takes the maximum of the raw second moments, then bias-corrects;
* NAdam uses the momentum-decay schedule $\\mu_t = \\beta_1(1 - 0.5 \\cdot 0.96^{t\\psi})$;
* the momentum of RMSprop is applied *before* the learning rate (it
  accumulates $g/(\\sqrt{v}+\\epsilon)$), as torch does;
* Muon takes only 2-d parameters, keeps an unbiased `lerp` buffer and runs
  its Newton-Schulz iteration in bfloat16.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.blocks import (
    add_decayed_weights,
    add_eps,
    bias_correction,
    ema,
    ema_sq,
    ema_var,
    infinity_moment,
    nesterov_ema,
    ratio,
    rectification,
    running_max,
    scale,
    scale_by_adadelta,
    scale_by_learning_rate,
    scale_by_rprop,
    sqrt,
    sum_sq,
    trace,
)
from gradxform.blocks.base import elementwise
from gradxform.blocks.orthogonal import MuonDimensionNumbers, scale_by_shape
from gradxform.core import (
    EmptyState,
    GradientTransformation,
    as_transform,
    block_of,
    chain,
    identity,
    make_block,
    per_param,
    public,
)
from gradxform.errors import lead
from gradxform.hyper import Hyperparameter, Range, is_concrete, is_zero, resolve, validate, validate_bool
from gradxform.hyper.validate import validate_int
from gradxform.numerics import path_str
from gradxform.numerics.dtypes import compute_dtype
from gradxform.optimizers.sign import check_rprop

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "NAdam",
    "ASGD",
    "Muon",
    "RAdam",
    "Adamax",
    "Rprop",
]


def _nonzero(value: Hyperparameter) -> bool:
    """True only for a concrete non-zero number (a live or traced value is not known to be non-zero)."""
    return not callable(value) and is_concrete(value) and float(np.asarray(value)) != 0.0


def _front(who: str, weight_decay: Hyperparameter, maximize: bool) -> tuple[GradientTransformation, ...]:
    """torch's first two lines: `g <- -g` if maximizing, then coupled L2 `g <- g + wd * p`."""
    validate(who, "weight_decay", weight_decay, 0.0)
    out = (scale(-1.0),) if maximize else ()
    if not is_zero(weight_decay):
        out += (add_decayed_weights(weight_decay),)
    return out


def _betas(who: str, betas: Sequence[Hyperparameter]) -> tuple[Hyperparameter, Hyperparameter]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}.")
    b1, b2 = betas
    validate(who, "betas[0]", b1, 0.0, 1.0, high_open=True)
    validate(who, "betas[1]", b2, 0.0, 1.0, high_open=True)
    return b1, b2


def _lr(who: str, lr: Hyperparameter) -> Hyperparameter:
    return validate(who, "lr", lr, 0.0)


@public
def SGD(
    lr: Hyperparameter = 1e-3,
    momentum: Hyperparameter = 0.0,
    dampening: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.SGD`.

    $$
    \begin{aligned}
    &g \leftarrow g + \lambda\theta, \\
    &b_1 = g_1,\; b_t = \mu b_{t-1} + (1-\tau) g_t, \\
    &\Delta\theta = -\eta\,(b_t \text{ or, Nesterov, } g_t + \mu b_t)
    \end{aligned}
    $$

    Chain: `[add_decayed_weights(weight_decay)]`, `[trace(momentum, nesterov,
    dampening=dampening)]` (when `momentum != 0`), `scale_by_learning_rate(lr)`.
    The first step is not dampened, as in torch.

    Args:
      lr: $\eta$, torch's default `1e-3`.
      momentum: $\mu$; `0` means no momentum buffer.
      dampening: $\tau$, applied from the second step on.
      weight_decay: $\lambda$, coupled L2 (added to the gradient).
      nesterov: use $g_t + \mu b_t$.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "SGD"
    _lr(who, lr)
    validate(who, "momentum", momentum, 0.0, 1.0, high_open=True)
    validate(who, "dampening", dampening, 0.0, 1.0)
    if nesterov and (is_zero(momentum) or _nonzero(dampening)):
        raise ValueError(
            f"SGD: nesterov=True needs momentum > 0 and dampening == 0 (got momentum={momentum!r}, "
            f"dampening={dampening!r}), as in torch.optim.SGD."
        )
    use_momentum = not is_zero(momentum)
    return chain(
        *_front(who, weight_decay, maximize),
        trace(momentum, nesterov, dampening=dampening) if use_momentum else identity(),
        scale_by_learning_rate(lr),
    )


def _adam(
    who: str,
    lr: Hyperparameter,
    betas: Sequence[Hyperparameter],
    eps: Hyperparameter,
    weight_decay: Hyperparameter,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> GradientTransformation:
    _lr(who, lr)
    b1, b2 = _betas(who, betas)
    validate(who, "eps", eps, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    numerator = chain(ema(b1), bias_correction(b1))
    # torch: max over the RAW second moment, then divide its root by sqrt(1 - b2^t), then add eps.
    denominator = chain(ema_sq(b2), running_max() if amsgrad else identity(), bias_correction(b2), sqrt(), add_eps(eps))
    return chain(
        *_front(who, 0.0 if decoupled else weight_decay, maximize),
        ratio(numerator, denominator),
        add_decayed_weights(weight_decay) if decoupled else identity(),
        scale_by_learning_rate(lr),
    )


@public
def Adam(
    lr: Hyperparameter = 1e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adam`: weight decay is coupled L2 unless `decoupled_weight_decay`.

    $$
    \begin{aligned}
    &g \leftarrow g + \lambda\theta, \\
    &m_t = \beta_1 m_{t-1} + (1-\beta_1) g, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2, \\
    &\bar v_t = \max(\bar v_{t-1}, v_t) \text{ (amsgrad, raw moments)}, \\
    &\Delta\theta = -\eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{\bar v_t/(1-\beta_2^t)} + \epsilon}
    \end{aligned}
    $$

    Chain: `[add_decayed_weights]`, `ratio(chain(ema(b1), bias_correction(b1)),
    chain(ema_sq(b2), [running_max()], bias_correction(b2), sqrt(), add_eps(eps)))`,
    `scale_by_learning_rate(lr)`.

    Args:
      lr: $\eta$.
      betas: $(\beta_1, \beta_2)$.
      eps: $\epsilon$, outside the root.
      weight_decay: $\lambda$ (coupled L2 unless `decoupled_weight_decay`).
      amsgrad: keep the running maximum of the raw second moment.
      maximize: ascend instead of descend.
      decoupled_weight_decay: AdamW's decay, $-\eta\lambda\theta$.

    Returns:
      A `GradientTransformation`.
    """
    return _adam("Adam", lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)


@public
def AdamW(
    lr: Hyperparameter = 1e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.AdamW`: decoupled decay, default `weight_decay=0.01`.

    $$\theta \leftarrow \theta(1 - \eta\lambda) - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}$$

    Chain: Adam's ratio, `add_decayed_weights(weight_decay)`, `scale_by_learning_rate(lr)`
    (that is $-\eta(\text{ratio} + \lambda\theta)$, the same step).

    Args:
      lr: $\eta$.
      betas: $(\beta_1, \beta_2)$.
      eps: $\epsilon$, outside the root.
      weight_decay: $\lambda$, decoupled (torch's default `1e-2`).
      amsgrad: keep the running maximum of the raw second moment.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    return _adam("AdamW", lr, betas, eps, weight_decay, amsgrad, maximize, True)


@public
def RMSprop(
    lr: Hyperparameter = 1e-2,
    alpha: Hyperparameter = 0.99,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    momentum: Hyperparameter = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.RMSprop`: eps outside the root, momentum over $g/\text{avg}$.

    $$
    \begin{aligned}
    &v_t = \alpha v_{t-1} + (1-\alpha) g^2, \\
    &a_t = \sqrt{v_t - \bar g_t^2 \text{ (centered) or } v_t} + \epsilon, \\
    &b_t = \mu b_{t-1} + g/a_t, \quad \Delta\theta = -\eta\,b_t
    \end{aligned}
    $$

    Chain: `[add_decayed_weights]`, `ratio(None, chain(ema_sq(alpha) | ema_var(alpha),
    sqrt(), add_eps(eps)))`, `[trace(momentum)]`, `scale_by_learning_rate(lr)`.

    Args:
      lr: $\eta$.
      alpha: $\alpha$, the decay of the squared-gradient average.
      eps: $\epsilon$, outside the root.
      weight_decay: $\lambda$, coupled L2.
      momentum: $\mu$ of the buffer over $g/a_t$; `0` means none.
      centered: divide by the root of the variance instead.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "RMSprop"
    _lr(who, lr)
    validate(who, "alpha", alpha, 0.0, 1.0, high_open=True)
    validate(who, "eps", eps, 0.0)
    validate(who, "momentum", momentum, 0.0, 1.0, high_open=True)
    stat = ema_var(alpha) if centered else ema_sq(alpha)
    use_momentum = not is_zero(momentum)
    return chain(
        *_front(who, weight_decay, maximize),
        ratio(None, chain(stat, sqrt(), add_eps(eps))),
        trace(momentum) if use_momentum else identity(),
        scale_by_learning_rate(lr),
    )


@public
def Adagrad(
    lr: Hyperparameter = 1e-2,
    lr_decay: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: Hyperparameter = 1e-10,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adagrad`: eps outside the root, learning rate decayed as $\eta/(1+(t-1)\delta)$.

    $$
    s_t = s_{t-1} + g^2, \; s_0 = \text{initial_accumulator_value}, \quad
    \Delta\theta = -\frac{\eta}{1 + (t-1)\,\delta}\,\frac{g}{\sqrt{s_t} + \epsilon}
    $$

    Chain: `[add_decayed_weights]`, `ratio(None, chain(sum_sq(initial_accumulator_value),
    sqrt(), add_eps(eps)))`, `scale_by_learning_rate(count -> lr / (1 + count * lr_decay))`
    (the schedule sees the count before the step, $t-1$).

    Args:
      lr: $\eta$.
      lr_decay: $\delta$.
      weight_decay: $\lambda$, coupled L2.
      initial_accumulator_value: $s_0$.
      eps: $\epsilon$, outside the root.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "Adagrad"
    _lr(who, lr)
    validate(who, "lr_decay", lr_decay, 0.0)
    validate(who, "initial_accumulator_value", initial_accumulator_value, 0.0)
    validate(who, "eps", eps, 0.0)
    rate = lr
    if not is_zero(lr_decay):

        def rate(count):
            return resolve(lr, count, "lr") / (1 + count * resolve(lr_decay, count, "lr_decay"))

    return chain(
        *_front(who, weight_decay, maximize),
        ratio(None, chain(sum_sq(initial_accumulator_value), sqrt(), add_eps(eps))),
        scale_by_learning_rate(rate),
    )


@public
def Adadelta(
    lr: Hyperparameter = 1.0,
    rho: Hyperparameter = 0.9,
    eps: Hyperparameter = 1e-6,
    weight_decay: Hyperparameter = 0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adadelta` (eps inside both roots, as Zeiler and torch).

    $$
    \begin{aligned}
    v_t &= \rho v_{t-1} + (1-\rho) g^2, \\
    \Delta_t &= \frac{\sqrt{w_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}\,g, \\
    w_t &= \rho w_{t-1} + (1-\rho)\Delta_t^2, \quad \Delta\theta = -\eta\Delta_t
    \end{aligned}
    $$

    Chain: `[add_decayed_weights]`, `scale_by_adadelta(rho, eps)` (the same block as
    `gradxform.adadelta`), `scale_by_learning_rate(lr)`.

    Args:
      lr: $\eta$ (torch's default `1.0`).
      rho: $\rho$.
      eps: $\epsilon$, inside both roots.
      weight_decay: $\lambda$, coupled L2.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "Adadelta"
    _lr(who, lr)
    validate(who, "rho", rho, 0.0, 1.0, high_open=True)
    validate(who, "eps", eps, 0.0)
    return chain(
        *_front(who, weight_decay, maximize),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(lr),
    )


@public
def NAdam(
    lr: Hyperparameter = 2e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    momentum_decay: Hyperparameter = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.NAdam`, with torch's momentum-decay schedule.

    $$
    \begin{aligned}
    &\mu_t = \beta_1(1 - \tfrac12 0.96^{t\psi}), \quad \Pi_t = \textstyle\prod_{i\le t}\mu_i, \\
    &\Delta\theta = -\eta\,\frac{\frac{1-\mu_t}{1-\Pi_t} g_t + \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}} m_t}
    {\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
    \end{aligned}
    $$

    Chain: `[add_decayed_weights]`, `ratio(nesterov_ema(b1, momentum=<torch's schedule>),
    chain(ema_sq(b2), bias_correction(b2), sqrt(), add_eps(eps)))`,
    `[add_decayed_weights]` (decoupled), `scale_by_learning_rate(lr)`. The schedule's
    running product $\Pi_t$ is kept in the state (`mu_product`), as torch does.

    Args:
      lr: $\eta$ (torch's default `2e-3`).
      betas: $(\beta_1, \beta_2)$.
      eps: $\epsilon$, outside the root.
      weight_decay: $\lambda$ (coupled L2 unless `decoupled_weight_decay`).
      momentum_decay: $\psi$ of the momentum schedule.
      decoupled_weight_decay: AdamW-style decay, $-\eta\lambda\theta$.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "NAdam"
    _lr(who, lr)
    b1, b2 = _betas(who, betas)
    validate(who, "eps", eps, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    validate(who, "momentum_decay", momentum_decay, 0.0)
    validate_bool(who, "decoupled_weight_decay", decoupled_weight_decay)
    return chain(
        *_front(who, 0.0 if decoupled_weight_decay else weight_decay, maximize),
        ratio(nesterov_ema(b1, momentum=_nadam_momentum(b1, momentum_decay)), _adam_root(b2, eps)),
        add_decayed_weights(weight_decay) if decoupled_weight_decay else identity(),
        scale_by_learning_rate(lr),
    )


def _adam_root(b2: Hyperparameter, eps: Hyperparameter) -> GradientTransformation:
    """torch's Adam denominator: $\\sqrt{v_t / (1 - \beta_2^t)} + \\epsilon$."""
    return chain(ema_sq(b2), bias_correction(b2), sqrt(), add_eps(eps))


def _nadam_momentum(b1: Hyperparameter, momentum_decay: Hyperparameter):
    """torch's NAdam momentum coefficients as a schedule: `count -> b1 (1 - 0.5 * 0.96**((count + 1) psi))`."""

    def schedule(count: jax.Array) -> jax.Array:
        b = resolve(b1, count, "betas[0]")
        psi = resolve(momentum_decay, count, "momentum_decay")
        t = (count + 1).astype(b.dtype)
        return b * (1 - 0.5 * jnp.asarray(0.96, b.dtype) ** (t * psi))

    return schedule


@public
def ASGD(
    lr: Hyperparameter = 1e-2,
    lambd: Hyperparameter = 1e-4,
    alpha: Hyperparameter = 0.75,
    t0: Hyperparameter = 1e6,
    weight_decay: Hyperparameter = 0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.ASGD`: decayed SGD steps and the average of the iterates from step `t0` on.

    $$
    \begin{aligned}
    &\eta_t = \frac{\eta}{(1 + \lambda\eta(t-1))^{\alpha}}, \quad
    \theta_t = \theta_{t-1}(1-\lambda\eta_t) - \eta_t(g_t + w\theta_{t-1}), \\
    &\bar\theta_t = \bar\theta_{t-1} + \frac{\theta_t - \bar\theta_{t-1}}{\max(1, t-1-t_0)}
    \end{aligned}
    $$

    torch's `state["ax"]` is `gradxform.eval_params(state, params)`. Chain: `[scale(-1)]`
    (maximize), `[add_decayed_weights(weight_decay)]`, the chain of `gradxform.asgd`. `t0`
    must be `>= 0` (with a negative `t0` torch averages in its zero-initialized `ax`).

    Args:
      lr: $\eta$.
      lambd: $\lambda$, the decay of the step size and of the weights.
      alpha: $\alpha$, the power of the step-size decay.
      t0: $t_0$, the step from which the iterates are averaged.
      weight_decay: $w$, coupled L2.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    from gradxform.optimizers.asgd import asgd_chain

    who = "ASGD"
    _lr(who, lr)
    validate(who, "lambd", lambd, 0.0)
    validate(who, "alpha", alpha, 0.0)
    validate(who, "t0", t0, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    maximize = validate_bool(who, "maximize", maximize)
    return asgd_chain(lr, lambd, alpha, t0, weight_decay, front=(scale(-1.0),) if maximize else ())


@per_param("momentum_buffer")
class MomentumBufferState(NamedTuple):
    """`momentum_buffer`: torch's Muon buffer, $B_t = \\mathrm{lerp}(B_{t-1}, g_t, 1 - \\mu)$."""

    momentum_buffer: Any


def _lerp(start, end, weight):
    """torch's `lerp`: `start + w (end - start)` for `|w| < 0.5`, else `end - (end - start)(1 - w)`."""
    return jnp.where(jnp.abs(weight) < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight))


def _muon_momentum(momentum: Hyperparameter, nesterov: bool) -> GradientTransformation:
    r"""torch's Muon momentum: $B_t = \mathrm{lerp}(B_{t-1}, g_t, 1-\mu)$, out $\mathrm{lerp}(g_t, B_t, \mu)$ (Nesterov)
    or $B_t$."""

    def fn(h, g, b):
        b = _lerp(b, g, 1 - h.momentum)
        return (_lerp(g, b, h.momentum) if nesterov else b), b

    return elementwise("Muon", fn, hyper={"momentum": (momentum, Range(0.0))}, state=MomentumBufferState)


def _addmm(beta: float, c: jax.Array, alpha: float, ab: jax.Array) -> jax.Array:
    """torch's CPU bfloat16 `addmm` after its float32 product `ab`: `fma(beta, c, alpha * ab)`, rounded once to float32.

    The fused multiply-add is exact in float64 where that is enabled (a float32 product fits in a float64);
    without x64 it is two float32 roundings, which flips a bfloat16 result about once in 10^5 elements.
    """
    f = jnp.float32
    t = (jnp.asarray(alpha, f) * ab) if alpha != 1.0 else ab
    if jax.config.read("jax_enable_x64"):
        d = jnp.float64
        return (t.astype(d) + jnp.asarray(beta, f).astype(d) * c.astype(d)).astype(f)
    return t + jnp.asarray(beta, f) * c


def _bf16_newton_schulz(x: jax.Array, coefficients: tuple, steps: int, eps: jax.Array) -> jax.Array:
    """torch's `_zeropower_via_newtonschulz`: the iteration in bfloat16, each product accumulated in float32 and
    each result rounded once to bfloat16, as torch's CPU `mm` / `addmm` (tested bitwise on small matrices)."""
    bf, f = jnp.bfloat16, jnp.float32
    a, b, c = coefficients
    x = x.astype(bf)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(f)))).astype(bf)
    x = (x.astype(f) / jnp.maximum(norm, eps.astype(bf)).astype(f)).astype(bf)
    for _ in range(steps):
        xf = x.astype(f)
        gram = (xf @ xf.T).astype(bf).astype(f)
        update = _addmm(b, gram, c, gram @ gram).astype(bf).astype(f)
        x = _addmm(a, xf, 1.0, update @ xf).astype(bf)
    return x.T if tall else x


def _matrices_only(tree, who: str = "Muon") -> None:
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jnp.ndim(x) != 2:
            raise ValueError(
                f"{lead(who)}: torch.optim.Muon only supports 2-d parameters; the leaf at {path_str(path)} has "
                f"shape {tuple(jnp.shape(x))}. Optimize the others with AdamW (gradxform.partition), or use "
                "gradxform.muon, which gives them AdamW itself."
            )


def _torch_newton_schulz(coefficients: tuple, steps: int, eps: Hyperparameter) -> GradientTransformation:
    def init(params):
        return EmptyState()

    def update(updates, state, params, count, extra_args):
        _matrices_only(updates)
        e = resolve(eps, count, "eps")

        def one(u):
            ct = compute_dtype(u.dtype)
            if u.size == 0:
                return u.astype(ct)
            return _bf16_newton_schulz(u, coefficients, steps, e).astype(ct)

        return jax.tree.map(one, updates), state

    return make_block("Muon", init, update, stateless=True, per_leaf=True)


def _adjust_lr(adjust_lr_fn: str | None) -> GradientTransformation:
    """torch's `_adjust_lr` as a factor on the update: $\\sqrt{\\max(1, A/B)}$ for shape $(A, B)$ (`"original"`,
    rows over columns: the width scaling of the transpose) or $0.2\\sqrt{\\max(A, B)}$ (`"match_rms_adamw"`)."""
    if adjust_lr_fn == "match_rms_adamw":
        return scale_by_shape(consistent_rms=0.2)
    return scale_by_shape(MuonDimensionNumbers(reduction_axis=1, output_axis=0))


@public
def Muon(
    lr: Hyperparameter = 1e-3,
    weight_decay: Hyperparameter = 0.1,
    momentum: Hyperparameter = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple = (3.4445, -4.7750, 2.0315),
    eps: Hyperparameter = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> GradientTransformation:
    r"""`torch.optim.Muon`: 2-d parameters only, the Newton-Schulz iteration in bfloat16.

    $$\begin{aligned}
    B_t &= \mathrm{lerp}(B_{t-1}, g_t, 1-\mu), \\
    \tilde B_t &= \mathrm{lerp}(g_t, B_t, \mu) \text{ (Nesterov) or } B_t, \\
    O_t &= \mathrm{NS}^{(a,b,c)}_k(\tilde B_t; \epsilon), \\
    \Delta\theta_t &= -\gamma\lambda\theta_{t-1} - \gamma\,r(A, B)\,O_t, \\
    r &= \sqrt{\max(1, A/B)}\ (\texttt{"original"})\ \text{or}\ 0.2\sqrt{\max(A, B)}\ (\texttt{"match\_rms\_adamw"})
    \end{aligned}$$

    for a parameter of shape $(A, B)$. No bias correction; the iteration normalizes by
    $\max(\lVert\tilde B\rVert_F, \epsilon)$ and runs in bfloat16 as torch's (each product accumulated
    in float32, rounded once). Every leaf must be a matrix, as torch requires; `gradxform.muon`
    routes the others to AdamW.

    Chain: `_muon_momentum(momentum, nesterov)`, the bfloat16 Newton-Schulz, the `adjust_lr_fn`
    factor (`scale_by_shape`), `add_decayed_weights(weight_decay)`, `scale_by_learning_rate(lr)`.
    Args:
      lr: $\gamma$ (torch's default `1e-3`).
      weight_decay: $\lambda$, decoupled.
      momentum: $\mu$ of the buffer.
      nesterov: apply the Nesterov look-ahead $\mathrm{lerp}(g_t, B_t, \mu)$.
      ns_coefficients: $(a, b, c)$ of the Newton-Schulz polynomial.
      eps: $\epsilon$, the floor of the Frobenius norm.
      ns_steps: $k$, the Newton-Schulz iterations.
      adjust_lr_fn: `None` or `"original"` for $\sqrt{\max(1, A/B)}$, `"match_rms_adamw"` for
        $0.2\sqrt{\max(A, B)}$.

    Returns:
      A `GradientTransformation`.
    """
    who = "Muon"
    _lr(who, lr)
    validate(who, "weight_decay", weight_decay, 0.0)
    validate(who, "momentum", momentum, 0.0)
    validate_bool(who, "nesterov", nesterov)
    validate(who, "eps", eps, 0.0)
    validate_int(who, "ns_steps", ns_steps, 0, what="Newton-Schulz steps")
    if ns_steps >= 100:
        raise ValueError(f"{who}: ns_steps={ns_steps} must be less than 100, as in torch.optim.Muon.")
    if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
        raise ValueError(f"{who}: ns_coefficients must be a tuple of exactly 3 values, got {ns_coefficients!r}.")
    coefficients = tuple(float(v) for v in ns_coefficients)
    if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
        raise ValueError(
            f"{who}: adjust_lr_fn={adjust_lr_fn!r} is not supported; use None, 'original' or 'match_rms_adamw'."
        )
    block = block_of(
        chain(
            _muon_momentum(momentum, nesterov),
            _torch_newton_schulz(coefficients, ns_steps, eps),
            _adjust_lr(adjust_lr_fn),
            add_decayed_weights(weight_decay),
            scale_by_learning_rate(lr),
        )
    )

    def init(params):  # torch refuses a parameter that is not a matrix when the optimizer is built
        _matrices_only(params)
        return block.init(params)

    return as_transform(dataclasses.replace(block, init=init))


@public
def RAdam(
    lr: Hyperparameter = 1e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.RAdam`: the rectified step where $\rho_t > 5$, plain bias-corrected momentum before.

    $$\Delta\theta = -\eta\,\hat m_t \cdot \begin{cases}
    r_t\,\dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > 5\\ 1 & \text{else}\end{cases}$$

    torch divides $\sqrt{v_t} + \epsilon$ (the *uncorrected* root plus eps) by $\sqrt{1-\beta_2^t}$,
    where `gradxform.radam` (optax's form) adds eps to the corrected root. Chain:
    `[add_decayed_weights]`, `ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2), sqrt(),
    add_eps(eps), bias_correction(b2, power=0.5), rectification(b2, 5.0, strict=True)))`,
    `[add_decayed_weights]` (decoupled), `scale_by_learning_rate(lr)`.
    Args:
      lr: $\eta$ (torch's default `1e-3`).
      betas: $(\beta_1, \beta_2)$.
      eps: $\epsilon$, added to the uncorrected root.
      weight_decay: $\lambda$ (coupled L2 unless `decoupled_weight_decay`).
      decoupled_weight_decay: AdamW-style decay, $-\eta\lambda\theta$.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "RAdam"
    _lr(who, lr)
    b1, b2 = _betas(who, betas)
    validate(who, "eps", eps, 0.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    validate_bool(who, "decoupled_weight_decay", decoupled_weight_decay)
    denominator = chain(
        ema_sq(b2), sqrt(), add_eps(eps), bias_correction(b2, power=0.5), rectification(b2, 5.0, strict=True)
    )
    return chain(
        *_front(who, 0.0 if decoupled_weight_decay else weight_decay, maximize),
        ratio(chain(ema(b1), bias_correction(b1)), denominator),
        add_decayed_weights(weight_decay) if decoupled_weight_decay else identity(),
        scale_by_learning_rate(lr),
    )


@public
def Adamax(
    lr: Hyperparameter = 2e-3,
    betas: Sequence[Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adamax`: coupled L2 weight decay, eps inside the maximum.

    $$\begin{aligned}
    u_t &= \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \\
    \Delta\theta &= -\eta\,\frac{m_t / (1-\beta_1^t)}{u_t}
    \end{aligned}$$

    Chain: `[add_decayed_weights]`, `ratio(chain(ema(b1), bias_correction(b1)), infinity_moment(b2, eps))`,
    `scale_by_learning_rate(lr)` (the same ratio as `gradxform.adamax`).
    Args:
      lr: $\eta$ (torch's default `2e-3`).
      betas: $(\beta_1, \beta_2)$.
      eps: $\epsilon$, inside the maximum.
      weight_decay: $\lambda$, coupled L2.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "Adamax"
    _lr(who, lr)
    b1, b2 = _betas(who, betas)
    validate(who, "eps", eps, 0.0)
    return chain(
        *_front(who, weight_decay, maximize),
        ratio(chain(ema(b1), bias_correction(b1)), infinity_moment(b2, eps)),
        scale_by_learning_rate(lr),
    )


@public
def Rprop(
    lr: Hyperparameter = 1e-2,
    etas: Sequence[Hyperparameter] = (0.5, 1.2),
    step_sizes: Sequence[Hyperparameter] = (1e-6, 50.0),
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Rprop`: `etas=(eta_minus, eta_plus)`, `step_sizes=(min, max)`.

    The same block as `gradxform.rprop`, `scale_by_rprop`, then `scale(-1)`; torch clamps the
    step sizes at every step, which changes only the first one (when `lr` lies outside
    `step_sizes`): each element's first step size here is `lr` clamped to `step_sizes`.
    Args:
      lr: the first step size of every element (torch's default `1e-2`), clamped to `step_sizes`.
      etas: $(\eta^-, \eta^+)$, the factors a step size shrinks by on a sign change and grows by otherwise.
      step_sizes: the step sizes' bounds $(\Delta_{\min}, \Delta_{\max})$.
      maximize: ascend instead of descend.

    Returns:
      A `GradientTransformation`.
    """
    who = "Rprop"
    for name, pair in (("etas", etas), ("step_sizes", step_sizes)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{who}: {name} must be a pair, got {pair!r}.")
    (eta_minus, eta_plus), (lo, hi) = etas, step_sizes
    check_rprop(who, lr, eta_minus, eta_plus, lo, hi, "lr", ("etas[0]", "etas[1]", "step_sizes[0]", "step_sizes[1]"))
    if all(isinstance(x, (int, float)) for x in (lr, lo, hi)):
        first = min(max(lr, lo), hi)
    else:
        first = jnp.clip(lr, lo, hi)
    return chain(
        scale(-1.0) if maximize else identity(),
        scale_by_rprop(first, eta_minus, eta_plus, lo, hi),
        scale(-1.0),
    )
