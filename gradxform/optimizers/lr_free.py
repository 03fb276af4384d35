"""Learning-rate-free methods: DoG, DoWG, Prodigy, D-Adaptation AdamW, COCOB, Mechanic, MoMo, MoMo-Adam.

Each estimates its own step size; the `learning_rate` argument (default 1.0) only scales
it (optax.contrib's names, arguments and defaults). They read whole-tree norms, inner
products or sums, so sharded over devices they all-reduce scalars, and `update` needs the
parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradxform.blocks import add_decayed_weights, scale_by_learning_rate
from gradxform.blocks.lr_free import (
    scale_by_cocob,
    scale_by_dadapt_adam,
    scale_by_dog,
    scale_by_dowg,
    scale_by_mechanic,
    scale_by_momo,
    scale_by_momo_adam,
    scale_by_prodigy,
)
from gradxform.core import GradientTransformation, chain, identity, public
from gradxform.hyper import NONNEGATIVE, Hyperparameter, validate

WeightDecayMask = Any | Callable[[Any], Any] | None


def _decay(who: str, weight_decay: Hyperparameter | None, mask: WeightDecayMask) -> GradientTransformation:
    validate(who, "weight_decay", weight_decay, NONNEGATIVE, allow_none=True)
    return identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)


@public
def dog(
    learning_rate: Hyperparameter = 1.0,
    init_step: tuple[str, Any] = ("heuristic", 1e-6),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter | None = None,
    mask: WeightDecayMask = None,
) -> GradientTransformation:
    r"""DoG, Distance over Gradients (Ivgi et al. 2023): SGD whose step is the distance travelled over the
    root of the summed squared gradient norms.

    $$\begin{aligned}
    \bar r_t &= \max(\bar r_{t-1}, \|x_t - x_0\|), \quad \bar r_0 = r_\epsilon, &
    G_t &= G_{t-1} + \|g_t\|^2,\\
    \Delta x_t &= -\eta\,\frac{\bar r_t}{\sqrt{G_t + \epsilon}}\,g_t
    \end{aligned}$$

    with whole-tree norms and $g_t$ the gradient plus $\lambda x_t$ when `weight_decay` is
    given. The first step is $\eta\,r_\epsilon / \sqrt{\|g_1\|^2 + \epsilon}$: small, by the
    choice of $r_\epsilon$ (`init_step`). The authors recommend averaging the iterates.

    Chain: `add_decayed_weights(weight_decay, mask)` (if `weight_decay` is not None),
    `scale_by_dog(init_step, eps)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$, a factor on the estimated step (1.0: none).
      init_step: `("heuristic", alpha)`: $r_\epsilon = \alpha(1 + \|x_0\|)$ (the paper suggests
        1e-6, 1e-4 with batch normalisation); `("distance", r)`: $r_\epsilon = r$;
        `("learning_rate", eta0)`: the first step size is $\eta_0$.
      eps: $\epsilon > 0$, added to $G_t$.
      weight_decay: $\lambda \ge 0$ or `None` (none).
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("dog", "learning_rate", learning_rate, NONNEGATIVE)
    return chain(
        _decay("dog", weight_decay, mask),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


@public
def dowg(
    learning_rate: Hyperparameter = 1.0,
    init_estim_sq_dist: Hyperparameter | None = None,
    eps: Hyperparameter = 1e-4,
    weight_decay: Hyperparameter | None = None,
    mask: WeightDecayMask = None,
) -> GradientTransformation:
    r"""DoWG, Distance over Weighted Gradients (Khaled et al. 2023): DoG with the gradient norms weighted
    by the squared distance estimate.

    $$\begin{aligned}
    \bar r_t^2 &= \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), &
    v_t &= v_{t-1} + \bar r_t^2\,\|g_t\|^2,\\
    \Delta x_t &= -\eta\,\frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\,g_t
    \end{aligned}$$

    with $\bar r_0^2$ = `init_estim_sq_dist` (default $\epsilon$) and whole-tree norms.

    Chain: `add_decayed_weights(weight_decay, mask)` (if `weight_decay` is not None),
    `scale_by_dowg(init_estim_sq_dist, eps)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$, a factor on the estimated step (1.0: none).
      init_estim_sq_dist: $\bar r_0^2 > 0$, or `None` for $\epsilon$.
      eps: $\epsilon > 0$.
      weight_decay: $\lambda \ge 0$ or `None` (none).
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("dowg", "learning_rate", learning_rate, NONNEGATIVE)
    return chain(
        _decay("dowg", weight_decay, mask),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )


