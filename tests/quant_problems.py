"""The problems quantized moments are measured on, shared by `tests/test_quantized.py` and `benchmarks/memory.py`.

* `digits`: scikit-learn's digits, an MLP 64-256-256-10 (tanh), AdamW, 600 steps of batch 128 (fixed
  seeds), one compiled `lax.scan`; returns held-out accuracy and loss.
* `regression`: a noisy 2-D regression, 2048 points $y = \\sin(3x_1)\\cos(2x_2) + 0.1\\,\\varepsilon$ (loss floor
  0.01), an MLP 2-64-64-1, Adam, 2000 full-batch steps, one `lax.scan`; returns the final training loss.
* `mlp_params`: a 141.5k-parameter MLP (128-256-256-160-10) for bytes per parameter.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from gradxform.race.problems import init_mlp, load_digits_split, mlp_logits

DIGITS_SIZES = (64, 256, 256, 10)
BYTES_SIZES = (128, 256, 256, 160, 10)
STORAGE = {
    "float32": None,
    "bfloat16": jnp.bfloat16,
    "8-bit": gx.quantized(8),
    "4-bit": gx.quantized(4),
}


def mlp_params(sizes: tuple[int, ...] = BYTES_SIZES, seed: int = 0) -> list[dict[str, jax.Array]]:
    return init_mlp(jax.random.key(seed), sizes)


def _xent(params, x, y):
    logits = mlp_logits(params, x)
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0])


def digits_optimizer(storage: Any = None, *, adafactor: bool = False):
    if adafactor:
        return gx.adafactor(1e-3, weight_decay_rate=1e-4)
    return gx.adamw(2e-3, weight_decay=1e-4, mu_dtype=storage, nu_dtype=storage)


def digits(tx, steps: int = 600, batch: int = 128, seed: int = 0) -> dict[str, float]:
    """Held-out accuracy (in points) and loss after `steps` AdamW steps on digits (and bytes per parameter)."""
    x_tr, x_te, y_tr, y_te = load_digits_split(seed)
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(len(x_tr), batch, replace=False) for _ in range(steps)])
    params = init_mlp(jax.random.key(seed), DIGITS_SIZES)
    state = tx.init(params)
    bytes_pp = gx.state_bytes_per_param(state, params)
    xs, ys = jnp.asarray(x_tr)[idx], jnp.asarray(y_tr)[idx]

    @jax.jit
    def run(params, state):
        def body(carry, batch):
            p, s = carry
            g = jax.grad(_xent)(p, *batch)
            u, s = tx.update(g, s, p)
            return (gx.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (params, state), (xs, ys))
        return p

    p = run(params, state)
    logits = mlp_logits(p, jnp.asarray(x_te))
    acc = 100.0 * float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(y_te)))
    return {"accuracy": acc, "loss": float(_xent(p, jnp.asarray(x_te), jnp.asarray(y_te))), "bytes": bytes_pp}


def regression_data(n: int = 2048, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    y = (np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1]) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y[:, None])


def regression_optimizer(storage: Any = None):
    return gx.adam(1e-2, mu_dtype=storage, nu_dtype=storage)


def regression(tx, steps: int = 2000, seed: int = 0) -> float:
    """The final full-batch training loss (the noise floor is 0.01) after `steps` steps."""
    x, y = regression_data(seed=seed)
    params = init_mlp(jax.random.key(seed + 1), (2, 64, 64, 1))

    def loss(p):
        return jnp.mean((mlp_logits(p, x) - y) ** 2)

    @jax.jit
    def run(params):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return (gx.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
        return loss(p)

    return float(run(params))
