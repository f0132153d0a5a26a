"""The report of the quality family: the overall verdict and its rule, the verdict per axis, the correlations,
the learning curves and the figures, written to ``quality_report.md``, and the summary ``fls verify`` prints (docs/design.md section 5, "The layers"; the family:
docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from fls.compare.analyse import claim_settings, current_analysis
from fls.compare.quality_axes import AXES, OVERALL_RULE, AxisVerdict, combine, task_name, verdicts_by_axis
from fls.compare.quality_claims import (
    DECOUPLED_RHO,
    FAMILY,
    MIN_RUNS,
    RULE,
    TRACKING_RHO,
    Correlation,
    correlations,
    finished_runs,
)
from fls.compare.quality_config import MAIN_SWEEP, TASK_SWEEP, WIDTH_SWEEP, axis_stores, sweep_store
from fls.compare.quality_curves import headline_ratio
from fls.compare.quality_plots import axes_figure, learning_curve_figure, width_figure
from fls.compare.store import open_store
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext, ClaimResult
from fls.compare.vocabulary import N_KEY, WIDTH_KEY


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def pooled_with_control(tables: Mapping[str, pd.DataFrame], context: ClaimContext) -> list[Correlation]:
    """The correlations of the main sweep pooled with the parity control (informational, not the verdict): the
    parity runs move as much as the staircase runs at the same FLS but gain little, which a strength measure
    cannot tell apart."""
    pooled = finished_runs(pd.concat([tables[MAIN_SWEEP], tables["parity"]], ignore_index=True))
    return correlations(pooled, "gain_tangent", context) if len(pooled) >= MIN_RUNS else []


def _axis_section(verdict: AxisVerdict) -> list[str]:
    """The report section of one axis: its verdict, statistic and evidence."""
    result = verdict.result
    lo, hi = result.interval
    return [
        f"### Axis {verdict.axis}: {AXES[verdict.axis]} ({verdict.setting})",
        "",
        (
            f"**{result.verdict}** ({result.reason}). Statistic: {result.statistic} = {result.value:+.3f}, "
            f"95 % interval [{lo:+.3f}, {hi:+.3f}]."
        ),
        "",
        "| evidence | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in result.evidence.items() if key != "rule"],
        "",
    ]


def verdict_table(axes: Sequence[AxisVerdict]) -> list[str]:
    """The overall verdict of ``axes`` with its rule, and a table of each axis's verdict, statistic and reason
    (Markdown lines)."""
    verdict, reason = combine(axes)
    return [
        f"**Claim (q): feature-learning strength does not track feature quality: {verdict}** ({reason}).",
        "",
        f"Overall rule: {OVERALL_RULE}",
        "",
        "| axis | varies | setting (runs) | verdict | rho (largest abs) [95 %] | reason |",
        "|---|---|---|---|---|---|",
        *[
            f"| {a.axis} | {AXES[a.axis]} | {a.setting} | {a.result.verdict} | {a.result.value:+.2f} "
            f"[{a.result.interval[0]:+.2f}, {a.result.interval[1]:+.2f}] | {a.result.reason} |"
            for a in axes
        ],
        "",
        f"Rule on each axis: {RULE}",
        "",
    ]


def store_axes_section(store_dir: str | Path, context: ClaimContext = DEFAULT_CONTEXT) -> list[str]:
    """The section `fls report` adds for a store whose config checks the quality family (none for another
    store): with the width and task axes' stores beside it in the layout `fls verify --family quality` writes
    (:func:`compare.quality_config.axis_stores`), the verdict per axis and overall as verify gives them;
    otherwise a statement that only the alpha axis was decided, and why."""
    store = open_store(store_dir)
    if FAMILY not in claim_settings(store.config())["families"]:
        return []
    beside = axis_stores(store_dir)
    lines = ["## Claim (q) per axis", ""]
    if beside:
        main = next(r for r in current_analysis(store, context=context).results if r.key == "q")
        tables = {"alpha": store.table(), **{axis: open_store(path).table() for axis, path in beside.items()}}
        lines += verdict_table(verdicts_by_axis(tables, context, {"alpha": main}))
    missing = [axis for axis in AXES if axis != "alpha" and axis not in beside]
    if missing:
        expected = ", ".join(
            sweep_store(Path(store_dir).parent, name).name for name in (WIDTH_SWEEP, TASK_SWEEP)
        )
        lines += [
            f"Not decided on {', '.join(missing)}: this report decides the claim on this store's sweep (the alpha "
            f"axis) and on the axes whose stores lie beside it ({expected} next to a store named "
            f"{sweep_store('', MAIN_SWEEP).name}, as `fls verify --family quality` writes them); "
            + ("none is there, so only the alpha axis was decided. " if not beside else "")
            + "`fls verify --family quality --config FILE` decides every axis of a quality config.",
            "",
        ]
    return lines


def summary(
    axes: Sequence[AxisVerdict], pooled: Sequence[Correlation], curves: Mapping[str, pd.DataFrame]
) -> list[str]:
    """The printed summary: the overall verdict, each axis's verdict and its measures' correlations, the
    correlations pooled with the parity control, and each sweep's network-to-kernel error ratios."""
    verdict, reason = combine(axes)
    lines = [f"(q) feature-learning strength does not track feature quality, overall: {verdict} ({reason})"]
    for axis in axes:
        lines.append(f"  {axis.describe()}")
        lines += [
            f"    {key}: {value}"
            for key, value in axis.result.evidence.items()
            if key.startswith("rho(") and "gain_network" not in key
        ]
    lines += [f"  pooled with parity, rho({c.measure}): {c.describe()}" for c in pooled]
    for name, table in curves.items():
        ratios = ", ".join(
            f"n={int(r[N_KEY])}"
            + (f" m={int(r[WIDTH_KEY])}" if WIDTH_KEY in r else "")
            + f": {r['ratio']:.3g}"
            for _, r in headline_ratio(table).iterrows()
        )
        lines.append(f"  {name}: best init kernel / network error at the largest FLS: {ratios}")
    return lines


