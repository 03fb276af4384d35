"""The transform type, its combinators, named state and the error convention.

Modules: `gradxform.core.transform` (`GradientTransformation`, the
`gradxform.core.transform.Block` form, the optimizer's root),
`gradxform.core.combine` (`chain`, `identity`, `stateless`),
`gradxform.core.state` (`StepState`, per-parameter marks, `tree_get` /
`tree_set` / `tree_map_params`), `gradxform.core.updates` (`apply_updates`).
Error messages follow `gradxform.errors`.
"""

from gradxform.core.combine import chain, identity, stateless
from gradxform.core.state import (
    LIKE,
    Layout,
    StepState,
    eval_params,
    evaluates,
    per_param,
    tree_get,
    tree_get_all_with_path,
    tree_map_params,
    tree_set,
)
from gradxform.core.transform import (
    Block,
    EmptyState,
    GradientTransformation,
    OptState,
    as_transform,
    block_of,
    call_update,
    make_block,
    own_step,
    public,
    renamed,
    require_transform,
    union_extra_args,
)
from gradxform.core.updates import apply_updates

__all__ = [
    "LIKE",
    "Block",
    "EmptyState",
    "GradientTransformation",
    "Layout",
    "OptState",
    "StepState",
    "apply_updates",
    "as_transform",
    "block_of",
    "call_update",
    "chain",
    "eval_params",
    "evaluates",
    "identity",
    "make_block",
    "own_step",
    "per_param",
    "public",
    "renamed",
    "require_transform",
    "stateless",
    "tree_get",
    "tree_get_all_with_path",
    "tree_map_params",
    "tree_set",
    "union_extra_args",
]
