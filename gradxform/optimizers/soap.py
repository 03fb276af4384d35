"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024)."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import (
    add_decayed_weights,
    add_eps,
    bias_correction,
    ema,
    ema_sq,
    ratio,
    scale_by_learning_rate,
    sqrt,
)
from gradxform.blocks.eigenbasis import in_eigenbasis, normalize_by_rms
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.errors import lead
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate, validate_bool, validate_dtype, validate_int
from gradxform.numerics.quantize import is_spec
from gradxform.optimizers.adam import adam_denominator


@public
def soap(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.95,
    b2: Hyperparameter = 0.95,
    shampoo_beta: Hyperparameter | None = None,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    correct_bias: bool = True,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""SOAP: ShampoO with Adam in the Preconditioner's eigenbasis (Vyas et al. 2024, Algorithm 3).

    On each matrix leaf $G$ ($m \times n$), with Shampoo's factors $L, R$ and their eigenbases
    $Q_L, Q_R$:

    $$\begin{aligned}
    G' &= Q_L^\top G\,Q_R, \\
    M' &\leftarrow \beta_1 M' + (1-\beta_1)\,G', \qquad V \leftarrow \beta_2 V + (1-\beta_2)\,G'\odot G', \\
    N &= Q_L\,\frac{M'/(1-\beta_1^k)}{\sqrt{V/(1-\beta_2^k)} + \epsilon}\,Q_R^\top, \qquad
    \Delta W = -\eta\,(N + \lambda W), \\
    L &\leftarrow \beta_s L + (1-\beta_s)\,GG^\top, \qquad R \leftarrow \beta_s R + (1-\beta_s)\,G^\top G, \\
    Q_L &\leftarrow \mathrm{QR}(L\,Q_L), \quad Q_R \leftarrow \mathrm{QR}(R\,Q_R) \quad \text{when } k \bmod f = 0
    \end{aligned}$$

    where $k = t - 1$ counts Adam's steps: the first step only gathers $L, R$ and sets $Q_L, Q_R$ to
    their eigenvectors by decreasing eigenvalue, and updates nothing (the reference implementation's rule:
    no step projects its own gradient). Those eigenvectors are $G$'s singular vectors, taken from its SVD
    (the reference takes `eigh` of $L, R$: the same basis up to signs, but the basis of a kernel, e.g. $L$'s
    while $G$ has fewer columns than rows, is then set by the rounding of $GG^\top$, which differs between
    one device and a sharded product). A refresh is one power-iteration step
    (the columns of $Q$ first sorted by $\mathrm{diag}(Q^\top L Q)$, decreasing, and $V$ re-ordered
    with them); the momentum $M'$ is rotated into the new basis (it is Algorithm 3's $Q_L^\top M Q_R$,
    $M$ the momentum of $G$). $\beta_s$ is `shampoo_beta` (default $\beta_2$). A leaf of rank $\ge 3$ is
    the matrix $(\prod_{k<d-1} n_k) \times n_{d-1}$; a side with more than `max_precond_dim` entries is
    not rotated; a vector is rotated only with `precondition_1d` (a $d \times d$ factor); a scalar never:
    those leaves take Adam (from the second step on).

    Chain: `in_eigenbasis(ratio(chain(ema(b1), bias_correction(b1)), chain(ema_sq(b2),
    bias_correction(b2), sqrt(), add_eps(eps))), shampoo_beta, precondition_frequency, max_precond_dim,
    precondition_1d)`, `normalize_by_rms()` (with `normalize_grads`), `add_decayed_weights(weight_decay)`,
    `scale_by_learning_rate(learning_rate)`.

    Where it differs from the reference implementation (`nikhilvyas/SOAP`, `soap.py`): $\epsilon$ is
    added to the bias-corrected root $\sqrt{\hat V}$ (Adam's form; the reference adds it to $\sqrt{V}$,
    i.e. our $\epsilon$ times $\sqrt{1-\beta_2^k}$); weight decay is decoupled on the weights before the
    step, $-\eta\lambda W_{t-1}$ (the reference decays the weights after the step, and not at the first);
    leaves of rank $\ge 3$ are seen as one matrix (the reference keeps a factor per axis, or merges
    axes with `merge_dims`, not offered here).

    Args:
      learning_rate: $\eta \ge 0$.
      b1: $\beta_1 \in [0, 1)$ of the momentum.
      b2: $\beta_2 \in [0, 1)$ of the second moment.
      shampoo_beta: $\beta_s \in [0, 1)$ of the factors $L, R$; `None`: $\beta_2$.
      eps: $\epsilon \ge 0$.
      weight_decay: $\lambda \ge 0$ (decoupled, multiplied by $\eta$).
      precondition_frequency: $f \ge 1$, Adam steps between refreshes of the eigenbasis.
      max_precond_dim: sides with more entries get no factor (an int >= 0).
      precondition_1d: rotate vectors too (a $d \times d$ factor each).
      normalize_grads: divide each leaf's $N$ by its root mean square.
      correct_bias: divide the moments by $1 - \beta^k$.
      mu_dtype: the dtype $M'$ is stored in.
      nu_dtype: the dtype $V$ is stored in (a floating dtype: quantized codes lose its small entries).
    """
    who = "soap"
    validate(who, "learning_rate", learning_rate, NONNEGATIVE)
    validate(who, "b1", b1, UNIT)
    validate(who, "b2", b2, UNIT)
    validate(who, "shampoo_beta", shampoo_beta, UNIT, allow_none=True)
    validate(who, "eps", eps, NONNEGATIVE)
    validate(who, "weight_decay", weight_decay, NONNEGATIVE)
    validate_int(who, "precondition_frequency", precondition_frequency, 1)
    validate_int(who, "max_precond_dim", max_precond_dim, 0)
    validate_bool(who, "precondition_1d", precondition_1d)
    validate_bool(who, "normalize_grads", normalize_grads)
    validate_bool(who, "correct_bias", correct_bias)
    validate_dtype(who, "mu_dtype", mu_dtype)
    if is_spec(validate_dtype(who, "nu_dtype", nu_dtype)):
        # measured: 8-bit V moves the parameters 21% away from float32 V in 10 steps (8-bit M: 2%)
        raise TypeError(
            f"{lead(who)}: nu_dtype={nu_dtype!r}: the second moment in the eigenbasis spans more orders of "
            "magnitude within a block than a quantized code keeps (the rotation concentrates it on a few "
            "directions); store it in a floating dtype (mu_dtype may be quantized)."
        )
    if correct_bias:
        adam_ratio = ratio(chain(ema(b1, mu_dtype), bias_correction(b1)), adam_denominator(b2, eps, 0.0, nu_dtype))
    else:
        adam_ratio = ratio(ema(b1, mu_dtype), chain(ema_sq(b2, nu_dtype), sqrt(), add_eps(eps)))
    return chain(
        in_eigenbasis(
            adam_ratio,
            b2 if shampoo_beta is None else shampoo_beta,
            precondition_frequency,
            max_precond_dim,
            precondition_1d,
        ),
        normalize_by_rms() if normalize_grads else identity(),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )
