"""The report of the quality family: the verdict and its rule, the correlations, the learning curves and the
figures, written to ``quality_report.md`` (docs/design.md section 5, "The layers"; the family:
docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from fls.compare.quality_claims import MIN_RUNS, RULE, Correlation, correlations, finished_runs
from fls.compare.quality_curves import headline_ratio
from fls.compare.quality_runner import MAIN_SWEEP
from fls.compare.verdict import ClaimContext, ClaimResult


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


def write_quality_report(
    out_dir: Path,
    result: ClaimResult,
    tables: Mapping[str, pd.DataFrame],
    curves: Mapping[str, pd.DataFrame],
    pooled: Sequence[Correlation],
    figures: Sequence[Path],
    seconds: float,
) -> Path:
    """``out_dir/quality_report.md``: the verdict and its rule, the correlations (and those pooled with the
    parity control), the learning curves, the network-to-kernel ratios and the figures (linked relative to
    it)."""
    lines = [
        "# Feature-learning strength against feature quality",
        "",
        f"**Claim (q): {result.title}: {result.verdict}** ({result.reason}).",
        "",
        f"Rule: {RULE}",
        "",
        (
            f"Statistic: {result.statistic} = {result.value:+.3f}, 95 % interval "
            f"[{result.interval[0]:+.3f}, {result.interval[1]:+.3f}]."
        ),
        "",
        "| evidence | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in result.evidence.items() if key != "rule"],
        "",
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
