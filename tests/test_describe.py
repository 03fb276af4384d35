# ruff: noqa: E501  (the expected renderings are one line per block)
"""`gx.describe`: an optimizer as a tree of its blocks, each with its equation, hyperparameters and
state bytes per parameter, as text and as HTML; checked against hand-written renderings."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import pytest

import gradxform as gx
from gradxform.blocks.base import elementwise
from gradxform.core.state import per_param
from gradxform.hyper.validate import UNIT

ADAM = r"""
adam(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-08, eps_root=0)  [state: 8 B/param]
│   \mu_t = \beta_1\mu_{t-1} + (1-\beta_1)g_t, \nu_t = \beta_2\nu_{t-1} + (1-\beta_2)g_t^2,
│   \hat\mu_t = \frac{\mu_t}{1-\beta_1^t}, \hat\nu_t = \frac{\nu_t}{1-\beta_2^t},
│   \Delta\theta_t = -\eta\,\frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon}
├── ratio  [8 B/param]
│   │   u \leftarrow N(u) / D(u)
│   ├── chain  [4 B/param]
│   │   ├── ema(decay=0.9)  [mu: 4 B/param]
│   │   │       \mu_t = \beta\,\mu_{t-1} + (1-\beta)\,g_t, \qquad \text{output } \mu_t \quad (\text{or, with } \texttt{nesterov}, \ \beta\mu_t + (1-\beta)g_t)
│   │   └── bias_correction(decay=0.9)
│   │           \hat u_t = \frac{u_t}{1 - \beta^t}, \qquad t = 1, 2, \dots
│   └── chain  [4 B/param]
│       ├── ema_sq(decay=0.999)  [nu: 4 B/param]
│       │       \nu_t = \beta\,\nu_{t-1} + (1-\beta)\,|g_t|^2, \qquad \text{output } \nu_t
│       ├── bias_correction(decay=0.999)
│       │       \hat u_t = \frac{u_t}{1 - \beta^t}, \qquad t = 1, 2, \dots
│       ├── add_eps(eps=0)
│       │       u \leftarrow u + \epsilon
│       ├── sqrt
│       │       u \leftarrow \sqrt{u}
│       └── add_eps(eps=1e-08)
│               u \leftarrow u + \epsilon
└── scale_by_learning_rate(learning_rate=0.001)
        u \leftarrow -\eta\,u
""".strip("\n")

ACCUMULATE = r"""
accumulate(k=4)  [state: 8 B/param]
│   a_j = a_{j-1} + \frac{g_j - a_{j-1}}{j}, \quad j = 1..k,
│   \text{output } 0 \text{ for } j < k, \quad \text{inner}(a_k) \text{ for } j = k
└── sgd(learning_rate=0.1, momentum=0.9, nesterov=False)  [4 B/param]
    │   v_t = \mu v_{t-1} + g_t, \qquad \Delta\theta_t = -\eta\,v_t \;(\text{Nesterov: } -\eta\,(g_t + \mu v_t))
    ├── trace(decay=0.9, dampening=0)  [trace: 4 B/param]
    │       v_1 = g_1, \qquad v_t = \gamma\,v_{t-1} + (1-\tau)\,g_t,
    │       \text{output } v_t \;\text{ or, with Nesterov, }\; g_t + \gamma\,v_t
    └── scale_by_learning_rate(learning_rate=0.1)
            u \leftarrow -\eta\,u
