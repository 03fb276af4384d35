"""Adagrad: the gradient divided by the root of the running sum of its squares."""

from __future__ import annotations

from typing import Any

from gradxform.blocks import add_eps, ratio, scale_by_learning_rate, sqrt, sum_sq
from gradxform.core import GradientTransformation, chain, public
from gradxform.hyper import NONNEGATIVE, Hyperparameter, validate, validate_dtype


@public
def adagrad(
    learning_rate: Hyperparameter,
    initial_accumulator_value: float = 0.1,
    eps: Hyperparameter = 1e-7,
    state_dtype: Any = None,
) -> GradientTransformation:
    r"""Adagrad (Duchi et al. 2011).

    $$s_t = s_{t-1} + g_t^2, \quad s_0 = \text{initial_accumulator_value}, \qquad
    \Delta\theta_t = -\eta\,\frac{g_t}{\sqrt{s_t + \epsilon}}$$

    eps inside the root, as in optax and Keras.

    Chain: `ratio(None, chain(sum_sq(initial_accumulator_value), add_eps(eps), sqrt()))`,
    `scale_by_learning_rate`.

    Args:
      learning_rate: $\eta \ge 0$.
      initial_accumulator_value: $s_0 \ge 0$.
      eps: $\epsilon \ge 0$, inside the root.
      state_dtype: the dtype $s$ is stored in (default: the parameter's real dtype).
    """
    validate("adagrad", "learning_rate", learning_rate, NONNEGATIVE)
    validate("adagrad", "initial_accumulator_value", initial_accumulator_value, NONNEGATIVE)
    validate("adagrad", "eps", eps, NONNEGATIVE)
    validate_dtype("adagrad", "state_dtype", state_dtype)
    return chain(
        ratio(None, chain(sum_sq(initial_accumulator_value, state_dtype), add_eps(eps), sqrt())),
        scale_by_learning_rate(learning_rate),
    )
