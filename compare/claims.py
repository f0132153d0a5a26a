"""The claims of docs/design.md section 2, each a function of a run table that returns a verdict with its evidence.

A claim returns :class:`ClaimResult`: ``pass``, ``fail`` or ``inconclusive`` (with the reason), the statistic it
decides on, a 95 % bootstrap interval for it, the numbers behind the verdict and, when asked, a figure.
Uncertainty comes from the seeds: each seed draws its own training set, test set and initialization, so the seeds
are the independent replicates, and the bootstrap resamples them (:data:`N_BOOT` resamples from
``np.random.default_rng(seed)``; a run table gives the same verdicts every time). Within one cell (runs that share
everything but alpha, c and the seed) the resampled seeds are the same at every alpha (a paired bootstrap), since
one seed is one data set across the grid.

Which runs a claim reads: runs of the discrete or flow engines that reached their target (status
``target_reached``); the headline init is ``random_sign`` when the table has it (the paper's); when the table
varies a second axis, claims (a)-(d) read its middle value (:func:`base_cell`) and (e) reads all of them.

Claims (:data:`CLAIMS`):

- (a) an interior optimal FLS: the FLS of least mean test error is inside the grid, its bootstrap interval
  excludes both ends, and both ends err more than the minimum on held-out seeds (:func:`held_out_depths`: the
  bootstrap interval of an argmin alone passes pure noise about one time in five);
- (b) over-alignment at large FLS: at the largest FLS, Psi >= :data:`ALIGNED_PSI` and the cosine of w_hat+ with
  the Bayes direction equals that of the class sum x+ within :data:`COS_TOLERANCE`; OA falls with alpha (OA at the
  largest FLS exceeds OA at the smallest);
- (c) over-fitting at small FLS: OF at the smallest FLS exceeds OF at the largest; for the antisymmetric init
  (f0 = 0) the evidence says whether the large-alpha arm of the test error survives (error at the smallest FLS
  above the minimum by more than :data:`ARM_TOLERANCE`);
- (d) the reduced models match the full runs in their limits: at the largest FLS the reduced model of the
  directional flow, at the smallest FLS the lazy kernel flow (each within max(:data:`ERROR_TOLERANCE`, E / sqrt m)
  in mean test error, E the predicted error, m the width), and the escape time grows like log(1/alpha) / lambda+
  (slope ratio within 1 +- :data:`ESCAPE_TOLERANCE`);
- (e) the optimal alpha's scaling, alpha* ~ n^a m^b, fitted exponents next to the literature's a = -1, b = -1/2:
  pass when the literature value lies in the bootstrap interval of the fitted exponent.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.compare.sweep import ENSEMBLE_KEYS
from fls.theory.validation import check_choice, check_int

#: Verdicts a claim can return.
VERDICTS = ("pass", "fail", "inconclusive")

#: Bootstrap resamples and the level of the reported intervals.
N_BOOT = 2000
LEVEL = 0.95

#: Thresholds of the claims (module docstring).
ALIGNED_PSI = 0.9
COS_TOLERANCE = 0.05
ARM_TOLERANCE = 0.01
ERROR_TOLERANCE = 0.015
ESCAPE_TOLERANCE = 0.2

#: Fewest seeds and grid points a claim decides on, and the largest share of runs without a result it accepts.
MIN_SEEDS, MIN_POINTS, MAX_MISSING = 4, 3, 0.25

#: Literature exponents of alpha* ~ n^a m^b (docs/design.md section 2), by grid key.
LITERATURE_EXPONENTS = {"data.n": -1.0, "model.width": -0.5}

#: Engines whose runs are networks (the kernel engine is a prediction, not a run of the network).
NETWORK_ENGINES = ("gd", "sgd", "flow")


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim.

    Attributes:
        key: short name ("a", "b", ...); title: the claim in words.
        verdict: one of :data:`VERDICTS`; reason: why, in one sentence.
        statistic: what ``value`` is; value: its estimate; interval: its 95 % bootstrap interval.
        evidence: the numbers behind the verdict, as name -> value.
        figure: the figure's path (PNG), or None.
    """

    key: str
    title: str
    verdict: str
    reason: str
    statistic: str
    value: float
    interval: tuple[float, float]
    evidence: dict[str, Any] = field(default_factory=dict)
    figure: Path | None = None

    def __post_init__(self) -> None:
        check_choice("verdict", self.verdict, VERDICTS)


