"""The ``quality`` family: feature-learning strength against feature quality (docs/design.md section 5, "The
layers"; the family: docs/quality.md).

The claim (from "Feature learning is decoupled from generalization in high capacity neural networks", 2025):
the common measures of feature-learning *strength* (how far training moved the weights, the tangent kernel,
its alignment with the target, the hidden representation) do not track feature *quality* (how much the learned
features improve generalization over a kernel method), while networks beat kernel methods on staircase
functions by large factors. Definitions of the measures: :mod:`compare.quality_metrics`.

The claim check (:func:`strength_quality_claim`) correlates each strength measure with the quality across all
runs (every FLS and data size) by Spearman's rho, with a bootstrap interval, and applies the rule of
:data:`RULE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from fls.compare.quality_metrics import QUALITY_MEASURES, STRENGTH_MEASURES, quality_gains
from fls.compare.statistics import LEVEL, interval, resample_indices, spearman_rows
from fls.compare.verdict import Claim, ClaimContext, ClaimResult
from fls.compare.vocabulary import N_KEY

#: The family's name in the registry (compare.registry) and in a config's ``claims.families``.
FAMILY = "quality"

#: The claim's rule (module docstring and docs/quality.md, "The rule"): a measure tracks the quality when the
#: interval of rho lies beyond +-TRACKING_RHO (a strong rank association), and is decoupled only when the
#: interval lies inside (-DECOUPLED_RHO, +DECOUPLED_RHO), i.e. it excludes every association of at least
#: DECOUPLED_RHO (|rho| = 0.3 is the conventional lower edge of a moderate correlation, and explains under a
#: tenth of the rank variance); an interval that merely contains 0 decides nothing.
TRACKING_RHO = 0.5
DECOUPLED_RHO = 0.3


MIN_RUNS, MIN_SIZES = 12, 2


RULE = (
    f"Per strength measure s: rho = Spearman(s, quality) over all finished runs, 95 % interval from a bootstrap "
    f"over runs stratified by n; rho_n the same within each data size n. s TRACKS quality if the interval of "
    f"rho lies beyond +{TRACKING_RHO} or beyond -{TRACKING_RHO} and no two data sizes have intervals of rho_n "
    f"that exclude 0 on opposite sides (a sign change); s is DECOUPLED from quality only if the interval of rho "
    f"lies inside (-{DECOUPLED_RHO}, +{DECOUPLED_RHO}), so that it excludes any association of at least "
    f"{DECOUPLED_RHO}; otherwise (an interval too wide for either, or a sign change) it is undecided. The claim "
    f"passes when every measure is decoupled, fails when some measure tracks, and is inconclusive otherwise or "
    f"with fewer than {MIN_RUNS} runs or {MIN_SIZES} data sizes."
)


def with_gains(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the quality gains of :func:`compare.quality_metrics.quality_gains` as columns."""
    errors = {
        name: table.get(f"err_{name}", pd.Series(np.nan, index=table.index))
        for name in ("network", "tangent", "tangent_after", "conjugate", "conjugate_after")
    }
    gains = [
        quality_gains({name: float(column.iloc[i]) for name, column in errors.items()})
        for i in range(len(table))
    ]
    return table.assign(**{name: [g[name] for g in gains] for name in QUALITY_MEASURES})


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of one strength measure with the quality: over all runs and within each data size."""

    measure: str
    rho: float
    interval: tuple[float, float]
    by_size: dict[int, tuple[float, tuple[float, float]]]
    state: str

    def describe(self) -> str:
        sizes = "; ".join(
            f"n={n}: {r:+.2f} [{lo:+.2f}, {hi:+.2f}]" for n, (r, (lo, hi)) in self.by_size.items()
        )
        lo, hi = self.interval
        return f"{self.rho:+.2f} [{lo:+.2f}, {hi:+.2f}]; {sizes} -> {self.state}"


def tracking_state(interval: tuple[float, float], by_size: Sequence[tuple[float, float]]) -> str:
    """``decoupled``, ``tracks`` or ``undecided`` by the rule of :data:`RULE` (intervals of rho and of each
    rho_n)."""
    lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    if -DECOUPLED_RHO < lo and hi < DECOUPLED_RHO:
        return "decoupled"
    sign_change = any(low > 0 for low, _ in by_size) and any(high < 0 for _, high in by_size)
    if (lo > TRACKING_RHO or hi < -TRACKING_RHO) and not sign_change:
        return "tracks"
    return "undecided"


def correlations(runs: pd.DataFrame, quality: str, context: ClaimContext) -> list[Correlation]:
    """Spearman's rho of every strength measure with ``quality`` over ``runs`` (finite values), with intervals
    from :data:`compare.statistics.N_BOOT` resamples of the runs within each data size (seeded by
    context.seed)."""
    sizes = sorted(int(n) for n in runs[N_KEY].unique())
    strata = [np.flatnonzero(runs[N_KEY].to_numpy() == n) for n in sizes]
    draws = [
        rows[resample_indices(len(rows), n_boot=context.n_boot, seed=context.seed + j)]
        for j, rows in enumerate(strata)
    ]
    pooled = np.concatenate(draws, axis=1)
    q = runs[quality].to_numpy(dtype=float)
    out = []
    for measure in STRENGTH_MEASURES:
        s = runs[measure].to_numpy(dtype=float)
        rho = float(spearman_rows(s, q))
        bounds = interval(spearman_rows(s[pooled], q[pooled]), LEVEL)
        by_size = {
            n: (float(spearman_rows(s[rows], q[rows])), interval(spearman_rows(s[draw], q[draw])))
            for n, rows, draw in zip(sizes, strata, draws, strict=True)
        }
        state = tracking_state(bounds, [size_bounds for _, size_bounds in by_size.values()])
        out.append(Correlation(measure, rho, bounds, by_size, state))
    return out


def finished_runs(table: pd.DataFrame, quality: str = "gain_tangent") -> pd.DataFrame:
    """Runs that reached their target, with the gains, and finite strength measures and ``quality``."""
    runs = with_gains(table[table["status"] == "target_reached"])
    columns = [*STRENGTH_MEASURES, quality]
    if any(column not in runs for column in columns):  # no run was measured
        return runs.iloc[0:0]
    return runs[np.isfinite(runs[columns].to_numpy(dtype=float)).all(axis=1)]


def strength_quality_claim(
    table: pd.DataFrame, context: ClaimContext | None = None, *, quality: str = "gain_tangent"
) -> ClaimResult:
    """(q) Feature-learning strength does not track feature quality, by the rule of :data:`RULE`.

    ``quality`` is a column of :data:`compare.quality_metrics.QUALITY_MEASURES` (default: the gain of the
    tangent after-kernel over the tangent kernel at init). The statistic is the rho of the measure with the
    largest |rho|; the evidence lists every measure's rho, its interval, its rho_n per data size and its
    state, and the same correlations with the network's own gain; ``data`` holds the correlations the figure
    draws.
    """
    context = ClaimContext() if context is None else context
    title = "feature-learning strength does not track feature quality"
    statistic = f"Spearman rho(strength, {quality}), the measure with the largest |rho|"
    runs = finished_runs(table, quality)
    sizes = runs[N_KEY].nunique() if len(runs) else 0
    if len(runs) < MIN_RUNS or sizes < MIN_SIZES:
        return ClaimResult(
            "q",
            title,
            "inconclusive",
            f"{len(runs)} finished runs over {sizes} data sizes; "
            f"at least {MIN_RUNS} and {MIN_SIZES} are needed",
            statistic,
            float("nan"),
            (float("nan"), float("nan")),
            {"rule": RULE},
        )
    found = correlations(runs, quality, context)
    states = [c.state for c in found]
    if all(s == "decoupled" for s in states):
        verdict, reason = "pass", "every strength measure is decoupled from the quality"
    elif "tracks" in states:
        verdict = "fail"
        reason = "tracks quality: " + ", ".join(c.measure for c in found if c.state == "tracks")
    else:
        verdict = "inconclusive"
        reason = "undecided: " + ", ".join(c.measure for c in found if c.state == "undecided")
    strongest = max(found, key=lambda c: abs(c.rho) if np.isfinite(c.rho) else -1.0)
    evidence: dict[str, Any] = {
        "rule": RULE,
        "quality": quality,
        "runs": len(runs),
        "data sizes": sorted(int(n) for n in runs[N_KEY].unique()),
    }
    evidence.update({f"rho({c.measure})": c.describe() for c in found})
    if quality != "gain_network":
        network = finished_runs(table, "gain_network")
        if len(network) >= MIN_RUNS:
            evidence.update(
                {
                    f"rho({c.measure}, gain_network)": c.describe()
                    for c in correlations(network, "gain_network", context)
                }
            )
    data = {"quality": quality, "correlations": [asdict(c) for c in found]}
    return ClaimResult(
        "q", title, verdict, reason, statistic, strongest.rho, strongest.interval, evidence, data=data
    )


#: The claims of the ``quality`` family.
CLAIMS: dict[str, Claim] = {"q": strength_quality_claim}
