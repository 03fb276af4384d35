"""The optimizers, one module per family, and the registry that declares each of them once.

Families:

- `sgd` (sgd, momentum, nesterov), `rmsprop`, `adam` (adam, adamw, nadam, nadamw, amsgrad), `adagrad`, `adadelta`;
- `adaptive` (radam, adamax, adamaxw, yogi, adabelief), `sign` (sign_sgd, signum, lion, rprop);
- `adan`, `optimistic` (optimistic gradient descent, optimistic Adam), `ademamix`, `adopt`, `madgrad`,
  `noisy` (noisy SGD), `asgd`, `polyak` (polyak_sgd), `sm3`;
- `layerwise` (lars, lamb, novograd, fromage), `adafactor`;
- `muon`;
- `lr_free` (dog, dowg, prodigy, dadapt_adamw, cocob, mechanize, momo, momo_adam);
- `schedule_free` (schedule_free_sgd, schedule_free_adamw).

Every optimizer is a chain of blocks whose lines read like its equations; `registry` lists
them with their references and needs.
"""

from gradxform.optimizers import registry
from gradxform.optimizers.adadelta import adadelta
from gradxform.optimizers.adafactor import adafactor
from gradxform.optimizers.adagrad import adagrad
from gradxform.optimizers.adam import adam, adamw, amsgrad, nadam, nadamw
from gradxform.optimizers.adan import adan
from gradxform.optimizers.adaptive import adabelief, adamax, adamaxw, radam, yogi
from gradxform.optimizers.ademamix import ademamix
from gradxform.optimizers.adopt import adopt
from gradxform.optimizers.asgd import asgd
from gradxform.optimizers.layerwise import fromage, lamb, lars, novograd
from gradxform.optimizers.lr_free import cocob, dadapt_adamw, dog, dowg, mechanize, momo, momo_adam, prodigy
from gradxform.optimizers.madgrad import madgrad
from gradxform.optimizers.muon import muon
from gradxform.optimizers.noisy import noisy_sgd
from gradxform.optimizers.optimistic import optimistic_adam_v2, optimistic_gradient_descent
from gradxform.optimizers.polyak import polyak_sgd
from gradxform.optimizers.rmsprop import rmsprop
from gradxform.optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd
from gradxform.optimizers.sgd import momentum, nesterov, sgd
from gradxform.optimizers.sign import lion, rprop, sign_sgd, signum
from gradxform.optimizers.sm3 import sm3
from gradxform.optimizers.soap import soap

__all__ = [
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "ademamix",
    "adopt",
    "amsgrad",
    "asgd",
    "cocob",
    "dadapt_adamw",
    "dog",
    "dowg",
    "fromage",
    "lamb",
    "lars",
    "lion",
    "madgrad",
    "mechanize",
    "momentum",
    "momo",
    "momo_adam",
    "muon",
    "nadam",
    "nadamw",
    "nesterov",
    "noisy_sgd",
    "novograd",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "prodigy",
    "radam",
    "registry",
    "rmsprop",
    "rprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
    "sign_sgd",
    "signum",
    "sm3",
    "soap",
    "yogi",
]
