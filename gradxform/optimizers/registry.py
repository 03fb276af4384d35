"""The registry: every optimizer and wrapper, declared once.

An `Entry` says what the library knows about an optimizer beyond its code: its
factory and family, the argument that is its learning rate, the references it is
tested against (optax, `optax.contrib`, torch.optim) at non-default settings and
which of their state fields correspond to which of ours, whether it is
elementwise, what `update` needs (parameters, extra arguments), and the learning
rate it races with on each race problem. Tests (parity, properties, jit/vmap/grad,
float16/bfloat16, sharding, inject, checkpoints), the race, the docs pages and the
benchmarks iterate `REGISTRY`; adding an optimizer is one module and one entry
here (see the architecture page).

References are named by dotted path (`"optax.adam"`, `"torch.optim.Adam"`), so the
library imports neither optax nor torch.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from gradxform.core import GradientTransformation

RACE_PROBLEMS = ("ravine", "rosenbrock", "saddle", "digits")


@dataclasses.dataclass(frozen=True)
class Reference:
    """A peer's implementation at the same settings.

    Attributes:
      target: the dotted path of its factory or class, e.g. `"optax.adam"`, `"torch.optim.Adam"`.
      kwargs: its arguments (for torch.optim, those after `params`).
      state: `{our state name: its state name}`: fields compared through `tree_get` on both states.
      lift_scalars: the reference fails on 0-d leaves (optax's `sm3` indexes a per-axis accumulator a
        scalar lacks): the suites give it each 0-d leaf as a 1-element vector and take its updates back
        in the leaf's shape.
    """

    target: str
    kwargs: Mapping[str, Any]
    state: Mapping[str, str] = dataclasses.field(default_factory=dict)
    lift_scalars: bool = False

    @property
    def library(self) -> str:
        """`"optax"` or `"torch"`."""
        return self.target.split(".")[0]


@dataclasses.dataclass(frozen=True)
class Case:
    """One parity setting: our factory's arguments and the reference built with its own."""

    label: str
    kwargs: Mapping[str, Any]
    reference: Reference
    tolerance: Mapping[str, tuple[float, float]] | None = None
    """`{dtype name: (params and updates, state)}` relative tolerances where the suite's defaults (float64
    1e-12, float32 1e-5 / 5e-5) do not apply: only as loose as the optimizer's own parity standard allows."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the library declares about one optimizer or wrapper.

    Attributes:
      name: its public name (`"adam"`, `"compat.torch.Adam"`, `"skip_nonfinite"`).
      factory: the function that builds it.
      family: the module it lives in (`"adam"`, `"sgd"`, `"torch"`, `"wrappers"`, ...).
      kind: `"optimizer"`, `"torch"` (a torch.optim-faithful constructor) or `"wrapper"`.
      lr_arg: the name of its learning-rate argument (`None` if it has none).
      example: how `build` makes a default instance from a learning rate (wrappers wrap an inner optimizer).
      cases: parity settings against optax and torch.optim.
      elementwise: its result does not change if the leaves are concatenated (`FlatParams` accepts it).
      needs_params: `update` needs `params`.
      extra_args: extra arguments `update` needs (e.g. `("value",)`).
      supports_complex: it is defined for complex parameters.
      race_lr: `{problem: learning rate}` for the race; `None` if it does not race.
      state_names: names a reader finds in its state (`tree_get(state, name)` is unique), for tests and docs.
      alias_kwargs: argument sets for optax's own alias-test problems (`tests/test_alias_problems.py`:
        the parabola and Rosenbrock, 10,000 steps, float32 and complex64, within 3e-2), optax's settings.
      alias_targets: which of those problems apply (`("parabola", "rosenbrock")`).
      alias_dtypes: the dtypes they run in (optax's test skips complex64 for some optimizers).
      alias_steps: how many steps those problems run (optax's alias tests: 10,000; its contrib tests: 30,000).
      lr_invariant: the trajectory does not depend on `lr_arg` at all (COCOB: its bettors undo any common scale
        of the gradients, which is all its `learning_rate` is).
      global_reduction: its update reduces over the whole tree (a global norm, SAM's gradient norm), so on
        sharded parameters the compiled update all-reduces float scalars, also where it is elementwise in
        `FlatParams`' sense (concatenating the leaves changes nothing).
      static_args: numeric arguments whose value chooses the chain's blocks (torch.optim's `momentum=0`
        means no momentum buffer); `inject_hyperparams` keeps them static when named in its `static_args`.
      example_leads_with: the name that leads the errors of `example`'s transform, where it is not the
        factory's: a transform meant to be chained after an optimizer (`reduce_on_plateau`) is exemplified
        by a `chain`, whose errors are led by `"chain"`.
      matrix_math: its update of a leaf multiplies the leaf as a matrix (Newton-Schulz, eigenbases), so
        where a leaf is sharded the compiled update communicates (an elementwise optimizer never does), and
        sums of products over a sharded axis (SOAP's statistics G G^T) are added in another order than on one device:
        the sharding cases hold its state to rounding at the scale of each state leaf.
      smooth: its trajectory is a smooth function of its hyperparameters; torch.optim.Muon rounds to bfloat16
        inside, so its loss is a staircase in the learning rate below a step of about 1e-3 (the derivative, taken
        straight through the rounding, then matches only a wider finite difference).
      replicated_state: some of its per-parameter state is replicated across devices, not sharded like the
        parameter (SM3's cover-set accumulators of a matrix: one vector of the sum of its dimensions, maxima
        over whole slices), so a sharded update also gathers those vectors (never a moment or a parameter).
      param_ranks: the ranks of the parameters it takes (torch.optim.Muon: only matrices, `(2,)`), `None` for
        any; the suites give it trees whose other leaves are reshaped to matrices (`tests.helpers.fit_ranks`).
    """

    name: str
    factory: Callable[..., GradientTransformation]
    family: str
    kind: str = "optimizer"
    lr_arg: str | None = "learning_rate"
    example: Callable[[float], GradientTransformation] | None = None
    cases: tuple[Case, ...] = ()
    elementwise: bool = True
    needs_params: bool = False
    extra_args: tuple[str, ...] = ()
    supports_complex: bool = True
    race_lr: Mapping[str, float] | None = None
    state_names: tuple[str, ...] = ()
    static_args: tuple[str, ...] = ()
    global_reduction: bool = False
    alias_kwargs: tuple[Mapping[str, Any], ...] = ()
    alias_targets: tuple[str, ...] = ("parabola", "rosenbrock")
    alias_dtypes: tuple[str, ...] = ("float32", "complex64")
    example_leads_with: str | None = None
    matrix_math: bool = False
    replicated_state: bool = False
    param_ranks: tuple[int, ...] | None = None
    smooth: bool = True
    alias_steps: int = 10_000
    lr_invariant: bool = False

    def build(self, learning_rate: float = 1e-2) -> GradientTransformation:
        """A default instance with this learning rate (every other argument at its default)."""
        if self.example is not None:
            return self.example(learning_rate)
        if self.lr_arg is None:
            return self.factory()
        return self.factory(**{self.lr_arg: learning_rate})

    @property
    def defaults(self) -> dict[str, Any]:
        """The factory's arguments with defaults, from its signature."""
        params = inspect.signature(self.factory).parameters
        return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


class Foreign:
    """A transform of another library, named by the dotted path of its factory and built on first use (an
    argument of a reference, e.g. optax.contrib.mechanize's base optimizer; the registry imports no optax)."""

    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        self.target, self.args, self.kwargs = target, args, kwargs
        self._tx: Any = None

    def _built(self) -> Any:
        if self._tx is None:
            import importlib

            module, name = self.target.rsplit(".", 1)
            self._tx = getattr(importlib.import_module(module), name)(*self.args, **self.kwargs)
        return self._tx

    @property
    def init(self) -> Any:
        return self._built().init

    @property
    def update(self) -> Any:
        return self._built().update

    def __repr__(self) -> str:
        return f"Foreign({self.target!r}, *{self.args!r}, **{self.kwargs!r})"


def _lr_table(**per_problem: float) -> dict[str, float]:
    assert set(per_problem) == set(RACE_PROBLEMS), per_problem
    return per_problem