@public
def prodigy(
    learning_rate: Hyperparameter = 1.0,
    betas: tuple[Hyperparameter, Hyperparameter] = (0.9, 0.999),
    beta3: Hyperparameter | None = None,
    eps: Hyperparameter = 1e-8,
    estim_lr0: Hyperparameter = 1e-6,
    estim_lr_coef: Hyperparameter = 1.0,
    weight_decay: Hyperparameter = 0.0,
    safeguard_warmup: bool = False,
) -> GradientTransformation:
    r"""Prodigy (Mishchenko & Defazio 2023): Adam whose step $d_t$ estimates the distance to a solution.

    $$\begin{aligned}
    \hat\eta_t &= d_t\,\eta_t\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, &
    d_{t+1} &= \max\Big(d_t, \frac{c\,r_t}{\|s_t\|_1}\Big),\\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,d_t g_t, &
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,d_t^2 g_t^2,\\
    s_t &= \beta_3 s_{t-1} + \frac{d_t\hat\eta_t}{d_0}\,g_t, &
    r_t &= \beta_3 r_{t-1} + \frac{d_t\hat\eta_t}{d_0}\,\langle g_t, x_0 - x_t\rangle,\\
    \Delta x_t &= -\hat\eta_t\Big(\frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon} + \lambda x_t\Big)
    \end{aligned}$$

    $\beta_3$ defaults to $\sqrt{\beta_2}$; inner products and $\|s_t\|_1$ are over the whole tree. This is
    optax.contrib's form (the paper's Algorithm 3 with Adam's bias correction in $\hat\eta_t$ and $d_{t+1}\epsilon$
    in the denominator).

    Chain: `scale_by_prodigy(...)`, one block: $\hat\eta_t$ scales the Adam direction and the decay both,
    and $\eta_t$ enters the estimate of $d$ through $s_t$ and $r_t$.

    Args:
      learning_rate: $\eta_t \ge 0$, a factor on the estimated step (1.0: none); may be a schedule.
      betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
      beta3: $\beta_3 \in [0, 1)$, or `None` for $\sqrt{\beta_2}$.
      eps: $\epsilon \ge 0$.
      estim_lr0: $d_0 > 0$, the first distance estimate.
      estim_lr_coef: $c > 0$, a factor on the estimate.
      weight_decay: $\lambda \ge 0$, decoupled.
      safeguard_warmup: accumulate $s_t$ without $\eta_t$ and the bias correction (for warm-up schedules).
    """
    return chain(
        scale_by_prodigy(learning_rate, betas, beta3, eps, estim_lr0, estim_lr_coef, weight_decay, safeguard_warmup)
    )


