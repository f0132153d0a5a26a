"""The ``deep`` family: the optimal feature-learning strength of deep networks on real images (docs/deep.md;
docs/design.md section 5, "The layers").

The runs (:mod:`compare.deep_runner`) train f = c h, h a deep network, by SGD at step eta / c to 99 % training
accuracy (or a target loss) over a grid of c (FLS = 1 / c at a fixed init) and seeds; the measure is the peak
test accuracy (its error 1 - peak). A *cell* is a set of runs that differ only in c, the seed, ``model.knob``
and ``model.centered`` (one data set, one architecture, one training protocol). Seeds are the replicates
(each draws its own initialization and minibatch order), so the bootstrap resamples them
(:mod:`compare.statistics`, paired across c). Runs read as results: status ``target_reached`` (and, for (b),
``t_max`` too: a run without a stop rule). A value of c at which fewer than half of a cell's seeds reached the
target is left out of the cell's grid and named in the evidence.

- (a) an interior optimal c, per cell of multiplier runs without centering: the c of least mean error lies
  inside the grid, its bootstrap interval excludes both ends, and both ends err more than the minimum on
  held-out seeds (:func:`compare.statistics.held_out_depths`), as the two-layer claim (a) of
  :mod:`compare.claims` decides. Passes when some cell passes, fails when every cell has its least error at an
  end, and the evidence names the verdict of every cell.
- (b) the (alpha, c) equivalence: each run with multiplier c at step eta / c against its twin with the
  equivalent init scale c^(1/L) alpha at step eta c^(2/L - 1): the largest relative difference of the final
  training loss and of the parameter norm (in the init-scale parametrization) over all twins is at most
  ``tolerance``, and the twins take the same number of steps.
- (c) the over-fitting side is carried by the initial function: per cell, the large-c arm (mean error at the
  largest usable c minus at the uncentered argmin c*) of uncentered runs against centered ones (f = c (h - h0));
  the difference arm(uncentered) - arm(centered), paired by seed, has a bootstrap interval above 0 in some cell
  and below 0 in none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fls.compare.statistics import bootstrap_means, finite_mean, held_out_depths, interval, resample_indices
from fls.compare.verdict import DEFAULT_CONTEXT, Claim, ClaimContext, ClaimResult, inconclusive

C_KEY, KNOB_KEY, CENTERED_KEY = "model.c", "model.knob", "model.centered"
#: Columns that vary inside a cell.
WITHIN_CELL = (C_KEY, KNOB_KEY, CENTERED_KEY, "seed", "run_id")
#: The sections of a deep run's config keys.
RUN_SECTIONS = ("data", "model", "train", "stop")
#: Relative difference at which the two knobs' runs count as equal (float64 runs of tens of steps agree to
#: about 1e-12; docs/train.md).
EQUIVALENCE_TOLERANCE = 1e-8
MIN_C_VALUES = 3


@dataclass(frozen=True)
class CellGrid:
    """The errors 1 - peak test accuracy of one cell: (seeds, c values), NaN where a run is not a result."""

    label: str
    c: np.ndarray
    seeds: np.ndarray
    errors: np.ndarray
    dropped: tuple[float, ...]


def cell_columns(table: pd.DataFrame) -> list[str]:
    """The config columns that define a cell (every run key but :data:`WITHIN_CELL`)."""
    return [
        column
        for column in table.columns
        if column.split(".", 1)[0] in RUN_SECTIONS and "." in column and column not in WITHIN_CELL
    ]


def cell_label(row: pd.Series) -> str:
    """A cell in words: data set, task, architecture and widths."""
    return (
        f"{row['data.name']} ({row['data.task']}), {row['model.architecture']} {row['model.widths']}, "
        f"stop {row['stop.rule']}"
    )


def cells(table: pd.DataFrame) -> list[pd.DataFrame]:
    """The table split into cells, in order of appearance."""
    if table.empty:
        return []
    keys = cell_columns(table)
    return [group for _, group in table.groupby(keys, sort=False, dropna=False)]


def error_grid(runs: pd.DataFrame, *, statuses: Sequence[str] = ("target_reached",)) -> CellGrid:
    """The (seed, c) errors of one cell's runs of one knob and centering; c values with fewer than half of
    the seeds as results are dropped (named in ``dropped``)."""
    error = np.where(runs["status"].isin(statuses), 1.0 - runs["peak_test_accuracy"].astype(float), np.nan)
    frame = runs.assign(error=error).pivot_table(
        index="seed", columns=C_KEY, values="error", aggfunc="first", dropna=False
    )
    frame = frame.reindex(sorted(frame.columns), axis=1)
    kept = frame.notna().sum(axis=0) * 2 >= len(frame)
    dropped = tuple(float(c) for c in frame.columns[~kept.to_numpy()])
    frame = frame.loc[:, kept.to_numpy()]
    return CellGrid(
        cell_label(runs.iloc[0]),
        frame.columns.to_numpy(dtype=float),
        frame.index.to_numpy(),
        frame.to_numpy(dtype=float),
        dropped,
    )


def _plain(runs: pd.DataFrame, *, centered: bool) -> pd.DataFrame:
    return runs[(runs[KNOB_KEY] == "multiplier") & (runs[CENTERED_KEY] == centered)]


def cell_optimum(grid: CellGrid, context: ClaimContext) -> dict[str, Any]:
    """Claim (a) on one cell: its verdict, reason and numbers (module docstring)."""
    means = np.array([finite_mean(column) for column in grid.errors.T])
    k = int(np.nanargmin(means))
    boot = bootstrap_means(
        grid.errors, resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    )
    finite = np.isfinite(boot).any(axis=1)
    arg = np.array([np.nanargmin(row) for row in boot[finite]])
    lo, hi = (round(q) for q in np.percentile(arg, [2.5, 97.5]))
    last = len(grid.c) - 1
    depths = held_out_depths(grid.errors, n_boot=context.n_boot, seed=context.seed)
    if k in (0, last):
        verdict, reason = "fail", f"the least mean error is at the end c = {grid.c[k]:.4g} of the grid"
    elif lo > 0 and hi < last and all(low > 0 for _, (low, _) in depths):
        verdict, reason = "pass", "argmin and its interval inside the grid, both ends worse on held-out seeds"
    elif lo > 0 and hi < last:
        verdict, reason = "inconclusive", "held-out seeds do not show both ends above the minimum"
    else:
        verdict, reason = "inconclusive", "the argmin's bootstrap interval reaches an end of the grid"
    return {
        "label": grid.label,
        "verdict": verdict,
        "reason": reason,
        "c": grid.c.tolist(),
        "accuracy": (1.0 - means).tolist(),
        "sd": [float(np.nanstd(column)) for column in grid.errors.T],
        "argmin": float(grid.c[k]),
        "band": [float(grid.c[lo]), float(grid.c[hi])],
        "depths": [[point, list(bounds)] for point, bounds in depths],
        "seeds": len(grid.seeds),
        "dropped": list(grid.dropped),
    }


def _describe(cell: dict[str, Any]) -> str:
    (small, small_bounds), (large, large_bounds) = cell["depths"]
    dropped = (
        f"; left out (under half the seeds reached the target): c = {cell['dropped']}"
        if cell["dropped"]
        else ""
    )
    return (
        f"{cell['verdict']}: {cell['reason']}. Peak test accuracy {max(cell['accuracy']):.4f} at c = "
        f"{cell['argmin']:.4g} (interval of argmin c [{cell['band'][0]:.4g}, {cell['band'][1]:.4g}]), "
        f"{cell['accuracy'][0]:.4f} at c = {cell['c'][0]:.4g}, {cell['accuracy'][-1]:.4f} at c = "
        f"{cell['c'][-1]:.4g}; held-out excess error small-c end {small:.4f} [{small_bounds[0]:.4f}, "
        f"{small_bounds[1]:.4f}], large-c end {large:.4f} [{large_bounds[0]:.4f}, {large_bounds[1]:.4f}]; "
        f"{cell['seeds']} seeds{dropped}"
    )


def deep_interior_optimum(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(a) An interior optimal c for peak test accuracy in some cell (module docstring)."""
    title = "deep networks: an interior optimal c (FLS = 1 / c) for peak test accuracy"
    statistic = "argmin c of the mean test error 1 - peak accuracy (first passing cell, else first cell)"
    found = []
    for runs in cells(table):
        if _plain(runs, centered=False).empty:
            continue
        grid = error_grid(_plain(runs, centered=False))
        if len(grid.c) >= MIN_C_VALUES and len(grid.seeds) >= 2:
            found.append(cell_optimum(grid, context))
    if not found:
        return inconclusive("deep_a", title, statistic, f"no cell has {MIN_C_VALUES} c values with results")
    verdicts = [cell["verdict"] for cell in found]
    passing = [cell for cell in found if cell["verdict"] == "pass"]
    verdict = "pass" if passing else "fail" if all(v == "fail" for v in verdicts) else "inconclusive"
    reason = "; ".join(f"{cell['label']}: {cell['verdict']}" for cell in found)
    shown = (passing or found)[0]
    return ClaimResult(
        "deep_a",
        title,
        verdict,
        reason,
        statistic,
        shown["argmin"],
        (shown["band"][0], shown["band"][1]),
        {cell["label"]: _describe(cell) for cell in found},
        data={"cells": found},
    )