# ---------------------------------------------------------------------------------------------------------------
# Selecting runs and resampling seeds
# ---------------------------------------------------------------------------------------------------------------


def network_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs of the network engines (all statuses)."""
    if "train.engine" not in table:
        return table
    return table[table["train.engine"].isin(NETWORK_ENGINES)]


def headline_init(table: pd.DataFrame) -> str | None:
    """``random_sign`` when the table has it, else its first init (None for an empty table)."""
    inits = list(dict.fromkeys(table["model.init"])) if "model.init" in table and len(table) else []
    return "random_sign" if "random_sign" in inits else (inits[0] if inits else None)


def second_axes(table: pd.DataFrame) -> list[str]:
    """Run keys (dotted) other than the init and the member keys that take more than one value in the table."""
    keys = [k for k in table.columns if "." in k and k not in ENSEMBLE_KEYS and k != "model.init"]
    return [k for k in keys if table[k].nunique(dropna=False) > 1]


def base_cell(table: pd.DataFrame, init: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The runs of ``init`` at the middle value of every second axis (the lower middle for an even count), and
    the values chosen."""
    rows = table[table["model.init"] == init]
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
            "alpha": cell["model.alpha"].astype(float),
            "value": values.astype(float),
        }
    )
    matrix = frame.groupby(["seed", "fls"])["value"].mean().unstack("fls").sort_index(axis=1)
    fls = np.asarray(matrix.columns, dtype=float)
    alpha = frame.groupby("fls")["alpha"].first().reindex(fls).to_numpy(dtype=float)
    return SeedGrid(fls, alpha, np.asarray(matrix.index), matrix.to_numpy(dtype=float))


def resample_indices(n_seeds: int, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n_seeds) seed indices drawn with replacement from ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, n_seeds, size=(check_int("n_boot", n_boot), n_seeds))


