"""Live hyperparameters: an optimizer whose hyperparameters sit in its state.

`inject_hyperparams(factory)(**hyperparams)` builds `factory(**hyperparams)`
with its numeric hyperparameters kept in the state, in
`state.hyperparams`, a `dict` of scalars by name. They can be read (for
logging) and set between steps without recompiling a jitted step, because
they are arrays in the state rather than constants of the traced program::

    tx = gradxform.inject_hyperparams(gradxform.adam)(learning_rate=1e-3, b2=0.999)
    state = tx.init(params)
    ...
    state = gradxform.set_hyperparams(state, learning_rate=3e-4)   # no recompilation

What goes where:

* a number, or a scalar array, is a *live* hyperparameter: stored in
  `state.hyperparams` in `hyperparam_dtype` (float32, float64 under x64
  by default; never the parameters' dtype, so a bfloat16 model keeps
  `b2 = 0.999` and not bfloat16's `1.0`);
* a schedule (a callable `step -> value`) is evaluated at the wrapper's
  count before each update (0 on the first) and the value used is stored
  in `state.hyperparams` too, for logging; setting it has no effect, the
  schedule overwrites it;
* anything else (bools such as `nesterov`, `None`, dtypes, strings) and
  the names in `static_args` are static: passed to `factory` unchanged.

At each `update` the inner optimizer is rebuilt, `factory(**static,
**hyperparams)`, with the stored values (traced arrays under `jit`) and
its `update` applied to the inner state. Rebuilding is Python work at trace
time only. With the same settings the result is the unwrapped optimizer's,
bit for bit: every block resolves its hyperparameters to
`hyper_dtype()` scalars either way.

Hyperparameters the factory uses only at `init` (e.g. adagrad's
`initial_accumulator_value`) are stored too, but setting them later has no
effect. Gradxform optimizers count their own steps, so a schedule passed
straight to the factory (not through this wrapper) still works; the wrapper
is for reading and setting values from outside.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.core import GradientTransformation, OptState, block_of, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import validate_dtype
from gradxform.hyper.values import is_concrete
from gradxform.numerics import hyper_dtype, safe_increment, zero_count


class InjectHyperparamsState(NamedTuple):
    """The state of `inject_hyperparams`.

    `count`: int32 steps taken by the wrapper (what its schedules see);
    `hyperparams`: `{name: scalar}`, the live values (the ones the next
    update uses, or for schedules the last value used); `inner_state`: the
    wrapped optimizer's state.
    """

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    inner_state: OptState


def _is_numeric(value: Any) -> bool:
    """A Python number (not a bool) or a scalar array of a number dtype, concrete or traced."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return jnp.shape(value) == () and jnp.issubdtype(jnp.result_type(value), jnp.number)
    return False


# Arguments that are functions but not schedules (a weight-decay mask maps the parameters to bools, Muon's
# dimension numbers map them to their matrix axes): they choose leaves.
ALWAYS_STATIC = frozenset({"mask", "weight_decay_mask", "trust_ratio_mask", "muon_weight_dimension_numbers"})


