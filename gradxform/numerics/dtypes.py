"""Which dtype each kind of number lives in.

* Hyperparameters are resolved as scalars of `hyper_dtype` (float32, or
  float64 when `jax_enable_x64` is on), never of the parameters' dtype, and each
  block casts them once to the real part of the leaf's `compute_dtype`, so a
  hyperparameter has one precision wherever a leaf uses it.
* Elementwise math runs in `compute_dtype`, at least float32: a bfloat16 or
  float16 update flows from block to block in float32 and is rounded once, at the
  end of the optimizer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def hyper_dtype() -> jnp.dtype:
    """The dtype hyperparameters are resolved in: float64 under x64, else float32."""
    return jnp.dtype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)


def compute_dtype(*dtypes: Any) -> jnp.dtype:
    """The dtype elementwise math runs in: the inputs' dtypes promoted with float32."""
    return jnp.dtype(jnp.result_type(jnp.float32, *dtypes))


def real_dtype(dtype: Any) -> jnp.dtype:
    """`float32` for `complex64`, `float64` for `complex128`, else `dtype`."""
    return jnp.dtype(jnp.finfo(dtype).dtype) if jnp.issubdtype(dtype, jnp.complexfloating) else jnp.dtype(dtype)


def square_dtype(dtype: Any) -> jnp.dtype:
    """The dtype a statistic of $|g|^2$ is stored in by default for a leaf of `dtype`: its real dtype, but
    float32 for float16, whose range (about $6 \times 10^{-8}$ to 65504) cannot hold the squares of its own
    values: a gradient of $10^{-4}$ squares to 0 and one of 300 to inf. bfloat16 has float32's range and
    stays bfloat16."""
    rt = real_dtype(dtype)
    return jnp.dtype(jnp.float32) if rt == jnp.float16 else rt


def scalar_dtype(dtype: Any) -> jnp.dtype:
    """The dtype a hyperparameter takes for a leaf of `dtype`: the real part of its compute dtype."""
    return real_dtype(compute_dtype(dtype))


def dtype_of(x: Any) -> jnp.dtype:
    """A leaf's dtype; works for arrays, Python numbers and `jax.ShapeDtypeStruct`."""
    return jnp.dtype(x.dtype) if hasattr(x, "dtype") else jnp.dtype(jnp.result_type(x))


def shape_of(x: Any) -> tuple:
    """A leaf's shape; works for arrays, Python numbers and `jax.ShapeDtypeStruct`."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