def knob_equivalence(
    table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT, *, tolerance: float = EQUIVALENCE_TOLERANCE
) -> ClaimResult:
    """(b) Multiplier c at step eta / c equals init scale c^(1/L) alpha at step eta c^(2/L - 1) (module
    docstring): the largest relative difference over twins of final loss and parameter norm <= tolerance."""
    title = "deep networks: the multiplier c equals the equivalent init scale (the (alpha, c) equivalence)"
    statistic = "max over twins of the relative difference of final loss and parameter norm"
    usable = table[table["status"].isin(("target_reached", "t_max", "not_reached"))]
    keys = [column for column in cell_columns(usable) if column != KNOB_KEY] + [C_KEY, CENTERED_KEY, "seed"]
    pairs = []
    for _, twins in usable.groupby(keys, sort=False, dropna=False):
        by_knob = {row[KNOB_KEY]: row for _, row in twins.iterrows()}
        if {"multiplier", "init_scale"} <= set(by_knob):
            pairs.append((by_knob["multiplier"], by_knob["init_scale"]))
    if not pairs:
        return inconclusive("deep_b", title, statistic, "the table has no run with both knobs")
    rows = []
    for plain, scaled in pairs:
        differences = [
            abs(plain[column] - scaled[column]) / max(abs(plain[column]), abs(scaled[column]), 1e-300)
            for column in ("final_risk", "theta_norm")
        ]
        rows.append(
            {
                "label": cell_label(plain),
                "c": float(plain[C_KEY]),
                "seed": int(plain["seed"]),
                "loss": differences[0],
                "norm": differences[1],
                "same_steps": bool(plain["steps"] == scaled["steps"]),
            }
        )
    worst = max(max(row["loss"], row["norm"]) for row in rows)
    steps_agree = all(row["same_steps"] for row in rows)
    verdict = "pass" if worst <= tolerance and steps_agree else "fail"
    reason = f"{len(rows)} twins: largest relative difference {worst:.3g} (tolerance {tolerance:.3g}); " + (
        "every twin took the same steps" if steps_agree else "some twins took different numbers of steps"
    )
    spread = [max(row["loss"], row["norm"]) for row in rows]
    evidence = {
        f"{row['label']}, c = {row['c']:.4g}, seed {row['seed']}": (
            f"loss {row['loss']:.3g}, norm {row['norm']:.3g}, same steps {row['same_steps']}"
        )
        for row in rows
    }
    return ClaimResult(
        "deep_b",
        title,
        verdict,
        reason,
        statistic,
        worst,
        interval(np.array(spread)),
        evidence,
        data={"twins": rows, "tolerance": tolerance},
    )


