"""The ``fls`` family: the claims of docs/design.md section 2, each a function of a run table that returns a
verdict with its evidence (docs/design.md section 5, "The layers"; how to write one: docs/claims.md).

A claim returns :class:`compare.verdict.ClaimResult`: ``pass``, ``fail`` or ``inconclusive`` (with the
reason), the statistic it decides on, a 95 % bootstrap interval for it, the numbers behind the verdict and the
data its figure is drawn from (claims decide, :mod:`compare.claim_figures` draws). Thresholds are keyword
parameters with the defaults below; a config sets them in its ``[claims.<key>]`` tables (docs/config.md).
Uncertainty comes from the seeds (each draws its own training set, test set and initialization): the bootstrap
resamples them, the same seeds at every alpha of a cell (a paired bootstrap; :mod:`compare.statistics`).

Which runs a claim reads: runs of the discrete or flow engines that reached their target (status
``target_reached``); the headline init is ``random_sign`` when the table has it (the paper's); when the table
varies a second axis, claims (a)-(d) read its middle value (:func:`compare.selection.base_cell`) and (e) reads
all of them.

Claims (:data:`CLAIMS`, registered as the family ``fls`` in :mod:`compare.registry`):

- (a) an interior optimal FLS: the FLS of least mean test error is inside the grid, its bootstrap interval
  excludes both ends, and both ends err more than the minimum on held-out seeds
  (:func:`compare.statistics.held_out_depths`: an argmin's interval alone passes pure noise one time in five);
- (b) over-alignment at large FLS, (c) over-fitting at small FLS, (d) the reduced models match the full runs
  in their limits: each function's docstring states its rule and thresholds;
- (e) the optimal alpha's scaling, alpha* ~ n^a m^b, fitted exponents next to the literature's a = -1, b =
  -1/2: pass when the literature value lies in the bootstrap interval of the fitted exponent (headline init;
  the other init's exponent and verdict in the evidence).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fls.compare.optimum import locate_optimum, optimal_alpha
from fls.compare.regimes import ALIGNED_PSI
from fls.compare.selection import (
    MAX_MISSING,
    MIN_POINTS,
    SeedGrid,
    describe_cell,
    headline_init,
    network_runs,
    second_axes,
    seed_grid,
    select_cell,
    undecidable,
)
from fls.compare.statistics import (
    bootstrap_means,
    finite_mean,
    held_out_depths,
    interval,
    resample_indices,
)
from fls.compare.verdict import (
    DEFAULT_CONTEXT,
    Claim,
    ClaimContext,
    ClaimResult,
    Subcheck,
    combine,
    evidence_of,
    inconclusive,
    within,
)
from fls.compare.vocabulary import ALPHA_KEY, INIT_KEY, N_KEY, WIDTH_KEY
from fls.theory.validation import check_choice

#: Default thresholds of the claims (module docstring); each is a keyword parameter of its claim.
COS_TOLERANCE = 0.05
ARM_TOLERANCE = 0.01
ERROR_TOLERANCE = 0.015
ESCAPE_TOLERANCE = 0.2

#: Literature exponents of alpha* ~ n^a m^b (docs/design.md section 2), by grid key.
LITERATURE_EXPONENTS = {N_KEY: -1.0, WIDTH_KEY: -0.5}

#: Why the inits' optima move differently (claim (e), docs/design.md section 2, lazy limit).
MECHANISM = (
    "the random-sign optimum is pinned by the f0 boundary (the initial function reaches order one at "
    "c alpha^2 sqrt(m) ~ 1, whatever n), while with the antisymmetric init f0 = 0 and its optimum is free to move"
)


def interior_optimum(table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT) -> ClaimResult:
    """(a) The FLS of least mean test error is inside the grid; its bootstrap interval excludes both ends."""
    title = "an interior optimal FLS exists"
    statistic = "argmin FLS of the mean test error"
    cell, init, chosen = select_cell(table)
    if init is None:
        return inconclusive("a", title, statistic, "the table has no runs of a network engine")
    grid = seed_grid(cell, "test_error")
    reason = undecidable(grid)
    if reason:
        return inconclusive("a", title, statistic, reason, cell=describe_cell(init, chosen))
    means = grid.mean()
    k = int(np.nanargmin(means))
    boot = bootstrap_means(
        grid.values, resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    )
    arg = np.array([np.nanargmin(row) if np.any(np.isfinite(row)) else -1 for row in boot])
    lo, hi = (round(q) for q in np.percentile(arg[arg >= 0], [2.5, 97.5]))
    last = len(grid.fls) - 1
    optimum = locate_optimum(grid, context)
    resolved = np.isfinite(optimum.fls) and all(np.isfinite(optimum.alpha_interval))
    value, bounds = (
        (optimum.fls, optimum.fls_interval) if resolved else (grid.fls[k], (grid.fls[lo], grid.fls[hi]))
    )
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
        "cell": describe_cell(init, chosen),
        "seeds": len(grid.seeds),
        "min mean test error": f"{means[k]:.4f} at FLS {grid.fls[k]:.4g} (alpha {grid.alpha[k]:.3g})",
        "mean test error at the smallest FLS": f"{means[0]:.4f} (FLS {grid.fls[0]:.3g})",
        "mean test error at the largest FLS": f"{means[last]:.4f} (FLS {grid.fls[last]:.3g})",
        "alpha* (smooth argmin) and its 95% bootstrap interval": optimum.describe(),
        "held-out error(smallest FLS) - error(argmin)": "{:.4f} [{:.4f}, {:.4f}]".format(
            depths[0][0], *depths[0][1]
        ),
        "held-out error(largest FLS) - error(argmin)": "{:.4f} [{:.4f}, {:.4f}]".format(
            depths[1][0], *depths[1][1]
        ),
    }
    return ClaimResult(
        "a",
        title,
        verdict,
        reason,
        statistic,
        float(value),
        (float(bounds[0]), float(bounds[1])),
        evidence,
        data={"chosen": chosen, "argmin_band": [float(bounds[0]), float(bounds[1])]},
    )


def _ends_difference(
    grid: SeedGrid, indices: np.ndarray, *, large_minus_small_fls: bool
) -> tuple[float, tuple]:
    """Mean over seeds of value(largest FLS) - value(smallest FLS) (or the reverse), with its bootstrap
    interval."""
    sign = 1.0 if large_minus_small_fls else -1.0
    diff = sign * (grid.values[:, -1] - grid.values[:, 0])
    boot = bootstrap_means(diff[:, None], indices)[:, 0]
    return finite_mean(diff), interval(boot)


def over_alignment(
    table: pd.DataFrame,
    context: ClaimContext = DEFAULT_CONTEXT,
    *,
    aligned_psi: float = ALIGNED_PSI,
    cos_tolerance: float = COS_TOLERANCE,
) -> ClaimResult:
    """(b) At large FLS Psi >= ``aligned_psi`` and cos(w_hat+, s) = cos(x+, s) within ``cos_tolerance``; OA
    falls with alpha."""
    title = "over-alignment at large FLS"
    statistic = "mean Psi at the largest FLS"
    cell, init, chosen = select_cell(table)
    if init is None:
        return inconclusive("b", title, statistic, "the table has no runs of a network engine")
    grids = {name: seed_grid(cell, name) for name in ("Psi", "cos_bayes", "cos_class_sum_bayes", "oa")}
    reason = undecidable(grids["Psi"])
    if reason:
        return inconclusive("b", title, statistic, reason, cell=describe_cell(init, chosen))
    indices = resample_indices(len(grids["Psi"].seeds), n_boot=context.n_boot, seed=context.seed)
    psi = grids["Psi"].values[:, -1]
    psi_boot = bootstrap_means(psi[:, None], indices)[:, 0]
    psi_check = within("Psi at the largest FLS", finite_mean(psi), interval(psi_boot), aligned_psi, 1.0)
    gap = grids["cos_bayes"].values[:, -1] - grids["cos_class_sum_bayes"].values[:, -1]
    gap_boot = bootstrap_means(gap[:, None], indices)[:, 0]
    gap_check = within(
        "cos(w_hat+, s) - cos(x+, s) at the largest FLS",
        finite_mean(gap),
        interval(gap_boot),
        -cos_tolerance,
        cos_tolerance,
    )
    oa_value, oa_interval = _ends_difference(grids["oa"], indices, large_minus_small_fls=True)
    oa_check = within("OA(largest FLS) - OA(smallest FLS)", oa_value, oa_interval, 0.0, np.inf)
    if not all(np.isfinite(grids["oa"].mean())):
        oa_check = Subcheck(oa_check.name, oa_value, oa_interval, "inconclusive")
    checks = [psi_check, gap_check, oa_check]
    verdict, reason = combine(checks)
    evidence = {
        "cell": describe_cell(init, chosen),
        **evidence_of(checks),
        "mean OA over FLS (increasing)": ", ".join(f"{x:.3g}" for x in grids["oa"].mean()),
    }
    data = {
        "init": init,
        "chosen": chosen,
        "references": {"cos_bayes": finite_mean(grids["cos_class_sum_bayes"].values)},
    }
    return ClaimResult(
        "b", title, verdict, reason, statistic, psi_check.value, psi_check.interval, evidence, data=data
    )


def over_fitting(
    table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT, *, arm_tolerance: float = ARM_TOLERANCE
) -> ClaimResult:
    """(c) OF rises with alpha; for the antisymmetric init, whether the large-alpha arm of the error survives
    (its height above the minimum exceeds ``arm_tolerance``)."""
    title = "over-fitting at small FLS"
    statistic = "OF(smallest FLS) - OF(largest FLS)"
    cell, init, chosen = select_cell(table)
    if init is None:
        return inconclusive("c", title, statistic, "the table has no runs of a network engine")
    grid = seed_grid(cell, "of")
    reason = undecidable(grid)
    if reason:
        return inconclusive("c", title, statistic, reason, cell=describe_cell(init, chosen))
    indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    value, bounds = _ends_difference(grid, indices, large_minus_small_fls=False)
    check = within(statistic, value, bounds, 0.0, np.inf)
    evidence: dict[str, Any] = {
        "cell": describe_cell(init, chosen),
        **evidence_of([check]),
        "mean OF over FLS (increasing)": ", ".join(f"{x:.3g}" for x in grid.mean()),
    }
    runs = network_runs(table)
    for other in dict.fromkeys(runs[INIT_KEY]):
        arm_cell = runs[runs[INIT_KEY] == other]
        for key, value_ in chosen.items():
            arm_cell = arm_cell[arm_cell[key] == value_]
        arm = _arm(seed_grid(arm_cell, "test_error"), context, arm_tolerance)
        if arm is not None:
            evidence[f"{other}: error(smallest FLS) - min error"] = arm
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
        data={"chosen": chosen},
    )


def _arm(grid: SeedGrid, context: ClaimContext, arm_tolerance: float) -> str | None:
    """'d [lo, hi]: survives / vanishes / undecided' for the large-alpha arm of a cell's test error."""
    if undecidable(grid):
        return None
    boot = bootstrap_means(
        grid.values, resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    )
    height = boot[:, 0] - np.nanmin(boot, axis=1)
    lo, hi = interval(height)
    status = "survives" if lo > arm_tolerance else "vanishes" if hi < arm_tolerance else "undecided"
    point = grid.mean()[0] - np.nanmin(grid.mean())
    return f"{point:.4f} [{lo:.4f}, {hi:.4f}]: the arm {status} (threshold {arm_tolerance})"


