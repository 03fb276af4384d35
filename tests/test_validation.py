"""Bad input in the foundation: clear errors, raised before anything is computed."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests.helpers import fit_ranks
from tests.refs import registry_entries


@pytest.mark.parametrize(
    "build, name, value, allowed",
    [
        (lambda: gx.sgd(-0.1), "learning_rate", "-0.1", "[0, inf)"),
        (lambda: gx.adam(float("nan")), "learning_rate", "nan", "[0, inf)"),
        (lambda: gx.adam(math.inf), "learning_rate", "inf", "[0, inf)"),
        (lambda: gx.adam(1e-3, b1=1.0), "b1", "1.0", "[0, 1)"),
        (lambda: gx.adam(1e-3, b2=-0.5), "b2", "-0.5", "[0, 1)"),
        (lambda: gx.adam(1e-3, eps=-1e-8), "eps", "-1e-08", "[0, inf)"),
        (lambda: gx.adam(1e-3, eps_root=-1.0), "eps_root", "-1.0", "[0, inf)"),
        (lambda: gx.adamw(1e-3, weight_decay=-0.1), "weight_decay", "-0.1", "[0, inf)"),
        (lambda: gx.rmsprop(1e-3, decay=1.5), "decay", "1.5", "[0, 1)"),
        (lambda: gx.rmsprop(1e-3, momentum=1.0), "momentum", "1.0", "[0, 1)"),
        (lambda: gx.momentum(1e-3, beta=2.0), "beta", "2.0", "[0, 1)"),
        (lambda: gx.sgd(1e-3, momentum=-0.1), "momentum", "-0.1", "[0, 1)"),
        (lambda: gx.adagrad(1e-3, initial_accumulator_value=-1.0), "initial_accumulator_value", "-1.0", "[0, inf)"),
        (lambda: gx.adadelta(rho=1.0), "rho", "1.0", "[0, 1)"),
        (lambda: gx.adadelta(eps=-1.0), "eps", "-1.0", "[0, inf)"),
        (lambda: gx.ema(jnp.float32(1.2)), "decay", "1.2", "[0, 1)"),
        (lambda: gx.trace(-0.5), "decay", "-0.5", "[0, 1)"),
        (lambda: gx.add_eps(-1.0), "eps", "-1.0", "[0, inf)"),
    ],
)
def test_out_of_range_hyperparameters_name_argument_value_and_range(build, name, value, allowed):
    with pytest.raises(ValueError) as err:
        build()
    msg = str(err.value)
    assert f"{name}=" in msg and value in msg and allowed in msg


def test_non_scalar_and_non_numeric_hyperparameters():
    with pytest.raises(ValueError, match=r"learning_rate must be a scalar, got an array of shape \[3\]"):
        gx.adam(jnp.ones(3))
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        gx.sgd("0.1")
    with pytest.raises(TypeError, match="boolean"):
        gx.sgd(True)
    with pytest.raises(TypeError, match="floating dtype"):
        gx.adam(1e-3, mu_dtype=jnp.int32)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        gx.sgd(0.1, nesterov=True)


def test_traced_hyperparameters_are_not_checked():
    # Under jit a negative learning rate is a value, not an error: it is not known at build time.
    def run(lr):
        tx = gx.sgd(lr)
        return tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]

    np.testing.assert_allclose(jax.jit(run)(-0.5), [0.5, 0.5])


def test_schedule_must_return_a_scalar():
    tx = gx.scale_by_learning_rate(lambda count: jnp.ones(3) * 0.1)
    with pytest.raises(ValueError, match=r"schedule for learning_rate returned shape \[3\]"):
        tx.update(jnp.ones(3), tx.init(jnp.zeros(3)))


def test_factory_passed_uncalled():
    with pytest.raises(TypeError, match="gradxform.adam instead of gradxform.adam"):
        gx.chain(gx.adam)


PARAMS = {"w": jnp.zeros((2, 3)), "b": [jnp.zeros(3), jnp.zeros(())]}


@pytest.mark.parametrize("make", [lambda: gx.adam(1e-3), lambda: gx.sgd(0.1, 0.9), lambda: gx.adadelta()])
def test_gradient_tree_mismatch_names_first_differing_path(make):
    tx = make()
    state = tx.init(PARAMS)
    before = jax.tree.map(np.asarray, state)
    bad_shape = {"w": jnp.zeros((2, 3)), "b": [jnp.zeros(4), jnp.zeros(())]}
    with pytest.raises(ValueError, match=r"\['b'\]\[0\] has shape \[4\] but the state made by init has shape \[3\]"):
        tx.update(bad_shape, state)
    bad_keys = {"w": jnp.zeros((2, 3)), "c": [jnp.zeros(3), jnp.zeros(())]}
    with pytest.raises(ValueError, match=r"the updates have \['c'\]\[0\] where it has \['b'\]\[0\]"):
        tx.update(bad_keys, state)
    missing = {"w": jnp.zeros((2, 3)), "b": [jnp.zeros(3)]}
    with pytest.raises(ValueError, match=r"the updates lack \['b'\]\[1\], which it has"):
        tx.update(missing, state)
    with jax.enable_x64(True):
        f32 = jnp.float32
        bad_dtype = {"w": jnp.zeros((2, 3), jnp.float64), "b": [jnp.zeros(3, f32), jnp.zeros((), f32)]}
        with pytest.raises(ValueError, match=r"\['w'\] is float64\[2, 3\] but the state made by init holds float32"):
            tx.update(bad_dtype, state)
    as_tuple = {"w": jnp.zeros((2, 3)), "b": (jnp.zeros(3), jnp.zeros(()))}
    with pytest.raises(ValueError, match=r"the containers differ"):
        tx.update(as_tuple, state)
    # With the parameters passed, the updates are checked against them first, for every optimizer.
    with pytest.raises(ValueError, match=r"\['b'\]\[0\] has shape \[4\] but the parameter has shape \[3\]"):
        tx.update(bad_shape, state, PARAMS)
    # Nothing changed: the state we hold is untouched (pure functions, no partial updates).
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, state))


def test_mismatch_is_raised_at_trace_time_under_jit():
    tx = gx.adam(1e-3)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"\['w'\] has shape \[3, 2\]"):
        jax.jit(tx.update)({"w": jnp.zeros((3, 2)), "b": [jnp.zeros(3), jnp.zeros(())]}, state)


def test_integer_and_boolean_leaves_are_refused_at_init():
    with pytest.raises(TypeError, match=r"leaf at \['step'\] has dtype int32"):
        gx.adam(1e-3).init({"w": jnp.zeros(2), "step": jnp.zeros((), jnp.int32)})
    with pytest.raises(TypeError, match=r"leaf at \['mask'\] has dtype bool"):
        gx.sgd(0.1, 0.9).init({"mask": jnp.zeros(2, bool)})


def test_weight_decay_needs_params():
    tx = gx.adamw(1e-3)
    with pytest.raises(ValueError, match=r"^adamw: update needs the parameters"):
        tx.update(PARAMS, tx.init(PARAMS))
    with pytest.raises(ValueError, match=r"^add_decayed_weights: update needs the parameters"):
        gx.add_decayed_weights(0.1).update(PARAMS, gx.add_decayed_weights(0.1).init(PARAMS))


def test_apply_updates_mismatch():
    with pytest.raises(ValueError, match=r"apply_updates: the update at \['w'\] has shape \[2\] but the parameter"):
        gx.apply_updates({"w": jnp.zeros(3)}, {"w": jnp.zeros(2)})


def test_wrong_state_for_an_optimizer():
    tx = gx.adam(1e-3)
    other = gx.sgd(0.1, momentum=0.9).init(PARAMS)
    with pytest.raises(TypeError, match="^adam: expected the state this optimizer's init made"):
        tx.update(PARAMS, other, PARAMS)
    tx = gx.chain(gx.ema(0.9), gx.ema(0.5), gx.ema_sq(0.9))
    with pytest.raises(ValueError, match="^chain: the state has 2 parts but 3 are expected"):
        tx.update(PARAMS, gx.chain(gx.ema(0.9), gx.ema(0.5)).init(PARAMS), PARAMS)


def test_a_bad_dtype_names_the_optimizers_own_argument():
    with pytest.raises(TypeError, match=r"^adam: mu_dtype='foo' is not a dtype\.$"):
        gx.adam(1e-3, mu_dtype="foo")
    with pytest.raises(TypeError, match=r"^rmsprop: centered='no' must be True or False\.$"):
        gx.rmsprop(1e-3, centered="no")


@pytest.mark.parametrize("entry", registry_entries(), ids=lambda e: e.name)
def test_every_optimizers_errors_are_led_by_its_name_with_one_type_per_fault(entry):
    """Whichever block finds the problem, the message starts with the function the user called."""
    name = entry.example_leads_with or entry.factory.__name__
    tx = entry.build(1e-2)
    state = tx.init(fit_ranks(PARAMS, entry.param_ranks))  # matrices for an optimizer that takes only those
    wrong_shape = {"w": jnp.zeros((3, 2)), "b": [jnp.zeros(3), jnp.zeros(())]}
    with pytest.raises(ValueError, match=rf"^{name}: the update at \['w'\] has shape \[3, 2\]"):
        tx.update(wrong_shape, state, PARAMS)
    with pytest.raises(ValueError, match=rf"^{name}: the update tree does not match"):
        tx.update({"w": jnp.zeros((2, 3))}, state, PARAMS)
    with pytest.raises(TypeError, match=rf"^{name}: the leaf at \['n'\] has dtype int32"):
        tx.init({"w": jnp.zeros(2), "n": jnp.zeros(2, jnp.int32)})
