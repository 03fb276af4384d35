"""The registry declares every optimizer once, and what it declares is true.

* every public optimizer, torch.optim constructor and wrapper has an entry;
* `lr_arg` is an argument of the factory; race learning rates cover every problem;
* `elementwise` agrees with the transform itself (FlatParams refuses exactly the others);
* every name in `state_names` is found by `tree_get` exactly once;
* for every optax case: the state holds no more leaves and no more integer scalars than optax's
  (one step count per optimizer), on the parity tree.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import pytest

import gradxform as gx
from gradxform.compat import torch as gxt
from gradxform.core import block_of
from tests.helpers import fit_ranks, make_tree
from tests.refs import ENTRIES, cases, count_leaves, entries, reference

PUBLIC = (
    [n for n in gx.optimizers.__all__ if n != "registry"]
    + [f"compat.torch.{n}" for n in gxt.optimizers.__all__]
    + ["skip_nonfinite", "accumulate", "masked", "partition"]
    + ["schedule_free", "ema_params", "swa", "lookahead", "reduce_on_plateau", "sam"]
    + ["loss_scale"]
)


def test_every_public_optimizer_and_wrapper_has_an_entry():
    names = {e.name for e in ENTRIES}
    missing = [n for n in PUBLIC if n not in names]
    assert not missing, missing
    assert len(names) == len(ENTRIES)  # names are unique


@pytest.mark.parametrize("entry", entries())
def test_entry_is_consistent_with_its_factory(entry):
    sig = inspect.signature(entry.factory).parameters
    if entry.lr_arg is not None:
        assert entry.lr_arg in sig
    for case in entry.cases:
        assert set(case.kwargs) <= set(sig), (case.label, set(case.kwargs) - set(sig))
    if entry.race_lr is not None:
        assert set(entry.race_lr) == set(gx.registry.RACE_PROBLEMS) and min(entry.race_lr.values()) > 0
    tx = gx.registry.entry(entry.name).build(1e-2)  # the registry's own, not the suites' supplying form
    assert block_of(tx).per_leaf == (not entry.elementwise)
    assert block_of(tx).extra_args == entry.extra_args  # what update reads is declared, in order


@pytest.mark.parametrize("entry", entries())
def test_state_names_are_found_once(entry):
    state = entry.build(1e-2).init(fit_ranks(make_tree(jnp.float32), entry.param_ranks))
    for name in entry.state_names:
        assert gx.tree_get(state, name) is not None, name  # tree_get raises KeyError if it occurs twice


@pytest.mark.parametrize("entry, case", cases("optax"))
def test_no_more_state_than_optax(entry, case):
    params = make_tree(jnp.float32)
    ours = entry.factory(**case.kwargs).init(params)
    theirs = reference(case).init(params)
    (n_ours, i_ours), (n_theirs, i_theirs) = count_leaves(ours), count_leaves(theirs)
    assert n_ours <= n_theirs, (n_ours, n_theirs)
    assert i_ours <= i_theirs, (i_ours, i_theirs)


def test_adam_state_is_one_count_and_two_moments():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3), "s": jnp.zeros(())}
    state = gx.adam(1e-3).init(params)
    assert count_leaves(state) == (7, 1)  # optax: the same 7 leaves, 1 count
    assert isinstance(state, gx.StepState)
    assert jax.tree.structure(gx.tree_get(state, "mu")) == jax.tree.structure(params)
    # No count at all where no block reads one: SGD with momentum and a constant learning rate.
    assert count_leaves(gx.sgd(0.1, momentum=0.9).init(params)) == (3, 0)
    # A schedule makes the optimizer read its one count.
    assert count_leaves(gx.sgd(gx.schedules.linear_schedule(0.1, 0.0, 10), momentum=0.9).init(params)) == (4, 1)