""".strip("\n")


def test_adam_as_text():
    assert str(gx.describe(gx.adam(1e-3))) == ADAM


def test_a_wrapper_as_text():
    # 1e6 float32 parameters: the accumulator (4 B), the micro-step counter (negligible), sgd's trace (4 B).
    assert str(gx.describe(gx.accumulate(gx.sgd(0.1, momentum=0.9), 4))) == ACCUMULATE


def test_state_bytes_follow_the_params_and_the_storage_dtypes():
    params = {"w": jnp.zeros((100, 10), jnp.bfloat16), "b": jax.ShapeDtypeStruct((10,), jnp.bfloat16)}
    tree = gx.describe(gx.adam(1e-3, mu_dtype=jnp.float32), params)
    lines = str(tree).splitlines()
    assert lines[0].endswith("[state: 6 B/param]")  # mu float32 (4) + nu bfloat16 (2); the count is 4/1010
    assert any("ema(decay=0.9)  [mu: 4 B/param]" in ln for ln in lines)
    assert any("ema_sq(decay=0.999)  [nu: 2 B/param]" in ln for ln in lines)
    assert tree.total_bytes == (1010 * 6 + 4) / 1010
    shapes = gx.describe(gx.adam(1e-3), {"w": (3, 4)})  # shapes are float32
    assert str(shapes).splitlines()[0].endswith("[state: 8.33 B/param]")  # 2 x 4 B + the count's 4 B / 12


def test_schedules_show_by_name_and_first_value():
    lr = gx.schedules.cosine_decay_schedule(1e-3, decay_steps=100)
    text = str(gx.describe(gx.adam(lr)))
    assert "learning_rate=cosine_decay_schedule(...) [step 0: 0.001]" in text.splitlines()[0]
    assert "scale_by_learning_rate(learning_rate=cosine_decay_schedule(...) [step 0: 0.001])" in text


@per_param("acc")
class _ToyState(NamedTuple):
    acc: object


def toy_block(rho):
    r"""A block someone adds without telling `describe` anything.

    $$a_t = \rho\,a_{t-1} + g_t^3$$

    Args:
      rho: $\rho$.
    """

    def fn(h, g, a):
        a = h.rho * a + g**3
        return a, a

    return elementwise("toy_block", fn, hyper={"rho": (rho, UNIT)}, state=_ToyState)


def test_a_new_block_describes_itself_from_its_docstring():
    tree = gx.describe(gx.chain(toy_block(0.5), gx.scale(2.0)))
    assert str(tree) == "\n".join(
        [
            "chain  [state: 4 B/param]",
            "├── toy_block(rho=0.5)  [acc: 4 B/param]",
            "│       a_t = \\rho\\,a_{t-1} + g_t^3",
            "└── scale(factor=2)",
            "        u \\leftarrow c\\,u",
        ]
    )


def test_html_for_notebooks():
    tx = gx.accumulate(gx.adam(1e-3), 4)
    page = tx._repr_html_()  # what a notebook shows for the optimizer itself
    assert page == gx.describe(tx)._repr_html_()
    for name in ("accumulate", "adam", "ratio", "ema", "ema_sq", "bias_correction", "sqrt", "scale_by_learning_rate"):
        assert f"<b>{name}</b>" in page
    assert "\\(\\mu_t = \\beta\\,\\mu_{t-1}" in page and "mu: 4 B/param" in page
    assert page.count("<li>") == page.count("</li>") == 13
    assert "&lt;" in page and "j < k" not in page  # escaped


def test_foreign_transforms_show_as_one_node():
    optax = pytest.importorskip("optax")
    text = str(gx.describe(gx.chain(optax.scale(2.0), gx.sgd(1.0))))
    assert text.splitlines()[:2] == ["chain  [state: 0 B/param]", "├── foreign transform"]


@pytest.mark.parametrize("entry", gx.registry.entries(), ids=lambda e: e.name)
def test_every_registry_entry_describes_itself(entry):
    # Every optimizer and wrapper of the registry, the ones added later included: a named root with its
    # arguments, and every block built on the skeleton with an equation.
    tree = gx.describe(entry.build(1e-2))

    def nodes(n):
        yield n
        for c in n.children:
            yield from nodes(c)

    assert tree.root.name == (entry.example_leads_with or entry.factory.__name__)  # a chain's example: chain
    assert not tree.total_bytes < 0  # (nan where the state needs the real parameters, e.g. a mask)
    for n in nodes(tree.root):
        assert n.name and n.name != "foreign transform"
        if not n.children and n.name not in ("identity",):
            assert n.equation, f"{entry.name}: block {n.name} has no equation (give its docstring a $$...$$)"


def test_bias_correction_describes_its_power():
    """The block shows the formula of its power: 1 for a moving average, 1/2 for the root of one (torch's RAdam)."""
    assert str(gx.describe(gx.bias_correction(0.9))).splitlines()[1].strip() == (
        r"\hat u_t = \frac{u_t}{1 - \beta^t}, \qquad t = 1, 2, \dots"
    )
    assert str(gx.describe(gx.bias_correction(0.9, power=0.5))).splitlines()[1].strip() == (
        r"\hat u_t = \frac{u_t}{\sqrt{1 - \beta^t}}, \qquad t = 1, 2, \dots"
    )
