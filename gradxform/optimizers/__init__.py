"""The optimizers, one module per family, and the registry that declares each of them once.

Families: `sgd` (sgd, momentum, nesterov), `rmsprop`, `adam` (adam, adamw, nadam,
nadamw, amsgrad), `adaptive` (radam, adamax, adamaxw, yogi, adabelief), `sign` (sign_sgd,
signum, lion, rprop), `adagrad`, `adadelta`. Every optimizer is a chain of blocks whose lines
read like its equations; `registry` lists them with their references and needs.
"""

from gradxform.optimizers import registry
from gradxform.optimizers.adadelta import adadelta
from gradxform.optimizers.adagrad import adagrad
from gradxform.optimizers.adam import adam, adamw, amsgrad, nadam, nadamw
from gradxform.optimizers.adaptive import adabelief, adamax, adamaxw, radam, yogi
from gradxform.optimizers.rmsprop import rmsprop
from gradxform.optimizers.sgd import momentum, nesterov, sgd
from gradxform.optimizers.sign import lion, rprop, sign_sgd, signum

__all__ = [
    "adabelief",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "lion",
    "momentum",
    "nadam",
    "nadamw",
    "nesterov",
    "radam",
    "registry",
    "rmsprop",
    "rprop",
    "sgd",
    "sign_sgd",
    "signum",
    "yogi",
]