def _paired_check(
    grid: SeedGrid,
    prediction: SeedGrid,
    column: int,
    name: str,
    width: float,
    indices: np.ndarray,
    error_tolerance: float,
) -> Subcheck:
    """Mean over seeds of (network - prediction) at one grid column, within +-max(error_tolerance, E /
    sqrt(m)) with E the mean prediction: a finite network of width m differs from its infinite-width limit by
    O(1 / sqrt m) in relative terms."""
    diff = grid.values[:, column] - prediction.values[:, column]
    if not np.any(np.isfinite(diff)):
        return Subcheck(name, float("nan"), (float("nan"), float("nan")), "inconclusive")
    tolerance = max(error_tolerance, finite_mean(prediction.values[:, column]) / np.sqrt(width))
    boot = bootstrap_means(diff[:, None], indices)[:, 0]
    return within(
        f"{name} (tolerance {tolerance:.3g})", finite_mean(diff), interval(boot), -tolerance, tolerance
    )


def escape_slope_ratios(cell: pd.DataFrame) -> np.ndarray:
    """Per seed: the slope of the measured escape time against log(1/alpha), times lambda+, over the alphas
    with a predicted escape time (1 when the escape time grows like log(1/alpha) / lambda+); NaN with < 3 such
    alphas."""
    ratios = []
    if "pred_escape_time" not in cell:
        return np.array(ratios)
    for _, runs in cell[cell["status"] == "target_reached"].groupby("seed"):
        usable = runs[np.isfinite(runs["pred_escape_time"]) & np.isfinite(runs["escape_time"])]
        if len(usable) < MIN_POINTS:
            ratios.append(np.nan)
            continue
        slope = np.polyfit(np.log(1 / usable[ALPHA_KEY]), usable["escape_time"], 1)[0]
        ratios.append(slope * float(usable["lambda_plus"].iloc[0]))
    return np.array(ratios)