def _entries() -> list[Entry]:
    # Imported here so that the registry module itself is cheap to import and free of cycles.
    from gradxform import optimizers as o
    from gradxform.compat import torch as t
    from gradxform.wrappers import accumulate, masked, partition, skip_nonfinite

    sgd_state = {"trace": "trace"}
    adam_state = {"mu": "mu", "nu": "nu", "count": "count"}
    adam_torch = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    return [
        Entry(
            "sgd",
            o.sgd,
            "sgd",
            cases=(
                Case("plain", dict(learning_rate=0.05), Reference("optax.sgd", dict(learning_rate=0.05))),
                Case(
                    "momentum",
                    dict(learning_rate=0.05, momentum=0.9),
                    Reference("optax.sgd", dict(learning_rate=0.05, momentum=0.9), sgd_state),
                ),
                Case(
                    "torch",
                    dict(learning_rate=0.05, momentum=0.7, nesterov=True),
                    Reference("torch.optim.SGD", dict(lr=0.05, momentum=0.7, nesterov=True)),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-3, momentum=0.9),),
            race_lr=_lr_table(ravine=0.15, rosenbrock=3e-3, saddle=0.05, digits=0.5),
            state_names=(),
        ),
        Entry(
            "momentum",
            o.momentum,
            "sgd",
            cases=(
                Case(
                    "beta=0.8",
                    dict(learning_rate=0.05, beta=0.8),
                    Reference("optax.sgd", dict(learning_rate=0.05, momentum=0.8), sgd_state),
                ),
            ),
            race_lr=_lr_table(ravine=0.03, rosenbrock=1e-3, saddle=0.01, digits=0.05),
            state_names=("trace",),
        ),
        Entry(
            "nesterov",
            o.nesterov,
            "sgd",
            cases=(
                Case(
                    "beta=0.9",
                    dict(learning_rate=0.05, beta=0.9),
                    Reference("optax.sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True), sgd_state),
                ),
            ),
            race_lr=_lr_table(ravine=0.03, rosenbrock=1e-3, saddle=0.01, digits=0.05),
            state_names=("trace",),
        ),
        Entry(
            "rmsprop",
            o.rmsprop,
            "rmsprop",
            cases=(
                Case(
                    "eps outside",
                    dict(learning_rate=0.01, decay=0.9, eps=1e-8),
                    Reference(
                        "optax.rmsprop", dict(learning_rate=0.01, decay=0.9, eps=1e-8, eps_in_sqrt=False), {"nu": "nu"}
                    ),
                ),
                Case(
                    "eps inside",
                    dict(learning_rate=0.01, decay=0.95, eps=1e-6, eps_in_sqrt=True),
                    Reference(
                        "optax.rmsprop", dict(learning_rate=0.01, decay=0.95, eps=1e-6, eps_in_sqrt=True), {"nu": "nu"}
                    ),
                ),
                Case(
                    "centered momentum",
                    dict(learning_rate=0.01, centered=True, momentum=0.9, eps=1e-4, eps_in_sqrt=True),
                    Reference(
                        "optax.rmsprop",
                        dict(learning_rate=0.01, centered=True, momentum=0.9, eps=1e-4, eps_in_sqrt=True),
                        {"mu": "mu", "nu": "nu", "trace": "trace"},
                    ),
                ),
                Case(
                    "bias-corrected nesterov",
                    dict(learning_rate=0.01, bias_correction=True, momentum=0.5, nesterov=True),
                    Reference(
                        "optax.rmsprop",
                        dict(learning_rate=0.01, bias_correction=True, momentum=0.5, nesterov=True, eps_in_sqrt=False),
                        {"nu": "nu", "trace": "trace"},
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=5e-3), dict(learning_rate=5e-3, momentum=0.9)),
            race_lr=_lr_table(ravine=0.03, rosenbrock=0.01, saddle=0.01, digits=1e-3),
            state_names=("nu",),
        ),
        Entry(
            "adam",
            o.adam,
            "adam",
            cases=(
                Case(
                    "defaults", dict(learning_rate=0.01), Reference("optax.adam", dict(learning_rate=0.01), adam_state)
                ),
                Case(
                    "eps_root",
                    dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
                    Reference(
                        "optax.adam", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8), adam_state
                    ),
                ),
                Case(
                    "torch",
                    dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6),
                    Reference("torch.optim.Adam", adam_torch),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "adamw",
            o.adamw,
            "adam",
            needs_params=True,
            cases=(
                Case(
                    "weight_decay=0.1",
                    dict(learning_rate=0.01, weight_decay=0.1),
                    Reference("optax.adamw", dict(learning_rate=0.01, weight_decay=0.1), adam_state),
                ),
                Case(
                    "mask",
                    dict(learning_rate=0.01, weight_decay=0.1, mask=_matrices),
                    Reference("optax.adamw", dict(learning_rate=0.01, weight_decay=0.1, mask=_matrices), adam_state),
                ),
                Case(
                    "torch",
                    dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1),
                    Reference("torch.optim.AdamW", dict(adam_torch, weight_decay=0.1)),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "nadam",
            o.nadam,
            "adam",
            cases=(
                Case(
                    "b1=0.9",
                    dict(learning_rate=0.01),
                    Reference("optax.nadam", dict(learning_rate=0.01), {"mu": "mu", "nu": "nu", "count": "count"}),
                ),
                Case(
                    "non-default",
                    dict(learning_rate=0.02, b1=0.85, b2=0.995, eps=1e-7),
                    Reference(
                        "optax.nadam", dict(learning_rate=0.02, b1=0.85, b2=0.995, eps=1e-7), {"mu": "mu", "nu": "nu"}
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "amsgrad",
            o.amsgrad,
            "adam",
            cases=(
                Case(
                    "defaults",
                    dict(learning_rate=0.01),
                    Reference("optax.amsgrad", dict(learning_rate=0.01), {"mu": "mu", "nu": "nu", "max": "nu_max"}),
                ),
                Case(
                    "non-default",
                    dict(learning_rate=0.02, b1=0.8, b2=0.99, eps=1e-6),
                    Reference(
                        "optax.amsgrad",
                        dict(learning_rate=0.02, b1=0.8, b2=0.99, eps=1e-6),
                        {"mu": "mu", "nu": "nu", "max": "nu_max"},
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
            state_names=("count", "mu", "nu", "max"),
        ),
        Entry(
            "adagrad",
            o.adagrad,
            "adagrad",
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=0.1, initial_accumulator_value=0.2, eps=1e-6),
                    Reference(
                        "optax.adagrad",
                        dict(learning_rate=0.1, initial_accumulator_value=0.2, eps=1e-6),
                        {"sum_sq": "sum_of_squares"},
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1.0),),
            race_lr=_lr_table(ravine=1.0, rosenbrock=1.0, saddle=0.3, digits=0.1),
            state_names=("sum_sq",),
        ),
        Entry(
            "adadelta",
            o.adadelta,
            "adadelta",
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=0.5, rho=0.8, eps=1e-5),
                    Reference(
                        "optax.adadelta", dict(learning_rate=0.5, rho=0.8, eps=1e-5), {"nu": "e_g", "delta_sq": "e_x"}
                    ),
                ),
                Case(
                    "torch",
                    dict(learning_rate=0.5, rho=0.8, eps=1e-5),
                    Reference("torch.optim.Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5)),
                ),
            ),
            alias_kwargs=(dict(learning_rate=0.1),),
            alias_dtypes=(
                "float32",
            ),  # as optax's test: on complex Rosenbrock it is still 0.26 away after 10,000 steps
            race_lr=_lr_table(ravine=1.0, rosenbrock=1.0, saddle=1.0, digits=1.0),
            state_names=("nu", "delta_sq"),
        ),
        *_adaptive_entries(),
        *_more_entries(),
        *_layerwise_entries(),
        *_matrix_entries(),
        *_averaging_entries(),
        *_lr_free_entries(),
        *_loss_scale_entries(),
        # torch.optim-faithful constructors: parity with torch.optim at torch's defaults and at others.
        *_torch_entries(t),
        # wrappers: each wraps a default inner optimizer in `example`.
        Entry(
            "skip_nonfinite",
            skip_nonfinite,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: skip_nonfinite(o.adam(lr), max_consecutive=3),
            state_names=("count", "mu", "nu", "consecutive", "total"),
        ),
        Entry(
            "accumulate",
            accumulate,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: accumulate(o.adam(lr), k=2),
            state_names=("count", "mu", "nu", "acc", "micro_step"),
        ),
        Entry(
            "masked",
            masked,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: masked(o.adam(lr), lambda p: _all(p, True)),
            elementwise=False,
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "partition",
            partition,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: partition({"a": o.adam(lr), "b": o.sgd(lr, momentum=0.9)}, _alternate),
            elementwise=False,
            state_names=("count", "mu", "nu", "trace"),
        ),
    ]


def _adaptive_entries() -> list[Entry]:
    """The adaptive family and the sign methods: radam, adamax(w), nadamw, yogi, adabelief, lion, sign_sgd,
    signum, rprop."""
    from gradxform import optimizers as o

    moments = {"mu": "mu", "nu": "nu", "count": "count"}
    adamax_optax = dict(learning_rate=0.02, b1=0.8, b2=0.99, eps=1e-6)
    return [
        Entry(
            "radam",
            o.radam,
            "adaptive",
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, threshold=6.0),
                    Reference(
                        "optax.radam",
                        dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, threshold=6.0),
                        moments,
                    ),
                ),
                Case(
                    "nesterov",
                    dict(learning_rate=0.02, b1=0.85, b2=0.995, nesterov=True),
                    Reference("optax.radam", dict(learning_rate=0.02, b1=0.85, b2=0.995, nesterov=True), moments),
                ),
            ),
            alias_kwargs=(dict(learning_rate=5e-3),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=5e-3, saddle=0.1, digits=0.01),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "adamax",
            o.adamax,
            "adaptive",
            cases=(
                Case("non-default", adamax_optax, Reference("optax.adamax", adamax_optax, moments)),
                Case(
                    "torch",
                    adamax_optax,
                    Reference("torch.optim.Adamax", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.3, saddle=0.1, digits=0.01),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "adamaxw",
            o.adamaxw,
            "adaptive",
            needs_params=True,
            cases=(
                Case(
                    "weight_decay=0.1",
                    dict(adamax_optax, weight_decay=0.1),
                    Reference("optax.adamaxw", dict(adamax_optax, weight_decay=0.1), moments),
                ),
                Case(
                    "mask",
                    dict(adamax_optax, weight_decay=0.1, mask=_matrices),
                    Reference("optax.adamaxw", dict(adamax_optax, weight_decay=0.1, mask=_matrices), moments),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.3, saddle=0.1, digits=0.01),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "nadamw",
            o.nadamw,
            "adam",
            needs_params=True,
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=0.02, b1=0.85, b2=0.995, eps=1e-7, eps_root=1e-9, weight_decay=0.1),
                    Reference(
                        "optax.nadamw",
                        dict(learning_rate=0.02, b1=0.85, b2=0.995, eps=1e-7, eps_root=1e-9, weight_decay=0.1),
                        moments,
                    ),
                ),
                Case(
                    "mask",
                    dict(learning_rate=0.01, weight_decay=0.05, mask=_matrices),
                    Reference("optax.nadamw", dict(learning_rate=0.01, weight_decay=0.05, mask=_matrices), moments),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "yogi",
            o.yogi,
            "adaptive",
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=0.05, b1=0.8, b2=0.99, eps=1e-4),
                    Reference("optax.yogi", dict(learning_rate=0.05, b1=0.8, b2=0.99, eps=1e-4), moments),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.3, saddle=0.1, digits=0.01),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "adabelief",
            o.adabelief,
            "adaptive",
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-10, eps_root=1e-12),
                    Reference(
                        "optax.adabelief", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-10, eps_root=1e-12), moments
                    ),
                ),
                Case(
                    "nesterov",
                    dict(learning_rate=0.02, b1=0.85, b2=0.995, eps=1e-8, nesterov=True),
                    Reference(
                        "optax.adabelief", dict(learning_rate=0.02, b1=0.85, b2=0.995, eps=1e-8, nesterov=True), moments
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2),),
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.3, saddle=0.03, digits=3e-3),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "lion",
            o.lion,
            "sign",
            needs_params=True,
            supports_complex=False,
            cases=(
                Case(
                    "non-default",
                    dict(learning_rate=3e-3, b1=0.8, b2=0.95, weight_decay=0.05),
                    Reference("optax.lion", dict(learning_rate=3e-3, b1=0.8, b2=0.95, weight_decay=0.05), {"mu": "mu"}),
                ),
                Case(
                    "mask",
                    dict(learning_rate=3e-3, weight_decay=0.1, mask=_matrices),
                    Reference("optax.lion", dict(learning_rate=3e-3, weight_decay=0.1, mask=_matrices), {"mu": "mu"}),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2, weight_decay=1e-4),),
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.01, saddle=0.03, digits=3e-3),
            state_names=("mu",),
        ),
        Entry(
            "sign_sgd",
            o.sign_sgd,
            "sign",
            supports_complex=False,
            cases=(Case("lr=0.02", dict(learning_rate=0.02), Reference("optax.sign_sgd", dict(learning_rate=0.02))),),
            alias_kwargs=(dict(learning_rate=1e-1),),
            alias_targets=("parabola",),  # as optax's test: Rosenbrock needs a decaying learning rate
            race_lr=_lr_table(ravine=0.1, rosenbrock=3e-3, saddle=0.1, digits=1e-3),
            state_names=(),
        ),
        Entry(
            "signum",
            o.signum,
            "sign",
            supports_complex=False,
            cases=(
                Case(
                    "beta=0.8",
                    dict(learning_rate=0.02, beta=0.8),
                    Reference("optax.signum", dict(learning_rate=0.02, beta=0.8), {"mu": "ema"}),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2),),
            alias_targets=("parabola",),  # as optax's test: Rosenbrock needs a decaying learning rate
            race_lr=_lr_table(ravine=0.03, rosenbrock=0.01, saddle=0.01, digits=3e-3),
            state_names=("mu",),
        ),
        Entry(
            "rprop",
            o.rprop,
            "sign",
            supports_complex=False,
            # No optax case: optax 0.2.8's rprop returns each update one step late (tests/test_zoo_adaptive.py
            # checks ours against it shifted by that step); torch.optim.Rprop is the reference.
            cases=(
                Case(
                    "torch",
                    dict(learning_rate=0.02, eta_minus=0.4, eta_plus=1.3, min_step_size=1e-4, max_step_size=0.5),
                    Reference("torch.optim.Rprop", dict(lr=0.02, etas=(0.4, 1.3), step_sizes=(1e-4, 0.5))),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            race_lr=_lr_table(ravine=0.01, rosenbrock=0.03, saddle=0.1, digits=1e-3),
            state_names=("step_sizes", "prev_updates"),
        ),
    ]


def _more_entries() -> list[Entry]:
    """adan, optimistic methods, sm3, polyak_sgd, noisy_sgd, ademamix, adopt, madgrad, asgd."""
    from gradxform import optimizers as o

    adan_kw = dict(learning_rate=0.01, b1=0.9, b2=0.85, b3=0.995, eps=1e-6, eps_root=1e-10, weight_decay=0.05)
    adan_state = {"m": "m", "v": "v", "n": "n", "prev": "g", "count": "t"}
    oadam_kw = dict(learning_rate=0.01, alpha=0.8, beta=0.4, b1=0.85, b2=0.99, eps=1e-6)
    oadam_state = {"mu": "mu", "nu": "nu", "prev": "previous_gradient", "count": "count"}
    mix_kw = dict(learning_rate=0.01, b1=0.85, b2=0.99, b3=0.999, alpha=3.0, eps=1e-6, eps_root=1e-9)
    adopt_kw = dict(learning_rate=0.01, b1=0.85, b2=0.99, eps=1e-5)
    adopt_state = {"mu": "mu", "nu": "nu", "count": "count"}
    # The learning rate as a schedule returning a NumPy float64: with a Python float, optax's MADGRAD rounds its
    # weight (lr + eps) sqrt(k + 1) to float32 even under x64 (3e-8 relative); ours multiplies in the hyperparameter
    # dtype (sqrt(k + 1) itself is float32 on both sides, see `scale_by_madgrad`).
    madgrad_kw = dict(learning_rate=_numpy_constant(0.02), momentum=0.8, weight_decay=0.01, eps=1e-5)
    noisy_kw = dict(learning_rate=0.01, eta=0.05, gamma=0.6, key=3)
    return [
        Entry(
            "adan",
            o.adan,
            "adan",
            cases=(
                Case("non-default", adan_kw, Reference("optax.adan", adan_kw, adan_state)),
                Case(
                    "mask",
                    dict(adan_kw, mask=_matrices),
                    Reference("optax.adan", dict(adan_kw, mask=_matrices), adan_state),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-1),),
            alias_dtypes=("float32",),  # as optax's test, which skips complex64 for adan
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.3, saddle=0.03, digits=0.03),
            state_names=("count", "m", "v", "n", "prev"),
        ),
        Entry(
            "optimistic_gradient_descent",
            o.optimistic_gradient_descent,
            "optimistic",
            cases=(
                Case(
                    "alpha=0.7, beta=0.3",
                    dict(learning_rate=0.02, alpha=0.7, beta=0.3),
                    Reference(
                        "optax.optimistic_gradient_descent",
                        dict(learning_rate=0.02, alpha=0.7, beta=0.3),
                        {"prev": "previous_gradient"},
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=2e-3, alpha=0.7, beta=0.1),),
            alias_dtypes=("float32",),  # as optax's test, which skips complex64 for it
            race_lr=_lr_table(ravine=0.03, rosenbrock=1e-3, saddle=0.01, digits=0.3),
            state_names=("prev", "first"),
        ),
        Entry(
            "optimistic_adam_v2",
            o.optimistic_adam_v2,
            "optimistic",
            cases=(
                Case("nesterov", oadam_kw, Reference("optax.optimistic_adam_v2", oadam_kw, oadam_state)),
                Case(
                    "plain",
                    dict(oadam_kw, nesterov=False, eps_root=1e-8),
                    Reference("optax.optimistic_adam_v2", dict(oadam_kw, nesterov=False, eps_root=1e-8), oadam_state),
                ),
            ),
            alias_kwargs=(dict(learning_rate=2e-3),),
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.1, saddle=0.01, digits=0.03),
            state_names=("count", "mu", "nu", "prev"),
        ),
        Entry(
            "ademamix",
            o.ademamix,
            "ademamix",
            cases=(
                Case(
                    "non-default", mix_kw, Reference("optax.contrib.ademamix", mix_kw, {"nu": "nu", "count": "count"})
                ),
                Case(
                    "weight_decay",
                    dict(mix_kw, weight_decay=0.05, mask=_matrices),
                    Reference("optax.contrib.ademamix", dict(mix_kw, weight_decay=0.05, mask=_matrices), {"nu": "nu"}),
                ),
            ),
            # optax tests contrib's ademamix for extra arguments only, not on its alias problems (at its 1e-3 it is
            # still 6 away on the parabola after 10,000 steps): no alias_kwargs.
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.3, saddle=0.03, digits=0.03),
            state_names=("count", "nu"),
        ),
        Entry(
            "adopt",
            o.adopt,
            "adopt",
            cases=(
                Case("non-default", adopt_kw, Reference("optax.contrib.adopt", adopt_kw, adopt_state)),
                Case(
                    "nesterov, no clipping",
                    dict(adopt_kw, nesterov=True, use_clipping=False),
                    Reference("optax.contrib.adopt", dict(adopt_kw, nesterov=True, use_clipping=False), adopt_state),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2),),
            race_lr=_lr_table(ravine=0.3, rosenbrock=1.0, saddle=0.03, digits=0.1),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "madgrad",
            o.madgrad,
            "madgrad",
            needs_params=True,
            supports_complex=False,
            cases=(
                Case(
                    "non-default",
                    madgrad_kw,
                    Reference(
                        "optax.contrib.madgrad",
                        madgrad_kw,
                        {"grad_sum_sq": "grad_sum_sq", "s": "s", "x0": "x0", "count": "count"},
                    ),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1e-2),),
            race_lr=_lr_table(ravine=0.03, rosenbrock=0.01, saddle=1e-3, digits=0.1),
            state_names=("count", "grad_sum_sq", "s", "x0"),
        ),
        Entry(
            "noisy_sgd",
            o.noisy_sgd,
            "noisy",
            elementwise=False,  # the noise is drawn leaf by leaf
            cases=(Case("non-default", noisy_kw, Reference("optax.noisy_sgd", noisy_kw, {"count": "count"})),),
            alias_kwargs=(dict(learning_rate=1e-3, eta=1e-4, key=0),),
            alias_dtypes=("float32",),  # as optax's test, which skips complex64 for it
            race_lr=_lr_table(ravine=0.1, rosenbrock=3e-3, saddle=0.03, digits=0.5),
            state_names=("count", "key"),
            static_args=("key",),
        ),
        Entry(
            "polyak_sgd",
            o.polyak_sgd,
            "polyak",
            lr_arg="max_learning_rate",
            extra_args=("value",),
            global_reduction=True,  # the norm of the whole step
            cases=(
                Case(
                    "sps",
                    dict(max_learning_rate=0.5, scaling=0.8, f_min=1.0, eps=1e-3),
                    Reference("optax.polyak_sgd", dict(max_learning_rate=0.5, scaling=0.8, f_min=1.0, eps=1e-3)),
                ),
                Case(
                    "sps+",
                    dict(max_learning_rate=0.2, scaling=1.5, f_min=0.5, variant="sps+"),
                    Reference("optax.polyak_sgd", dict(max_learning_rate=0.2, scaling=1.5, f_min=0.5, variant="sps+")),
                ),
            ),
            alias_kwargs=(dict(max_learning_rate=1.0),),
            alias_dtypes=("float32",),  # as optax's test, which skips complex64 for it
            # saddle: its minimum is -1, below the default f_min=0, where the step stops (the loss reaches 0)
            race_lr=_lr_table(ravine=1.0, rosenbrock=1.0, saddle=0.01, digits=1.0),
        ),
        Entry(
            "sm3",
            o.sm3,
            "sm3",
            elementwise=False,  # its accumulators are maxima over whole slices of a leaf
            replicated_state=True,
            supports_complex=False,
            cases=(
                Case(
                    "momentum=0.7",
                    dict(learning_rate=0.05, momentum=0.7),
                    Reference("optax.sm3", dict(learning_rate=0.05, momentum=0.7), {"mu": "nu"}, lift_scalars=True),
                ),
            ),
            alias_kwargs=(dict(learning_rate=1.0),),
            alias_dtypes=("float32",),  # as optax's test, which skips complex64 for sm3
            race_lr=_lr_table(ravine=1.0, rosenbrock=1.0, saddle=0.1, digits=0.3),
            state_names=("acc", "mu"),
        ),
        Entry(
            "asgd",
            o.asgd,
            "asgd",
            needs_params=True,
            cases=(
                Case(
                    "torch",
                    dict(learning_rate=0.02, lambd=1e-3, alpha=0.6, t0=100.0, weight_decay=1e-2),
                    Reference("torch.optim.ASGD", dict(lr=0.02, lambd=1e-3, alpha=0.6, t0=100.0, weight_decay=1e-2)),
                ),
            ),
            race_lr=_lr_table(ravine=0.1, rosenbrock=3e-3, saddle=0.03, digits=0.5),
            state_names=("count", "offset"),
            static_args=("weight_decay", "lambd"),
        ),
    ]


