"""An optimizer's chain as a readable tree of its blocks (`gradxform.describe`).

Each node is a block: its name, its hyperparameters (as resolved: numbers, or schedules with their value
at step 0), its equation (LaTeX, from the block's docstring or as the block states it) and the bytes of
state it keeps per parameter. The tree comes from the `Description` every gradxform block carries
(`gradxform.core.transform.Block.description`), so blocks built on `gradxform.blocks.base.elementwise`
or `make_block` describe themselves; a foreign (optax) transform shows as one opaque node.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform.core.transform import Block, Description, GradientTransformation, block_of

PyTree = Any

DEFAULT_PARAMS = jax.ShapeDtypeStruct((1_000_000,), jnp.float32)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<!\$)\$([^$\n]+)\$(?!\$)")


def equation_of(description: Description) -> str | None:
    """The block's equation: as stated, else the first `$$...$$` of its docstring, else the first `$...$`
    of the docstring's summary line; `None` if there is none."""
    if description.equation is not None:
        return description.equation
    doc = description.doc or ""
    found = _DISPLAY.search(doc)
    if found is None:
        found = _INLINE.search(doc.strip().split("\n\n", 1)[0])
    return " ".join(found.group(1).split()) if found else None


def format_value(value: Any) -> str:
    """A hyperparameter as a reader wants it: `0.001`, `True`, `"linear"`, `float32`, or a schedule's name
    with its value at step 0."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (np.dtype, type)):
        return getattr(value, "__name__", str(value))
    if callable(value):
        who = getattr(value, "__qualname__", "schedule").split(".<locals>")[0]
        try:
            first = f"{float(value(0)):g}"
        except Exception:  # noqa: BLE001 - a schedule that needs more than a step count
            return f"{who}(...)"
        return f"{who}(...) [step 0: {first}]"
    try:
        x = complex(value) if np.iscomplexobj(value) else float(value)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return type(value).__name__
    if isinstance(x, complex):
        return str(x)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return f"{x:g}"


@dataclasses.dataclass(frozen=True)
class Node:
    """One block of the tree.

    Attributes:
      name: the block's name.
      hyper: `{name: formatted value}`.
      equation: LaTeX, or `None`.
      state_bytes: bytes of state per parameter (the block's own state, its parts' included).
      state_fields: `{field: bytes per parameter}` of a block whose state is a NamedTuple of moments.
      children: the parts.
    """

    name: str
    hyper: dict[str, str]
    equation: str | None
    state_bytes: float
    state_fields: dict[str, float]
    children: tuple[Node, ...]


def _as_params(params: PyTree) -> PyTree:
    """Arrays, `ShapeDtypeStruct`s, or shapes (tuples of ints, taken as float32) as abstract parameters."""
    def leaf(x):
        if isinstance(x, tuple) and all(isinstance(d, int) for d in x):
            return jax.ShapeDtypeStruct(x, jnp.float32)
        return jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x))

    return jax.tree.map(leaf, params, is_leaf=lambda x: isinstance(x, tuple) and all(isinstance(d, int) for d in x))


def _nbytes(tree: PyTree) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _node(block: Block, params: PyTree, size: int) -> Node:
    d = block.description or Description(block.name or "foreign transform")
    try:
        state = jax.eval_shape(block.init, params)
    except Exception:  # noqa: BLE001 - a block that cannot init on these parameters still shows
        state = None
    fields = {}
    if state is not None and hasattr(state, "_fields") and not d.children:
        fields = {f: _nbytes(getattr(state, f)) / size for f in state._fields}
    return Node(
        name=d.name,
        hyper={k: format_value(v) for k, v in d.hyper.items()},
        equation=equation_of(d),
        state_bytes=_nbytes(state) / size if state is not None else float("nan"),
        state_fields={k: v for k, v in fields.items() if v},
        children=tuple(_node(c, params, size) for c in d.children if not _is_identity(c)),
    )


def _is_identity(block: Block) -> bool:
    """An identity inside a chain or ratio changes nothing: the tree leaves it out."""
    return block.description is not None and block.description.name == "identity"


def text_rows(equation: str) -> list[str]:
    """An equation as lines of text: an `aligned` environment's rows one per line, without its `&`."""
    body = equation.replace("\\begin{aligned}", "").replace("\\end{aligned}", "").replace("&", "")
    return [" ".join(r.split()) for r in body.split("\\\\") if r.strip()]


