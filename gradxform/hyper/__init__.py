"""Hyperparameter values: what they may be (`values`), how they are checked (`validate`), live ones (`inject`)."""

from gradxform.hyper.inject import InjectHyperparamsState, inject_hyperparams, set_hyperparams
from gradxform.hyper.validate import (
    ANY,
    CLOSED_UNIT,
    NONNEGATIVE,
    POSITIVE,
    UNIT,
    Range,
    check_rounding,
    validate,
    validate_bool,
    validate_dtype,
    validate_int,
)
from gradxform.hyper.values import Hyperparameter, Schedule, is_concrete, is_schedule, is_zero, resolve

__all__ = [
    "ANY",
    "CLOSED_UNIT",
    "NONNEGATIVE",
    "POSITIVE",
    "UNIT",
    "Hyperparameter",
    "InjectHyperparamsState",
    "Range",
    "Schedule",
    "check_rounding",
    "inject_hyperparams",
    "is_concrete",
    "is_schedule",
    "is_zero",
    "resolve",
    "set_hyperparams",
    "validate",
    "validate_bool",
    "validate_dtype",
    "validate_int",
]
