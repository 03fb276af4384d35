"""`torch.optim.Adafactor`: torch's factoring rule, relative step and numerics, as a chain of gradxform blocks."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from gradxform.blocks import add_decayed_weights, scale, scale_by_learning_rate
from gradxform.blocks.base import stored
from gradxform.blocks.layerwise import clip_by_block_rms, scale_by_param_block_rms
from gradxform.core import GradientTransformation, chain, identity, make_block, public
from gradxform.core.state import Layout, per_param
from gradxform.errors import lead
from gradxform.hyper import Hyperparameter, is_zero, resolve, validate, validate_bool
from gradxform.numerics.checks import check_inexact
from gradxform.numerics.dtypes import compute_dtype, dtype_of, real_dtype, shape_of
from gradxform.numerics.tree_math import abs_sq, full_like

PyTree = Any

__all__ = ["Adafactor", "TorchFactoredState", "scale_by_torch_factored_rms"]


def _drop_axis_layout(name: str, axis: int) -> Layout:
    """A statistic that drops parameter axis `axis` (negative): that entry of the spec removed; else replicated."""

    def sharding(param_sharding, param_shape, leaf_shape):
        shape = tuple(param_shape)
        if len(shape) >= 2:
            k = len(shape) + axis
            if tuple(leaf_shape) == shape[:k] + shape[k + 1 :]:
                spec = tuple(param_sharding.spec) + (None,) * (len(shape) - len(param_sharding.spec))
                kept = spec[:k] + spec[k + 1 :]
                return NamedSharding(param_sharding.mesh, PartitionSpec(*kept), memory_kind=param_sharding.memory_kind)
        return NamedSharding(param_sharding.mesh, PartitionSpec(), memory_kind=param_sharding.memory_kind)

    return Layout(name, sharding)


def _full_layout(param_sharding, param_shape, leaf_shape):
    if tuple(leaf_shape) == tuple(param_shape):
        return param_sharding
    return NamedSharding(param_sharding.mesh, PartitionSpec(), memory_kind=param_sharding.memory_kind)


ROW = _drop_axis_layout("torch_row", -1)
COL = _drop_axis_layout("torch_col", -2)


@per_param("row_var", layout=ROW)
@per_param("col_var", layout=COL)
@per_param("variance", layout=Layout("torch_variance", _full_layout))
class TorchFactoredState(NamedTuple):
    """torch's Adafactor statistics: `row_var` (the leaf without its last axis) and `col_var` (without its
    second-to-last) for leaves of two axes or more, `variance` for the others; 1-element placeholders elsewhere."""

    row_var: PyTree
    col_var: PyTree
    variance: PyTree


def _lerp(start: jax.Array, end: jax.Array, weight: jax.Array) -> jax.Array:
    """torch's `lerp`: `start + w (end - start)` for `w < 0.5`, else `end - (end - start)(1 - w)`."""
    diff = end - start
    return jnp.where(weight < 0.5, start + weight * diff, end - diff * (1 - weight))


def scale_by_torch_factored_rms(beta2_decay: Hyperparameter = -0.8, eps1: Hyperparameter | None = None):
    r"""torch.optim.Adafactor's second-moment estimate: $u = g / \sqrt{\max(\hat V_t, \epsilon_1^2)}$.

    With $w_t = t^{\text{beta2_decay}}$, for a leaf of two axes or more (its last two, $n \times m$):

    $$r_t = \mathrm{lerp}(r_{t-1}, \operatorname{mean}_m g^2, w_t), \quad
    c_t = \mathrm{lerp}(c_{t-1}, \operatorname{mean}_n g^2, w_t), \quad
    \hat V_t = \frac{r_t\,c_t}{\max(\operatorname{mean}_n r_t, \epsilon_1)}$$

    and $\hat V_t = \mathrm{lerp}(\hat V_{t-1}, g^2, w_t)$ for the others.

    Args:
      beta2_decay: $\le 0$.
      eps1: $\epsilon_1 \ge 0$, or `None`: the machine epsilon of the dtype the math runs in (the
        parameter's, and float32 for bfloat16 and float16 parameters, whose own epsilon torch would use).
    """
    who = "Adafactor"

    def init(params):
        check_inexact(params, who)
        rule = real_dtype

        def one(p):
            dt = rule(dtype_of(p))
            shape = tuple(shape_of(p))
            if len(shape) < 2:
                return jnp.zeros((1,), dt), jnp.zeros((1,), dt), full_like(p, 0, rule)
            zeros = full_like(p, 0, rule)
            return jnp.sum(zeros, axis=-1), jnp.sum(zeros, axis=-2), jnp.zeros((1,), dt)

        triples = jax.tree.map(one, params)
        return TorchFactoredState(*(jax.tree.map(lambda _, t, i=i: t[i], params, triples) for i in range(3)))

    def update(updates, state, params, count, extra_args):
        decay = resolve(beta2_decay, count, "beta2_decay")
        t = (count + 1).astype(decay.dtype)
        w = t**decay

        def one(g, r, c, v):
            shape = tuple(shape_of(g))
            want = ((1,), (1,), shape) if len(shape) < 2 else (shape[:-1], shape[:-2] + shape[-1:], (1,))
            if (tuple(shape_of(r)), tuple(shape_of(c)), tuple(shape_of(v))) != want:
                raise ValueError(
                    f"{lead(who)}: the state does not match an update of shape {list(shape)}; "
                    "use the state this optimizer's init made."
                )
            ct = compute_dtype(g.dtype, v.dtype)
            rt = real_dtype(ct)
            e1 = jnp.finfo(rt).eps if eps1 is None else resolve(eps1, count, "eps1")
            if not g.size:  # nothing to average (torch itself refuses empty parameters)
                return g.astype(ct), r, c, v
            g = g.astype(ct)
            wt, e1 = w.astype(rt), jnp.asarray(e1).astype(rt)
            g_sq = abs_sq(g)
            if len(shape) < 2:
                v = _lerp(v.astype(rt), g_sq, wt)
                est = v
            else:
                r = _lerp(r.astype(rt), jnp.mean(g_sq, axis=-1), wt)
                c = _lerp(c.astype(rt), jnp.mean(g_sq, axis=-2), wt)
                est = r[..., :, None] * c[..., None, :]
                est = est / jnp.maximum(jnp.mean(r, axis=-1), e1)[..., None, None]
            return jax.lax.rsqrt(jnp.maximum(est, e1 * e1)) * g, r, c, v

        results = jax.tree.map(one, updates, state.row_var, state.col_var, state.variance)
        pick = [jax.tree.map(lambda _, x, i=i: x[i], updates, results) for i in range(4)]
        new = TorchFactoredState(
            stored(pick[1], state.row_var), stored(pick[2], state.col_var), stored(pick[3], state.variance)
        )
        return pick[0], new

    return make_block(who, init, update, needs_step=True, per_leaf=True)


