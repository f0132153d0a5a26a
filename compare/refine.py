"""Resolution of the optimum (docs/design.md section 5, "Resolution of the optimum"): after the grid, the
headline cell of claim (a) is run again on a window of alphas around its argmin, with the same seeds, and
then with more seeds, until the bootstrap interval of alpha* (:func:`compare.optimum.locate_optimum`) spans
less than a factor :data:`TARGET_SPAN`, or the stated budget (:data:`MAX_RUNS` runs, :data:`MAX_ROUNDS`
rounds) is spent.

The window is fixed by the noise, not narrowed: alpha* is the vertex of the least-squares parabola in log
alpha through every point of the window (:func:`compare.optimum.window_vertex`), and its spread over seed
resamples is about the noise of the slope divided by the curvature the window shows. A window narrower than
the flat bottom of the error curve shows no curvature above the noise of the paired differences, and its
vertex scatters further than the window itself (measured on the default headline cell with 64 seeds: a window
of a factor 2.5 in alpha gives an interval of a factor 1.58, a factor 10 gives 1.14, at the same seeds). So
the window spans a factor :data:`WINDOW_FACTOR` on each side of the grid's alpha*, is moved (not narrowed)
only when its vertex leaves the window's middle half, and the interval is narrowed by seeds alone: every seed
draws its own data set, test set and initialization, shared by all alphas of the window (common random
numbers), so the interval's log-width shrinks as 1 / sqrt(seeds), and each round adds the seeds that this rate
predicts the target needs (with a margin :data:`SEED_MARGIN`). Each round is a sweep of its own
(``<out>/refine-<round>``: the store holds one sweep) over the new seeds only; alpha* is estimated from every
round run on the current window.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.compare.optimum import Optimum, locate_optimum
from fls.compare.selection import SeedGrid, network_runs, seed_grid, select_cell
from fls.compare.sweep import run_sweep
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext, ClaimResult
from fls.compare.vocabulary import ALPHA_KEY, INIT_KEY

#: The refinement stops once the 95 % bootstrap interval of alpha* spans less than this factor (hi / lo)...
TARGET_SPAN = 1.25
#: ... and at most this fraction of the resamples has no interior vertex (they are left out of the interval).
MAX_LOST = 0.05

#: Budget of the refinement: runs over all rounds, and rounds.
MAX_RUNS = 1152
MAX_ROUNDS = 5

#: Alphas per window, log-spaced (ends included), and the factor the window spans on each side of its centre.
WINDOW_POINTS = 9
WINDOW_FACTOR = 3.0

#: Seeds a round adds: the count the 1 / sqrt(seeds) rate predicts for the target, times this margin.
SEED_MARGIN = 1.3

#: Where ``fls verify`` keeps the refinement beside its report, so that a later ``fls report`` into the same
#: directory gives claim (a) the same resolved value (:func:`load_refinement`).
REFINEMENT_FILE = "refinement.json"


@dataclass(frozen=True)
class Round:
    """One refinement round: its window of alphas, every seed run on that window so far, the runs this round
    added and the optimum of all the window's runs."""

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
            f"Target: the 95% bootstrap interval of alpha* spans less than a factor {TARGET_SPAN:g} "
            f"(at most {MAX_LOST:.0%} of resamples without an interior vertex); budget {MAX_RUNS} runs in "
            f"{MAX_ROUNDS} rounds. alpha* is the vertex of the least-squares parabola in log alpha through "
            f"{WINDOW_POINTS} alphas spanning a factor {WINDOW_FACTOR:g} on each side of the grid's alpha*; "
            f"rounds add seeds (the same seeds at every alpha). Outcome: **{self.status}** ({self.reason}; "
            f"{self.runs} runs)."
        )
        lines.append("")
        if self.grid_optimum is not None:
            lines.append(f"- grid: {self.grid_optimum.describe()}")
        for number, step in enumerate(self.rounds, 1):
            lines.append(
                f"- round {number}: alpha in [{step.alphas[0]:.4g}, {step.alphas[-1]:.4g}], "
                f"{len(step.seeds)} seeds ({step.runs} new runs): {step.optimum.describe()}"
            )
        return [*lines, ""]

    def resolve_claim(self, result: ClaimResult) -> ClaimResult:
        """Claim (a)'s ``result`` with the refined optimum as its value, interval and figure band (FLS), when
        a round found an interior one; any other result unchanged. The verdict stays the grid's."""
        found = self.optimum
        if result.key != "a" or not self.rounds or not np.isfinite(found.alpha):
            return result
        low, high = found.fls_interval
        evidence = {
            **result.evidence,
            "resolved alpha* after the grid (the value above)": f"{found.describe()} ({self.status})",
        }
        return replace(
            result,
            value=float(found.fls),
            interval=(float(low), float(high)),
            evidence=evidence,
            data={**result.data, "argmin_band": [float(low), float(high)]},
        )


def _optimum(fields: Mapping[str, Any]) -> Optimum:
    return Optimum(
        float(fields["alpha"]), tuple(fields["alpha_interval"]), float(fields["c"]), fields["lost"]
    )


