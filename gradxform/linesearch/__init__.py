r"""Line searches as transforms: the incoming update is a search direction, the outgoing one a step.

A line search sees the objective along the direction $d$ (the incoming
updates) from the parameters $x$,

$$\phi(\alpha) = f(x + \alpha d), \qquad \phi'(\alpha) = \nabla f(x + \alpha d)^\top d,$$

picks a step size $\alpha$ and returns $\alpha d$. It needs the
objective, which it takes through the extra arguments of `update` with
optax's names (as `optax.scale_by_backtracking_linesearch` and
`optax.scale_by_zoom_linesearch` do):

```python
updates, state = tx.update(grad, state, params, value=f(params), grad=grad, value_fn=f)
```

`value` is $f(x)$, `grad` is $\nabla f(x)$ and `value_fn` is
$f$. Other extra arguments whose names `value_fn` accepts are passed on
to it (data batches, say); the rest are ignored, so a line search can sit in a
[`gradxform.chain`][gradxform.chain] beside transforms that take other extra arguments.

The searches, one block each:

- [`more_thuente`][gradxform.linesearch.more_thuente]: MINPACK-2's DCSRCH (scipy's BFGS, CG and L-BFGS-B),
  strong Wolfe conditions by safeguarded cubic and quadratic steps;
- [`hager_zhang`][gradxform.linesearch.hager_zhang]: CG_DESCENT's search, Wolfe or approximate Wolfe
  conditions by secant steps;
- [`zoom`][gradxform.linesearch.zoom]: strong Wolfe by N&W's bracketing and zooming;
- [`backtracking`][gradxform.linesearch.backtracking]: Armijo by backtracking, values only;
- [`exact_quadratic`][gradxform.linesearch.exact_quadratic]: Newton's method on $\phi$, for quadratics.

Every search runs a bounded `lax.while_loop` (`max_steps` evaluations),
so it jit-compiles and vmaps. An *evaluation* is one call of
`jax.value_and_grad` of the objective at one point (in [`backtracking`][gradxform.linesearch.backtracking],
one value). The first trial step follows a rule of [`first_step`][gradxform.linesearch.first_step]. If the
direction is not a descent direction ($\phi'(0) \ge 0$), the search uses
$d = -\nabla f(x)$ instead. If no step satisfying the search's
conditions is found within the budget, the best point found that lowers
$f$ is taken, or no step at all ($\alpha = 0$); `state.failed`
then says so.

Each state records the accepted step size, the value at the new point and
`num_evals`, the running count of evaluations made by the search, which
[`gradxform.minimize`][gradxform.minimize] adds up. The states of
[`more_thuente`][gradxform.linesearch.more_thuente], [`hager_zhang`][gradxform.linesearch.hager_zhang] and
[`zoom`][gradxform.linesearch.zoom] also hold the gradient at the new point and say so with the class
attribute `HANDS_OFF = True`: [`gradxform.minimize`][gradxform.minimize] then takes the new point's value and
gradient from the state instead of evaluating them again (see [`accepted_point`][gradxform.linesearch.accepted_point]).
"""

from __future__ import annotations

from typing import Any

from gradxform.linesearch._common import (
    INITIAL_STEPS,
    bind_value_fn,
    first_step,
)
from gradxform.linesearch.backtracking import BacktrackingState, backtracking
from gradxform.linesearch.exact_quadratic import ExactQuadraticState, exact_quadratic
from gradxform.linesearch.hager_zhang import HagerZhangState, hager_zhang
from gradxform.linesearch.more_thuente import MoreThuenteState, dcstep, more_thuente
from gradxform.linesearch.zoom import ZoomState, zoom

__all__ = [
    "INITIAL_STEPS",
    "BacktrackingState",
    "ExactQuadraticState",
    "HagerZhangState",
    "MoreThuenteState",
    "ZoomState",
    "accepted_point",
    "backtracking",
    "bind_value_fn",
    "dcstep",
    "exact_quadratic",
    "first_step",
    "hager_zhang",
    "more_thuente",
    "zoom",
]


def accepted_point(state: Any) -> Any:
    """The state that holds $f$ and $\\nabla f$ at the point the transform's update leads to, or None.

    A transform's output update is the step of the transform that runs last: for
    a [`gradxform.chain`][gradxform.chain] (whose state is a plain tuple), the last member,
    recursively. If that member's state is a NamedTuple whose class sets
    `HANDS_OFF = True` (the line searches here, [`gradxform.newton`][gradxform.newton],
    [`gradxform.newton_cg_trust`][gradxform.newton_cg_trust]), its `value` and `grad` fields are
    $f(x + u)$ and $\\nabla f(x + u)$ for the update $u$ just
    returned. Anything after it in the chain (a `scale`, a wrapper) could
    change the update, so then nothing is handed off and this returns None.
    The answer depends only on the state's structure, so it is decided at trace time.

    Args:
        state: a transform's state, e.g. the state `gradxform.bfgs().update` returned.
    """
    node = state
    while type(node) is tuple and node:
        node = node[-1]
    if getattr(type(node), "HANDS_OFF", False) and hasattr(node, "value") and hasattr(node, "grad"):
        return node
    return None