def bootstrap_means(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Means over resampled seeds (axis 0 of ``values``) for each row of ``indices``; NaN entries are skipped
    (a resample with no finite entry gives NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values[indices], axis=1)


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap samples (NaN samples skipped)."""
    finite = np.asarray(samples, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def smooth_argmin(log_x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """The minimizer over log_x of each row of y (or of y itself when 1-D): the vertex of the parabola through
    the grid minimum and its two neighbours (clipped to them; the grid point itself when the three are not
    convex), NaN when the minimum is at an end of the grid or a neighbour is missing."""
    Y = np.atleast_2d(np.asarray(y, dtype=float))
    x = np.asarray(log_x, dtype=float)
    filled = np.where(np.isfinite(Y), Y, np.inf)
    k = np.argmin(filled, axis=1)
    inside = (k > 0) & (k < Y.shape[1] - 1) & np.isfinite(filled.min(axis=1))
    k = np.clip(k, 1, Y.shape[1] - 2)
    rows = np.arange(Y.shape[0])
    x0, x1, x2 = x[k - 1], x[k], x[k + 1]
    y0, y1, y2 = Y[rows, k - 1], Y[rows, k], Y[rows, k + 1]
    with np.errstate(all="ignore"):
        denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denominator
        vertex = np.where(a > 0, np.clip(-b / (2 * a), x0, x2), x1)
    out = np.where(inside & np.isfinite(y0) & np.isfinite(y2), vertex, np.nan)
    return float(out[0]) if np.ndim(y) == 1 else out


def _decidable(grid: SeedGrid) -> str | None:
    """Why a cell cannot decide a claim, or None when it can."""
    if len(grid.seeds) < MIN_SEEDS:
        return f"only {len(grid.seeds)} seed(s); at least {MIN_SEEDS} are needed"
    if len(grid.fls) < MIN_POINTS:
        return f"only {len(grid.fls)} grid point(s); at least {MIN_POINTS} are needed"
    if grid.missing > MAX_MISSING:
        return f"{grid.missing:.0%} of the runs have no result (more than {MAX_MISSING:.0%})"
    return None


def _mean(values: Any) -> float:
    """Mean of the finite entries (NaN when there is none)."""
    finite = np.asarray(values, dtype=float).ravel()
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def _inconclusive(key: str, title: str, statistic: str, reason: str, **evidence: Any) -> ClaimResult:
    nan = float("nan")
    return ClaimResult(key, title, "inconclusive", reason, statistic, nan, (nan, nan), evidence)


@dataclass(frozen=True)
class Subcheck:
    """One test inside a claim: a statistic, its interval, and the verdict of that test alone."""

    name: str
    value: float
    interval: tuple[float, float]
    verdict: str


def _combine(checks: Sequence[Subcheck]) -> tuple[str, str]:
    """pass if every check passes, fail if any fails, else inconclusive; with the reason."""
    failed = [c.name for c in checks if c.verdict == "fail"]
    open_ = [c.name for c in checks if c.verdict == "inconclusive"]
    if failed:
        return "fail", f"failed: {', '.join(failed)}"
    if open_:
        return "inconclusive", f"not decided: {', '.join(open_)}"
    return "pass", "every check passed"


def _within(name: str, value: float, bounds: tuple[float, float], low: float, high: float) -> Subcheck:
    """Pass when the interval lies inside [low, high], fail when it lies outside, else inconclusive."""
    lo, hi = bounds
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Subcheck(name, value, bounds, "inconclusive")
    verdict = "pass" if low <= lo and hi <= high else "fail" if hi < low or lo > high else "inconclusive"
    return Subcheck(name, value, bounds, verdict)


def _evidence(checks: Sequence[Subcheck]) -> dict[str, Any]:
    return {
        c.name: f"{c.value:.4g} [{c.interval[0]:.4g}, {c.interval[1]:.4g}] -> {c.verdict}" for c in checks
    }


# ---------------------------------------------------------------------------------------------------------------
# The claims
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimContext:
    """Settings shared by the claims: bootstrap size and seed, and where figures go (None: no figures)."""

    n_boot: int = N_BOOT
    seed: int = 0
    figure_dir: Path | None = None

    def figure(self, name: str) -> Path | None:
        if self.figure_dir is None:
            return None
        self.figure_dir.mkdir(parents=True, exist_ok=True)
        return self.figure_dir / name


#: The default settings (2000 resamples, seed 0, no figures).
DEFAULT_CONTEXT = ClaimContext()


def _select(table: pd.DataFrame) -> tuple[pd.DataFrame, str | None, dict[str, Any]]:
    runs = network_runs(table)
    init = headline_init(runs)
    if init is None:
        return runs, None, {}
    cell, chosen = base_cell(runs, init)
    return cell, init, chosen


def _where(init: str | None, chosen: dict[str, Any]) -> str:
    parts = [f"init={init}"] + [f"{k}={v}" for k, v in chosen.items()]
    return ", ".join(parts)


def interior_optimum(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(a) The FLS of least mean test error is inside the grid; its bootstrap interval excludes both ends."""
    title = "an interior optimal FLS exists"
    statistic = "argmin FLS of the mean test error"
    cell, init, chosen = _select(table)
    if init is None:
        return _inconclusive("a", title, statistic, "the table has no runs of a network engine")
    grid = seed_grid(cell, "test_error")
    reason = _decidable(grid)
    if reason:
        return _inconclusive("a", title, statistic, reason, cell=_where(init, chosen))
    means = grid.mean()
    k = int(np.nanargmin(means))
    boot = bootstrap_means(
        grid.values, resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    )
    arg = np.array([np.nanargmin(row) if np.any(np.isfinite(row)) else -1 for row in boot])
    lo, hi = (round(q) for q in np.percentile(arg[arg >= 0], [2.5, 97.5]))
    last = len(grid.fls) - 1
    depths = held_out_depths(grid.values, n_boot=context.n_boot, seed=context.seed)
    if k in (0, last):
        verdict, reason = "fail", "the least mean test error is at an end of the FLS grid"
    elif lo > 0 and hi < last and all(low > 0 for _, (low, _) in depths):
        verdict, reason = (
            "pass",
            (
                "the argmin and its bootstrap interval lie strictly inside the grid, and both "
                "ends err more than the minimum on held-out seeds"
            ),
        )
    elif lo > 0 and hi < last:
        verdict, reason = "inconclusive", "held-out seeds do not show both ends above the minimum"
    else:
        verdict, reason = (
            "inconclusive",
            "the argmin is inside the grid but its bootstrap interval reaches an end",
        )
    evidence = {
        "cell": _where(init, chosen),
        "seeds": len(grid.seeds),
        "min mean test error": f"{means[k]:.4f} at FLS {grid.fls[k]:.4g} (alpha {grid.alpha[k]:.3g})",
        "mean test error at the smallest FLS": f"{means[0]:.4f} (FLS {grid.fls[0]:.3g})",
        "mean test error at the largest FLS": f"{means[last]:.4f} (FLS {grid.fls[last]:.3g})",
        "argmin FLS bootstrap interval (grid indices)": f"[{lo}, {hi}] of 0..{last}",
        "held-out error(smallest FLS) - error(argmin)": "{:.4f} [{:.4f}, {:.4f}]".format(
            depths[0][0], *depths[0][1]
        ),
        "held-out error(largest FLS) - error(argmin)": "{:.4f} [{:.4f}, {:.4f}]".format(
            depths[1][0], *depths[1][1]
        ),
    }
    figure = context.figure("claim_a_error_vs_fls.png")
    if figure is not None:
        from fls.compare import plots

        plots.error_vs_fls(
            network_runs(table), figure, chosen=chosen, argmin_band=(grid.fls[lo], grid.fls[hi])
        )
    return ClaimResult(
        "a",
        title,
        verdict,
        reason,
        statistic,
        float(grid.fls[k]),
        (float(grid.fls[lo]), float(grid.fls[hi])),
        evidence,
        figure,
    )


def held_out_depths(values: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0) -> list[tuple[float, tuple]]:
    """How much each end of the grid errs above the minimum, free of selection bias: the seeds are split in two
    halves (even and odd rows); the argmin is chosen on one half and the depth mean(end) - mean(argmin) measured on
    the other, both ways, and averaged. Returns, for the first and the last column, the depth and its bootstrap
    interval (seeds resampled within each half)."""
    halves = (values[0::2], values[1::2])
    rng_seeds = (seed, seed + 1)
    boots = [
        bootstrap_means(half, resample_indices(len(half), n_boot=n_boot, seed=s))
        for half, s in zip(halves, rng_seeds, strict=True)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(half, axis=0) for half in halves]
    picks = [int(np.nanargmin(m)) for m in means]
    out = []
    for end in (0, values.shape[1] - 1):
        point = np.mean([means[1 - h][end] - means[1 - h][picks[h]] for h in (0, 1)])
        draws = np.mean([boots[1 - h][:, end] - boots[1 - h][:, picks[h]] for h in (0, 1)], axis=0)
        out.append((float(point), interval(draws)))
    return out


def _ends_difference(
    grid: SeedGrid, indices: np.ndarray, *, large_minus_small_fls: bool
) -> tuple[float, tuple]:
    """Mean over seeds of value(largest FLS) - value(smallest FLS) (or the reverse), with its bootstrap interval."""
    sign = 1.0 if large_minus_small_fls else -1.0
    diff = sign * (grid.values[:, -1] - grid.values[:, 0])
    boot = bootstrap_means(diff[:, None], indices)[:, 0]
    return _mean(diff), interval(boot)


def over_alignment(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(b) At large FLS Psi -> 1 and cos(w_hat+, s) -> cos(x+, s); OA falls with alpha."""
    title = "over-alignment at large FLS"
    statistic = "mean Psi at the largest FLS"
    cell, init, chosen = _select(table)
    if init is None:
        return _inconclusive("b", title, statistic, "the table has no runs of a network engine")
    grids = {name: seed_grid(cell, name) for name in ("Psi", "cos_bayes", "cos_class_sum_bayes", "oa")}
    reason = _decidable(grids["Psi"])
    if reason:
        return _inconclusive("b", title, statistic, reason, cell=_where(init, chosen))
    indices = resample_indices(len(grids["Psi"].seeds), n_boot=context.n_boot, seed=context.seed)
    psi = grids["Psi"].values[:, -1]
    psi_boot = bootstrap_means(psi[:, None], indices)[:, 0]
    psi_check = _within("Psi at the largest FLS", _mean(psi), interval(psi_boot), ALIGNED_PSI, 1.0)
    gap = grids["cos_bayes"].values[:, -1] - grids["cos_class_sum_bayes"].values[:, -1]
    gap_boot = bootstrap_means(gap[:, None], indices)[:, 0]
    gap_check = _within(
        "cos(w_hat+, s) - cos(x+, s) at the largest FLS",
        _mean(gap),
        interval(gap_boot),
        -COS_TOLERANCE,
        COS_TOLERANCE,
    )
    oa_value, oa_interval = _ends_difference(grids["oa"], indices, large_minus_small_fls=True)
    oa_check = _within("OA(largest FLS) - OA(smallest FLS)", oa_value, oa_interval, 0.0, np.inf)
    if not all(np.isfinite(grids["oa"].mean())):
        oa_check = Subcheck(oa_check.name, oa_value, oa_interval, "inconclusive")
    checks = [psi_check, gap_check, oa_check]
    verdict, reason = _combine(checks)
    evidence = {
        "cell": _where(init, chosen),
        **_evidence(checks),
        "mean OA over FLS (increasing)": ", ".join(f"{x:.3g}" for x in grids["oa"].mean()),
    }
    figure = context.figure("claim_b_alignment.png")
    if figure is not None:
        from fls.compare import plots

        plots.metric_panels(
            cell,
            figure,
            ("Psi", "cos_bayes", "oa"),
            references={"cos_bayes": _mean(grids["cos_class_sum_bayes"].values)},
        )
    return ClaimResult(
        "b", title, verdict, reason, statistic, psi_check.value, psi_check.interval, evidence, figure
    )


def over_fitting(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(c) OF rises with alpha; for the antisymmetric init, whether the large-alpha arm of the error survives."""
    title = "over-fitting at small FLS"
    statistic = "OF(smallest FLS) - OF(largest FLS)"
    cell, init, chosen = _select(table)
    if init is None:
        return _inconclusive("c", title, statistic, "the table has no runs of a network engine")
    grid = seed_grid(cell, "of")
    reason = _decidable(grid)
    if reason:
        return _inconclusive("c", title, statistic, reason, cell=_where(init, chosen))
    indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    value, bounds = _ends_difference(grid, indices, large_minus_small_fls=False)
    check = _within(statistic, value, bounds, 0.0, np.inf)
    evidence: dict[str, Any] = {
        "cell": _where(init, chosen),
        **_evidence([check]),
        "mean OF over FLS (increasing)": ", ".join(f"{x:.3g}" for x in grid.mean()),
    }
    runs = network_runs(table)
    for other in dict.fromkeys(runs["model.init"]):
        arm_cell = runs[runs["model.init"] == other]
        for key, value_ in chosen.items():
            arm_cell = arm_cell[arm_cell[key] == value_]
        arm = _arm(seed_grid(arm_cell, "test_error"), context)
        if arm is not None:
            evidence[f"{other}: error(smallest FLS) - min error"] = arm
    figure = context.figure("claim_c_overfitting.png")
    if figure is not None:
        from fls.compare import plots

        plots.metric_panels(runs, figure, ("of", "f0_contamination", "test_error"), chosen=chosen)
    return ClaimResult(
        "c",
        title,
        check.verdict,
        "OF at the smallest FLS exceeds OF at the largest"
        if check.verdict == "pass"
        else f"{statistic}: interval {bounds}",
        statistic,
        value,
        bounds,
        evidence,
        figure,
    )


def _arm(grid: SeedGrid, context: ClaimContext) -> str | None:
    """'d [lo, hi]: survives / vanishes / undecided' for the large-alpha arm of a cell's test error."""
    if _decidable(grid):
        return None
    boot = bootstrap_means(
        grid.values, resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    )
    height = boot[:, 0] - np.nanmin(boot, axis=1)
    lo, hi = interval(height)
    status = "survives" if lo > ARM_TOLERANCE else "vanishes" if hi < ARM_TOLERANCE else "undecided"
    point = grid.mean()[0] - np.nanmin(grid.mean())
    return f"{point:.4f} [{lo:.4f}, {hi:.4f}]: the arm {status} (threshold {ARM_TOLERANCE})"


def _paired_check(
    grid: SeedGrid, prediction: SeedGrid, column: int, name: str, width: float, indices: np.ndarray
) -> Subcheck:
    """Mean over seeds of (network - prediction) at one grid column, within +-max(ERROR_TOLERANCE, E / sqrt(m))
    with E the mean prediction: a finite network of width m differs from its infinite-width limit by O(1 / sqrt m)
    in relative terms."""
    diff = grid.values[:, column] - prediction.values[:, column]
    if not np.any(np.isfinite(diff)):
        return Subcheck(name, float("nan"), (float("nan"), float("nan")), "inconclusive")
    tolerance = max(ERROR_TOLERANCE, _mean(prediction.values[:, column]) / np.sqrt(width))
    boot = bootstrap_means(diff[:, None], indices)[:, 0]
    return _within(f"{name} (tolerance {tolerance:.3g})", _mean(diff), interval(boot), -tolerance, tolerance)


def escape_slope_ratios(cell: pd.DataFrame) -> np.ndarray:
    """Per seed: the slope of the measured escape time against log(1/alpha), times lambda+, over the alphas with a
    predicted escape time (1 when the escape time grows like log(1/alpha) / lambda+); NaN with < 3 such alphas."""
    ratios = []
    if "pred_escape_time" not in cell:
        return np.array(ratios)
    for _, runs in cell[cell["status"] == "target_reached"].groupby("seed"):
        usable = runs[np.isfinite(runs["pred_escape_time"]) & np.isfinite(runs["escape_time"])]
        if len(usable) < MIN_POINTS:
            ratios.append(np.nan)
            continue
        slope = np.polyfit(np.log(1 / usable["model.alpha"]), usable["escape_time"], 1)[0]
        ratios.append(slope * float(usable["lambda_plus"].iloc[0]))
    return np.array(ratios)


def reduced_models(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(d) The small-alpha and lazy reduced models match the full runs in their limits (needs the prediction
    columns of :func:`compare.predictions.add_predictions`)."""
    title = "the small-alpha and lazy reduced models match the full runs in their limits"
    statistic = "mean test error - small-alpha prediction at the largest FLS"
    if "pred_small_alpha_error" not in table:
        return _inconclusive("d", title, statistic, "the table has no prediction columns (add_predictions)")
    cell, init, chosen = _select(table)
    if init is None:
        return _inconclusive("d", title, statistic, "the table has no runs of a network engine")
    grid = seed_grid(cell, "test_error")
    reason = _decidable(grid)
    if reason:
        return _inconclusive("d", title, statistic, reason, cell=_where(init, chosen))
    indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    width = float(cell["model.width"].iloc[0])
    checks = [_paired_check(grid, seed_grid(cell, "pred_small_alpha_error"), -1, statistic, width, indices)]
    runs = network_runs(table)
    for other in dict.fromkeys(runs["model.init"]):
        lazy_cell = runs[runs["model.init"] == other]
        for key, value in chosen.items():
            lazy_cell = lazy_cell[lazy_cell[key] == value]
        lazy_grid = seed_grid(lazy_cell, "test_error")
        if _decidable(lazy_grid) is None:
            checks.append(
                _paired_check(
                    lazy_grid,
                    seed_grid(lazy_cell, "pred_lazy_error"),
                    0,
                    f"{other}: mean test error - lazy prediction at the smallest FLS",
                    width,
                    resample_indices(len(lazy_grid.seeds), n_boot=context.n_boot, seed=context.seed),
                )
            )
    ratios = escape_slope_ratios(cell)
    if np.any(np.isfinite(ratios)):
        boot = bootstrap_means(
            ratios[:, None], resample_indices(len(ratios), n_boot=context.n_boot, seed=context.seed)
        )[:, 0]
        checks.append(
            _within(
                "escape-time slope x lambda+",
                _mean(ratios),
                interval(boot),
                1 - ESCAPE_TOLERANCE,
                1 + ESCAPE_TOLERANCE,
            )
        )
    verdict, reason = _combine(checks)
    evidence = {
        "cell": _where(init, chosen),
        **_evidence(checks),
        "predicted Psi (extreme vector from x+)": f"{_mean(cell.get('pred_Psi', np.nan)):.4f}",
        "measured Psi at the largest FLS": f"{_mean(seed_grid(cell, 'Psi').values[:, -1]):.4f}",
    }
    figure = context.figure("claim_d_limits.png")
    if figure is not None:
        from fls.compare import plots

        plots.limits_figure(runs, figure, chosen=chosen)
    first = checks[0]
    return ClaimResult("d", title, verdict, reason, statistic, first.value, first.interval, evidence, figure)


def optimal_alpha(grid: SeedGrid, means: np.ndarray | None = None) -> np.ndarray | float:
    """alpha* of a cell: the smooth argmin (:func:`smooth_argmin`) of the mean test error over log alpha; pass
    ``means`` (B, K) (bootstrap means over the grid's FLS order) for B values at once."""
    order = np.argsort(grid.alpha)
    values = grid.mean() if means is None else np.asarray(means)
    return np.exp(smooth_argmin(np.log(grid.alpha[order]), values[..., order]))


def scaling(table: pd.DataFrame, axis: str, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(e) The exponent of alpha* against ``axis`` (data.n or model.width), next to the literature's."""
    axis = check_choice("axis", axis, tuple(LITERATURE_EXPONENTS))
    symbol = {"data.n": "n", "model.width": "m"}[axis]
    literature = LITERATURE_EXPONENTS[axis]
    key = f"e_{symbol}"
    title = f"alpha* ~ {symbol}^({literature:g}) (literature)"
    statistic = f"fitted exponent of alpha* in {symbol}"
    runs = network_runs(table)
    init = headline_init(runs)
    if init is None or axis not in second_axes(runs[runs["model.init"] == init]):
        return _inconclusive(key, title, statistic, f"the sweep does not vary {axis}", literature=literature)
    rows = runs[runs["model.init"] == init]
    others = [k for k in second_axes(rows) if k != axis]
    for other in others:
        rows = rows[rows[other] == sorted(rows[other].unique())[(rows[other].nunique() - 1) // 2]]
    values, stars, samples = [], [], []
    for level, cell in rows.groupby(axis):
        grid = seed_grid(cell, "test_error")
        if _decidable(grid):
            continue
        star = optimal_alpha(grid)
        if not np.isfinite(star):
            continue
        indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed + int(level))
        values.append(float(level))
        stars.append(float(star))
        samples.append(optimal_alpha(grid, bootstrap_means(grid.values, indices)))
    if len(values) < MIN_POINTS:
        return _inconclusive(
            key,
            title,
            statistic,
            f"only {len(values)} value(s) of {axis} have an interior "
            f"optimum; at least {MIN_POINTS} are needed",
            literature=literature,
        )
    log_v = np.log(values)
    exponent = float(np.polyfit(log_v, np.log(stars), 1)[0])
    draws = np.stack(samples, axis=1)
    usable = np.all(np.isfinite(draws) & (draws > 0), axis=1)
    centred = log_v - log_v.mean()
    boot = np.log(draws[usable]) @ centred / (centred @ centred)  # least-squares slopes of every resample
    bounds = interval(boot)
    verdict = "pass" if bounds[0] <= literature <= bounds[1] else "fail"
    reason = (
        f"the literature exponent {literature:g} is {'inside' if verdict == 'pass' else 'outside'} the "
        f"bootstrap interval of the fitted exponent"
    )
    if usable.mean() < 1 - MAX_MISSING:
        verdict, reason = (
            "inconclusive",
            f"{1 - usable.mean():.0%} of the bootstrap resamples lose the optimum",
        )
    evidence = {
        "init": init,
        "literature exponent": literature,
        **{f"alpha* at {symbol}={v:g}": f"{s:.4g}" for v, s in zip(values, stars, strict=True)},
    }
    figure = context.figure(f"claim_{key}_scaling.png")
    if figure is not None:
        from fls.compare import plots

        plots.scaling_figure(values, stars, samples, exponent, literature, symbol, figure)
    return ClaimResult(key, title, verdict, reason, statistic, exponent, bounds, evidence, figure)


#: The claims of the ``fls`` family, in report order.
CLAIMS: dict[str, Callable[[pd.DataFrame, ClaimContext], ClaimResult]] = {
    "a": interior_optimum,
    "b": over_alignment,
    "c": over_fitting,
    "d": reduced_models,
    "e_n": lambda table, context=DEFAULT_CONTEXT: scaling(table, "data.n", context),
    "e_m": lambda table, context=DEFAULT_CONTEXT: scaling(table, "model.width", context),
}

#: Claim families verify can check.
FAMILIES = {"fls": tuple(CLAIMS)}


def check_claims(
    table: pd.DataFrame, *, family: str = "fls", context: ClaimContext = DEFAULT_CONTEXT
) -> list[ClaimResult]:
    """Every claim of ``family`` on ``table``; a claim that raises is reported inconclusive with the error."""
    family = check_choice("family", family, tuple(FAMILIES))
    results = []
    for key in FAMILIES[family]:
        try:
            results.append(CLAIMS[key](table, context))
        except Exception as exc:  # noqa: BLE001 - one broken claim must not hide the others
            results.append(
                _inconclusive(key, key, "", f"the claim could not be evaluated: {type(exc).__name__}: {exc}")
            )
    return results