def reduced_models(
    table: pd.DataFrame,
    context: ClaimContext = DEFAULT_CONTEXT,
    *,
    error_tolerance: float = ERROR_TOLERANCE,
    escape_tolerance: float = ESCAPE_TOLERANCE,
) -> ClaimResult:
    """(d) The small-alpha and lazy reduced models match the full runs in their limits (test errors within
    max(``error_tolerance``, E / sqrt m), the escape-time slope ratio within 1 +- ``escape_tolerance``; needs
    the prediction columns of :func:`compare.predictions.add_predictions`)."""
    title = "the small-alpha and lazy reduced models match the full runs in their limits"
    statistic = "mean test error - small-alpha prediction at the largest FLS"
    if "pred_small_alpha_error" not in table:
        return inconclusive("d", title, statistic, "the table has no prediction columns (add_predictions)")
    cell, init, chosen = select_cell(table)
    if init is None:
        return inconclusive("d", title, statistic, "the table has no runs of a network engine")
    grid = seed_grid(cell, "test_error")
    reason = undecidable(grid)
    if reason:
        return inconclusive("d", title, statistic, reason, cell=describe_cell(init, chosen))
    indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    width = float(cell[WIDTH_KEY].iloc[0])
    checks = [
        _paired_check(
            grid, seed_grid(cell, "pred_small_alpha_error"), -1, statistic, width, indices, error_tolerance
        )
    ]
    runs = network_runs(table)
    for other in dict.fromkeys(runs[INIT_KEY]):
        lazy_cell = runs[runs[INIT_KEY] == other]
        for key, value in chosen.items():
            lazy_cell = lazy_cell[lazy_cell[key] == value]
        lazy_grid = seed_grid(lazy_cell, "test_error")
        if undecidable(lazy_grid) is None:
            checks.append(
                _paired_check(
                    lazy_grid,
                    seed_grid(lazy_cell, "pred_lazy_error"),
                    0,
                    f"{other}: mean test error - lazy prediction at the smallest FLS",
                    width,
                    resample_indices(len(lazy_grid.seeds), n_boot=context.n_boot, seed=context.seed),
                    error_tolerance,
                )
            )
    ratios = escape_slope_ratios(cell)
    if np.any(np.isfinite(ratios)):
        boot = bootstrap_means(
            ratios[:, None], resample_indices(len(ratios), n_boot=context.n_boot, seed=context.seed)
        )[:, 0]
        checks.append(
            within(
                "escape-time slope x lambda+",
                finite_mean(ratios),
                interval(boot),
                1 - escape_tolerance,
                1 + escape_tolerance,
            )
        )
    verdict, reason = combine(checks)
    evidence = {
        "cell": describe_cell(init, chosen),
        **evidence_of(checks),
        "small-alpha prediction": "the network reduced to its extreme vectors (one neuron per extreme vector, "
        f"mean {finite_mean(cell.get('pred_extreme_neurons', np.nan)):.3g} per seed), trained to the target",
        "predicted Psi (extreme vector from x+)": f"{finite_mean(cell.get('pred_Psi', np.nan)):.4f}",
        "measured Psi at the largest FLS": f"{finite_mean(seed_grid(cell, 'Psi').values[:, -1]):.4f}",
    }
    first = checks[0]
    return ClaimResult(
        "d", title, verdict, reason, statistic, first.value, first.interval, evidence, data={"chosen": chosen}
    )


