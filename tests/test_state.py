"""Named state: tree_get / tree_set / tree_map_params with optax.tree_utils' meaning, on any chain.

Every registry entry's state reads by name (test_registry.py); here: the functions' semantics against
optax's own (on our states and on optax's), the per-parameter marks, and what a printed state shows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests.helpers import make_tree

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}


def test_tree_get_reads_adams_moments_and_its_one_count():
    tx = gx.adam(1e-2)
    state = tx.init(PARAMS)
    for _ in range(3):
        _, state = tx.update(jax.tree.map(jnp.ones_like, PARAMS), state, PARAMS)
    assert int(gx.tree_get(state, "count")) == 3
    mu, nu = gx.tree_get(state, "mu"), gx.tree_get(state, "nu")
    # closed form after three unit gradients: mu = 1 - b1^3, nu = 1 - b2^3, with the float32 b1, b2 the EMAs use
    np.testing.assert_allclose(mu["w"], 1 - float(np.float32(0.9)) ** 3, rtol=1e-6)
    np.testing.assert_allclose(nu["b"], 1 - float(np.float32(0.999)) ** 3, rtol=1e-5)
    assert gx.tree_get(state, "no_such_field", default="absent") == "absent"
    # the NamedTuple's own name finds the node, as in optax
    assert isinstance(gx.tree_get(state, "EmaState"), gx.EmaState)


def test_tree_get_agrees_with_optax_tree_utils_on_both_libraries_states():
    ours = gx.adam(1e-2).init(PARAMS)
    theirs = optax.adam(1e-2).init(PARAMS)
    for state in (ours, theirs):
        for key in ("mu", "nu", "count"):
            a, b = gx.tree_get(state, key), optax.tree_utils.tree_get(state, key)
            assert jax.tree.structure(a) == jax.tree.structure(b)
            jax.tree.map(np.testing.assert_array_equal, a, b)
    # a key that occurs twice is an error in both
    state = gx.chain(gx.ema(0.9), gx.ema(0.5)).init(PARAMS)
    with pytest.raises(KeyError, match="'mu' occurs 2 times"):
        gx.tree_get(state, "mu")
    with pytest.raises(KeyError):
        optax.tree_utils.tree_get(state, "mu")
    found = gx.tree_get_all_with_path(state, "mu")
    assert [jax.tree_util.keystr(p) for p, _ in found] == ["[0].mu", "[1].mu"]
    assert gx.tree_get(state, "mu", filtering=lambda path, v: path[0].idx == 1) is found[1][1]


def test_tree_set_replaces_by_name_and_refuses_unknown_names():
    state = gx.adam(1e-2).init(PARAMS)
    new = gx.tree_set(state, count=jnp.int32(41), mu={"w": jnp.full((2, 3), 2.0), "b": jnp.full(3, 2.0)})
    assert int(gx.tree_get(new, "count")) == 41
    np.testing.assert_array_equal(gx.tree_get(new, "mu")["w"], 2.0)
    np.testing.assert_array_equal(gx.tree_get(state, "mu")["w"], 0.0)  # a copy: the original is unchanged
    assert jax.tree.structure(new) == jax.tree.structure(state)
    with pytest.raises(KeyError, match="'mnu' does not occur"):
        gx.tree_set(state, mnu=1.0)
    # the same as optax's tree_set
    theirs = optax.tree_utils.tree_set(state, count=jnp.int32(41))
    assert int(gx.tree_get(theirs, "count")) == 41
    # a set value takes effect: Adam's next step uses the set count for bias correction
    tx = gx.adam(0.1)
    s = gx.tree_set(tx.init(PARAMS), count=jnp.int32(10**6))  # bias corrections ~ 1 at t = 10**6 + 1
    u, _ = tx.update(jax.tree.map(jnp.ones_like, PARAMS), s, PARAMS)
    np.testing.assert_allclose(u["b"], -0.1 * 0.1 / (np.sqrt(0.001) + 1e-8), rtol=2e-3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gx.adam(1e-2),
        lambda: gx.sgd(0.1, momentum=0.9),
        lambda: gx.rmsprop(1e-2, centered=True, momentum=0.5),
        lambda: gx.skip_nonfinite(gx.adamw(1e-2)),
        lambda: gx.inject_hyperparams(gx.adam)(1e-2),
        lambda: gx.compat.torch.NAdam(),
    ],
)
def test_tree_map_params_maps_exactly_the_per_parameter_leaves_like_optax(make):
    tx = make()
    params = make_tree(jnp.float32)
    state = tx.init(params)
    specs = jax.tree.map(lambda x: f"spec{x.shape}", params)
    ours = gx.tree_map_params(tx, lambda _, s: s, state, specs, transform_non_params=lambda _: None)
    theirs = optax.tree_utils.tree_map_params(tx, lambda _, s: s, state, specs, transform_non_params=lambda _: None)
    assert ours == theirs  # optax finds the same leaves by tracing our init on a placeholder
    mapped = [x for x in jax.tree.leaves(ours) if isinstance(x, str)]
    per_param = sum(1 for x in jax.tree.leaves(state) if jnp.ndim(x) > 0 or x.dtype != jnp.int32)
    assert mapped and len(mapped) <= len(jax.tree.leaves(state))
    assert all(m.startswith("spec") for m in mapped) and len(mapped) <= per_param


def test_tree_map_params_without_marks_falls_back_to_optax_placeholders():
    tx = optax.adam(1e-2)
    state = tx.init(PARAMS)
    out = gx.tree_map_params(tx, lambda x: x.shape, state, transform_non_params=lambda _: "other")
    assert optax.tree_utils.tree_get(out, "mu") == {"w": (2, 3), "b": (3,)}
    assert optax.tree_utils.tree_get(out, "count") == "other"


def test_masked_state_marks_only_the_selected_parameters():
    tx = gx.masked(gx.adam(1e-2), {"w": True, "b": False})
    state = tx.init(PARAMS)
    out = gx.tree_map_params(None, lambda x: "P", state)
    assert gx.tree_get(out, "mu") == {"w": "P", "b": None}


def test_a_printed_state_shows_its_names():
    text = repr(gx.adam(1e-2).init({"w": jnp.zeros(2)}))
    for name in ("StepState", "count", "EmaState", "mu", "EmaSqState", "nu"):
        assert name in text
    assert "CountState" not in text and text.count("count=") == 1  # one step count


def test_eval_params_is_params_unless_the_state_keeps_weights_to_evaluate():
    from typing import NamedTuple

    from gradxform.core.state import evaluates

    @evaluates(lambda node, params: node.average)
    class Averaged(NamedTuple):
        average: dict

    assert gx.eval_params(gx.adam(1e-2).init(PARAMS), PARAMS) is PARAMS
    avg = {"w": jnp.full((2, 3), 5.0), "b": jnp.ones(3)}
    state = (gx.EmptyState(), {"x": Averaged(avg)})
    assert gx.eval_params(state, PARAMS) is avg
