"""The library's numerics, each rule in one place: dtypes, tree math, step counts and tree checks.

* `gradxform.numerics.dtypes`: which dtype hyperparameters, elementwise math and
  moments use;
* `gradxform.numerics.tree_math`: sums, dot products, norms, casts and state
  allocation over pytrees (the only module that does tree arithmetic);
* `gradxform.numerics.counts`: int32 step counts that saturate instead of wrapping;
* `gradxform.numerics.checks`: the trace-time checks of an update tree against a
  state or the parameters, naming the first differing path.
"""

from gradxform.numerics.checks import check_inexact, check_match, path_str
from gradxform.numerics.counts import INT32_MAX, safe_increment, zero_count
from gradxform.numerics.dtypes import compute_dtype, dtype_of, hyper_dtype, real_dtype, shape_of, square_dtype
from gradxform.numerics.tree_math import (
    PyTree,
    abs_sq,
    cast_like,
    cast_out,
    copy_like,
    full_like,
    global_norm,
    tree_axpy,
    tree_max_abs,
    tree_scale,
    tree_sum_sq,
    tree_vdot,
    tree_where,
    zeros_like,
)

__all__ = [
    "PyTree",
    "INT32_MAX",
    "abs_sq",
    "cast_like",
    "cast_out",
    "copy_like",
    "check_inexact",
    "check_match",
    "compute_dtype",
    "dtype_of",
    "full_like",
    "global_norm",
    "hyper_dtype",
    "path_str",
    "real_dtype",
    "square_dtype",
    "safe_increment",
    "shape_of",
    "tree_axpy",
    "tree_max_abs",
    "tree_scale",
    "tree_sum_sq",
    "tree_vdot",
    "tree_where",
    "zero_count",
    "zeros_like",
]
