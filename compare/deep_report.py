"""The report of the deep family: the verdicts with their rules and evidence, the runs of every sweep and the
figures, written to ``deep_report.md`` (docs/deep.md; docs/design.md section 5, "The layers").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from fls.compare.report import claims_table
from fls.compare.verdict import ClaimResult

#: Columns of the per-c summary of a sweep.
SUMMARY_KEYS = ("model.centered", "model.knob", "model.c")


def sweep_summary(table: pd.DataFrame) -> str:
    """Per (centering, knob, c): runs, runs that reached the target, mean peak test accuracy of those, mean
    steps, as a Markdown table."""
    measured = ("peak_test_accuracy", "steps")
    table = table.reindex(columns=[*table.columns, *[c for c in measured if c not in table]])  # all failed
    reached = table["status"] == "target_reached"
    frame = table.assign(reached=reached, peak=table["peak_test_accuracy"].where(reached))
    summary = frame.groupby(list(SUMMARY_KEYS), sort=True).agg(
        runs=("run_id", "size"), reached=("reached", "sum"), peak=("peak", "mean"), steps=("steps", "mean")
    )
    lines = [
        "| centered | knob | c | runs | reached | mean peak test accuracy | mean steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for (centered, knob, c), row in summary.iterrows():
        lines.append(
            f"| {centered} | {knob} | {c:.4g} | {row['runs']} | {int(row['reached'])} | {row['peak']:.4f} | "
            f"{row['steps']:.0f} |"
        )
    return "\n".join(lines)


def _sweep_section(name: str, table: pd.DataFrame, seconds: float) -> list[str]:
    first = table.iloc[0]
    counts = ", ".join(f"{status}: {count}" for status, count in table["status"].value_counts().items())
    return [
        f"### {name}",
        "",
        (
            f"{first['data.name']} ({first['data.task']}, {first['data.n_train'] or 'all'} training images), "
            f"{first['model.architecture']} {first['model.widths']}, SGD batch {first['train.batch_size']}, "
            f"base step {first['train.eta']}, stop {first['stop.rule']} (every {first['stop.every']} steps, "
            f"at most {first['train.max_steps']}), {first['train.dtype']} on {first.get('device', first['train.device'])}. "
            f"Runs: {counts}; sweep wall time {seconds:.1f} s."
        ),
        "",
        sweep_summary(table),
        "",
    ]


def write_deep_report(
    out_dir: Path,
    results: Sequence[ClaimResult],
    tables: Mapping[str, pd.DataFrame],
    sweep_seconds: Mapping[str, float],
    seconds: float,
) -> Path:
    """``out_dir/deep_report.md``: the claims table, a section per claim (verdict, reason, evidence, figure)
    and a section per sweep; figures linked relative to the report."""
    lines = [
        "# Deep networks: the optimal feature-learning strength",
        "",
        claims_table(list(results), link_root=out_dir),
        "",
    ]
    for result in results:
        lo, hi = result.interval
        lines += [
            f"## ({result.key}) {result.title}: {result.verdict}",
            "",
            f"{result.reason}.",
            "",
            f"Statistic: {result.statistic} = {result.value:.4g}, interval [{lo:.4g}, {hi:.4g}].",
            "",
            "| evidence | value |",
            "|---|---|",
            *[f"| {key} | {value} |" for key, value in result.evidence.items()],
            "",
        ]
        if result.figure is not None:
            lines += [f"![{result.key}]({result.figure.relative_to(out_dir).as_posix()})", ""]
    lines += ["## Sweeps", ""]
    for name, table in tables.items():
        lines += _sweep_section(name, table, sweep_seconds[name])
    lines += [f"Wall time: {seconds:.1f} s.", ""]
    path = out_dir / "deep_report.md"
    path.write_text("\n".join(lines))
    return path