def _layerwise_entries() -> list[Entry]:
    """Layer-wise methods: lars, lamb, fromage, novograd, adafactor."""
    from gradxform import optimizers as o

    adam_state = {"mu": "mu", "nu": "nu", "count": "count"}
    lars_nd = dict(learning_rate=0.05, weight_decay=0.01, trust_coefficient=0.02, eps=1e-6, momentum=0.8)
    lamb_nd = dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-5, eps_root=1e-8, weight_decay=0.05)
    adafactor_state = {"v_row": "v_row", "v_col": "v_col", "v": "v"}
    novograd_nd = dict(learning_rate=0.01, b1=0.8, b2=0.5, eps=1e-5, eps_root=1e-8, weight_decay=0.01)
    # min_dim_size_to_factor=2 factors the 3x4 matrix and the 2x3x2 leaf (on its axes 2 and 1).
    adafactor_nd = dict(
        learning_rate=0.05,
        min_dim_size_to_factor=2,
        decay_rate=0.7,
        clipping_threshold=0.5,
        momentum=0.8,
        weight_decay_rate=0.01,
        weight_decay_mask=_matrices,
        eps=1e-20,
        dtype_momentum=None,  # the parameters' dtype: optax multiplies a float32 moment by b1 in float32 under x64
    )
    adafactor_flat = dict(learning_rate=0.02, factored=False, multiply_by_parameter_scale=False, clipping_threshold=2.0)
    return [
        Entry(
            "lars",
            o.lars,
            "layerwise",
            cases=(
                Case(
                    "non-default",
                    dict(lars_nd, nesterov=True),
                    Reference("optax.lars", dict(lars_nd, nesterov=True), {"trace": "trace"}),
                ),
                Case(
                    "masks",
                    dict(lars_nd, weight_decay_mask=_matrices, trust_ratio_mask=_matrices),
                    Reference(
                        "optax.lars",
                        dict(lars_nd, weight_decay_mask=_matrices, trust_ratio_mask=_matrices),
                        {"trace": "trace"},
                    ),
                ),
            ),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=1.0),),
            race_lr=_lr_table(ravine=1.0, rosenbrock=1.0, saddle=1.0, digits=0.3),
            state_names=("trace",),
        ),
        Entry(
            "lamb",
            o.lamb,
            "layerwise",
            cases=(
                Case("non-default", lamb_nd, Reference("optax.lamb", lamb_nd, adam_state)),
                Case(
                    "mask",
                    dict(lamb_nd, mask=_matrices),
                    Reference("optax.lamb", dict(lamb_nd, mask=_matrices), adam_state),
                ),
            ),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=1e-3),),
            race_lr=_lr_table(ravine=0.03, rosenbrock=0.01, saddle=0.01, digits=0.01),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "adafactor",
            o.adafactor,
            "adafactor",
            example=lambda lr: o.adafactor(learning_rate=lr),
            cases=(
                Case(
                    "factored momentum decay",
                    adafactor_nd,
                    Reference("optax.adafactor", adafactor_nd, dict(adafactor_state, mu="ema")),
                ),
                Case(
                    "not factored",
                    adafactor_flat,
                    Reference("optax.adafactor", adafactor_flat, adafactor_state),
                ),
            ),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=5e-3),),
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.1, saddle=0.01, digits=0.01),
            state_names=("v_row", "v_col", "v"),
            static_args=("min_dim_size_to_factor", "decay_offset"),
        ),
        Entry(
            "novograd",
            o.novograd,
            "layerwise",
            cases=(Case("non-default", novograd_nd, Reference("optax.novograd", novograd_nd, adam_state)),),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=1e-3),),
            race_lr=_lr_table(ravine=0.01, rosenbrock=1e-3, saddle=0.01, digits=0.01),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "fromage",
            o.fromage,
            "layerwise",
            cases=(
                Case(
                    "min_norm",
                    dict(learning_rate=0.02, min_norm=1e-3),
                    Reference("optax.fromage", dict(learning_rate=0.02, min_norm=1e-3)),
                ),
            ),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=5e-3),),
            alias_dtypes=("float32",),  # as optax's test, which skips complex parameters for fromage
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.1, saddle=0.03, digits=0.01),
        ),
    ]