def inject_hyperparams(
    factory: Callable[..., GradientTransformation],
    hyperparam_dtype: Any = None,
    static_args: str | Iterable[str] = (),
) -> Callable[..., GradientTransformation]:
    """Wraps `factory` so that its numeric hyperparameters live in the optimizer state.

    Args:
      factory: a function returning a `GradientTransformation`, e.g.
        `gradxform.adam` (optax factories work too).
      hyperparam_dtype: the floating dtype the hyperparameters are stored in;
        `None` (default) is `gradxform.numerics.hyper_dtype`, float32
        (float64 under x64). Never the parameters' dtype.
      static_args: names of numeric arguments to pass to `factory` as they
        are, outside the state (e.g. an integer that sets a shape, or a number
        that chooses blocks). Arguments named `mask`, `weight_decay_mask` or `trust_ratio_mask` are
        always static: they are functions of the parameters, not schedules.

    Returns:
      A function with `factory`'s arguments returning a transform whose
      state is an `InjectHyperparamsState`. Arguments are bound and
      validated when it is called: `factory` is called once with them, so
      bad concrete values raise there, naming the argument.
    """
    if not callable(factory):
        raise TypeError(f"inject_hyperparams: factory must be a function returning a transform, got {factory!r}.")
    dtype_arg = validate_dtype("inject_hyperparams", "hyperparam_dtype", hyperparam_dtype)
    statics = {static_args} if isinstance(static_args, str) else set(static_args)
    statics |= ALWAYS_STATIC
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None and not (statics - ALWAYS_STATIC) <= set(signature.parameters):
        raise ValueError(
            f"inject_hyperparams: static_args={sorted(statics - ALWAYS_STATIC)} are not all arguments of "
            f"{getattr(factory, '__name__', factory)}; its arguments are {list(signature.parameters)}."
        )

    factory_name = getattr(factory, "__name__", "factory")

    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformation:
        if signature is not None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
        elif args:
            raise TypeError("inject_hyperparams: this factory has no readable signature; pass keyword arguments.")
        else:
            arguments = dict(kwargs)
        for kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            for name, p in signature.parameters.items() if signature else ():
                if p.kind is kind and arguments.get(name):
                    raise TypeError(f"inject_hyperparams: {name} (*args/**kwargs) cannot be injected; name them.")
                if p.kind is kind:
                    arguments.pop(name, None)
        static, numeric, scheduled = {}, {}, {}
        for name, value in arguments.items():
            if name in statics:
                static[name] = value
            elif _is_numeric(value):
                numeric[name] = value
            elif callable(value) and not isinstance(value, type):
                scheduled[name] = value
            else:
                static[name] = value
        # Validate the concrete values once, now, by building the optimizer they describe.
        factory(**arguments)
        if dtype_arg is not None:  # and as they will be stored: a float16 eps=1e-8 would be 0
            rounded = {}
            for name, value in numeric.items():
                if is_concrete(value):
                    x = float(np.asarray(value, np.float64))
                    with np.errstate(over="ignore", under="ignore"):
                        rounded[name] = float(np.asarray(x).astype(dtype_arg))
                    if not np.isfinite(rounded[name]) or (rounded[name] == 0.0 and x != 0.0):
                        raise ValueError(
                            f"inject_hyperparams: hyperparam_dtype={dtype_arg.name} cannot hold {name}={value!r} "
                            f"(it would be {rounded[name]!r}); store the hyperparameters in float32."
                        )
            try:
                factory(**{**arguments, **rounded})
            except ValueError as err:
                raise ValueError(
                    f"inject_hyperparams: hyperparam_dtype={dtype_arg.name} rounds the hyperparameters to "
                    f"values {factory_name} refuses ({err}); store them in float32."
                ) from None

        def dtype() -> jnp.dtype:
            return dtype_arg if dtype_arg is not None else hyper_dtype()

        def stored(value: Any) -> jax.Array:
            return jnp.asarray(value).astype(dtype())

        def values_at(count: jax.Array, current: dict[str, jax.Array]) -> dict[str, jax.Array]:
            out = {name: stored(current[name]) for name in numeric}
            out.update({name: stored(schedule(count)) for name, schedule in scheduled.items()})
            return out

        def inner(hyperparams: dict[str, jax.Array]):
            return block_of(factory(**static, **hyperparams), factory_name)

        def init(params):
            hyperparams = values_at(zero_count(), {name: value for name, value in numeric.items()})
            return InjectHyperparamsState(zero_count(), hyperparams, inner(hyperparams).init(params))

        def update(updates, state, params, count, extra_args):
            missing = set(numeric) - set(state.hyperparams)
            if missing:
                raise ValueError(
                    f"{lead(factory_name)}: state.hyperparams lacks {sorted(missing)}; keep every key that "
                    "init put there (set values with gradxform.set_hyperparams)."
                )
            hyperparams = values_at(state.count, state.hyperparams)
            out, inner_state = inner(hyperparams).update(updates, state.inner_state, params, state.count, extra_args)
            return out, InjectHyperparamsState(safe_increment(state.count), hyperparams, inner_state)

        probe = inner(values_at(zero_count(), dict(numeric)))
        return make_block(factory_name, init, update, extra_args=probe.extra_args)

    wrapped.__name__ = f"inject_hyperparams({getattr(factory, '__name__', 'factory')})"
    wrapped.__doc__ = f"{getattr(factory, '__name__', 'factory')} with live hyperparameters.\n\n{factory.__doc__ or ''}"
    return wrapped


def set_hyperparams(state: InjectHyperparamsState, **values: Any) -> InjectHyperparamsState:
    """A copy of `state` with the named hyperparameters set, each in the dtype already stored.

    Keeping the stored dtype (and shape) keeps the jitted step's input
    signature, so setting a value between steps compiles nothing new
    (assigning a Python float into `state.hyperparams` directly would
    change float32 into a weakly typed float and recompile once). Concrete
    values must be finite; unknown names raise `KeyError` listing the known
    ones.
    """
    if not isinstance(state, InjectHyperparamsState):
        raise TypeError(
            f"set_hyperparams: expected the state of an inject_hyperparams optimizer, got {type(state).__name__}."
        )
    new = dict(state.hyperparams)
    for name, value in values.items():
        if name not in new:
            raise KeyError(f"set_hyperparams: no hyperparameter {name!r}; the state holds {sorted(new)}.")
        old = new[name]
        if not _is_numeric(value) or jnp.iscomplexobj(value):
            raise TypeError(f"set_hyperparams: {name} must be a real number, got {value!r}.")
        if is_concrete(value):
            x = float(np.asarray(value, np.float64))
            with np.errstate(over="ignore", under="ignore"):
                stored = float(np.asarray(x).astype(old.dtype))
            if not np.isfinite(x) or not np.isfinite(stored) or (stored == 0.0 and x != 0.0):
                raise ValueError(
                    f"set_hyperparams: {name}={value!r} must be finite and representable in the stored "
                    f"{jnp.dtype(old.dtype).name} (it would be {stored!r})."
                )
        new[name] = jnp.asarray(value, dtype=old.dtype)
    return state._replace(hyperparams=new)