def draw_quality_figures(
    figures_dir: Path,
    main: ClaimResult,
    axes: Sequence[AxisVerdict],
    tables: Mapping[str, pd.DataFrame],
    curves: Mapping[str, pd.DataFrame],
) -> list[Path]:
    """The family's figures (PNG paths): claim (q)'s on the alpha axis (``main``, drawn already), the verdict
    per axis, the learning curves of the sweeps over alpha (titled by sweep and task), and the width axis."""
    figures = [main.figure] if main.figure is not None else []
    decided = [a for a in axes if a.result.data.get("correlations")]
    if decided:
        panels = [(a.axis, a.setting, a.result.verdict, a.result.data["correlations"]) for a in decided]
        figures += axes_figure(panels, (DECOUPLED_RHO, TRACKING_RHO), figures_dir / "quality_axes.png")[:1]
    over_alpha = {
        f"{name}: {task_name(tables[name])}": table
        for name, table in curves.items()
        if WIDTH_KEY not in table
    }
    figures += learning_curve_figure(over_alpha, figures_dir / "quality_learning_curves.png")[:1]
    figures += [
        path
        for table in curves.values()
        if WIDTH_KEY in table and not table.empty
        for path in width_figure(table, figures_dir / "quality_width.png")[:1]
    ]
    return figures


def write_quality_report(
    out_dir: Path,
    axes: Sequence[AxisVerdict],
    tables: Mapping[str, pd.DataFrame],
    curves: Mapping[str, pd.DataFrame],
    pooled: Sequence[Correlation],
    figures: Sequence[Path],
    seconds: float,
) -> Path:
    """``out_dir/quality_report.md``: the overall verdict, its rule and the verdict per axis, each axis's
    correlations, those pooled with the parity control, the learning curves, the network-to-kernel ratios and
    the figures (linked relative to it)."""
    lines = ["# Feature-learning strength against feature quality", "", *verdict_table(axes)]
    for axis in axes:
        lines += _axis_section(axis)
    lines += [
        "Pooled with the parity control (not part of the verdict; the same rule applied to both tasks' runs):",
        "",
        "| measure | rho [95 %]; per n -> state |",
        "|---|---|",
        *[f"| {c.measure} | {c.describe()} |" for c in pooled],
        "",
    ]
    for name, table in tables.items():
        counts = ", ".join(f"{status}: {count}" for status, count in table["status"].value_counts().items())
        lines += [
            f"## {name}",
            "",
            f"Runs: {counts}.",
            "",
            (
                "Network at the largest FLS against the best kernel "
                "at init (ratio = best init-kernel error / network error; errors are test MSE for regression and "
                "error rates for labels):"
            ),
            "",
            _markdown_table(headline_ratio(curves[name])),
            "",
            "All cells (means over seeds):",
            "",
            _markdown_table(curves[name]),
            "",
        ]
    lines += [
        "## Figures",
        "",
        *[f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in figures],
        "",
        f"Wall time: {seconds:.1f} s.",
        "",
    ]
    path = out_dir / "quality_report.md"
    path.write_text("\n".join(lines))
    return path