def _matrix_entries() -> list[Entry]:
    """Matrix-aware methods: muon, soap."""
    from gradxform import optimizers as o

    muon_lr = 0.02
    return [
        Entry(
            "muon",
            o.muon,
            "muon",
            cases=(
                Case(
                    "defaults",
                    dict(learning_rate=muon_lr),
                    Reference("optax.contrib.muon", dict(learning_rate=muon_lr), {"nu": "nu"}),
                ),
                Case(
                    "stacked, no nesterov, weight decay, consistent rms",
                    dict(
                        learning_rate=muon_lr,
                        beta=0.9,
                        nesterov=False,
                        weight_decay=0.1,
                        consistent_rms=0.2,
                        muon_weight_dimension_numbers=_stacked_dims,
                    ),
                    Reference(
                        "optax.contrib.muon",
                        dict(
                            learning_rate=muon_lr,
                            beta=0.9,
                            nesterov=False,
                            weight_decay=0.1,
                            consistent_rms=0.2,
                            muon_weight_dimension_numbers=_optax_stacked_dims,
                        ),
                        {"nu": "nu"},
                    ),
                ),
                Case(
                    "dion coefficients, aol, adam's own settings",
                    dict(
                        learning_rate=muon_lr,
                        ns_coeffs="dion",
                        preconditioning="aol",
                        adam_learning_rate=5e-3,
                        adam_b1=0.8,
                        adam_b2=0.99,
                        adam_weight_decay=0.05,
                        eps=1e-6,
                    ),
                    Reference(
                        "optax.contrib.muon",
                        dict(
                            learning_rate=muon_lr,
                            ns_coeffs="dion",
                            preconditioning="aol",
                            adam_learning_rate=5e-3,
                            adam_b1=0.8,
                            adam_b2=0.99,
                            adam_weight_decay=0.05,
                            eps=1e-6,
                        ),
                        {"nu": "nu"},
                    ),
                ),
                Case(
                    "schatten, 4 steps, adaptive",
                    dict(learning_rate=muon_lr, ns_steps=4, preconditioning="schatten", adaptive=True),
                    Reference(
                        "optax.contrib.muon",
                        dict(learning_rate=muon_lr, ns_steps=4, preconditioning="schatten", adaptive=True),
                        {"nu": "nu"},
                    ),
                ),
            ),
            elementwise=False,
            matrix_math=True,
            needs_params=True,
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=0.02),
            state_names=("count", "nu"),
            static_args=("ns_steps",),
        ),
        # No library has SOAP (optax, torch.optim, Keras): tests/test_zoo_matrix.py holds it to a NumPy
        # transcription of the paper's Algorithm 3 instead of a parity case.
        Entry(
            "soap",
            o.soap,
            "soap",
            elementwise=False,
            matrix_math=True,
            supports_complex=False,
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.03, saddle=0.1, digits=0.01),
            state_names=("count", "mu", "nu", "l", "r", "q_l", "q_r"),
            static_args=("precondition_frequency", "max_precond_dim"),
        ),
    ]


