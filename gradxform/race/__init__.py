"""The optimizer race behind ``gradxform race``: problems, the compiled training loop, the report.

Not imported by ``import gradxform`` (it needs the ``race`` extra: matplotlib
and scikit-learn). Use it from Python as::

    from gradxform.race import make_problem, race, table
    results = race([make_problem("ravine", 0)], ["sgd", "adam"], steps=300)
    print(table(results))
"""

from gradxform.race.engine import Result, race, train
from gradxform.race.problems import LEARNING_RATES, OPTIMIZERS, PROBLEM_NAMES, Problem, make_problem
from gradxform.race.report import figure, table

__all__ = [
    "LEARNING_RATES",
    "OPTIMIZERS",
    "PROBLEM_NAMES",
    "Problem",
    "Result",
    "figure",
    "make_problem",
    "race",
    "table",
    "train",
]
