"""Resolution of the optimum (docs/design.md section 5, "Resolution of the optimum"): after the grid, the
headline cell of claim (a) is run again on a finer window of alphas around its argmin, with the same seeds,
until the bootstrap interval of alpha* (:func:`compare.optimum.locate_optimum`) spans less than a factor
:data:`TARGET_SPAN`, or the stated budget (:data:`MAX_RUNS` runs, :data:`MAX_ROUNDS` rounds) is spent.

Each round is a sweep of its own (``<out>/refine-<round>``: the store holds one sweep) over
:data:`WINDOW_POINTS` log-spaced alphas, and its alpha* is estimated from that round's runs alone (the vertex
of the parabola fitted to the whole window, :func:`compare.optimum.window_vertex`). The next
round narrows the window to the interval found (widened by one step on each side), moves it when the minimum
fell on its end, or, when the window would not narrow, keeps it and doubles the seeds (new seeds draw new
data sets, so the noise that makes the interval wide shrinks as 1 / sqrt(seeds)).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.compare.optimum import Optimum, locate_optimum
from fls.compare.selection import network_runs, seed_grid, select_cell
from fls.compare.sweep import run_sweep
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext
from fls.compare.vocabulary import ALPHA_KEY, INIT_KEY

#: The refinement stops once the 95 % bootstrap interval of alpha* spans less than this factor (hi / lo).
TARGET_SPAN = 1.25

#: Budget of the refinement: runs over all rounds, and rounds.
MAX_RUNS = 800
MAX_ROUNDS = 4

#: Alphas per round, log-spaced over the round's window (ends included).
WINDOW_POINTS = 9

#: A new window must be at most this fraction of the last one's log-width, else the seeds are doubled.
NARROWING = 0.7


@dataclass(frozen=True)
class Round:
    """One refinement round: its window of alphas, its seeds, the runs it took and the optimum it found."""

    alphas: tuple[float, ...]
    seeds: tuple[int, ...]
    runs: int
    optimum: Optimum


@dataclass
class Refinement:
    """The outcome: the rounds run, whether the target span was met (``status``: ``resolved``, ``budget spent``
    or ``not refined``), why, and the optimum of the grid it started from."""

    grid_optimum: Optimum | None
    status: str
    reason: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def optimum(self) -> Optimum | None:
        """The last round's optimum (the grid's when no round ran)."""
        return self.rounds[-1].optimum if self.rounds else self.grid_optimum

    @property
    def runs(self) -> int:
        return sum(r.runs for r in self.rounds)

    def markdown(self) -> list[str]:
        """The report's "Resolution of the optimum" section."""
        lines = ["## Resolution of the optimum", ""]
        lines.append(
            f"Target: the 95% bootstrap interval of alpha* spans less than a factor {TARGET_SPAN:g}; budget "
            f"{MAX_RUNS} runs in {MAX_ROUNDS} rounds of {WINDOW_POINTS} alphas. Outcome: **{self.status}** "
            f"({self.reason}; {self.runs} runs)."
        )
        lines.append("")
        if self.grid_optimum is not None:
            lines.append(f"- grid: {self.grid_optimum.describe()}")
        for number, step in enumerate(self.rounds, 1):
            lines.append(
                f"- round {number}: alpha in [{step.alphas[0]:.4g}, {step.alphas[-1]:.4g}], "
                f"{len(step.seeds)} seeds: {step.optimum.describe()}"
            )
        return [*lines, ""]


def _round_config(
    config: Mapping[str, Any], cell: Mapping[str, Any], alphas: np.ndarray, seeds: list[int], number: int
) -> dict[str, Any]:
    """The sweep of one round: ``config`` with its grid reduced to one cell, ``alphas`` and ``seeds``."""
    out = copy.deepcopy(dict(config))
    grid = {key: [value.item() if hasattr(value, "item") else value] for key, value in cell.items()}
    grid[ALPHA_KEY] = [float(a) for a in alphas]
    grid["seeds"] = list(seeds)
    out["grid"] = grid
    out.pop("phase", None)
    out["sweep"] = {
        **out.get("sweep", {}),
        "name": f"{out.get('sweep', {}).get('name', 'sweep')}-refine-{number}",
    }
    return out


def _next_window(window: tuple[float, float], found: Optimum, step: float) -> tuple[float, float] | None:
    """The next round's window: around the interval found, moved when the minimum fell on an end; None when
    it would not narrow (then the seeds are doubled)."""
    low, high = found.alpha_interval
    if not np.isfinite(found.alpha) or not (np.isfinite(low) and np.isfinite(high)):
        middle = np.sqrt(window[0] * window[1])
        shift = window[1] / middle if found.lost > 0.5 else 1.0
        return (window[0] * shift, window[1] * shift) if shift != 1.0 else None
    new = (low / step, high * step)
    if np.log(new[1] / new[0]) > NARROWING * np.log(window[1] / window[0]):
        return None
    return new


def refine_optimum(
    config: Mapping[str, Any],
    table: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
    max_runs: int = MAX_RUNS,
    max_rounds: int = MAX_ROUNDS,
) -> Refinement:
    """Refine alpha* of claim (a)'s cell of the sweep ``config`` (run table ``table``) in rounds under
    ``out_dir`` until its interval spans less than :data:`TARGET_SPAN` or the budget is spent."""
    cell, init, chosen = select_cell(table)
    if init is None:
        return Refinement(None, "not refined", "the table has no runs of a network engine")
    grid = seed_grid(cell, "test_error")
    start = locate_optimum(grid, context)
    means = grid.mean()
    if not np.any(np.isfinite(means)):
        return Refinement(start, "not refined", "no run of the cell reached its target")
    order = np.argsort(grid.alpha)
    k = int(np.nanargmin(means[order]))
    if k in (0, len(order) - 1):
        return Refinement(start, "not refined", "the grid's minimum is at an end of the grid")
    if start.span < TARGET_SPAN:
        return Refinement(start, "resolved", "the grid's interval already meets the target")
    window = (float(grid.alpha[order][k - 1]), float(grid.alpha[order][k + 1]))
    seeds = [int(s) for s in grid.seeds]
    fixed = {INIT_KEY: init, **chosen}
    refinement = Refinement(start, "budget spent", "")
    while len(refinement.rounds) < max_rounds:
        if refinement.runs + WINDOW_POINTS * len(seeds) > max_runs:
            refinement.reason = (
                f"the next round ({WINDOW_POINTS * len(seeds)} runs) would exceed {max_runs} runs"
            )
            return refinement
        alphas = np.geomspace(*window, WINDOW_POINTS)
        round_config = _round_config(config, fixed, alphas, seeds, len(refinement.rounds) + 1)
        runs = run_sweep(
            round_config,
            Path(out_dir) / f"refine-{len(refinement.rounds) + 1}",
            workers=workers,
            progress=False,
        )
        runs = network_runs(runs)
        found = locate_optimum(seed_grid(runs[runs[INIT_KEY] == init], "test_error"), context, window=True)
        refinement.rounds.append(Round(tuple(alphas), tuple(seeds), len(runs), found))
        if found.span < TARGET_SPAN:
            refinement.status, refinement.reason = "resolved", f"the interval spans a factor {found.span:.3g}"
            return refinement
        step = float(alphas[1] / alphas[0])
        following = _next_window(window, found, step)
        if following is None:
            seeds = seeds + [max(seeds) + 1 + i for i in range(len(seeds))]
        else:
            window = following
    refinement.reason = (
        f"{max_rounds} rounds run; the last interval spans a factor {refinement.optimum.span:.3g}"
    )
    return refinement