def scaling(
    table: pd.DataFrame,
    axis: str,
    context: ClaimContext = DEFAULT_CONTEXT,
    *,
    literature: float | None = None,
) -> ClaimResult:
    """(e) The exponent of alpha* against ``axis`` (data.n or model.width), next to ``literature`` (default:
    the literature's, :data:`LITERATURE_EXPONENTS`): decided on the headline init, with every other init's
    exponent and verdict in the evidence and :data:`MECHANISM` (why random-sign and antisymmetric differ)."""
    axis = check_choice("axis", axis, tuple(LITERATURE_EXPONENTS))
    symbol = {N_KEY: "n", WIDTH_KEY: "m"}[axis]
    literature = LITERATURE_EXPONENTS[axis] if literature is None else float(literature)
    key = f"e_{symbol}"
    title = f"alpha* ~ {symbol}^({literature:g}) (literature)"
    statistic = f"fitted exponent of alpha* in {symbol}"
    runs = network_runs(table)
    init = headline_init(runs)
    if init is None or axis not in second_axes(runs[runs[INIT_KEY] == init]):
        return inconclusive(key, title, statistic, f"the sweep does not vary {axis}", literature=literature)
    rows = runs[runs[INIT_KEY] == init]
    others = [k for k in second_axes(rows) if k != axis]
    for other in others:
        rows = rows[rows[other] == sorted(rows[other].unique())[(rows[other].nunique() - 1) // 2]]
    values, stars, samples = [], [], []
    for level, cell in rows.groupby(axis):
        grid = seed_grid(cell, "test_error")
        if undecidable(grid):
            continue
        star = optimal_alpha(grid)
        if not np.isfinite(star):
            continue
        indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed + int(level))
        values.append(float(level))
        stars.append(float(star))
        samples.append(optimal_alpha(grid, bootstrap_means(grid.values, indices)))
    if len(values) < MIN_POINTS:
        return inconclusive(
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
    data = {
        "values": values,
        "stars": stars,
        "samples": samples,
        "exponent": exponent,
        "literature": literature,
        "symbol": symbol,
        "init": init,
    }
    for other in [i for i in dict.fromkeys(runs[INIT_KEY]) if i != init]:  # one init's table has no other
        found = scaling(runs[runs[INIT_KEY] == other], axis, context, literature=literature)
        value = "{:.3g} [{:.3g}, {:.3g}]".format(found.value, *found.interval) if found.data else found.reason
        evidence.update({f"{other}: fitted exponent": f"{found.verdict}: {value}", "mechanism": MECHANISM})
        if found.data:
            data.setdefault("others", {})[other] = found.data
    return ClaimResult(key, title, verdict, reason, statistic, exponent, bounds, evidence, data=data)


def scaling_in_n(
    table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT, *, literature: float = -1.0
) -> ClaimResult:
    """(e_n) :func:`scaling` against the training-set size data.n."""
    return scaling(table, N_KEY, context, literature=literature)


def scaling_in_m(
    table: pd.DataFrame, context: ClaimContext = DEFAULT_CONTEXT, *, literature: float = -0.5
) -> ClaimResult:
    """(e_m) :func:`scaling` against the width model.width."""
    return scaling(table, WIDTH_KEY, context, literature=literature)


#: The claims of the ``fls`` family, in report order.
CLAIMS: dict[str, Claim] = {
    "a": interior_optimum,
    "b": over_alignment,
    "c": over_fitting,
    "d": reduced_models,
    "e_n": scaling_in_n,
    "e_m": scaling_in_m,
}
