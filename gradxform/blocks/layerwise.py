"""Blocks that look at a whole leaf (a layer's weight matrix, its bias): its norm, its RMS, its mean over axes.

Each is one idea on the `leafwise` skeleton (`gradxform.blocks.base`): the function
gets the whole leaf in its compute dtype (at least float32), so a norm of a bfloat16
leaf is accumulated in float32. They are marked `per_leaf`: on `gradxform.FlatParams`,
whose buffers concatenate the leaves, they would mean something else and are refused.

Norms are safe: $\\sqrt{\\cdot}$ of a zero sum of squares has a zero (not NaN)
derivative, so `jax.grad` through an optimizer that meets a zero leaf stays finite.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.blocks.base import elementwise, field, leafwise, map_leaves, require_params, storage, stored
from gradxform.core.state import Layout, per_param
from gradxform.core.transform import EmptyState, GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import ANY, NONNEGATIVE, POSITIVE, UNIT, validate
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.checks import check_inexact, check_match
from gradxform.numerics.dtypes import compute_dtype, dtype_of, square_dtype
from gradxform.numerics.quantize import load
from gradxform.numerics.tree_math import abs_sq, full_like, global_norm

PyTree = Any


def safe_sqrt(x: jax.Array) -> jax.Array:
    """$\\sqrt{x}$ for $x \\ge 0$, whose derivative at $x = 0$ is 0 instead of infinite."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1)), 0)


def leaf_norm(x: jax.Array) -> jax.Array:
    """$\\|x\\|_2 = \\sqrt{\\sum_i |x_i|^2}$ over the whole leaf (a matrix's Frobenius norm); 0 if empty."""
    return safe_sqrt(jnp.sum(abs_sq(x)))


def leaf_rms(x: jax.Array) -> jax.Array:
    """$\\sqrt{\\frac1N\\sum_i |x_i|^2}$ over the whole leaf (NaN for an empty leaf, as optax: nothing to scale)."""
    return safe_sqrt(jnp.mean(abs_sq(x)))


def scale_by_trust_ratio(
    min_norm: Hyperparameter = 0.0, trust_coefficient: Hyperparameter = 1.0, eps: Hyperparameter = 0.0
) -> GradientTransformation:
    r"""Scales each leaf's update by its trust ratio, the parameter's norm over the update's (LARS, LAMB).

    $$u_\ell \leftarrow u_\ell\cdot
    \begin{cases} \dfrac{c\,\max(\|\theta_\ell\|, n_0)}{\max(\|u_\ell\|, n_0) + \epsilon}
      & \|\theta_\ell\| \ne 0 \text{ and } \|u_\ell\| \ne 0 \text{ (after the floor)} \\
      1 & \text{otherwise} \end{cases}$$

    per leaf $\ell$ (You et al. 2017, 2020); a parameter or update of norm zero is
    left unscaled (a zero-initialised bias is not frozen). `optax.scale_by_trust_ratio`'s
    formula. `update` needs `params`.

    Args:
      min_norm: $n_0 \ge 0$, the floor of both norms.
      trust_coefficient: $c \ge 0$.
      eps: $\epsilon \ge 0$, added to the update's norm.
    """

    def fn(h, u, p):
        p_norm = jnp.maximum(leaf_norm(p), h.min_norm)
        u_norm = jnp.maximum(leaf_norm(u), h.min_norm)
        zero = (p_norm == 0) | (u_norm == 0)
        ratio = h.trust_coefficient * p_norm / jnp.where(zero, 1, u_norm + h.eps)
        return u * jnp.where(zero, jnp.ones_like(ratio), ratio)

    return leafwise(
        "scale_by_trust_ratio",
        fn,
        hyper={
            "min_norm": (min_norm, NONNEGATIVE),
            "trust_coefficient": (trust_coefficient, NONNEGATIVE),
            "eps": (eps, NONNEGATIVE),
        },
        with_params=True,
    )


def normalize_by_update_norm(scale_factor: Hyperparameter = 1.0, eps: Hyperparameter = 1e-6) -> GradientTransformation:
    r"""Divides the updates by the norm of the whole update tree: $u \leftarrow s\,u / (\|u\| + \epsilon)$.

    $\|u\| = \sqrt{\sum_\ell\sum_i |u_{\ell,i}|^2}$ is the global norm (in at least
    float32), so the result does not depend on how the tree is split into leaves and
    `FlatParams` accept it. `optax.normalize_by_update_norm`'s formula.

    Args:
      scale_factor: $s$, any finite number (negative to ascend).
      eps: $\epsilon \ge 0$.
    """
    validate("normalize_by_update_norm", "scale_factor", scale_factor, ANY)
    validate("normalize_by_update_norm", "eps", eps, NONNEGATIVE)

    def update(updates, state, params, count, extra_args):
        s, e = resolve(scale_factor, count, "scale_factor"), resolve(eps, count, "eps")
        norm = global_norm(updates).astype(s.dtype)
        factor = s / (norm + e)
        return jax.tree.map(lambda u: _times(u, factor), updates), state

    step = is_schedule(scale_factor) or is_schedule(eps)
    return make_block("normalize_by_update_norm", lambda params: EmptyState(), update, needs_step=step, stateless=True)


