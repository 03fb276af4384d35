"""The optimizers, one module per family, and the registry that declares each of them once.

Families: `sgd` (sgd, momentum, nesterov), `rmsprop`, `adam` (adam, adamw, nadam,
amsgrad), `adagrad`, `adadelta`, `schedule_free` (schedule_free_sgd,
schedule_free_adamw). Every optimizer is a chain of blocks whose lines read like
its equations; `registry` lists them with their references and needs.
"""

from gradxform.optimizers import registry
from gradxform.optimizers.adadelta import adadelta
from gradxform.optimizers.adagrad import adagrad
from gradxform.optimizers.adam import adam, adamw, amsgrad, nadam
from gradxform.optimizers.rmsprop import rmsprop
from gradxform.optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd
from gradxform.optimizers.sgd import momentum, nesterov, sgd

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "amsgrad",
    "momentum",
    "nadam",
    "nesterov",
    "registry",
    "rmsprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
]
