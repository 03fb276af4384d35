"""Learning-rate-free methods: DoG, DoWG, Prodigy, D-Adaptation AdamW, COCOB, Mechanic.

Each estimates its own step size; the `learning_rate` argument (default 1.0) only scales
it (optax.contrib's names, arguments and defaults). They read whole-tree norms, inner
products or sums, so sharded over devices they all-reduce scalars, and `update` needs the
parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradxform.blocks import add_decayed_weights, scale_by_learning_rate
from gradxform.blocks.lr_free import scale_by_dadapt_adam, scale_by_dog, scale_by_dowg, scale_by_prodigy
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
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,d_t g_t, &
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,d_t^2 g_t^2,\\
    s_t &= \beta_3 s_{t-1} + \frac{d_t\hat\eta_t}{d_0}\,g_t, &
    r_t &= \beta_3 r_{t-1} + \frac{d_t\hat\eta_t}{d_0}\,\langle g_t, x_0 - x_t\rangle, &
    d_{t+1} &= \max\Big(d_t, \frac{c\,r_t}{\|s_t\|_1}\Big),\\
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
    \hat\eta_t &= d_t\,\eta_t\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, &
    r_t &= \sqrt{\beta_2}\,r_{t-1} + (1-\sqrt{\beta_2})\,\hat\eta_t
      \Big\langle g_t, \frac{s_{t-1}}{\sqrt{v_{t-1}}+\epsilon}\Big\rangle,\\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,\hat\eta_t g_t, &
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2, \qquad
    s_t = \sqrt{\beta_2}\,s_{t-1} + (1-\sqrt{\beta_2})\,\hat\eta_t g_t,\\
    d_{t+1} &= \max\Big(d_t, \frac{r_t}{(1-\sqrt{\beta_2})\|s_t\|_1}\Big), &
    \Delta x_t &= -\frac{m_t}{\sqrt{v_t}+\epsilon} - \lambda\hat\eta_t x_t
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