def save_refinement(refinement: Refinement, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``refinement`` to ``out_dir``/:data:`REFINEMENT_FILE` (JSON) and return the path."""
    path = Path(out_dir) / REFINEMENT_FILE
    path.write_text(json.dumps(asdict(refinement), indent=1))
    return path


def load_refinement(out_dir: str | os.PathLike[str], table: pd.DataFrame) -> Refinement | None:
    """The refinement stored in ``out_dir`` when it was made from the grid of ``table`` (its grid optimum is
    the one :func:`grid_optimum` finds in ``table`` now), else None."""
    path = Path(out_dir) / REFINEMENT_FILE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    start = None if stored["grid_optimum"] is None else _optimum(stored["grid_optimum"])
    if start != grid_optimum(table):
        return None
    rounds = [
        Round(tuple(r["alphas"]), tuple(r["seeds"]), int(r["runs"]), _optimum(r["optimum"]))
        for r in stored["rounds"]
    ]
    return Refinement(start, stored["status"], stored["reason"], rounds)


def grid_optimum(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> Optimum | None:
    """alpha* of claim (a)'s cell of the run table (:func:`compare.optimum.locate_optimum`); None without
    runs of a network engine."""
    cell, init, _ = select_cell(table)
    return None if init is None else locate_optimum(seed_grid(cell, "test_error"), context)


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


def _window(centre: float) -> np.ndarray:
    """:data:`WINDOW_POINTS` alphas log-spaced from centre / WINDOW_FACTOR to centre * WINDOW_FACTOR."""
    return np.geomspace(centre / WINDOW_FACTOR, centre * WINDOW_FACTOR, WINDOW_POINTS)


def _moved_centre(alphas: np.ndarray, found: Optimum, window: SeedGrid) -> float | None:
    """The next window's centre when the vertex left the middle half of the window ``alphas`` (in log alpha):
    the vertex itself, or, without an interior vertex, the end of lower mean error in ``window`` (the
    window's runs); None when the window stays."""
    log_low, log_high = np.log(alphas[0]), np.log(alphas[-1])
    quarter = (log_high - log_low) / 4
    if np.isfinite(found.alpha):
        if log_low + quarter <= np.log(found.alpha) <= log_high - quarter:
            return None
        return float(found.alpha)
    means = np.nan_to_num(window.mean(), nan=np.inf)
    low, high = int(np.argmin(window.alpha)), int(np.argmax(window.alpha))
    return float(alphas[0] if means[low] < means[high] else alphas[-1])


def seeds_needed(seeds: int, span: float) -> int:
    """Seeds the interval's 1 / sqrt(seeds) rate predicts for a span below TARGET_SPAN from ``span`` at
    ``seeds``, times SEED_MARGIN (at least one more seed):
    seeds * SEED_MARGIN * (log span / log TARGET_SPAN)^2; twice ``seeds`` for a NaN span (no interval)."""
    if not np.isfinite(span):
        return 2 * seeds
    ratio = math.log(span) / math.log(TARGET_SPAN)
    return max(seeds + 1, math.ceil(SEED_MARGIN * seeds * ratio**2))


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
    ``out_dir`` until its interval spans less than :data:`TARGET_SPAN` or the budget is spent (module
    docstring)."""
    cell, init, chosen = select_cell(table)
    if init is None:
        return Refinement(None, "not refined", "the table has no runs of a network engine")
    grid = seed_grid(cell, "test_error")
    start = locate_optimum(grid, context)
    means = grid.mean()
    if not np.any(np.isfinite(means)):
        return Refinement(start, "not refined", "no run of the cell reached its target")
    k = int(np.nanargmin(means))
    if k in (0, len(means) - 1):
        return Refinement(start, "not refined", "the grid's minimum is at an end of the grid")
    alphas = _window(float(start.alpha) if np.isfinite(start.alpha) else float(grid.alpha[k]))
    seeds = [int(s) for s in grid.seeds]
    fixed = {INIT_KEY: init, **chosen}
    refinement = Refinement(start, "budget spent", "")
    window_runs: list[pd.DataFrame] = []
    while len(refinement.rounds) < max_rounds:
        done = {int(s) for runs in window_runs for s in runs["seed"]}
        new = [s for s in seeds if s not in done]
        affordable = (max_runs - refinement.runs) // WINDOW_POINTS
        if affordable < 1 or (not done and affordable < len(new)):
            refinement.reason = f"the next round would exceed {max_runs} runs"
            return refinement
        new = new[:affordable]
        number = len(refinement.rounds) + 1
        runs = run_sweep(
            _round_config(config, fixed, alphas, new, number),
            Path(out_dir) / f"refine-{number}",
            workers=workers,
            progress=False,
        )
        window_runs.append(network_runs(runs))
        pooled = pd.concat(window_runs, ignore_index=True)
        found_grid = seed_grid(pooled[pooled[INIT_KEY] == init], "test_error")
        found = locate_optimum(found_grid, context, window=True)
        ran = sorted(done | set(new))
        refinement.rounds.append(Round(tuple(alphas), tuple(ran), len(runs), found))
        if found.span < TARGET_SPAN and found.lost <= MAX_LOST:
            refinement.status, refinement.reason = "resolved", f"the interval spans a factor {found.span:.3g}"
            return refinement
        centre = _moved_centre(alphas, found, found_grid)
        if centre is not None:
            alphas, window_runs, seeds = _window(centre), [], ran
        else:
            span = found.span if found.lost <= MAX_LOST else float("nan")  # too many lost: double the seeds
            extra = seeds_needed(len(ran), span) - len(ran)
            seeds = ran + [max(ran) + 1 + i for i in range(extra)]
    refinement.reason = (
        f"{max_rounds} rounds run; the last interval spans a factor {refinement.optimum.span:.3g}"
    )
    return refinement
