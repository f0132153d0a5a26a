"""The quality claim per axis and overall (docs/design.md section 5, "The layers"; the axes and the rule that
combines them: docs/quality.md, "The axes").

Claim (q) (:func:`compare.quality_claims.strength_quality_claim`) is decided on the runs of one sweep. The
quality family runs one sweep per axis (:mod:`compare.quality_config`): ``alpha`` (FLS varies at one width),
``width`` (capacity varies at one alpha) and ``task`` (FLS varies on a second task); each gets the claim's
verdict by the claim's own rule, and :func:`combine` joins them by :data:`OVERALL_RULE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fls.compare.quality_claims import finished_runs, strength_quality_claim
from fls.compare.verdict import ClaimContext, ClaimResult
from fls.compare.vocabulary import ALPHA_KEY, N_KEY, WIDTH_KEY
from fls.theory.validation import ParameterError

#: The axes in report order, with what each varies.
AXES = {
    "alpha": "alpha (FLS) at fixed width",
    "width": "width (capacity) at fixed alpha",
    "task": "alpha (FLS) on a second task",
}

OVERALL_RULE = (
    "The claim is about networks of every capacity and task, so it holds overall only where it holds on each "
    "axis swept (alpha at fixed width, width at fixed alpha, the second task): overall PASS when every axis "
    "passes, FAIL when some axis fails (a strength measure tracks the quality there), INCONCLUSIVE otherwise "
    "(some axis inconclusive and none failing, or no axis swept)."
)


@dataclass(frozen=True)
class AxisVerdict:
    """Claim (q) on the runs of one axis: the axis, what its runs hold fixed, and the claim's result."""

    axis: str
    setting: str
    result: ClaimResult

    def describe(self) -> str:
        """One line: the axis, its setting, the verdict, the statistic and its interval, the reason."""
        lo, hi = self.result.interval
        return (
            f"{self.axis} ({AXES[self.axis]}; {self.setting}): {self.result.verdict}, "
            f"rho = {self.result.value:+.2f} [{lo:+.2f}, {hi:+.2f}] ({self.result.reason})"
        )


def _span(values: np.ndarray, name: str, fmt: str = "{:.4g}") -> str:
    """``name v`` for one value, ``name lo-hi`` for several."""
    values = np.unique(values)
    if len(values) == 1:
        return f"{name} {fmt.format(values[0])}"
    return f"{name} {fmt.format(values.min())}-{fmt.format(values.max())}"


def task_name(table: pd.DataFrame) -> str:
    """The task of a sweep's runs in words: the data model and its order k (e.g. ``staircase k=4``)."""
    task = str(table["data.model"].iloc[0]) if "data.model" in table and len(table) else "data"
    if "data.k" in table and len(table):
        task += f" k={int(table['data.k'].iloc[0])}"
    return task


def setting(table: pd.DataFrame) -> str:
    """What a sweep's runs hold fixed and vary, in words: the task, the widths, the alphas, n and the run
    count (e.g. ``staircase k=3, width 128-2048, alpha 0.05, n 200-800, 45 runs``)."""
    if table.empty:
        return "no runs"
    parts = [task_name(table)]
    spans = ((WIDTH_KEY, "width"), (ALPHA_KEY, "alpha"), (N_KEY, "n"))
    parts += [_span(table[key].to_numpy(), label) for key, label in spans if key in table]
    parts.append(f"{len(table)} runs")
    return ", ".join(parts)


def axis_verdict(
    axis: str, table: pd.DataFrame, context: ClaimContext, result: ClaimResult | None = None
) -> AxisVerdict:
    """Claim (q) on the runs ``table`` of ``axis`` (``result``: already decided, e.g. the stored analysis)."""
    if axis not in AXES:
        raise ParameterError(
            f"axis = {axis!r} is not an axis of the quality claim; allowed: {', '.join(AXES)}"
        )
    result = strength_quality_claim(table, context) if result is None else result
    return AxisVerdict(axis, setting(finished_runs(table)), result)


def combine(verdicts: Sequence[AxisVerdict]) -> tuple[str, str]:
    """The overall verdict of the axes' verdicts by :data:`OVERALL_RULE`, and its reason."""
    if not verdicts:
        return "inconclusive", "no axis was swept"
    by_state = {
        state: [v.axis for v in verdicts if v.result.verdict == state]
        for state in ("pass", "fail", "inconclusive")
    }
    if by_state["fail"]:
        return "fail", f"fails on {_axes(by_state['fail'])}"
    if len(by_state["pass"]) == len(verdicts):
        return "pass", f"passes on every axis swept: {', '.join(by_state['pass'])}"
    undecided = [v.axis for v in verdicts if v.result.verdict != "pass"]
    return "inconclusive", f"no axis fails; not decided on {_axes(undecided)}"


def _axes(names: Sequence[str]) -> str:
    """``the width axis``, ``the alpha and width axes``, ``the alpha, width and task axes``."""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"the {listed} " + ("axes" if len(names) > 1 else "axis")


def verdicts_by_axis(
    tables: Mapping[str, pd.DataFrame],
    context: ClaimContext,
    decided: Mapping[str, ClaimResult] | None = None,
) -> list[AxisVerdict]:
    """:func:`axis_verdict` of every axis in ``tables`` (axis -> its sweep's run table), in :data:`AXES`
    order; ``decided`` gives results already decided for some axes."""
    decided = decided or {}
    return [axis_verdict(axis, tables[axis], context, decided.get(axis)) for axis in AXES if axis in tables]
