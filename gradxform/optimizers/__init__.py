"""The optimizers, one module per family, and the registry that declares each of them once.

Families:

- `sgd` (sgd, momentum, nesterov), `rmsprop`, `adam` (adam, adamw, nadam, amsgrad), `adagrad`, `adadelta`;
- `adan`, `optimistic` (optimistic gradient descent, optimistic Adam), `ademamix`, `adopt`, `madgrad`,
  `noisy` (noisy SGD), `asgd`;
- `layerwise` (lars, lamb);
- `muon`;
- `lr_free` (dog, dowg, prodigy, dadapt_adamw).

Every optimizer is a chain of blocks whose lines read like its equations; `registry` lists
them with their references and needs.
"""

from gradxform.optimizers import registry
from gradxform.optimizers.adadelta import adadelta
from gradxform.optimizers.adagrad import adagrad
from gradxform.optimizers.adam import adam, adamw, amsgrad, nadam
from gradxform.optimizers.adan import adan
from gradxform.optimizers.ademamix import ademamix
from gradxform.optimizers.adopt import adopt
from gradxform.optimizers.asgd import asgd
from gradxform.optimizers.layerwise import lamb, lars
from gradxform.optimizers.lr_free import cocob, dadapt_adamw, dog, dowg, mechanize, momo, momo_adam, prodigy
from gradxform.optimizers.madgrad import madgrad
from gradxform.optimizers.muon import muon
from gradxform.optimizers.noisy import noisy_sgd
from gradxform.optimizers.optimistic import optimistic_adam_v2, optimistic_gradient_descent
from gradxform.optimizers.rmsprop import rmsprop
from gradxform.optimizers.sgd import momentum, nesterov, sgd

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "adan",
    "ademamix",
    "adopt",
    "asgd",
    "amsgrad",
    "cocob",
    "lamb",
    "lars",
    "dadapt_adamw",
    "dog",
    "dowg",
    "mechanize",
    "momentum",
    "momo",
    "momo_adam",
    "muon",
    "nadam",
    "nesterov",
    "prodigy",
    "madgrad",
    "momentum",
    "nadam",
    "nesterov",
    "noisy_sgd",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "registry",
    "rmsprop",
    "sgd",
]
