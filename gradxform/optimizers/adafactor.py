"""Adafactor: adaptive steps with a sublinear-memory (factored) second moment (Shazeer & Stern 2018)."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_decayed_weights, ema, scale, scale_by_learning_rate
from gradxform.blocks.factored import scale_by_factored_rms
from gradxform.blocks.layerwise import clip_by_block_rms, scale_by_param_block_rms
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, POSITIVE, UNIT, Hyperparameter, validate, validate_bool, validate_dtype
from gradxform.hyper.validate import validate_int


@public
def adafactor(
    learning_rate: Hyperparameter | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Hyperparameter = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Hyperparameter | None = 1.0,
    momentum: Hyperparameter | None = None,
    dtype_momentum: Any = "float32",
    weight_decay_rate: Hyperparameter | None = None,
    eps: Hyperparameter = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any = None,
) -> GradientTransformation:
    r"""Adafactor (Shazeer & Stern 2018), optax's form.

    $$\begin{aligned}
    \hat\beta_{2,t} &= 1 - t^{-c}, \qquad G_t = g_t^2 + \epsilon_1, \\
    R_t &= \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\operatorname{mean}_m G_t, \\
    C_t &= \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\operatorname{mean}_n G_t, \\
    \hat V_t &= \frac{R_t C_t}{\operatorname{mean}_n R_t}, \\
    U_t &= \frac{g_t}{\sqrt{\hat V_t}}, \\
    \bar U_t &= \frac{U_t}{\max(1, \mathrm{RMS}(U_t)/d)}, \\
    \Delta\theta_t &= -\eta_t \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\bar U_t
    \end{aligned}$$

    per leaf; $R$, $C$ are the row and column statistics of a factored leaf (its two
    largest axes $n \times m$), other leaves keep the full $V_t$ (`factored=False`: every
    leaf). $\epsilon_2 = 10^{-3}$. With `momentum`, $\bar U$'s scaled step is averaged,
    $m_t = \beta_1 m_{t-1} + (1-\beta_1)\,(\cdot)$; with `weight_decay_rate`, $\lambda\theta$ is
    added before the sign flip.

    Chain: `scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)`,
    `[clip_by_block_rms(clipping_threshold)]`, `[scale_by_learning_rate(learning_rate, flip_sign=False)]`,
    `[scale_by_param_block_rms()]`, `[ema(momentum, dtype_momentum)]`,
    `[add_decayed_weights(weight_decay_rate, weight_decay_mask)]`, `scale(-1)`: each bracketed block
    only when its argument asks for it, as optax. `update` needs `params`.

    The paper's relative step size $\eta_t = \min(10^{-2}, 1/\sqrt t)$ is the schedule
    `learning_rate=lambda count: jnp.minimum(1e-2, jax.lax.rsqrt(count + 1.0))` with the
    default parameter scale; `learning_rate=None` (optax's default) is $\eta_t = 1$.

    Args:
      learning_rate: $\eta \ge 0$, a schedule, or `None` (no scaling).
      min_dim_size_to_factor: factor a leaf only if its second largest axis has at least this many entries.
      decay_rate: $c \ge 0$ of $\hat\beta_{2,t} = 1 - t^{-c}$.
      decay_offset: an int $\ge 0$ subtracted from $t$ in $\hat\beta_{2,t}$ (fine-tuning restarts).
      multiply_by_parameter_scale: scale each leaf's step by $\max(\epsilon_2, \mathrm{RMS}(\theta))$.
      clipping_threshold: $d > 0$ of the update clipping, or `None` for none.
      momentum: $\beta_1 \in [0, 1)$, or `None` for no first moment.
      dtype_momentum: the dtype the first moment is stored in (`None`: the parameter's).
      weight_decay_rate: $\lambda \ge 0$, or `None` for no decay.
      eps: $\epsilon_1 \ge 0$, added to $g^2$.
      factored: use the factored second moment where a leaf allows it.
      weight_decay_mask: which leaves decay (optax's meaning: `None` for all, a tree of bools or a prefix,
        or a function of the parameters).
    """
    who = "adafactor"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE, allow_none=True)
    validate_int(who, "min_dim_size_to_factor", min_dim_size_to_factor, 0)
    validate(who, "decay_rate", decay_rate, NONNEGATIVE)
    validate_int(who, "decay_offset", decay_offset, 0)
    validate_bool(who, "multiply_by_parameter_scale", multiply_by_parameter_scale)
    validate(who, "clipping_threshold", clipping_threshold, POSITIVE, allow_none=True)
    validate(who, "momentum", momentum, UNIT, allow_none=True)
    validate_dtype(who, "dtype_momentum", dtype_momentum)
    validate(who, "weight_decay_rate", weight_decay_rate, NONNEGATIVE, allow_none=True)
    validate(who, "eps", eps, NONNEGATIVE)
    validate_bool(who, "factored", factored)
    blocks = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        blocks.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        blocks.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        blocks.append(scale_by_param_block_rms())
    if momentum is not None:
        blocks.append(ema(momentum, dtype_momentum))
    if weight_decay_rate is not None:
        blocks.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    blocks.append(scale(-1.0))
    return chain(*blocks)