def _stacked_dims(tree: Any) -> Any:
    """Muon's matrices on the parity tree: 2-d leaves as (0, 1), 3-d leaves as stacked layers (1, 2)."""
    import jax

    from gradxform.blocks.orthogonal import MuonDimensionNumbers as D

    return jax.tree.map(lambda x: D() if x.ndim == 2 else D(1, 2) if x.ndim == 3 else None, tree)


def _optax_stacked_dims(tree: Any) -> Any:
    """`_stacked_dims` in optax's class (optax recognizes only its own)."""
    import jax
    from optax.contrib import MuonDimensionNumbers as D

    return jax.tree.map(lambda x: D() if x.ndim == 2 else D(1, 2) if x.ndim == 3 else None, tree)


def _averaging_entries() -> list[Entry]:
    """Evaluation weights and wrappers: schedule-free methods, ema_params, swa, lookahead, sam, reduce_on_plateau."""
    from gradxform import blocks as b
    from gradxform import core
    from gradxform import optimizers as o
    from gradxform import wrappers as w

    plateau = dict(factor=0.5, patience=3, rtol=1e-3, atol=1e-4, cooldown=2, accumulation_size=2, min_scale=0.01)
    plateau_state = {k: k for k in ("scale", "best_value", "plateau_count", "cooldown_count", "avg_value")} | {
        "accumulation_count": "count"
    }

    sf_state = {"z": "z", "weight_sum": "weight_sum", "max_lr": "max_lr", "b1": "b1"}
    # Learning rates and warmups whose schedule is exact in float32: optax evaluates its schedules at an int32
    # count, in float32 even under x64, so other values differ from ours by float32 rounding in float64 runs.
    sf_sgd = dict(learning_rate=0.5, warmup_steps=16, b1=0.8, weight_decay=1e-3, weight_lr_power=1.5)
    sf_adamw = dict(
        learning_rate=2**-7, warmup_steps=8, b1=0.85, b2=0.99, eps=1e-6, weight_decay=0.05, weight_lr_power=1.0
    )
    return [
        Entry(
            "schedule_free_sgd",
            o.schedule_free_sgd,
            "schedule_free",
            needs_params=True,
            cases=(
                Case(
                    "non-default",
                    sf_sgd,
                    Reference("optax.contrib.schedule_free_sgd", sf_sgd, sf_state),
                ),
                Case(
                    "no warmup, no decay",
                    dict(learning_rate=0.3, b1=0.95),
                    Reference("optax.contrib.schedule_free_sgd", dict(learning_rate=0.3, b1=0.95), sf_state),
                ),
            ),
            static_args=("warmup_steps",),
            state_names=("z", "weight_sum", "max_lr", "b1"),
            # 500-step sweeps over 1e-3..3: the largest rate that stays finite and makes steady progress
            race_lr=_lr_table(ravine=0.3, rosenbrock=3e-3, saddle=0.03, digits=1.0),
        ),
        Entry(
            "schedule_free_adamw",
            o.schedule_free_adamw,
            "schedule_free",
            needs_params=True,
            cases=(
                Case(
                    "non-default",
                    sf_adamw,
                    Reference("optax.contrib.schedule_free_adamw", sf_adamw, {**sf_state, "nu": "nu"}),
                ),
            ),
            static_args=("warmup_steps",),
            state_names=("z", "weight_sum", "max_lr", "b1", "nu"),
            race_lr=_lr_table(ravine=0.3, rosenbrock=0.1, saddle=0.03, digits=0.03),
        ),
        Entry(
            "schedule_free",
            w.schedule_free,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: w.schedule_free(o.adam(lr, b1=0.0), lr),
            needs_params=True,
            state_names=("count", "mu", "nu", "z", "weight_sum"),
        ),
        Entry(
            "ema_params",
            w.ema_params,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: w.ema_params(o.adam(lr), decay=0.9),
            needs_params=True,
            state_names=("count", "mu", "nu", "ema", "weight"),
        ),
        Entry(
            "swa",
            w.swa,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: w.swa(o.adam(lr), start=2, every=2),
            needs_params=True,
            state_names=("count", "mu", "nu", "average", "n_averaged"),
        ),
        Entry(
            "lookahead",
            w.lookahead,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: w.lookahead(o.adam(lr), sync_period=2, slow_step_size=0.5),
            needs_params=True,
            state_names=("count", "mu", "nu", "slow", "steps_since_sync"),
        ),
        Entry(
            "sam",
            w.sam,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: w.sam(o.adam(lr), rho=0.05),
            needs_params=True,
            global_reduction=True,
            extra_args=("grad_fn",),
            state_names=("count", "mu", "nu"),
        ),
        Entry(
            "reduce_on_plateau",
            b.reduce_on_plateau,
            "plateau",
            kind="wrapper",
            lr_arg=None,
            example=lambda lr: core.chain(o.adam(lr), b.reduce_on_plateau(patience=2, accumulation_size=2)),
            extra_args=("value",),
            example_leads_with="chain",
            cases=(
                Case("non-default", plateau, Reference("optax.contrib.reduce_on_plateau", plateau, plateau_state)),
                Case(
                    "patience and rtol",
                    dict(factor=0.8, patience=4, rtol=1e-2),
                    Reference(
                        "optax.contrib.reduce_on_plateau", dict(factor=0.8, patience=4, rtol=1e-2), plateau_state
                    ),
                ),
            ),
            static_args=("patience", "cooldown", "accumulation_size"),
            state_names=("scale", "best_value", "plateau_count", "cooldown_count", "accumulation_count", "avg_value"),
        ),
    ]


