"""Which runs a claim or a figure reads (docs/design.md section 5, "The layers").

Runs of the network engines; the headline init is ``random_sign`` when the table has it (the paper's); when
the table varies a second axis, claims read its middle value (:func:`base_cell`). A cell's values over (seed,
FLS) form a :class:`SeedGrid`, the matrix the bootstrap of :mod:`compare.statistics` resamples by rows; runs
that did not reach their target count as missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fls.compare.vocabulary import ALPHA_KEY, ENGINE_KEY, ENSEMBLE_KEYS, INIT_KEY, NETWORK_ENGINES

#: Fewest seeds and grid points a claim decides on, and the largest share of runs without a result it accepts.
MIN_SEEDS, MIN_POINTS, MAX_MISSING = 4, 3, 0.25


def network_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs of the network engines (all statuses)."""
    if ENGINE_KEY not in table:
        return table
    return table[table[ENGINE_KEY].isin(NETWORK_ENGINES)]


def headline_init(table: pd.DataFrame) -> str | None:
    """``random_sign`` when the table has it, else its first init (None for an empty table)."""
    inits = list(dict.fromkeys(table[INIT_KEY])) if INIT_KEY in table and len(table) else []
    return "random_sign" if "random_sign" in inits else (inits[0] if inits else None)


def second_axes(table: pd.DataFrame) -> list[str]:
    """Run keys (dotted) other than the init and the member keys that take more than one value in the
    table."""
    keys = [k for k in table.columns if "." in k and k not in ENSEMBLE_KEYS and k != INIT_KEY]
    return [k for k in keys if table[k].nunique(dropna=False) > 1]


def base_cell(table: pd.DataFrame, init: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The runs of ``init`` at the middle value of every second axis (the lower middle for an even count), and
    the values chosen."""
    rows = table[table[INIT_KEY] == init]
    chosen = {}
    for key in second_axes(rows):
        values = sorted(rows[key].unique())
        chosen[key] = values[(len(values) - 1) // 2]
        rows = rows[rows[key] == chosen[key]]
    return rows, chosen


@dataclass(frozen=True)
class SeedGrid:
    """One column of a cell as a (seeds x grid points) matrix, grid points by increasing FLS; NaN where a run
    has no result."""

    fls: np.ndarray
    alpha: np.ndarray
    seeds: np.ndarray
    values: np.ndarray

    @property
    def missing(self) -> float:
        return float(np.mean(~np.isfinite(self.values))) if self.values.size else 1.0

    def mean(self) -> np.ndarray:
        """Mean over seeds at each grid point (NaN where no seed has a result)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.where(np.isfinite(self.values), self.values, np.nan), axis=0)


def seed_grid(cell: pd.DataFrame, column: str) -> SeedGrid:
    """``column`` of a cell's runs over (seed, FLS); runs that did not reach their target count as missing."""
    ok = cell["status"] == "target_reached"
    values = cell[column].where(ok) if column in cell else pd.Series(np.nan, index=cell.index)
    frame = pd.DataFrame(
        {
            "seed": cell["seed"],
            "fls": cell["fls"].astype(float),
            "alpha": cell[ALPHA_KEY].astype(float),
            "value": values.astype(float),
        }
    )
    matrix = frame.groupby(["seed", "fls"])["value"].mean().unstack("fls").sort_index(axis=1)
    fls = np.asarray(matrix.columns, dtype=float)
    alpha = frame.groupby("fls")["alpha"].first().reindex(fls).to_numpy(dtype=float)
    return SeedGrid(fls, alpha, np.asarray(matrix.index), matrix.to_numpy(dtype=float))


def undecidable(grid: SeedGrid) -> str | None:
    """Why a cell cannot decide a claim, or None when it can."""
    if len(grid.seeds) < MIN_SEEDS:
        return f"only {len(grid.seeds)} seed(s); at least {MIN_SEEDS} are needed"
    if len(grid.fls) < MIN_POINTS:
        return f"only {len(grid.fls)} grid point(s); at least {MIN_POINTS} are needed"
    if grid.missing > MAX_MISSING:
        return f"{grid.missing:.0%} of the runs have no result (more than {MAX_MISSING:.0%})"
    return None


def select_cell(table: pd.DataFrame) -> tuple[pd.DataFrame, str | None, dict[str, Any]]:
    """The base cell of the headline init (:func:`base_cell`), the init and the second-axis values chosen."""
    runs = network_runs(table)
    init = headline_init(runs)
    if init is None:
        return runs, None, {}
    cell, chosen = base_cell(runs, init)
    return cell, init, chosen


def describe_cell(init: str | None, chosen: dict[str, Any]) -> str:
    """'init=..., key=value, ...': where a claim looked."""
    parts = [f"init={init}"] + [f"{k}={v}" for k, v in chosen.items()]
    return ", ".join(parts)


def restrict(table: pd.DataFrame, chosen: Mapping[str, Any] | None) -> pd.DataFrame:
    """The rows of ``table`` with every key of ``chosen`` at its chosen value."""
    for key, value in (chosen or {}).items():
        table = table[table[key] == value]
    return table
