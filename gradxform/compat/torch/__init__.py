"""torch.optim's optimizers (`optimizers`) and its learning-rate schedulers (`lr_scheduler`), with torch's names,
defaults and numerics."""

from gradxform.compat.torch import lr_scheduler
from gradxform.compat.torch.optimizers import ASGD, SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RMSprop

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "ASGD", "lr_scheduler"]