def _loss_scale_entries() -> list[Entry]:
    """Dynamic loss scaling (its scale's trajectory is tested against torch.amp.GradScaler in its own tests)."""
    from gradxform import optimizers as o
    from gradxform import wrappers as w

    return [
        Entry(
            "loss_scale",
            w.loss_scale,
            "wrappers",
            kind="wrapper",
            lr_arg=None,
            # a scale that changes within the suites' runs: it grows every 3 finite steps
            example=lambda lr: w.loss_scale(o.adam(lr), initial_scale=2.0**4, growth_interval=3),
            global_reduction=True,  # whether every gradient is finite: one boolean all-reduced over the shards
            static_args=("growth_interval",),  # an int count: inject_hyperparams keeps it static
            state_names=("count", "mu", "nu", "scale", "good_steps", "skipped"),
        ),
    ]


def _lr_free_entries() -> list[Entry]:
    """Learning-rate-free methods: prodigy, dadapt_adamw, dog, dowg, cocob, mechanize, momo, momo_adam.

    Their `learning_rate` (default 1.0) is a factor on the step they estimate, so they race at 1.0.
    They read whole-tree norms or sums (`elementwise=False`) and need the parameters.
    """
    from gradxform import optimizers as o

    ones = _lr_table(ravine=1.0, rosenbrock=1.0, saddle=1.0, digits=1.0)
    dog_state = {"init_params": "init_params", "max_dist": "max_dist", "sum_sq_norm_grads": "sum_sq_norm_grads"}
    dowg_state = {
        "init_params": "init_params",
        "estim_sq_dist": "estim_sq_dist",
        "weighted_sq_norm_grads": "weighted_sq_norm_grads",
    }
    adapt = {k: k for k in ("exp_avg", "exp_avg_sq", "grad_sum", "estim_lr", "numerator_weighted", "count")}
    prodigy_1 = dict(
        learning_rate=0.5, betas=(0.8, 0.99), eps=1e-6, estim_lr0=1e-4, estim_lr_coef=2.0, weight_decay=1e-2
    )
    prodigy_2 = dict(betas=(0.9, 0.995), beta3=0.95, estim_lr0=1e-3, weight_decay=0.1, safeguard_warmup=True)
    dadapt_1 = dict(learning_rate=0.5, betas=(0.85, 0.995), eps=1e-6, estim_lr0=1e-3, weight_decay=1e-2)
    dadapt_2 = dict(learning_rate=2.0, betas=(0.5, 0.9), estim_lr0=1e-3, weight_decay=0.1)
    # optax rounds 1 - b and the bias corrections from Python doubles (docs/conventions.md): Prodigy's s_t,
    # which sums d_t-weighted gradients to ~40, is 6e-5 (relative to 1 + |s|) from optax's after 300 float32 steps.
    prodigy_tol = {"float32": (1e-5, 2e-4), "float64": (1e-12, 1e-12)}
    cocob_1 = dict(learning_rate=0.8, alpha=50.0, eps=1e-6, weight_decay=1e-2)
    cocob_2 = dict(alpha=200.0, weight_decay=0.1, mask=_matrices)
    cocob_state = {k: k for k in ("cumulative_gradients", "scale", "subgradients", "reward")}
    mech = dict(weight_decay=0.05, eps=1e-7, s_init=0.1, num_betas=4)
    mech_state = {"r": "r", "m": "m", "v": "v", "s": "s", "init_params": "x0"}
    momo_1 = dict(learning_rate=0.5, beta=0.8, lower_bound=-2.0, weight_decay=1e-2)
    momo_2 = dict(learning_rate=0.3, beta=0.95, weight_decay=0.1, adapt_lower_bound=True)
    momo_adam_1 = dict(learning_rate=0.05, b1=0.8, b2=0.99, eps=1e-6, lower_bound=-1.0, weight_decay=1e-2)
    momo_adam_2 = dict(learning_rate=0.1, b1=0.85, weight_decay=0.1, adapt_lower_bound=True)
    momo_state = {k: k for k in ("exp_avg", "barf", "gamma", "lb", "count")}
    return [
        Entry(
            "momo",
            o.momo,
            "lr_free",
            cases=(
                Case("non-default", momo_1, Reference("optax.contrib.momo", momo_1, momo_state)),
                Case("adapt", momo_2, Reference("optax.contrib.momo", momo_2, momo_state)),
            ),
            elementwise=False,
            needs_params=True,
            extra_args=("value",),
            supports_complex=False,
            alias_kwargs=(dict(learning_rate=1e-1),),
            alias_dtypes=("float32",),
            race_lr=ones,
            state_names=("count", "exp_avg", "barf", "gamma", "lb"),
        ),
        Entry(
            "momo_adam",
            o.momo_adam,
            "lr_free",
            cases=(
                Case(
                    "non-default",
                    momo_adam_1,
                    Reference("optax.contrib.momo_adam", momo_adam_1, dict(momo_state, exp_avg_sq="exp_avg_sq")),
                ),
                Case(
                    "adapt",
                    momo_adam_2,
                    Reference("optax.contrib.momo_adam", momo_adam_2, dict(momo_state, exp_avg_sq="exp_avg_sq")),
                ),
            ),
            elementwise=False,
            needs_params=True,
            extra_args=("value",),
            supports_complex=False,
            alias_kwargs=(dict(learning_rate=1e-1),),
            alias_dtypes=("float32",),
            race_lr=_lr_table(ravine=0.1, rosenbrock=0.1, saddle=0.1, digits=0.01),
            state_names=("count", "exp_avg", "exp_avg_sq", "barf", "gamma", "lb"),
        ),
        Entry(
            "cocob",
            o.cocob,
            "lr_free",
            cases=(
                Case(
                    "non-default",
                    cocob_1,
                    Reference("optax.contrib.cocob", cocob_1, dict(cocob_state, init_params="init_particles")),
                ),
                Case(
                    "mask",
                    cocob_2,
                    Reference("optax.contrib.cocob", cocob_2, dict(cocob_state, init_params="init_particles")),
                ),
            ),
            needs_params=True,
            supports_complex=False,
            alias_kwargs=(dict(), dict(weight_decay=1e-2)),
            alias_dtypes=("float32",),
            alias_steps=30_000,  # optax's contrib test's count: with weight decay it is 0.06 away at 10,000
            lr_invariant=True,
            race_lr=ones,
            state_names=("init_params", "cumulative_gradients", "scale", "subgradients", "reward"),
        ),
        Entry(
            "mechanize",
            o.mechanize,
            "lr_free",
            lr_arg=None,  # it scales its base optimizer's steps: the race's learning rate is the base SGD's
            example=lambda lr: o.mechanize(o.sgd(lr)),
            cases=(
                Case(
                    "sgd",
                    dict(mech, base_optimizer=o.sgd(0.1)),
                    Reference(
                        "optax.contrib.mechanize", dict(mech, base_optimizer=Foreign("optax.sgd", 0.1)), mech_state
                    ),
                ),
                Case(
                    "adam",
                    dict(base_optimizer=o.adam(1e-2), weight_decay=0.0, s_init=0.5),
                    Reference(
                        "optax.contrib.mechanize",
                        dict(base_optimizer=Foreign("optax.adam", 1e-2), weight_decay=0.0, s_init=0.5),
                        dict(mech_state, mu="mu", nu="nu"),
                    ),
                ),
            ),
            elementwise=False,
            needs_params=True,
            supports_complex=False,
            alias_kwargs=(dict(base_optimizer=o.sgd(0.1), weight_decay=0.0),),
            alias_dtypes=("float32",),
            alias_steps=30_000,  # optax's contrib test's count: Rosenbrock is 0.09 away at 10,000
            static_args=("num_betas",),
            race_lr=ones,
            state_names=("init_params", "r", "m", "v", "s"),
        ),
        Entry(
            "prodigy",
            o.prodigy,
            "lr_free",
            # d_0 = 1e-6 by default: ten steps hardly move, whatever the learning rate; instances start at 1e-4.
            example=lambda lr: o.prodigy(lr, estim_lr0=1e-4),
            cases=(
                Case(
                    "non-default",
                    prodigy_1,
                    Reference("optax.contrib.prodigy", prodigy_1, dict(adapt, init_params="params0")),
                    prodigy_tol,
                ),
                Case(
                    "safeguard",
                    prodigy_2,
                    Reference("optax.contrib.prodigy", prodigy_2, dict(adapt, init_params="params0")),
                    prodigy_tol,
                ),
            ),
            elementwise=False,
            needs_params=True,
            supports_complex=False,
            alias_kwargs=(dict(learning_rate=1e-1),),
            alias_dtypes=("float32",),
            race_lr=ones,
            state_names=("count", "exp_avg", "exp_avg_sq", "grad_sum", "init_params", "estim_lr", "numerator_weighted"),
        ),
        Entry(
            "dadapt_adamw",
            o.dadapt_adamw,
            "lr_free",
            example=lambda lr: o.dadapt_adamw(lr, estim_lr0=1e-4),  # as prodigy's
            cases=(
                Case("non-default", dadapt_1, Reference("optax.contrib.dadapt_adamw", dadapt_1, adapt)),
                Case(
                    "betas",
                    dadapt_2,
                    Reference("optax.contrib.dadapt_adamw", dadapt_2, adapt),
                ),
            ),
            elementwise=False,
            needs_params=True,
            supports_complex=False,
            alias_kwargs=(dict(learning_rate=1e-1),),
            alias_dtypes=("float32",),
            race_lr=ones,
            state_names=("count", "exp_avg", "exp_avg_sq", "grad_sum", "estim_lr", "numerator_weighted"),
        ),
        Entry(
            "dog",
            o.dog,
            "lr_free",
            # The default first step, r_eps = 1e-6 (1 + |x0|), keeps ten steps so small that the learning
            # rate hardly matters to them; instances are built at the paper's other suggestion, 1e-4.
            example=lambda lr: o.dog(lr, init_step=("heuristic", 1e-4)),
            cases=(
                Case(
                    "heuristic-wd",
                    dict(learning_rate=0.8, init_step=("heuristic", 1e-3), eps=1e-6, weight_decay=1e-2),
                    Reference(
                        "optax.contrib.dog",
                        dict(learning_rate=0.8, init_step=("heuristic", 1e-3), eps=1e-6, weight_decay=1e-2),
                        dog_state,
                    ),
                ),
                Case(
                    "distance-mask",
                    dict(init_step=("distance", 1e-2), weight_decay=5e-2, mask=_matrices),
                    Reference(
                        "optax.contrib.dog",
                        dict(init_step=("distance", 1e-2), weight_decay=5e-2, mask=_matrices),
                        dog_state,
                    ),
                ),
                Case(
                    "learning_rate",
                    dict(learning_rate=0.5, init_step=("learning_rate", 1e-2)),
                    Reference(
                        "optax.contrib.dog",
                        dict(learning_rate=0.5, init_step=("learning_rate", 1e-2)),
                        dict(dog_state, is_init_step="is_init_step"),
                    ),
                ),
            ),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=1.0),),
            alias_dtypes=("float32",),
            race_lr=ones,
            state_names=("init_params", "max_dist", "sum_sq_norm_grads"),
        ),
        Entry(
            "dowg",
            o.dowg,
            "lr_free",
            cases=(
                Case(
                    "init-wd",
                    dict(learning_rate=0.7, init_estim_sq_dist=1e-3, eps=1e-5, weight_decay=1e-2),
                    Reference(
                        "optax.contrib.dowg",
                        dict(learning_rate=0.7, init_estim_sq_dist=1e-3, eps=1e-5, weight_decay=1e-2),
                        dowg_state,
                    ),
                ),
                Case(
                    "mask",
                    dict(learning_rate=0.5, eps=1e-5, weight_decay=0.1, mask=_matrices),
                    Reference(
                        "optax.contrib.dowg",
                        dict(learning_rate=0.5, eps=1e-5, weight_decay=0.1, mask=_matrices),
                        dowg_state,
                    ),
                ),
            ),
            elementwise=False,
            needs_params=True,
            alias_kwargs=(dict(learning_rate=1.0),),
            alias_dtypes=("float32",),
            race_lr=ones,
            state_names=("init_params", "estim_sq_dist", "weighted_sq_norm_grads"),
        ),
    ]


