"""Muon: momentum orthogonalized by Newton-Schulz, on the matrix leaves; AdamW on the others.

Which leaves are matrices is explicit: `muon_weight_dimension_numbers` (optax's name and
meaning), by default every 2-d leaf. Everything else (biases, scales, scalars, embeddings
if you say so) goes to AdamW with its own learning rate.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradxform.blocks import (
    add_decayed_weights,
    bias_correction,
    ema,
    nesterov_ema,
    ratio,
    scale_by_learning_rate,
)
from gradxform.blocks.orthogonal import (
    NS_COEFFS,
    PRECONDITIONINGS,
    DimensionNumbers,
    leaf_dimension_numbers,
    matrix_axes,
    ns_coefficients,
    orthogonalize,
    scale_by_shape,
)
from gradxform.core import GradientTransformation, chain, public
from gradxform.errors import lead
from gradxform.hyper import NONNEGATIVE, POSITIVE, UNIT, Hyperparameter, validate, validate_bool, validate_dtype
from gradxform.optimizers.adam import adam_denominator
from gradxform.wrappers.masking import partition


def momentum_of(beta: Hyperparameter, nesterov: bool, mu_dtype: Any) -> GradientTransformation:
    r"""The bias-corrected momentum Muon and its AdamW orthogonalize or divide.

    $$\mu_t = \beta\mu_{t-1} + (1-\beta)g_t,\qquad
    \hat m_t = \begin{cases}\beta\frac{\mu_t}{1-\beta^{t+1}} + (1-\beta)\frac{g_t}{1-\beta^t} & \text{nesterov}\\
    \frac{\mu_t}{1-\beta^t} & \text{otherwise}\end{cases}$$
    """
    return nesterov_ema(beta, state_dtype=mu_dtype) if nesterov else chain(ema(beta, mu_dtype), bias_correction(beta))


@public
def muon(
    learning_rate: Hyperparameter,
    ns_coeffs: Any = NS_COEFFS,
    ns_steps: int = 5,
    beta: Hyperparameter = 0.95,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: Hyperparameter = 0.9,
    adam_b2: Hyperparameter = 0.999,
    adam_eps_root: Hyperparameter = 0.0,
    adam_weight_decay: Hyperparameter = 0.0,
    adam_learning_rate: Hyperparameter | None = None,
    muon_weight_dimension_numbers: DimensionNumbers = None,
    consistent_rms: Hyperparameter | None = None,
) -> GradientTransformation:
    r"""Muon: MomentUm Orthogonalized by Newton-Schulz (Jordan et al. 2024), AdamW for the other leaves.

    On each matrix leaf $W$ ($n_{in} \times n_{out}$, or a stack of them by its dimension numbers):

    $$\begin{aligned}
    \mu_t &= \beta\mu_{t-1} + (1-\beta)G_t, \\
    M_t &= \beta\frac{\mu_t}{1-\beta^{t+1}} + (1-\beta)\frac{G_t}{1-\beta^t}
    \quad\left(\text{no Nesterov: } \tfrac{\mu_t}{1-\beta^t}\right),\\
    O_t &= \mathrm{NS}_5(M_t) \approx UV^\top \text{ for } M_t = U\Sigma V^\top, \\
    \Delta W_t &= -\eta\left(\sqrt{\max\left(1, \tfrac{n_{out}}{n_{in}}\right)}\,O_t + \lambda W_{t-1}\right)
    \end{aligned}$$

    with the quintic Newton-Schulz iteration $X \leftarrow aX + (bA + cA^2)X$, $A = XX^\top$, from
    $X_0 = M_t/(\lVert M_t\rVert_F + \epsilon)$ (`gradxform.blocks.orthogonal.newton_schulz`). With
    `consistent_rms` $= r$ the factor is $r\sqrt{\max(n_{in}, n_{out})}$ (Liu et al. 2025). Every other
    leaf takes AdamW (NAdamW when `nesterov`, as optax) with $\beta_1$ `adam_b1`, $\beta_2$ `adam_b2`,
    the same $\epsilon$, weight decay `adam_weight_decay` and learning rate `adam_learning_rate`
    (default: `learning_rate`).

    Chain: `partition({"muon": chain(momentum, orthogonalize(...), scale_by_shape(...),
    add_decayed_weights(weight_decay, weight_decay_mask), scale_by_learning_rate(learning_rate)),
    "adam": chain(ratio(momentum(adam_b1), adam_denominator), add_decayed_weights(adam_weight_decay),
    scale_by_learning_rate(adam_learning_rate))}, labels)`, the labels by the dimension numbers.

    Which leaves are matrices: `muon_weight_dimension_numbers=None` takes every 2-d leaf as a
    matrix $(0, 1)$ (rows are the inputs of $xW$). Stacked layers from `nn.scan` / `vmap`, shape
    `(layers, d_in, d_out)`, are `MuonDimensionNumbers(1, 2)`; a convolution kernel
    `(h, w, c_in, c_out)` is `MuonDimensionNumbers((0, 1, 2), 3)`; a tree of these (`None`: AdamW)
    or a function `params -> tree` says it per leaf. A vector leaf always goes to AdamW: on a model
    made only of vectors, Muon is AdamW.

    Args:
      learning_rate: $\eta \ge 0$ of the matrix leaves.
      ns_coeffs: $(a, b, c)$, one triple per step, or a preset (`"standard"`, `"dion"`).
      ns_steps: Newton-Schulz steps (>= 1).
      beta: $\beta \in [0, 1)$ of the momentum.
      eps: $\epsilon \ge 0$, of the normalization and of AdamW's denominator.
      weight_decay: $\lambda \ge 0$ on the matrix leaves (decoupled, multiplied by $\eta$).
      weight_decay_mask: which matrix leaves decay (optax's mask meaning).
      mu_dtype: the dtype the first moments are stored in.
      nesterov: Nesterov momentum (in both parts).
      adaptive: scale $O_t$ by the dual norm $\langle M_t, O_t\rangle$ (Bernstein et al. 2024).
      preconditioning: the normalization before the iteration: `"frobenius"`, `"spectral"`, `"aol"`,
        `"schatten"`.
      adam_b1: AdamW's $\beta_1 \in [0, 1)$.
      adam_b2: AdamW's $\beta_2 \in [0, 1)$.
      adam_eps_root: AdamW's $\epsilon_{root} \ge 0$.
      adam_weight_decay: AdamW's weight decay $\ge 0$.
      adam_learning_rate: AdamW's learning rate (default: `learning_rate`).
      muon_weight_dimension_numbers: which leaves are matrices, and their axes (see above).
      consistent_rms: `None`, or $r > 0$ for RMS-matched scaling.
    """
    who = "muon"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    ns_coefficients(who, ns_coeffs, ns_steps)
    validate(who, "beta", beta, UNIT)
    validate(who, "eps", eps, NONNEGATIVE)
    validate(who, "weight_decay", weight_decay, NONNEGATIVE)
    validate_dtype(who, "mu_dtype", mu_dtype)
    validate_bool(who, "nesterov", nesterov)
    validate_bool(who, "adaptive", adaptive)
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(f"{lead(who)}: preconditioning={preconditioning!r} is not one of {PRECONDITIONINGS}.")
    validate(who, "adam_b1", adam_b1, UNIT)
    validate(who, "adam_b2", adam_b2, UNIT)
    validate(who, "adam_eps_root", adam_eps_root, NONNEGATIVE)
    validate(who, "adam_weight_decay", adam_weight_decay, NONNEGATIVE)
    validate(who, "adam_learning_rate", adam_learning_rate, NONNEGATIVE, allow_none=True)
    validate(who, "consistent_rms", consistent_rms, POSITIVE, allow_none=True)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    dims = muon_weight_dimension_numbers

    def labels(tree):  # also where bad dimension numbers are refused, at init, before anything is built
        matrix = leaf_dimension_numbers(dims, tree)

        def label(x, d):
            if d is None:
                return "adam"
            matrix_axes(jnp.shape(x), d)
            return "muon"

        return jax.tree.map(label, tree, matrix, is_leaf=_is_none)

    return partition(
        {
            "muon": chain(
                momentum_of(beta, nesterov, mu_dtype),
                orthogonalize(ns_coeffs, ns_steps, preconditioning, eps, dims, adaptive),
                scale_by_shape(dims, consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": chain(
                ratio(momentum_of(adam_b1, nesterov, mu_dtype), adam_denominator(adam_b2, eps, adam_eps_root, None)),
                add_decayed_weights(adam_weight_decay),
                scale_by_learning_rate(adam_learning_rate),
            ),
        },
        labels,
    )


def _is_none(x: Any) -> bool:
    return x is None
