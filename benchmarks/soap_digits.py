"""SOAP beside Adam on scikit-learn's digits: the numbers of docs/optimizers/soap.md.

A 64-128-10 tanh MLP, minibatches of 64 (fixed seeds), 600 steps, the held-out cross-entropy after every
step; Adam, SOAP and SOAP without factors (`max_precond_dim=0`: Adam with SOAP's betas, one step late),
each at six learning rates. Adam's tuned learning rate is the one with the lowest held-out loss at the end;
reported: the first step at which each run is at or below that loss. Run from the repository root::

    python -m benchmarks.soap_digits [STEPS]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gradxform as gx  # noqa: E402
from gradxform.race.problems import load_digits_split  # noqa: E402

BATCH = 64
LRS = (1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2)
OPTIMIZERS = {
    "adam": gx.adam,
    "soap": gx.soap,
    "soap-no-factors": lambda lr: gx.soap(lr, max_precond_dim=0),
}


def init(key, sizes=(64, 128, 10)):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / (m + n)), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def logits(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss(params, x, y):
    logp = jax.nn.log_softmax(logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def held_out_curve(tx, steps: int) -> np.ndarray:
    """The held-out loss after each of `steps` minibatch steps (the same batches for every optimizer)."""
    x_tr, x_te, y_tr, y_te = (jnp.asarray(a) for a in load_digits_split(0))
    rng = np.random.default_rng(0)
    batches = jnp.asarray(np.stack([rng.choice(x_tr.shape[0], BATCH, replace=False) for _ in range(steps)]))
    params = init(jax.random.key(0))

    def step(carry, i):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p, x_tr[i], y_tr[i]), s, p)
        p = gx.apply_updates(p, u)
        return (p, s), loss(p, x_te, y_te)

    _, held = jax.jit(lambda p, s: jax.lax.scan(step, (p, s), batches))(params, tx.init(params))
    return np.asarray(held)


def first_at_or_below(curve: np.ndarray, target: float) -> int | None:
    hit = np.nonzero(curve <= target)[0]
    return int(hit[0]) + 1 if hit.size else None


def main(steps: int = 600) -> None:
    curves = {}
    for name, make in OPTIMIZERS.items():
        for lr in LRS:
            t0 = time.perf_counter()
            curves[name, lr] = c = held_out_curve(make(lr), steps)
            print(
                f"{name} lr={lr:g}: held-out {c[-1]:.4f} at {steps}, lowest {c.min():.4f} at step {c.argmin() + 1} "
                f"({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    tuned = min(LRS, key=lambda lr: curves["adam", lr][-1])
    target = curves["adam", tuned][-1]
    print(
        f"Adam tuned: lr={tuned:g}, held-out {target:.4f} at {steps} (first at step "
        f"{first_at_or_below(curves['adam', tuned], target)})"
    )
    for (name, lr), c in curves.items():
        if name != "adam":
            print(f"  {name} lr={lr:g}: first at or below {target:.4f} at step {first_at_or_below(c, target)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