@public
def Adafactor(
    lr: Hyperparameter = 1e-2,
    beta2_decay: Hyperparameter = -0.8,
    eps: tuple = (None, 1e-3),
    d: Hyperparameter = 1.0,
    weight_decay: Hyperparameter = 0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    r"""`torch.optim.Adafactor`: its factoring rule (the last two axes of every leaf of two or more), its relative step.

    $$\begin{aligned}
    \hat V_t &\text{ as in } \texttt{scale\_by\_torch\_factored\_rms}, \qquad
    U_t = \frac{g_t}{\sqrt{\max(\hat V_t, \epsilon_1^2)}}, \\
    \rho_t &= \min(\eta, 1/\sqrt t), \qquad \alpha_t = \rho_t \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1})), \\
    \theta_t &= (1 - \eta\lambda)\,\theta_{t-1} - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U_t)/d)}\,U_t
    \end{aligned}$$

    Chain: `[scale(-1)]` (maximize), `scale_by_torch_factored_rms(beta2_decay, eps[0])`,
    `clip_by_block_rms(d)`, `scale_by_param_block_rms(eps[1])`,
    `scale_by_learning_rate(min(lr, 1/sqrt(t)), flip_sign=False)`, `[add_decayed_weights(lr * weight_decay)]`,
    `scale(-1)`. `update` needs `params`.

    Args:
      lr: $\eta \ge 0$ (the relative step's cap, and the decay's factor).
      beta2_decay: $\le 0$: the second moments' weight $t^{\text{beta2_decay}}$.
      eps: `(eps1, eps2)`: $\epsilon_1 \ge 0$ or `None` (the compute dtype's machine epsilon), the floor of
        the estimate; $\epsilon_2 \ge 0$, the floor of the parameter scale.
      d: $\ge 1$, the RMS the update is clipped to.
      weight_decay: $\lambda \ge 0$, decoupled.
      maximize: ascend.
    """
    who = "Adafactor"
    validate(who, "lr", lr, 0.0)
    validate(who, "beta2_decay", beta2_decay, None, 0.0)
    if not isinstance(eps, (tuple, list)) or len(eps) != 2:
        raise ValueError(f"{lead(who)}: eps must be a pair (eps1, eps2), got {eps!r}.")
    eps1, eps2 = eps
    validate(who, "eps[0]", eps1, 0.0, allow_none=True)
    validate(who, "eps[1]", eps2, 0.0)
    validate(who, "d", d, 1.0)
    validate(who, "weight_decay", weight_decay, 0.0)
    validate_bool(who, "maximize", maximize)

    def rho(count):
        cap = resolve(lr, count, "lr")
        return jnp.minimum(cap, 1.0 / jnp.sqrt((count + 1).astype(cap.dtype)))

    def decay(count):
        return resolve(lr, count, "lr") * resolve(weight_decay, count, "weight_decay")

    decays = not is_zero(weight_decay)
    return chain(
        scale(-1.0) if maximize else identity(),
        scale_by_torch_factored_rms(beta2_decay, eps1),
        clip_by_block_rms(d),
        scale_by_param_block_rms(eps2),
        scale_by_learning_rate(rho, flip_sign=False),
        add_decayed_weights(decay) if decays else identity(),  # lr * weight_decay, in the hyperparameter dtype
        scale(-1.0),
    )

