"""The skeleton every elementwise block is built on: validate, init, check, resolve, compute, store.

A block states only its math. `elementwise(name, fn, ...)` does the rest, the
same way for every block:

* **build**: each hyperparameter is validated against its range (errors led by
  the function the user called);
* **init**: one moment tree per state field, each leaf born in the parameter's
  shape and placement (`gradxform.numerics.full_like`), stored in the field's
  dtype rule (`storage`); the state class marks those fields `per_param`;
* **update**: the update tree is checked against every moment tree (structure,
  shapes, dtypes), hyperparameters are resolved once for the optimizer's step
  count, then per leaf `fn(h, u, *moments)` runs in the leaf's compute dtype (at
  least float32), `h` holding the hyperparameters cast once to the leaf's real
  compute dtype (and `h.t`, the step number $t = 1, 2, \\dots$, for blocks that read
  it). New moments are rounded once, to their storage dtype; the outgoing update
  stays in the compute dtype for the next block.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from gradxform.core.transform import EmptyState, GradientTransformation, caller_description, make_block
from gradxform.errors import lead
from gradxform.hyper.validate import Range, check_rounding, validate, validate_dtype
from gradxform.hyper.values import Hyperparameter, is_schedule, resolve
from gradxform.numerics.checks import check_inexact, check_match, check_real
from gradxform.numerics.counts import safe_increment
from gradxform.numerics.dtypes import compute_dtype, hyper_dtype, real_dtype, square_dtype
from gradxform.numerics.quantize import Quantized, QuantizedSpec, Storage, load, store
from gradxform.numerics.tree_math import full_like

PyTree = Any
DtypeRule = Callable[[jnp.dtype], jnp.dtype]


def storage(
    who: str, state_dtype: Any = None, *, real: bool = False, name: str = "state_dtype", moment: bool = True
) -> DtypeRule:
    """The dtype a moment is stored in, as a function of its parameter's dtype.

    Args:
      who: the block's name (for the error on a bad dtype).
      state_dtype: a floating dtype to store in, `None`: the parameter's dtype (when `real`, for
        statistics of $|g|^2$, `numerics.square_dtype`: its real dtype, float32 for float16), or
        `gradxform.quantized(...)`: block-wise quantized, the rule returning a `Storage` (a signed code,
        or when `real` the nonnegative code without zero: `real` marks the statistics of $|g|^2$).
      real: the moment is real even for complex parameters (and nonnegative).
      name: the argument's name, for the error message.
      moment: `False` for state that is not a moment but a copy of the weights (schedule-free's $z$),
        which quantized storage refuses: its rounding error would be the weights'.
    """
    fixed = validate_dtype(who, name, state_dtype)
    if isinstance(fixed, QuantizedSpec):
        spec = fixed
        if not moment:
            raise TypeError(
                f"{lead(who)}: {name}={spec!r}: this state is a copy of the weights, not a moment; quantized "
                "storage is for moments (use a floating dtype such as jnp.bfloat16)."
            )

        def quantized_rule(dt):
            if not real and jnp.issubdtype(dt, jnp.complexfloating):
                arg = name if lead(who) == who else f"{who}'s {name}"  # an inner block's name may not be the user's
                raise TypeError(
                    f"{lead(who)}: {arg}={spec!r} stores real moments; this one is complex ({jnp.dtype(dt)}). "
                    "Optimize the real and imaginary parts as two real leaves, or store this moment unquantized."
                )
            return Storage(spec.code(signed=not real), spec.block_size)

        return quantized_rule
    if fixed is not None:
        return lambda dt: fixed
    return square_dtype if real else (lambda dt: jnp.dtype(dt))


def scalars_for(values: Mapping[str, jax.Array], count: jax.Array | None, dtype: Any) -> types.SimpleNamespace:
    """The hyperparameters of one update cast to `dtype`, with `t = count + 1` (and `count`) when given."""
    h = {k: v.astype(dtype) for k, v in values.items()}
    if count is not None:
        h["count"] = count
        h["t"] = safe_increment(count).astype(dtype)
    return types.SimpleNamespace(**h)


def map_leaves(
    fn: Callable[..., Any],
    values: Mapping[str, jax.Array],
    count: jax.Array | None,
    updates: PyTree,
    *trees: PyTree,
    dtypes: bool = False,
) -> PyTree:
    """`fn(h, u, *xs)` per leaf, every input in its compute dtype, `h` from `scalars_for` in the leaf's real one.

    With `dtypes`, `fn` also gets `dtypes=`, the dtypes `xs` are stored in (before the cast), to choose
    a formula by them. The result has `updates`' structure, a leaf holding whatever `fn` returns for it.
    """
    cache: dict[Any, types.SimpleNamespace] = {}

    def one(u, *xs):
        ct = compute_dtype(u.dtype, *(x.dtype for x in xs))
        rt = real_dtype(ct)
        if rt not in cache:
            cache[rt] = scalars_for(values, count, rt)
        kw = {"dtypes": tuple(_stored_dtype(x) for x in xs)} if dtypes else {}
        return fn(cache[rt], *(load(x) for x in (u, *xs)), **kw)

    return jax.tree.map(one, updates, *trees)


def _stored_dtype(x: Any) -> jnp.dtype:
    """The dtype a moment is stored in: uint8 for a quantized one (its codes), else its own."""
    return jnp.dtype(jnp.uint8) if isinstance(x, Quantized) else jnp.dtype(x.dtype)


def field(tree: PyTree, results: PyTree, i: int) -> PyTree:
    """The `i`-th entry of each per-leaf result tuple of `map_leaves`, in `tree`'s structure."""
    return jax.tree.map(lambda _, r: r[i], tree, results)


def stored(new: PyTree, old: PyTree) -> PyTree:
    """New moments rounded once to the dtype the old ones are stored in (requantized if they are quantized)."""
    return jax.tree.map(store, new, old)


def require_params(who: str, updates: PyTree, params: PyTree | None) -> None:
    """Raises unless `params` were passed (an empty update tree needs none) and match the updates."""
    if params is None and jax.tree.leaves(updates):
        raise ValueError(f"{lead(who)}: update needs the parameters: call tx.update(grads, state, params).")
    if params is not None:
        check_match(updates, params, who, against="params")


def elementwise(
    name: str,
    fn: Callable[..., Any],
    *,
    hyper: Mapping[str, tuple[Hyperparameter, Range]] | None = None,
    state: type | None = None,
    rules: Mapping[str, DtypeRule] | None = None,
    initial: Mapping[str, Any] | None = None,
    step: bool = False,
    with_params: bool = False,
    dtypes: bool = False,
    equation: str | None = None,
    extra: tuple[str, ...] = (),
    per_leaf: bool = False,
    real_only: str | None = None,
) -> GradientTransformation:
    """A block whose update is `fn` applied leaf by leaf (see the module docstring).

    The block describes itself (`gradxform.describe`) by `name`, its hyperparameters and `equation`,
    which defaults to the first display equation (`$$...$$`) of the docstring of the function that calls
    `elementwise` (the block's public factory).

    Args:
      name: the block's public name.
      fn: `fn(h, u, *moments[, p]) -> out` for a stateless block, or
        `-> (out, *new_moments)`, one per field of `state` in order.
      hyper: `{name: (value, range)}`; each value may be a number, a JAX scalar or a
        schedule (a schedule makes the block read the step count).
      state: the state NamedTuple class; each field is a moment tree.
      rules: `{field: dtype rule}` (default: the parameter's dtype).
      initial: `{field: initial value}` (default 0); used once, at init.
      step: `fn` reads `h.t` (and `h.count`).
      with_params: `fn` also takes the parameter leaf (`update` then needs `params`).
      dtypes: `fn` also takes `dtypes=`, the dtypes its moments (and parameter) are stored in.
      extra: scalar extra arguments of `update` that `fn` reads as `h.<name>` (`("value",)`: the loss).
      per_leaf: `fn` looks at the whole leaf (a norm, a mean over axes), not element by element:
        the block is marked `per_leaf` (see `leafwise`).
      equation: the block's update in LaTeX, for `gradxform.describe`; `None` reads it from the docstring.
      real_only: `None`, or why the block is defined for real parameters only (`init` and `update`
        then refuse complex leaves with that reason).
    """
    hyper_values = {k: v for k, (v, _) in (hyper or {}).items()}
    description = caller_description(name, 2, hyper=hyper_values, equation=equation)
    hyper = dict(hyper or {})
    for key, (value, rng) in hyper.items():
        validate(name, key, value, rng)
    fields = state._fields if state is not None else ()
    rules = {f: (rules or {}).get(f, lambda dt: jnp.dtype(dt)) for f in fields}
    initial = dict(initial or {})
    needs_step = step or any(is_schedule(v) for v, _ in hyper.values())

    def init(params):
        check_inexact(params, name)
        if real_only is not None:
            check_real(params, name, real_only)
        if state is None:
            return EmptyState()
        return state(*(full_like(params, initial.get(f, 0), rules[f]) for f in fields))

    def update(updates, st, params, count, extra_args):
        if real_only is not None:
            check_real(updates, name, real_only)
        moments = [getattr(st, f) for f in fields]
        for f, m in zip(fields, moments):
            check_match(updates, m, name, rules[f])
        if with_params:
            require_params(name, updates, params)
        narrow = {real_dtype(compute_dtype(x.dtype)) for x in jax.tree.leaves(updates)} - {hyper_dtype()}
        for k, (v, rng) in hyper.items():  # used in a narrower dtype than it was validated in (x64, float32 leaves)
            for dt in narrow:
                check_rounding(name, k, v, rng, dt)
        values = {k: resolve(v, count, k) for k, (v, _) in hyper.items()}
        values.update({k: resolve(extra_args[k], count, k) for k in extra})
        trees = moments + ([params] if with_params else [])
        results = map_leaves(fn, values, count if needs_step else None, updates, *trees, dtypes=dtypes)
        if state is None:
            return results, st
        out = field(updates, results, 0)
        new = [stored(field(updates, results, i + 1), m) for i, m in enumerate(moments)]
        return out, state(*new)

    return make_block(
        name,
        init,
        update,
        needs_step=needs_step,
        stateless=state is None,
        per_leaf=per_leaf,
        extra_args=tuple(extra),
        description=description,
    )


def leafwise(name: str, fn: Callable[..., Any], **kwargs: Any) -> GradientTransformation:
    """`elementwise`'s skeleton for a block whose `fn` reads its whole leaf (a norm, a shape, a mean).

    Everything is as in `elementwise` (`fn(h, u, *moments[, p])` once per leaf, hyperparameters
    validated and resolved once), and the block is marked `per_leaf`: its result changes if the
    leaves are concatenated, so `gradxform.FlatParams` refuses it.
    """
    return elementwise(name, fn, per_leaf=True, **kwargs)
