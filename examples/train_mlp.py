"""Trains a small MLP on a synthetic regression task with gradxform.adam and prints the loss falling.

Run: ``python examples/train_mlp.py`` (about ten seconds on a 2-core CPU).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

import gradxform as gx


def init_mlp(key: jax.Array, sizes: list[int]) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def mlp(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
    return jnp.mean((mlp(params, x) - y) ** 2)


def main(steps: int = 1000, seed: int = 0) -> float:
    kx, kp = jax.random.split(jax.random.key(seed))
    x = jax.random.uniform(kx, (512, 2), minval=-2.0, maxval=2.0)
    y = jnp.sin(x[:, :1]) * jnp.cos(x[:, 1:])  # a smooth 2-D target
    params = init_mlp(kp, [2, 32, 32, 1])
    tx = gx.adam(learning_rate=1e-2)
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state, loss

    start = time.perf_counter()
    for i in range(steps + 1):
        params, state, loss = step(params, state)
        if i % (steps // 10) == 0:
            print(f"step {i:5d}  loss {float(loss):.6f}")
    print(f"done in {time.perf_counter() - start:.1f} s; final loss {float(loss):.6f}")
    return float(loss)


if __name__ == "__main__":
    main()