def _numpy_constant(value: float) -> Callable[[Any], Any]:
    """A constant schedule returning a NumPy float64 (a strongly typed scalar: float64 under x64)."""
    import numpy as np

    def schedule(count: Any) -> Any:
        return np.float64(value)

    return schedule


def _matrices(tree: Any) -> Any:
    """A weight-decay mask: True on leaves of two or more dimensions (no decay on biases, scales, scalars)."""
    import jax

    return jax.tree.map(lambda x: x.ndim > 1, tree)


def _all(tree: Any, value: bool) -> Any:
    import jax

    return jax.tree.map(lambda _: value, tree)


def _alternate(tree: Any) -> Any:
    """Labels leaves "a", "b", "a", ... in flattening order (a partition that splits every tree)."""
    import jax

    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, ["a" if i % 2 == 0 else "b" for i in range(len(leaves))])


def _torch_entries(t: Any) -> list[Entry]:
    """The `gradxform.compat.torch` constructors, each with torch.optim cases (torch's own argument names)."""
    cases = {
        "SGD": [
            ("plain", dict(lr=0.05)),
            ("momentum-dampening-wd", dict(lr=0.02, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
            ("nesterov-wd", dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=5e-3)),
            ("maximize", dict(lr=0.01, momentum=0.5, maximize=True)),
        ],
        "Adam": [
            ("defaults", dict()),
            ("amsgrad-l2", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)),
            ("decoupled", dict(lr=2e-3, weight_decay=0.1, decoupled_weight_decay=True)),
        ],
        "AdamW": [("defaults", dict()), ("amsgrad", dict(lr=5e-3, weight_decay=0.05, amsgrad=True))],
        "RMSprop": [
            ("defaults", dict()),
            ("centered-momentum-wd", dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.9, weight_decay=1e-2)),
        ],
        "Adagrad": [
            ("defaults", dict()),
            ("lr_decay-iav-wd", dict(lr=0.05, lr_decay=1e-2, initial_accumulator_value=0.1, weight_decay=1e-3)),
        ],
        "Adadelta": [("defaults", dict()), ("wd", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=1e-2))],
        "ASGD": [
            ("defaults", dict()),
            ("t0-wd", dict(lr=0.02, lambd=1e-3, alpha=0.6, t0=100.0, weight_decay=1e-2)),
            ("maximize", dict(lr=0.01, t0=50.0, maximize=True)),
        ],
        "NAdam": [
            ("defaults", dict()),
            ("decoupled", dict(lr=1e-2, weight_decay=0.05, decoupled_weight_decay=True, momentum_decay=1e-2)),
            (
                "decoupled-betas-eps",
                dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, decoupled_weight_decay=True),
            ),
            ("l2", dict(lr=1e-2, betas=(0.95, 0.99), weight_decay=0.02)),
        ],
        "Adafactor": [
            ("defaults", dict()),
            ("decay-eps-d", dict(lr=0.05, beta2_decay=-0.6, eps=(1e-20, 1e-2), d=2.0, weight_decay=0.05)),
            ("maximize", dict(lr=0.02, eps=(1e-12, 1e-3), maximize=True)),
        ],
        "Muon": [
            ("defaults", dict()),
            (
                "no nesterov, match_rms_adamw, 4 steps",
                dict(
                    lr=0.02, weight_decay=0.05, momentum=0.9, nesterov=False, adjust_lr_fn="match_rms_adamw", ns_steps=4
                ),
            ),
            (
                "coefficients, original",
                dict(lr=0.01, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-6, adjust_lr_fn="original"),
            ),
        ],
        "RAdam": [
            ("defaults", dict()),
            ("l2", dict(lr=2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
            ("decoupled", dict(lr=3e-3, betas=(0.85, 0.995), weight_decay=0.1, decoupled_weight_decay=True)),
        ],
        "Adamax": [
            ("defaults", dict()),
            ("l2", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
        ],
        "Rprop": [
            ("defaults", dict()),
            ("non-default", dict(lr=0.02, etas=(0.4, 1.3), step_sizes=(1e-4, 0.5))),
            ("lr-outside-step_sizes", dict(lr=1.0, etas=(0.3, 1.1), step_sizes=(1e-3, 0.2), maximize=True)),
        ],
    }
    static = {
        "SGD": ("momentum", "dampening", "weight_decay"),
        "RMSprop": ("momentum", "weight_decay"),
        "Adagrad": ("lr_decay", "weight_decay"),
        "Muon": ("ns_steps",),
        "ASGD": ("weight_decay", "lambd"),
        "Rprop": (),
    }
    race = {
        "SGD": dict(ravine=0.15, rosenbrock=3e-3, saddle=0.05, digits=0.5),
        "Adam": dict(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
        "AdamW": dict(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
        "RMSprop": dict(ravine=0.03, rosenbrock=0.01, saddle=0.01, digits=1e-3),
        "Adagrad": dict(ravine=1.0, rosenbrock=1.0, saddle=0.3, digits=0.1),
        "Adadelta": dict(ravine=1.0, rosenbrock=1.0, saddle=1.0, digits=1.0),
        "NAdam": dict(ravine=0.3, rosenbrock=0.1, saddle=0.05, digits=3e-3),
        "ASGD": dict(ravine=0.1, rosenbrock=3e-3, saddle=0.03, digits=0.5),
        "Adafactor": dict(ravine=0.1, rosenbrock=0.1, saddle=0.01, digits=0.01),
        "RAdam": dict(ravine=0.3, rosenbrock=5e-3, saddle=0.1, digits=3e-3),
        "Adamax": dict(ravine=0.3, rosenbrock=0.3, saddle=0.1, digits=0.01),
        "Rprop": dict(ravine=0.01, rosenbrock=0.03, saddle=0.1, digits=1e-3),
    }
    # torch.optim.Muon takes only matrices: it does not race (the race's surfaces are vectors).
    matrices_only = {"Muon"}
    return [
        Entry(
            f"compat.torch.{name}",
            getattr(t, name),
            "torch",
            kind="torch",
            lr_arg="lr",
            cases=tuple(Case(label, kw, Reference(f"torch.optim.{name}", kw)) for label, kw in cs),
            needs_params=name in ("AdamW", "ASGD", "Adafactor", "Muon"),
            race_lr=_lr_table(**race[name]) if name in race else None,
            static_args=static.get(name, ("weight_decay",)),
            # Adafactor's factored statistics and RMS, Muon's matrices: they look at whole leaves.
            elementwise=name not in matrices_only and name != "Adafactor",
            matrix_math=name in matrices_only,
            param_ranks=(2,) if name in matrices_only else None,
            supports_complex=name not in matrices_only and name != "Rprop",  # Rprop: a sign method, real only
            smooth=name not in matrices_only,
        )
        for name, cs in cases.items()
    ]


_TABLE: dict[str, Entry] | None = None


def table() -> dict[str, Entry]:
    """`{name: Entry}` for every optimizer and wrapper, in the order above."""
    global _TABLE
    if _TABLE is None:
        _TABLE = {e.name: e for e in _entries()}
    return _TABLE


def entry(name: str) -> Entry:
    """The entry called `name`; `KeyError` listing the names if there is none.

    Args:
      name: the optimizer's or wrapper's name, e.g. `"adam"`.

    Returns:
      Its `Entry`.
    """
    if name not in table():
        raise KeyError(f"no optimizer {name!r} in the registry; it has {', '.join(table())}.")
    return table()[name]


def entries(kind: str | None = None) -> list[Entry]:
    """The entries, all of them or those of one `kind`.

    Args:
      kind: `"optimizer"` or `"wrapper"`; `None` for all.

    Returns:
      A list of `Entry`, in the registry's order.
    """
    return [e for e in table().values() if kind is None or e.kind == kind]
