"""Extra arguments of `update` (`value=`, `value_fn=`, `grad_fn=`): declared by blocks, carried by every
combinator and wrapper, refused when missing with the optimizer's name, passed by `train_step`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform.blocks.base import elementwise
from gradxform.core import block_of, make_block, public
from tests.refs import extra_for, loss_of, reference_supplied, supplied


@public
def value_scaled(learning_rate: float = 0.1) -> gx.GradientTransformation:
    """A toy optimizer that reads the loss: $u = -\\eta\\, f\\, g$."""
    return elementwise(
        "value_scaled",
        lambda h, g: -h.learning_rate * h.value * g,
        hyper={"learning_rate": (learning_rate, None)},
        extra=("value",),
    )


def _grad_reader():
    def update(updates, state, params, count, extra_args):
        return jax.tree.map(lambda u, r: u + r, updates, extra_args["grad_fn"](params)), state

    return make_block("grad_reader", lambda p: gx.EmptyState(), update, stateless=True, extra_args=("grad_fn",))


def _one_device(tree):
    mesh = jax.make_mesh((1,), ("data",))
    return jax.tree.map(lambda _: jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()), tree)


P = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
G = {"w": jnp.array([0.5, 0.25]), "b": jnp.array(-1.0)}


def test_an_elementwise_block_reads_value_as_a_hyperparameter():
    tx = value_scaled(0.1)
    u, _ = tx.update(G, tx.init(P), P, value=3.0)
    np.testing.assert_allclose(u["w"], -0.1 * 3.0 * G["w"], rtol=1e-7)
    assert block_of(tx).extra_args == ("value",)


def test_a_missing_extra_argument_is_refused_with_the_name_and_what_it_is():
    tx = value_scaled(0.1)
    with pytest.raises(TypeError, match=r"^value_scaled: update needs value= \(the loss at params\); call tx.update"):
        tx.update(G, tx.init(P), P)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda t: gx.chain(gx.clip_by_global_norm(1.0), t, gx.scale(2.0)),
        lambda t: gx.masked(t, {"w": True, "b": False}),
        lambda t: gx.partition({"a": t, "b": gx.sgd(0.1)}, {"w": "a", "b": "b"}),
        lambda t: gx.accumulate(t, k=1),
        lambda t: gx.skip_nonfinite(t),
        lambda t: gx.inject_hyperparams(value_scaled)(learning_rate=0.1),
        lambda t: gx.distributed.zero1(t, _one_device(P)),
        lambda t: gx.ratio(t, gx.stateless(lambda u, p: jax.tree.map(lambda x: jnp.ones_like(x) + 1, u))),
    ],
    ids=["chain", "masked", "partition", "accumulate", "skip_nonfinite", "inject", "zero1", "ratio"],
)
def test_every_combinator_and_wrapper_carries_the_extra_arguments(wrap):
    tx = wrap(value_scaled(0.1))
    assert "value" in block_of(tx).extra_args
    with pytest.raises(TypeError, match=r"update needs value="):
        tx.update(G, tx.init(P), P)
    u, _ = tx.update(G, tx.init(P), P, value=2.0)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(u))


def test_chain_unions_extra_arguments_in_first_seen_order():
    tx = gx.chain(value_scaled(0.1), _grad_reader(), value_scaled(0.2))
    assert block_of(tx).extra_args == ("value", "grad_fn")


def test_make_block_refuses_an_unknown_extra_argument():
    with pytest.raises(ValueError, match=r"^make_block: unknown extra arguments \['loss'\]"):
        make_block("x", lambda p: gx.EmptyState(), lambda u, s, p, c, e: (u, s), extra_args=("loss",))


def loss(p, x):
    return jnp.sum((p["w"] * x) ** 2) + p["b"] ** 2


def test_train_step_passes_the_loss_and_its_gradient_for_the_batch():
    x = jnp.array([2.0, -1.0])
    tx = gx.chain(value_scaled(0.1), _grad_reader())
    params, _, value = gx.train_step(loss, tx)(P, tx.init(P), x)
    g = jax.grad(loss)(P, x)
    f = loss(P, x)
    expected = jax.tree.map(lambda p, gi: p + (-0.1 * f * gi + gi), P, g)  # grad_fn(params) is the gradient again
    np.testing.assert_allclose(value, f, rtol=1e-7)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_run_scans_an_optimizer_that_reads_the_loss():
    x = jnp.array([2.0, -1.0])
    tx = value_scaled(0.01)
    out = jax.jit(lambda p: gx.run(lambda q: loss(q, x), tx, p, 50))(P)
    # u = -lr f g: a gradient step with a step size proportional to the loss; the loss falls monotonically here.
    assert np.all(np.diff(np.asarray(out.losses)) < 0) and out.losses[-1] < 0.2 * out.losses[0]


def test_the_suites_supply_the_loss_of_the_params_to_ours_and_to_the_reference():
    tx = supplied(value_scaled(0.1))
    assert block_of(tx).extra_args == () and block_of(tx).name == "value_scaled"
    u, _ = tx.update(G, tx.init(P), P)
    np.testing.assert_allclose(u["w"], -0.1 * float(loss_of(P)) * G["w"], rtol=1e-6)
    np.testing.assert_allclose(float(loss_of(P)), 0.5 * (1 + 4 + 0.25), rtol=1e-7)
    seen = {}

    class Ref:
        def init(self, p):
            return ()

        def update(self, u, s, p=None, **kw):
            seen.update(kw)
            return u, s

    ref = reference_supplied(Ref(), ("value",))
    ref.update(G, ref.init(P), P)
    np.testing.assert_allclose(seen["value"], loss_of(P))
    assert extra_for(("grad_fn",), P)["grad_fn"](P) is P