@public
def dadapt_adamw(
    learning_rate: Hyperparameter = 1.0,
    betas: tuple[Hyperparameter, Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    estim_lr0: Hyperparameter = 1e-6,
    weight_decay: Hyperparameter = 0.0,
) -> GradientTransformation:
    r"""D-Adaptation AdamW (Defazio & Mishchenko 2023): AdamW whose step $d_t$ is a growing lower bound on
    the distance to a solution.

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

    Inner products and $\|s_t\|_1$ are over the whole tree; optax.contrib's form.

    Chain: `scale_by_dadapt_adam(...)`, one block ($\hat\eta_t$ enters the moments, the estimate and the decay).

    Args:
      learning_rate: $\eta_t \ge 0$, a factor on the estimated step (1.0: none); may be a schedule.
      betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
      eps: $\epsilon \ge 0$.
      estim_lr0: $d_0 > 0$, the first distance estimate.
      weight_decay: $\lambda \ge 0$, decoupled.
    """
    return chain(scale_by_dadapt_adam(learning_rate, betas, eps, estim_lr0, weight_decay))


@public
def cocob(
    learning_rate: Hyperparameter = 1.0,
    alpha: Hyperparameter = 100.0,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    mask: WeightDecayMask = None,
) -> GradientTransformation:
    r"""COCOB-Backprop (Orabona & Tommasi, "Training Deep Networks without Learning Rates Through Coin
    Betting", 2017): every parameter bets on its own gradients; no step size.

    With $g_t$ the gradient plus $\lambda x_t$, scaled by $\eta$:

    $$\begin{aligned}
    L_t &= \max(L_{t-1}, |g_t|),\ L_0 = \epsilon, \\
    G_t &= G_{t-1} + |g_t|, \\
    R_t &= \max(R_{t-1} - g_t(x_t - x_0), 0), \\
    C_t &= C_{t-1} - g_t,\\
    x_{t+1} &= x_0 + \frac{C_t}{L_t\max(G_t + L_t, \alpha L_t)}\,(L_t + R_t)
    \end{aligned}$$

    elementwise, per parameter. Chain: `add_decayed_weights(weight_decay, mask)`,
    `scale_by_learning_rate(learning_rate, flip_sign=False)`, `scale_by_cocob(alpha, eps)`.

    Args:
      learning_rate: $\eta \ge 0$, a factor on the gradients the bettors see (1.0: none).
      alpha: $\alpha > 0$.
      eps: $\epsilon > 0$, the first $L$.
      weight_decay: $\lambda \ge 0$ (added to the gradient).
      mask: which parameters decay (optax's meaning; see `add_decayed_weights`).
    """
    validate("cocob", "learning_rate", learning_rate, NONNEGATIVE)
    validate("cocob", "weight_decay", weight_decay, NONNEGATIVE)
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )


@public
def mechanize(
    base_optimizer: GradientTransformation,
    weight_decay: Hyperparameter = 1e-2,
    eps: Hyperparameter = 1e-8,
    s_init: Hyperparameter = 1e-6,
    num_betas: int = 6,
) -> GradientTransformation:
    r"""Mechanic (Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner", 2023): the base optimizer's
    steps, scaled by $S_t = \sum_i s_{t,i}$ learned by `num_betas` coin bettors.

    $$\begin{aligned}
    \tilde g_t &= g_t + \lambda\,S_{t-1}\frac{\|g_t\|}{\|x_t\| + \epsilon}\,x_t, &
    h_t &= \Big\langle \tilde g_t, \frac{x_0 - x_t}{S_{t-1} + \epsilon}\Big\rangle,\\
    m_{t,i} &= \max(\beta_i m_{t-1,i}, |h_t| + \epsilon), &
    v_{t,i} &= \beta_i^2 v_{t-1,i} + h_t^2,\\
    r_{t,i} &= \beta_i r_{t-1,i} + \mathrm{clip}(h_t, \pm m_{t-1,i})\,s_{t-1,i}, &
    s_{t,i} &= \frac{\frac{s_{init}}{n} m_{t,i} + \max(r_{t,i}, 0)}{\sqrt{v_{t,i}} + \epsilon},\\
    x_{t+1} &= x_0 - S_t\Big(\frac{x_0 - x_t}{S_{t-1} + \epsilon} - u_t\Big)
    \end{aligned}$$

    with $\beta_i = 1 - 10^{-i}$ and $u_t$ the base optimizer's update. Chain:
    `scale_by_mechanic(base_optimizer, weight_decay, eps, s_init, num_betas)`.

    Args:
      base_optimizer: the optimizer whose steps are scaled (gradxform or optax).
      weight_decay: $\lambda \ge 0$.
      eps: $\epsilon > 0$.
      s_init: $s_{init} > 0$, the first total scale.
      num_betas: $n \ge 1$, the number of bettors (static).
    """
    return chain(scale_by_mechanic(base_optimizer, weight_decay, eps, s_init, num_betas))