def _times(u: jax.Array, factor: jax.Array) -> jax.Array:
    """`u * factor` in `u`'s compute dtype (the factor in its real part)."""
    ct = compute_dtype(u.dtype)
    return u.astype(ct) * factor.astype(jnp.finfo(ct).dtype)


def centralize() -> GradientTransformation:
    r"""Gradient centralization: subtracts from each leaf of two or more axes its mean over all axes but the first.

    $$u_{\ell} \leftarrow u_{\ell} - \operatorname{mean}_{\text{axes } 1, \dots}(u_\ell)
    \quad (\text{leaves of one axis or none pass unchanged})$$

    (Yong et al. 2020); `optax.centralize`'s formula.
    """

    def fn(h, u):
        if u.ndim < 2:
            return u
        return u - jnp.mean(u, axis=tuple(range(1, u.ndim)), keepdims=True)

    return leafwise("centralize", fn)


def _unit_axes(x: jax.Array, axis) -> tuple[int, ...] | None:
    """The axes a unit-wise norm reduces over (`None`: the whole leaf), optax's conventions."""
    if axis is not None:
        return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if sum(d != 1 for d in x.shape) <= 1:  # scalars and vectors (optax: squeeze(x).ndim <= 1)
        return None
    if x.ndim in (2, 3):  # dense (in, out) and multi-head dense kernels
        return (0,)
    if x.ndim in (4, 5):  # convolution kernels HWIO, DHWIO
        return tuple(range(x.ndim - 1))
    raise ValueError(
        f"{lead('adaptive_grad_clip')}: a leaf of shape {list(x.shape)} has no default unit; "
        "pass axis= (the axes each unit's norm sums over)."
    )


def adaptive_grad_clip(clipping: Hyperparameter, eps: Hyperparameter = 1e-3, axis=None) -> GradientTransformation:
    r"""Adaptive gradient clipping: each unit's update at most `clipping` times its parameter's norm.

    $$u_i \leftarrow \begin{cases} u_i & \|u_i\| < \lambda\max(\|\theta_i\|, \epsilon) \\
      u_i\,\dfrac{\lambda\max(\|\theta_i\|, \epsilon)}{\max(\|u_i\|, 10^{-6})} & \text{otherwise}\end{cases}$$

    for every unit $i$ (a column of a dense kernel, an output channel of a convolution,
    a whole vector), Brock et al. 2021. `optax.adaptive_grad_clip`'s formula and conventions. `update` needs `params`.

    Args:
      clipping: $\lambda \ge 0$, the largest allowed ratio of update norm to parameter norm.
      eps: $\epsilon \ge 0$, the floor of the parameter norms (zero-initialised parameters still move).
      axis: the axes each unit's norm sums over (an int or a tuple); `None`: by the leaf's rank,
        the whole leaf for vectors and scalars, axis 0 for 2-d and 3-d, all but the last for 4-d and 5-d.
    """
    if axis is not None and not all(isinstance(a, int) for a in (axis if isinstance(axis, (tuple, list)) else [axis])):
        raise TypeError(f"{lead('adaptive_grad_clip')}: axis={axis!r} must be None, an int or a tuple of ints.")

    def unit_norm(x, axes):
        return safe_sqrt(jnp.sum(abs_sq(x), axis=axes, keepdims=True))

    def fn(h, u, p):
        axes = _unit_axes(p, axis)
        g_norm, p_norm = unit_norm(u, axes), unit_norm(p, axes)
        max_norm = h.clipping * jnp.maximum(p_norm, h.eps)
        clipped = u * (max_norm / jnp.maximum(g_norm, 1e-6))
        return jnp.where(g_norm < max_norm, u, clipped)

    return leafwise(
        "adaptive_grad_clip",
        fn,
        hyper={"clipping": (clipping, NONNEGATIVE), "eps": (eps, NONNEGATIVE)},
        with_params=True,
    )


def scale_by_param_block_rms(min_scale: Hyperparameter = 1e-3) -> GradientTransformation:
    r"""Scales each leaf's update by its parameter's RMS: $u_\ell \leftarrow u_\ell \max(\mathrm{RMS}(\theta_\ell), s)$.

    $\mathrm{RMS}(x) = \sqrt{\frac1N\sum_i |x_i|^2}$. Adafactor's relative step size
    (Shazeer & Stern 2018, "multiply by parameter scale"); `optax.scale_by_param_block_rms`.
    `update` needs `params`.

    Args:
      min_scale: $s \ge 0$, the floor of the scale (a zero-initialised parameter still moves).
    """
    return leafwise(
        "scale_by_param_block_rms",
        lambda h, u, p: u * jnp.maximum(leaf_rms(p), h.min_scale),
        hyper={"min_scale": (min_scale, NONNEGATIVE)},
        with_params=True,
    )


