"""Hyperparameter sweeps: a grid of models trained in one compiled call.

Every gradxform hyperparameter may be a traced JAX scalar, so `jax.vmap`
over a hyperparameter trains one model per value with a single program.
`sweep` does this for the cartesian product of a grid, the notebook
way:

```python
losses = gradxform.sweep(
    lambda learning_rate, beta: gradxform.momentum(learning_rate, beta),
    loss_fn, params,
    grid={"learning_rate": [1e-3, 1e-2, 1e-1, 0.3], "beta": [0.0, 0.5, 0.9, 0.99]},
    steps=200,
)                    # losses.shape == (4, 4, 200): one compilation for the 16 runs
```

Grid entries may be any argument `make_tx` turns into a hyperparameter,
including a schedule's parameters (`lambda lr, rate:
gradxform.sgd(gradxform.schedules.inverse_time_decay(lr, rate, 100))`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.core import GradientTransformation
from gradxform.hyper import validate_int
from gradxform.numerics import PyTree, hyper_dtype
from gradxform.solve.loop import run


def _grid_axes(grid: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            f"sweep: grid must be a non-empty dict {{name: values}}, got {grid!r}; "
            "e.g. grid={'learning_rate': [1e-3, 1e-2]}."
        )
    names, axes = [], []
    for name, values in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"sweep: grid keys are make_tx's argument names (strings), got {name!r}.")
        if callable(values) or isinstance(values, jax.core.Tracer):
            raise TypeError(f"sweep: grid[{name!r}] must be concrete values (a list or 1-D array), got {values!r}.")
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"sweep: grid[{name!r}] must be a non-empty 1-D list of values, got shape {list(arr.shape)}."
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"sweep: grid[{name!r}]={arr.tolist()} has non-finite values.")
        names.append(name)
        axes.append(arr.astype(hyper_dtype()))
    return tuple(names), tuple(axes)


@functools.lru_cache(maxsize=64)
def _compiled(
    make_tx: Callable[..., GradientTransformation],
    loss_fn: Callable[..., jax.Array],
    names: tuple[str, ...],
    steps: int,
    has_data: bool,
) -> Callable:
    """The jitted sweep for one (make_tx, loss_fn, names, steps); reused across calls with the same grid shape."""

    def run_grid(axes: Sequence[jax.Array], params: PyTree, data: PyTree) -> tuple[jax.Array, PyTree]:
        mesh = jnp.meshgrid(*axes, indexing="ij")
        flat = [m.reshape(-1) for m in mesh]

        def train(*point: jax.Array) -> tuple[jax.Array, PyTree]:
            out = run(loss_fn, make_tx(**dict(zip(names, point))), params, steps, data=data if has_data else None)
            return out.losses, out.params

        losses, final = jax.vmap(train)(*flat)
        shape = tuple(a.shape[0] for a in axes)
        return losses.reshape(shape + (steps,)), jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), final)

    return jax.jit(run_grid)


def sweep(
    make_tx: Callable[..., GradientTransformation],
    loss_fn: Callable[..., jax.Array],
    params: PyTree,
    grid: Mapping[str, Sequence[float] | np.ndarray | jax.Array],
    steps: int,
    *,
    data: PyTree | None = None,
    return_params: bool = False,
) -> jax.Array | tuple[jax.Array, PyTree]:
    r"""Trains one model per point of the grid's cartesian product, in one compiled call.

    Args:
      make_tx: `make_tx(**point) -> GradientTransformation`; called with
        one traced float32 scalar per grid name (so it must pass them on as
        hyperparameters, not branch on them in Python).
      loss_fn: `loss_fn(params) -> scalar`, or `loss_fn(params, batch)`
        when `data` is given.
      params: the initial parameters, the same for every run.
      grid: `{name: values}`, 1-D lists of concrete numbers. The product
        is taken in the dict's order.
      steps: the number of updates per run.
      data: optional pytree whose leaves have a leading axis of length
        `steps`; update `t` sees `batch = data[t]`.
      return_params: also return the final parameters.

    Returns:
      `losses` of shape `(len(grid[name_1]), ..., len(grid[name_k]),
      steps)`: `losses[i, j, ..., t]` is the loss *before* update `t`
      ($f(\theta_t)$, $t = 0 \dots steps-1$) of the run with the
      `i`-th value of the first name, the `j`-th of the second, ...; with
      `return_params`, `(losses, final_params)`, each leaf of
      `final_params` with the grid's axes in front.

    Every grid point is checked first by building `make_tx` with its
    concrete values, so an out-of-range value raises the optimizer's own
    `ValueError` before anything is compiled. The compiled program is
    cached per `(make_tx, loss_fn, grid names, steps)`: a second sweep over
    a grid of the same shape compiles nothing.
    """
    validate_int("sweep", "steps", steps, 1, what="updates per run")
    if not callable(make_tx):
        raise TypeError(
            f"sweep: make_tx must be a function of the grid's names returning a transform, got {make_tx!r}."
        )
    if not callable(loss_fn):
        raise TypeError(f"sweep: loss_fn must be a function of the parameters, got {loss_fn!r}.")
    names, axes = _grid_axes(grid)
    for point in np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(names)):
        tx = make_tx(**{n: float(v) for n, v in zip(names, point)})
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise TypeError(f"sweep: make_tx must return a gradient transformation, got {type(tx).__name__}.")
    if data is not None:
        for leaf in jax.tree.leaves(data):
            if jnp.shape(leaf)[:1] != (steps,):
                raise ValueError(
                    f"sweep: every leaf of data needs a leading axis of length steps={steps}, "
                    f"got a leaf of shape {list(jnp.shape(leaf))}."
                )
    try:
        fn = _compiled(make_tx, loss_fn, names, int(steps), data is not None)
    except TypeError:  # an unhashable make_tx or loss_fn: compile for this call only
        fn = _compiled.__wrapped__(make_tx, loss_fn, names, int(steps), data is not None)
    losses, final = fn(axes, params, data)
    return (losses, final) if return_params else losses
