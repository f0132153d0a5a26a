"""Which runs a claim family can read (docs/design.md section 5, "Claims and the registry"; docs/claims.md).

A family whose claims need something of the runs (class labels, a bias-free network) declares it as a
:class:`RunRequirement`; the registry (:mod:`compare.registry`) prepares and checks the family on the runs that
meet it, and when none do, reports each of its claims ``skipped`` with the reason instead of evaluating it on
runs it was not made for (a crash, or a verdict that means nothing).

The run table's ``task`` column (:data:`TASK_COLUMN`, written by the runners) says ``classification`` (labels
in {-1, +1}) or ``regression`` (real targets with the squared loss); a table without it is from before
regression runs existed, all classification. ``model.bias`` is recorded only when true.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from fls.compare.vocabulary import BIAS_KEY

#: The run-table column that says a run's task.
TASK_COLUMN = "task"
#: The values of :data:`TASK_COLUMN`.
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class RunRequirement:
    """What a family's runs must be: ``needs`` in words (it completes "the claims need ..."), ``select`` the
    rows of a run table that meet it (a boolean Series on the table's index)."""

    needs: str
    select: Callable[[pd.DataFrame], pd.Series]

    def unmet(self, table: pd.DataFrame) -> str | None:
        """Why no run of ``table`` can be read (the reason a skipped claim gives), or None when some can."""
        if self.select(table).any():
            return None
        tasks = table[TASK_COLUMN].value_counts().to_dict() if TASK_COLUMN in table else {}
        found = ", ".join(f"{count} {task}" for task, count in tasks.items()) or f"{len(table)} other"
        return f"skipped: the claims need {self.needs}; the table has none ({found} runs)"


def split_by_task(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(classification runs, regression runs) of ``table`` (a table without a task column: all
    classification)."""
    if TASK_COLUMN not in table:
        return table, table.iloc[:0]
    regression = table[TASK_COLUMN].eq("regression")
    return table[~regression], table[regression]


def _bias_free_classification(table: pd.DataFrame) -> pd.Series:
    classification = (
        table[TASK_COLUMN].eq("classification")
        if TASK_COLUMN in table
        else pd.Series(True, index=table.index)
    )
    biased = table[BIAS_KEY].eq(True) if BIAS_KEY in table else pd.Series(False, index=table.index)
    return classification & ~biased


#: The runs the fls family's claims and predictions are made for: classification (error rates, class sums,
#: the margin-loss limits) by bias-free networks (the limits of docs/design.md section 2 are derived without
#: biases).
BIAS_FREE_CLASSIFICATION = RunRequirement(
    "classification runs (labels in {-1, +1}) of bias-free networks", _bias_free_classification
)
