"""Errors speak the user's words: every message is led by the name of the function the user called.

A public factory (`adam`, `skip_nonfinite`, ...) runs its construction, and the
optimizer it returns runs its `init` and `update`, inside `user_function`.
Whichever block then finds a problem leads its message with `lead`, which
returns the outermost name on the stack: `adam(1e-3, mu_dtype="foo")` says
`adam: mu_dtype='foo' is not a dtype` although the check sits in the moment block.

The same kind of fault raises the same exception type everywhere:

* `ValueError`: a value out of range, a tree or shape that does not match, a
  missing required argument;
* `TypeError`: a value of the wrong kind (a string where a number belongs, a bool
  where an int belongs, an integer leaf, an object that is not a transform).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_CALLERS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("gradxform_callers", default=())


@contextlib.contextmanager
def user_function(name: str | None) -> Iterator[None]:
    """Marks the code inside as working for the public function `name` (`None`: no mark)."""
    if name is None:
        yield
        return
    token = _CALLERS.set(_CALLERS.get() + (name,))
    try:
        yield
    finally:
        _CALLERS.reset(token)


def lead(who: str) -> str:
    """The name an error message starts with: the outermost public function at work, else `who`."""
    callers = _CALLERS.get()
    return callers[0] if callers else who
