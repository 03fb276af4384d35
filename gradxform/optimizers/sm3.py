"""SM3: Adagrad with one accumulator per slice along each axis, memory linear in the dimensions."""

from __future__ import annotations

from gradxform.blocks import ema, scale_by_learning_rate, scale_by_sm3
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, UNIT, Hyperparameter, validate


@public
def sm3(learning_rate: Hyperparameter, momentum: Hyperparameter = 0.9) -> GradientTransformation:
    r"""SM3 (Anil, Gupta, Koren & Singer 2019) with optax's cover sets: the slices along each axis.

    For a leaf of shape $(d_1, \dots, d_k)$, $k \ge 2$, each slice $S_{i,j}$ (index $j$ on axis $i$)
    keeps one accumulator $\mu_{i,j}$:

    $$\begin{aligned}
    \nu_t(x) &= g_t(x)^2 + \min_i \mu_{i, x_i}, \qquad \mu_{i,j} \leftarrow \max_{x \in S_{i,j}} \nu_t(x), \\
    m_t &= \beta\, m_{t-1} + (1-\beta)\,\frac{g_t}{\sqrt{\nu_t + 10^{-8}}}, \qquad
    \Delta\theta_t = -\eta\, m_t
    \end{aligned}$$

    (the ratio is 0 where $\nu_t = 0$). A $d_1 \times \dots \times d_k$ leaf keeps
    $d_1 + \dots + d_k$ accumulators instead of $d_1 \cdots d_k$. On 0-d and 1-d leaves every
    slice is one element, so SM3 is Adagrad there ($\nu_t$ the running sum of $g^2$); optax's
    `sm3` does the same on 1-d leaves and fails on 0-d ones. Real parameters only; it looks at
    leaf shapes, so `FlatParams` is refused.

    Chain: `scale_by_sm3()`, `ema(momentum)`, `scale_by_learning_rate(learning_rate)`.

    Args:
      learning_rate: $\eta \ge 0$.
      momentum: $\beta \in [0, 1)$, the decay of the moving average of the scaled gradients.
    """
    validate("sm3", "learning_rate", learning_rate, NONNEGATIVE)
    validate("sm3", "momentum", momentum, UNIT)
    return chain(scale_by_sm3(), ema(momentum), scale_by_learning_rate(learning_rate))