def clip_by_block_rms(threshold: Hyperparameter) -> GradientTransformation:
    r"""Clips each leaf's update to an RMS of at most `threshold`.

    $$u_\ell \leftarrow \frac{u_\ell}{\max(1, \mathrm{RMS}(u_\ell)/d)}$$

    Adafactor's update clipping (Shazeer & Stern 2018); `optax.clip_by_block_rms`.

    Args:
      threshold: $d > 0$.
    """
    return leafwise(
        "clip_by_block_rms",
        lambda h, u: u / jnp.maximum(1, leaf_rms(u) / h.threshold),
        hyper={"threshold": (threshold, POSITIVE)},
    )


def add_scaled_params(factor: Hyperparameter) -> GradientTransformation:
    r"""Adds the parameters times any factor: $u \leftarrow u + c\,\theta$ (Fromage's shrinking, $c < 0$).

    `add_decayed_weights` is the same with $c = \lambda \ge 0$; this one takes any finite
    factor, as optax's `add_decayed_weights` does. `update` needs `params`.

    Args:
      factor: $c$, any finite number.
    """
    return elementwise(
        "add_scaled_params", lambda h, u, p: u + h.factor * p, hyper={"factor": (factor, ANY)}, with_params=True
    )


PER_LEAF_SCALAR = Layout(
    "per_leaf_scalar",
    lambda sharding, param_shape, leaf_shape: NamedSharding(
        sharding.mesh, PartitionSpec(), memory_kind=sharding.memory_kind
    ),
)
"""A statistic of the whole leaf (one scalar per parameter): replicated, whatever the parameter's sharding."""


@per_param("mu")
@per_param("nu", layout=PER_LEAF_SCALAR)
class NovogradState(NamedTuple):
    """`mu`: the moving sum of normalised gradients; `nu`: one second moment per leaf (a scalar each)."""

    mu: PyTree
    nu: PyTree


def scale_by_novograd(
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.25,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""NovoGrad's direction (Ginsburg et al. 2019): a per-layer second moment of the gradient norm.

    $$\begin{aligned}
    \nu_{\ell,1} &= \|g_{\ell,1}\|^2, & \nu_{\ell,t} &= \beta_2\nu_{\ell,t-1} + (1-\beta_2)\|g_{\ell,t}\|^2, \\
    \mu_{\ell,1} &= d_{\ell,1}, & \mu_{\ell,t} &= \beta_1\mu_{\ell,t-1} + d_{\ell,t}, \qquad
    d_{\ell,t} = \frac{g_{\ell,t}}{\sqrt{\nu_{\ell,t} + \epsilon_{root}} + \epsilon} + \lambda\,\theta_{\ell,t-1}
    \end{aligned}$$

    output $\mu_t$; one scalar $\nu_\ell$ per leaf. `optax.scale_by_novograd`'s formulas. `update` needs `params`.

    Args:
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$, outside the root.
      eps_root: $\epsilon_{root} \ge 0$, inside the root.
      weight_decay: $\lambda \ge 0$.
      mu_dtype: the dtype $\mu$ is stored in (default: the parameter's).
    """
    who = "scale_by_novograd"
    hyper = {"b1": (b1, UNIT), "b2": (b2, UNIT), "eps": (eps, NONNEGATIVE), "eps_root": (eps_root, NONNEGATIVE)}
    hyper["weight_decay"] = (weight_decay, NONNEGATIVE)
    for k, (v, rng) in hyper.items():
        validate(who, k, v, rng)
    mu_rule = storage(who, mu_dtype, name="mu_dtype")

    def init(params):
        check_inexact(params, who)
        nu = jax.tree.map(lambda p: jnp.zeros([], square_dtype(dtype_of(p))), params)
        return NovogradState(full_like(params, 0, mu_rule), nu)

    def update(updates, state, params, count, extra_args):
        require_params(who, updates, params)
        check_match(updates, state.mu, who, mu_rule)
        values = {k: resolve(v, count, k) for k, (v, _) in hyper.items()}

        def fn(h, g, m, n, p):
            first = h.count == 0
            sq = jnp.sum(abs_sq(g))
            n = jnp.where(first, sq, h.b2 * n + (1 - h.b2) * sq)
            d = g / (jnp.sqrt(n + h.eps_root) + h.eps) + h.weight_decay * p
            m = jnp.where(first, d, h.b1 * m + d)
            return m, m, n

        results = map_leaves(fn, values, count, updates, state.mu, state.nu, params)
        mu = stored(field(updates, results, 1), state.mu)
        nu = stored(field(updates, results, 2), state.nu)
        out = jax.tree.map(lambda u, m: load(m).astype(compute_dtype(m.dtype, u.dtype)), updates, mu)
        return out, NovogradState(mu, nu)

    return make_block(who, init, update, needs_step=True, per_leaf=True)
