"""The optimizers, one module per family, and the registry that declares each of them once.

Families: `sgd` (sgd, momentum, nesterov), `rmsprop`, `adam` (adam, adamw, nadam,
amsgrad), `adagrad`, `adadelta`. Every optimizer is a chain of blocks whose lines
read like its equations; `registry` lists them with their references and needs.
"""

from gradxform.optimizers import registry
from gradxform.optimizers.adadelta import adadelta
from gradxform.optimizers.adagrad import adagrad
from gradxform.optimizers.adam import adam, adamw, amsgrad, nadam
from gradxform.optimizers.lr_free import cocob, dadapt_adamw, dog, dowg, mechanize, momo, momo_adam, prodigy
from gradxform.optimizers.rmsprop import rmsprop
from gradxform.optimizers.sgd import momentum, nesterov, sgd

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "amsgrad",
    "cocob",
    "dadapt_adamw",
    "dog",
    "dowg",
    "mechanize",
    "momentum",
    "momo",
    "momo_adam",
    "nadam",
    "nesterov",
    "prodigy",
    "registry",
    "rmsprop",
    "sgd",
]
