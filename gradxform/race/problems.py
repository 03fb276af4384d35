"""The race's problems: three classic 2-D surfaces and an MLP on scikit-learn's digits.

Each problem is a `Problem`: a loss over a parameter pytree, a starting
point, the loss to reach ("steps to target"), the loss's floor (for log-scale
plots of `loss - floor`) and the learning rate each optimizer races with.

* `ravine`: $f(x, y) = \\tfrac12(0.1\\,x^2 + 10\\,y^2)$, condition
  number 100 (pathological curvature: a ravine), from $(-9, 1)$.
* `rosenbrock`: $f(x, y) = (1-x)^2 + 100\\,(y-x^2)^2$, from
  $(-1.2, 1)$, minimum $f(1, 1) = 0$.
* `saddle`: $f(x, y) = x^2 - y^2 + y^4/4$, which is $x^2 - y^2$
  near its saddle at the origin (a saddle point, where plain gradient descent slows down); the quartic wall
  gives the race a finish line at $f(0, \\pm\\sqrt2) = -1$. It starts at
  $(1, 10^{-3})$, just off the ridge $y = 0$.
* `digits`: a 64-32-10 tanh MLP with softmax cross-entropy on the 1,797
  8x8 handwritten digits that ship inside scikit-learn (no download), trained
  full-batch on 80 % of them; accuracy is measured on the held-out 20 %.

The learning rates were picked by hand so that every optimizer makes honest
progress on every problem in a few hundred steps; they are in each optimizer's
registry entry (`race_lr`) and `--lr` overrides them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx

# The race's default field: the classic first-order optimizers, plus AdamW, NAdam and
# AMSGrad. Every optimizer of the registry with learning rates for the race can be raced by name.
DEFAULT_FIELD = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "nadam", "amsgrad", "adagrad", "adadelta")


def raceable() -> dict[str, Any]:
    """`{name: registry entry}` for every optimizer that has race learning rates."""
    return {name: e for name, e in gx.registry.table().items() if e.race_lr is not None}


def build(name: str, learning_rate: float) -> gx.GradientTransformation:
    """The optimizer `name` from the registry with every hyperparameter but the learning rate at its default."""
    return gx.registry.entry(name).build(learning_rate)


def learning_rate(problem: str, name: str) -> float:
    """The hand-picked learning rate of optimizer `name` on `problem`."""
    return gx.registry.entry(name).race_lr[problem]


@dataclass(frozen=True)
class Problem:
    """A loss to minimise from a start, with what the report needs to judge the result."""

    name: str
    loss: Callable[[Any], jax.Array]
    init: Callable[[int], Any]  # seed -> starting parameters
    target: float  # "steps to target" counts the steps until loss <= target
    floor: float  # the loss's infimum (0 for the digits' cross-entropy)
    accuracy: Callable[[Any], jax.Array] | None = None  # held-out accuracy, for classifiers
    surface: bool = False  # a 2-D surface: plot trajectories over its contours
    window: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, x1, y0, y1 for the contour plot
    extra: dict[str, Any] = field(default_factory=dict)


def ravine_loss(p: jax.Array) -> jax.Array:
    """$\\tfrac12(0.1\\,x^2 + 10\\,y^2)$: condition number 100."""
    return 0.5 * (0.1 * p[0] ** 2 + 10.0 * p[1] ** 2)


def rosenbrock_loss(p: jax.Array) -> jax.Array:
    """$(1-x)^2 + 100\\,(y-x^2)^2$."""
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def saddle_loss(p: jax.Array) -> jax.Array:
    """$x^2 - y^2 + y^4/4$: a saddle at the origin, minima $f(0, \\pm\\sqrt2) = -1$."""
    return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4


def _surface(name: str, loss, start, target, floor, window) -> Problem:
    return Problem(
        name=name,
        loss=loss,
        init=lambda seed: jnp.asarray(start, jnp.float32),
        target=target,
        floor=floor,
        surface=True,
        window=window,
    )


def load_digits_split(seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits scaled to [0, 1], split into train and held-out parts (stratified, by `seed`)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y.astype(np.int32), test_size=test_fraction, random_state=seed, stratify=y)


def init_mlp(key: jax.Array, sizes: tuple[int, ...] = (64, 32, 10)) -> list[dict[str, jax.Array]]:
    """Glorot-scaled weights, zero biases."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / (m + n)), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def mlp_logits(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def cross_entropy(params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of the MLP's logits against integer labels."""
    logp = jax.nn.log_softmax(mlp_logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def accuracy(params, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(mlp_logits(params, x), axis=1) == y)


def digits(seed: int) -> Problem:
    """The digits MLP for one split (the split and the initial weights both follow `seed`)."""
    x_tr, x_te, y_tr, y_te = (jnp.asarray(a) for a in load_digits_split(seed))
    return Problem(
        name="digits",
        loss=lambda p: cross_entropy(p, x_tr, y_tr),
        init=lambda s: init_mlp(jax.random.key(s)),
        target=0.1,
        floor=0.0,
        accuracy=lambda p: accuracy(p, x_te, y_te),
        extra=dict(n_train=int(x_tr.shape[0]), n_test=int(x_te.shape[0])),
    )


PROBLEM_NAMES = ("ravine", "rosenbrock", "saddle", "digits")


def make_problem(name: str, seed: int) -> Problem:
    """The problem called `name` (one of `PROBLEM_NAMES`)."""
    if name == "ravine":
        return _surface("ravine", ravine_loss, (-9.0, 1.0), 1e-3, 0.0, (-10.0, 2.0, -1.5, 1.5))
    if name == "rosenbrock":
        return _surface("rosenbrock", rosenbrock_loss, (-1.2, 1.0), 1e-3, 0.0, (-2.0, 2.0, -1.0, 3.0))
    if name == "saddle":
        return _surface("saddle", saddle_loss, (1.0, 1e-3), -0.99, -1.0, (-1.5, 1.5, -2.0, 2.0))
    if name == "digits":
        return digits(seed)
    raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEM_NAMES)}.")
