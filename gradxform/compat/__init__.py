"""Constructors that follow other libraries' argument names, defaults and numerics.

`gradxform.compat.torch` mirrors `torch.optim` (`SGD`, `Adam`, `AdamW`,
`RMSprop`, `Adagrad`, `Adadelta`, `NAdam`); each is a chain of
gradxform blocks whose trajectory matches torch.optim's.
"""

from gradxform.compat import torch

__all__ = ["torch"]
