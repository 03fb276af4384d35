"""Annealed Gaussian gradient noise, from a PRNG key kept in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.core.transform import GradientTransformation, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import NONNEGATIVE, validate
from gradxform.hyper.values import Hyperparameter, resolve
from gradxform.numerics.checks import check_inexact
from gradxform.numerics.counts import safe_increment
from gradxform.numerics.dtypes import compute_dtype, real_dtype

PyTree = Any


class NoiseState(NamedTuple):
    """`key`: the raw PRNG key (uint32) the next noise is drawn from."""

    key: jax.Array


def raw_key(who: str, key: Any) -> jax.Array:
    """`key` as raw key data: an integer seed, a typed key (`jax.random.key`) or raw key data."""
    if isinstance(key, (bool, np.bool_)) or not (
        isinstance(key, (int, np.integer))
        or (isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32))
    ):
        raise TypeError(
            f"{lead(who)}: key must be an integer seed or a JAX PRNG key (jax.random.key(seed)), got {key!r}."
        )
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.ndim:
            raise ValueError(f"{lead(who)}: key must be a single key, got an array of keys of shape {list(key.shape)}.")
        return jax.random.key_data(key)
    if isinstance(key, jax.Array):
        return key
    return jax.random.key_data(jax.random.key(int(key)))


def add_noise(eta: Hyperparameter = 0.01, gamma: Hyperparameter = 0.55, key: Any = 0) -> GradientTransformation:
    r"""Adds annealed Gaussian noise (Neelakantan et al. 2015).

    $$u_t = g_t + \sigma_t\,\xi_t, \qquad \sigma_t = \sqrt{\eta / t^{\gamma}}, \qquad \xi_t \sim \mathcal N(0, I)$$

    The state holds the key; each update splits it into the next key and one for
    this step's noise, itself split into one key per leaf (optax's scheme: the same
    key gives optax's noise). The noise is drawn in each leaf's compute dtype (float32
    for bfloat16 parameters) and is complex normal for complex leaves. Per leaf, so
    `FlatParams` (whose buffers concatenate leaves) is refused.

    Args:
      eta: $\eta \ge 0$, the variance at the first step.
      gamma: $\gamma \ge 0$, the annealing exponent.
      key: an integer seed or a JAX PRNG key.
    """
    validate("add_noise", "eta", eta, NONNEGATIVE)
    validate("add_noise", "gamma", gamma, NONNEGATIVE)
    data = raw_key("add_noise", key)

    def init(params):
        check_inexact(params, "add_noise")
        return NoiseState(jnp.array(data))

    def update(updates, state, params, count, extra_args):
        key, sample = jax.random.split(jax.random.wrap_key_data(state.key))
        treedef = jax.tree.structure(updates)
        keys = jax.tree.unflatten(treedef, list(jax.random.split(sample, treedef.num_leaves)))
        t = safe_increment(count)
        e, g = resolve(eta, count, "eta"), resolve(gamma, count, "gamma")
        sigma = jnp.sqrt(e / t.astype(e.dtype) ** g)

        def one(u, k):
            ct = compute_dtype(u.dtype)
            return u.astype(ct) + sigma.astype(real_dtype(ct)) * jax.random.normal(k, u.shape, ct)

        out = jax.tree.map(one, updates, keys)
        return out, NoiseState(jax.random.key_data(key))

    return make_block("add_noise", init, update, needs_step=True, per_leaf=True)
