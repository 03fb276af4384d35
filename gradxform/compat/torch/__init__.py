"""torch.optim's optimizers (`optimizers`) and its learning-rate schedulers (`lr_scheduler`), with torch's names,
defaults and numerics."""

from gradxform.compat.torch import lr_scheduler
from gradxform.compat.torch.adafactor import Adafactor
from gradxform.compat.torch.optimizers import (
    ASGD,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Muon,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
)

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "NAdam",
    "ASGD",
    "Adafactor",
    "Muon",
    "RAdam",
    "Adamax",
    "Rprop",
    "lr_scheduler",
]
