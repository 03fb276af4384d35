"""The optimizer race behind `gradxform race`: problems, the compiled training loop, the report.

Not imported by `import gradxform` (it needs the `race` extra: matplotlib
and scikit-learn). Use it from Python as:

```python
from gradxform.race import make_problem, race, table
results = race([make_problem("ravine", 0)], ["sgd", "adam"], steps=300)
print(table(results))
```

"""

from gradxform.race.engine import Result, race, train
from gradxform.race.problems import DEFAULT_FIELD, PROBLEM_NAMES, Problem, build, learning_rate, make_problem, raceable
from gradxform.race.report import figure, table

__all__ = [
    "DEFAULT_FIELD",
    "build",
    "learning_rate",
    "raceable",
    "PROBLEM_NAMES",
    "Problem",
    "Result",
    "figure",
    "make_problem",
    "race",
    "table",
    "train",
]