def _bytes(x: float) -> str:
    return "? B/param" if math.isnan(x) else f"{x:.3g} B/param"


class Tree:
    """What `describe` returns: prints as text, shows as HTML in a notebook (`_repr_html_`).

    Attributes:
      root: the optimizer's `Node`.
      total_bytes: state bytes per parameter of the whole optimizer (its step count included).
    """

    def __init__(self, root: Node, total_bytes: float) -> None:
        self.root = root
        self.total_bytes = total_bytes

    def text(self) -> str:
        """The tree drawn with box characters, one block per line, its equation on the next (one line per
        row of an `aligned` equation)."""
        lines: list[str] = []

        def head(n: Node) -> str:
            args = ", ".join(f"{k}={v}" for k, v in n.hyper.items())
            out = f"{n.name}({args})" if args else n.name
            if n.state_fields:
                out += "  [" + ", ".join(f"{k}: {_bytes(v)}" for k, v in n.state_fields.items()) + "]"
            elif n.children and n.state_bytes:
                out += f"  [{_bytes(n.state_bytes)}]"
            return out

        def walk(n: Node, lead: str, branch: str, rest: str) -> None:
            lines.append(lead + branch + head(n))
            if n.equation:
                for row in text_rows(n.equation):
                    lines.append(lead + rest + ("│   " if n.children else "    ") + row)
            for i, c in enumerate(n.children):
                last = i == len(n.children) - 1
                walk(c, lead + rest, "└── " if last else "├── ", "    " if last else "│   ")

        walk(self.root, "", "", "")
        lines[0] = head(self.root).split("  [")[0] + f"  [state: {_bytes(self.total_bytes)}]"
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        def item(n: Node, top: bool = False) -> str:
            args = ", ".join(f"{html.escape(k)}=<code>{html.escape(v)}</code>" for k, v in n.hyper.items())
            out = f"<b>{html.escape(n.name)}</b>" + (f"({args})" if args else "")
            if top:
                out += f" <small>state {_bytes(self.total_bytes)}</small>"
            elif n.state_fields:
                out += " <small>" + ", ".join(f"{html.escape(k)}: {_bytes(v)}" for k, v in n.state_fields.items())
                out += "</small>"
            if n.equation:
                # `arithmatex`: the class the docs site's MathJax typesets (Jupyter typesets any \(...\))
                out += f"<br><span class='gx-eq arithmatex'>\\({html.escape(n.equation)}\\)</span>"
            if n.children:
                out += "<ul>" + "".join(f"<li>{item(c)}</li>" for c in n.children) + "</ul>"
            return out

        return f"<div class='gradxform-describe'><ul><li>{item(self.root, True)}</li></ul></div>"


def describe(tx: GradientTransformation, params: PyTree = None) -> Tree:
    """An optimizer's chain as a tree: each block's equation, hyperparameters and state bytes per parameter.

    ```python
    print(gx.describe(gx.adam(1e-3)))
    ```

    In a notebook the tree shows as HTML (a gradxform optimizer displays itself this way too).

    Args:
      tx: a gradxform transform (a foreign one shows as a single node).
      params: the parameters the state bytes are counted for: arrays, `jax.ShapeDtypeStruct`s or shapes
        (tuples of ints, float32); `None` means one float32 leaf of a million elements.

    Returns:
      A `Tree` (`str(tree)` is the text; `tree.root` the nodes).
    """
    block = block_of(tx, "describe")
    params = DEFAULT_PARAMS if params is None else _as_params(params)
    size = max(1, sum(math.prod(x.shape) for x in jax.tree.leaves(params)))
    root = _node(block, params, size)
    try:
        total = _nbytes(jax.eval_shape(tx.init, params)) / size
    except Exception:  # noqa: BLE001 - e.g. a mask that needs the real parameters: the tree still shows
        total = float("nan")
    return Tree(root, total)