def _restricted(grid: CellGrid, seeds: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The errors of ``grid`` at the given seeds and c values."""
    return grid.errors[np.ix_(np.isin(grid.seeds, seeds), np.isin(grid.c, c))]


def _arm(errors: np.ndarray, optimum: int, end: int) -> np.ndarray:
    return errors[:, end] - errors[:, optimum]


def centered_arm(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(c) Centering (f = c (h - h0)) removes or shrinks the large-c arm of the error (module docstring)."""
    title = "deep networks: the large-c (over-fitting) arm is carried by the initial function"
    statistic = "arm(uncentered) - arm(centered), mean over seeds (first cell with both)"
    found = []
    for runs in cells(table):
        if _plain(runs, centered=False).empty or _plain(runs, centered=True).empty:
            continue
        plain, centered = error_grid(_plain(runs, centered=False)), error_grid(_plain(runs, centered=True))
        common = np.intersect1d(plain.c, centered.c)
        seeds = np.intersect1d(plain.seeds, centered.seeds)
        if len(common) < 2 or len(seeds) < 2:
            continue
        uncentered_errors, centered_errors = (_restricted(grid, seeds, common) for grid in (plain, centered))
        optimum = int(np.nanargmin([finite_mean(column) for column in uncentered_errors.T]))
        end = len(common) - 1
        shrink = _arm(uncentered_errors, optimum, end) - _arm(centered_errors, optimum, end)
        boot = bootstrap_means(
            shrink[:, None], resample_indices(len(seeds), n_boot=context.n_boot, seed=context.seed)
        )[:, 0]
        found.append(
            {
                "label": plain.label,
                "c": common.tolist(),
                "uncentered": (1.0 - np.nanmean(uncentered_errors, axis=0)).tolist(),
                "centered": (1.0 - np.nanmean(centered_errors, axis=0)).tolist(),
                "optimum": float(common[optimum]),
                "end": float(common[end]),
                "arm_uncentered": finite_mean(_arm(uncentered_errors, optimum, end)),
                "arm_centered": finite_mean(_arm(centered_errors, optimum, end)),
                "shrink": finite_mean(shrink),
                "interval": list(interval(boot)),
                "dropped_uncentered": list(plain.dropped),
                "dropped_centered": list(centered.dropped),
            }
        )
    if not found:
        return inconclusive("deep_c", title, statistic, "no cell has centered and uncentered runs at two c")
    above = [cell for cell in found if cell["interval"][0] > 0]
    below = [cell for cell in found if cell["interval"][1] < 0]
    verdict = "fail" if below else "pass" if above else "inconclusive"
    reason = "; ".join(
        f"{cell['label']}: arm {cell['arm_uncentered']:.4f} -> {cell['arm_centered']:.4f} centered"
        for cell in found
    )
    evidence = {
        cell["label"]: (
            f"error(c = {cell['end']:.4g}) - error(c* = {cell['optimum']:.4g}): uncentered {cell['arm_uncentered']:.4f}, "
            f"centered {cell['arm_centered']:.4f}; shrink {cell['shrink']:.4f} [{cell['interval'][0]:.4f}, "
            f"{cell['interval'][1]:.4f}]; c left out (under half the seeds reached the target): uncentered "
            f"{cell['dropped_uncentered']}, centered {cell['dropped_centered']}"
        )
        for cell in found
    }
    shown = (above or found)[0]
    return ClaimResult(
        "deep_c",
        title,
        verdict,
        reason,
        statistic,
        shown["shrink"],
        tuple(shown["interval"]),
        evidence,
        data={"cells": found},
    )


#: The claims of the ``deep`` family.
CLAIMS: dict[str, Claim] = {
    "deep_a": deep_interior_optimum,
    "deep_b": knob_equivalence,
    "deep_c": centered_arm,
}