@public
def momo(
    learning_rate: Hyperparameter = 1.0,
    beta: Hyperparameter = 0.9,
    lower_bound: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    r"""MoMo (Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive Learning Rates",
    2024): SGD with momentum whose step is truncated by a model of the loss; `update` needs `value=`, the loss.

    $$\begin{aligned}
    d_t &= \beta d_{t-1} + (1-\beta)g_t, \\
    \bar f_t &= \beta \bar f_{t-1} + (1-\beta) f(x_t), \\
    \gamma_t &= \beta\gamma_{t-1} + (1-\beta)\langle g_t, x_t\rangle \quad (\beta = 0 \text{ at } t = 1),\\
    \tau_t &= \min\Big(\alpha, \frac{\big((1+\alpha\lambda)(\bar f_t - f_* - \gamma_t) + \langle d_t, x_t\rangle\big)_+}
    {\|d_t\|^2}\Big), \\
    \Delta x_t &= -\frac{\alpha\lambda}{1+\alpha\lambda}\,x_t - \tau_t\,d_t
    \end{aligned}$$

    Chain: `scale_by_momo(learning_rate, beta, lower_bound, weight_decay, adapt_lower_bound)` (its step size
    from `momo_step`, shared with `momo_adam`).

    Args:
      learning_rate: $\alpha \ge 0$, the largest step (1.0); may be a schedule.
      beta: $\beta \in [0, 1)$.
      lower_bound: $f_*$, a lower bound on the loss.
      weight_decay: $\lambda \ge 0$.
      adapt_lower_bound: raise $f_*$ from the model (for losses whose minimum is not known).
    """
    return chain(scale_by_momo(learning_rate, beta, lower_bound, weight_decay, adapt_lower_bound))


@public
def momo_adam(
    learning_rate: Hyperparameter = 1e-2,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: Hyperparameter = 1e-8,
    lower_bound: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    r"""MoMo-Adam (Schaipp et al. 2024): Adam's preconditioned momentum with MoMo's truncated step; `update`
    needs `value=`, the loss.

    $$\begin{aligned}
    d_t &= \beta_1 d_{t-1} + (1-\beta_1)g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2)g_t^2, \\
    D_t &= \epsilon + \sqrt{v_t/(1-\beta_2^t)},\\
    \tau_t &= \min\Big(\frac{\alpha}{\rho_t}, \frac{\big((1+\alpha\lambda)(\bar f_t - \rho_t f_* - \gamma_t)
    + \langle d_t, x_t\rangle\big)_+}{\langle d_t, d_t/D_t\rangle}\Big), \quad \rho_t = 1-\beta_1^t, \\
    \Delta x_t &= -\frac{\alpha\lambda}{1+\alpha\lambda}\,x_t - \tau_t\,\frac{d_t}{D_t}
    \end{aligned}$$

    with $\bar f_t$ and $\gamma_t$ moving averages (weight $\beta_1$) of the loss and of $\langle g_t, x_t\rangle$.
    Chain: `scale_by_momo_adam(...)`.

    Args:
      learning_rate: $\alpha \ge 0$; may be a schedule.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon \ge 0$.
      lower_bound: $f_*$, a lower bound on the loss.
      weight_decay: $\lambda \ge 0$.
      adapt_lower_bound: raise $f_*$ from the model.
    """
    return chain(scale_by_momo_adam(learning_rate, b1, b2, eps, lower_bound, weight_decay, adapt_lower_bound))
