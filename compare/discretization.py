"""The discretization gap between discrete runs and exact-flow runs of the same data, initialization and stop
rule, and what it does to the claims (docs/design.md section 5, "Certification by the exact flow").

Deciding only: :mod:`compare.certify` runs the pairs, :mod:`compare.certify_plots` draws them. For each pair
(a discrete run and its flow twin, which differ only in ``train.engine``):

    test-error gap     |E_flow - E_discrete|
    stop-time gap      |tau_flow - tau_discrete| / tau_flow
    parameter distance ||theta_discrete(tau) - theta_flow(tau)|| / ||theta_flow(tau)||   (each at its own stop)

and for each claim the statistic and verdict on the main run table against the same claim on that table with
the certified discrete rows' measured columns replaced by their flow twins' (:func:`substitute`). A claim's
tolerance is its own resolution: half the width of its 95 % interval on the discrete table (the seed
bootstrap's spread of the statistic); a statistic whose change stays within it is not moved by the
discretization beyond what the claim can resolve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fls.compare.verdict import ClaimResult
from fls.compare.vocabulary import ALPHA_KEY, INIT_KEY

#: Columns of a run row that say which run it is or how its batch ran, never what the run measured.
BOOKKEEPING = ("seed", "fls", "run_id", "batch_id", "batch_runs", "batch_seconds", "batch_cpu_seconds")

#: The column each pair's flow run records the run id of its discrete twin in.
TWIN = "twin_run_id"


@dataclass(frozen=True)
class Pair:
    """One certified run: its discrete and flow rows' numbers (NaN where a run has no result)."""

    run_id: str
    init: str
    alpha: float
    fls: float
    seed: int
    status: str
    message: str
    discrete_error: float
    flow_error: float
    discrete_stop: float
    flow_stop: float
    parameter_distance: float

    @property
    def error_gap(self) -> float:
        """|E_flow - E_discrete|."""
        return abs(self.flow_error - self.discrete_error)

    @property
    def stop_gap(self) -> float:
        """|tau_flow - tau_discrete| / tau_flow."""
        return abs(self.flow_stop - self.discrete_stop) / self.flow_stop


def relative_distance(discrete: np.ndarray, flow: np.ndarray) -> float:
    """||discrete - flow|| / ||flow|| (NaN when either is missing or their shapes differ)."""
    discrete, flow = np.asarray(discrete, dtype=float), np.asarray(flow, dtype=float)
    if discrete.size == 0 or discrete.shape != flow.shape:
        return float("nan")
    return float(np.linalg.norm(discrete - flow) / np.linalg.norm(flow))


def pair_rows(
    discrete: pd.DataFrame,
    flow: pd.DataFrame,
    parameters: Mapping[str, np.ndarray],
    *,
    column: str = "test_error",
) -> list[Pair]:
    """The pairs of ``flow`` rows (each naming its discrete twin's run id in :data:`TWIN`) with the rows of
    ``discrete`` (indexed by run_id); ``parameters`` maps a run id to its final parameters."""
    by_id = discrete.set_index("run_id")
    pairs = []
    for _, row in flow.iterrows():
        twin = by_id.loc[row[TWIN]]
        reached = row["status"] == "target_reached" and twin["status"] == "target_reached"
        missing = float("nan")
        pairs.append(
            Pair(
                run_id=row[TWIN],
                init=str(row[INIT_KEY]),
                alpha=float(row[ALPHA_KEY]),
                fls=float(row["fls"]),
                seed=int(row["seed"]),
                status=str(row["status"]),
                message=str(row.get("message", "")),
                discrete_error=float(twin[column]) if reached else missing,
                flow_error=float(row[column]) if reached else missing,
                discrete_stop=float(twin["t_stop"]) if reached else missing,
                flow_stop=float(row["t_stop"]) if reached else missing,
                parameter_distance=(
                    relative_distance(parameters.get(row[TWIN], []), parameters.get(row["run_id"], []))
                    if reached
                    else missing
                ),
            )
        )
    return pairs


def _largest(values: Sequence[float]) -> float:
    """The largest of ``values``, NaN for none."""
    return float(max(values)) if values else float("nan")


@dataclass(frozen=True)
class Gap:
    """The largest gaps over a set of pairs (NaN-free maxima; NaN when no pair has both results)."""

    pairs: int
    compared: int
    error: float
    stop_time: float
    parameters: float

    @classmethod
    def of(cls, pairs: Sequence[Pair]) -> Gap:
        both = [p for p in pairs if np.isfinite(p.error_gap)]
        return cls(
            len(pairs),
            len(both),
            _largest([p.error_gap for p in both]),
            _largest([p.stop_gap for p in both]),
            _largest([p.parameter_distance for p in both if np.isfinite(p.parameter_distance)]),
        )

    def describe(self) -> str:
        return (
            f"max |test error difference| {self.error:.4g}, max relative stop-time difference "
            f"{self.stop_time:.3g}, max relative parameter distance at the stop {self.parameters:.3g} "
            f"({self.compared} of {self.pairs} pairs with both results)"
        )


def measured_columns(flow: pd.DataFrame) -> list[str]:
    """What a run measured: every column of ``flow`` that is neither a config key (dotted) nor bookkeeping."""
    return [c for c in flow.columns if "." not in c and c not in BOOKKEEPING and c != TWIN]


def substitute(table: pd.DataFrame, flow: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the measured columns (:func:`measured_columns`) of each row whose run id a ``flow`` row
    names in :data:`TWIN` replaced by that flow row's values; config keys and run ids stay, so the row stays
    in its cell and a claim reads the flow's result where it read the discrete one."""
    out = table.copy()
    columns = [c for c in measured_columns(flow) if c in out.columns]
    position = pd.Series(np.arange(len(out)), index=out["run_id"].to_numpy())
    for _, row in flow.iterrows():
        if row[TWIN] not in position.index:
            raise KeyError(f"{TWIN} = {row[TWIN]!r} names no run of the table")
        at = out.index[position[row[TWIN]]]
        for column in columns:
            out.at[at, column] = row[column]
    return out


@dataclass(frozen=True)
class ClaimShift:
    """One claim on the discrete table and on the flow-substituted one."""

    key: str
    title: str
    discrete: ClaimResult
    flow: ClaimResult

    @property
    def change(self) -> float:
        """|statistic(flow-substituted) - statistic(discrete)|."""
        return abs(self.flow.value - self.discrete.value)

    @property
    def tolerance(self) -> float:
        """Half the width of the discrete statistic's 95 % interval (NaN when it has none)."""
        low, high = self.discrete.interval
        return (high - low) / 2 if np.isfinite(low) and np.isfinite(high) else float("nan")

    @property
    def within(self) -> bool | None:
        """Whether the change is at most the tolerance (None when either is undefined: a claim without a finite
        statistic or interval has no resolution to compare with)."""
        if not (np.isfinite(self.change) and np.isfinite(self.tolerance)):
            return None
        return bool(self.change <= self.tolerance)

    @property
    def agrees(self) -> bool:
        return self.discrete.verdict == self.flow.verdict


def claim_shifts(discrete: Sequence[ClaimResult], flow: Sequence[ClaimResult]) -> list[ClaimShift]:
    """The claims of both lists side by side, matched by key (both lists come from one family list)."""
    by_key = {result.key: result for result in flow}
    return [ClaimShift(r.key, r.title, r, by_key[r.key]) for r in discrete if r.key in by_key]
