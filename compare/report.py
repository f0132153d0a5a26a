"""The report of a sweep: predictions added to its run table, regimes labelled, claims checked, figures drawn,
all written to ``report.md`` (Markdown, figures linked relative to it) with the sweep's resolved config."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fls.compare import claims, plots, predictions, regimes
from fls.compare.config import dump_config
from fls.compare.runner import dataset_for
from fls.compare.store import open_store

#: Where the figures go, relative to the report.
FIGURES = "figures"

#: Runs shown in the alignment-over-time figure (log-spaced over the grid of the base cell, one seed).
TRAJECTORY_RUNS = 6


@dataclass
class Report:
    """A written report: its path, the claims' verdicts, the table it was made from and what each stage took."""

    path: Path
    results: list[claims.ClaimResult]
    table: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def claims_table(results: list[claims.ClaimResult], *, link_root: Path | None = None) -> str:
    """The claims as a Markdown table: claim, verdict, statistic, value, 95 % interval, figure."""
    lines = ["| claim | verdict | statistic | value | 95% interval | figure |", "|---|---|---|---|---|---|"]
    for result in results:
        figure = ""
        if result.figure is not None:
            target = result.figure.relative_to(link_root) if link_root is not None else result.figure
            figure = f"[{result.figure.name}]({target.as_posix()})"
        lo, hi = result.interval
        lines.append(
            f"| ({result.key}) {result.title} | **{result.verdict}** | {result.statistic} | "
            f"{result.value:.4g} | [{lo:.4g}, {hi:.4g}] | {figure} |"
        )
    return "\n".join(lines)


def _bounds_by_cell(table: pd.DataFrame) -> dict[tuple, dict[str, float]]:
    """The predicted boundaries for every (data.n, model.width) of the table's network runs (seed-0 data)."""
    out = {}
    for (n, width), cell in claims.network_runs(table).groupby(["data.n", "model.width"]):
        out[(n, width)] = predictions.boundaries(dataset_for(cell.iloc[0].to_dict()), width=int(width))
    return out


def _trajectory_runs(table: pd.DataFrame) -> list[str]:
    """run_ids of the base cell's first seed at TRAJECTORY_RUNS log-spaced alphas (finished runs only)."""
    runs = claims.network_runs(table)
    init = claims.headline_init(runs)
    if init is None:
        return []
    cell, _ = claims.base_cell(runs, init)
    cell = cell[(cell["status"] == "target_reached") & (cell["seed"] == cell["seed"].min())]
    alphas = np.sort(cell["model.alpha"].unique())
    picks = alphas[np.unique(np.linspace(0, len(alphas) - 1, min(TRAJECTORY_RUNS, len(alphas))).astype(int))]
    return cell[cell["model.alpha"].isin(picks)]["run_id"].tolist()


def _regime_section(table: pd.DataFrame) -> list[str]:
    runs = claims.network_runs(table)
    if "regime" not in runs or runs["regime"].isna().all():
        return ["No run has the metrics a regime label needs."]
    rule = (
        f"f0 contamination >= {regimes.F0_CONTAMINATION:g}: over-fitting; else Psi at the escape time >= "
        f"{regimes.ALIGNED_PSI:g}: over-alignment; else balanced"
    )
    lines = [f"Measured regime by init and FLS decade ({rule}); counts of runs:", ""]
    decade = np.floor(np.log10(runs["fls"].astype(float))).astype(int)
    counts = pd.crosstab([runs["model.init"], decade.rename("log10 FLS")], runs["regime"])
    lines += ["```", counts.to_string(), "```"]
    if "predicted_regime" in runs:
        both = runs.dropna(subset=["regime", "predicted_regime"])
        if len(both):
            agreement = float((both["regime"] == both["predicted_regime"]).mean())
            lines += [
                "",
                f"Measured and predicted regime agree on {agreement:.0%} of {len(both)} runs:",
                "",
                "```",
                pd.crosstab(both["regime"], both["predicted_regime"]).to_string(),
                "```",
            ]
    return lines


def _status_line(table: pd.DataFrame) -> str:
    counts = table["status"].value_counts()
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def build_report(
    store_dir: str | Path,
    out_dir: str | Path,
    *,
    family: str = "fls",
    timings: Mapping[str, float] | None = None,
    context: claims.ClaimContext | None = None,
) -> Report:
    """Predictions, regimes, claims and figures for the sweep in ``store_dir``; writes ``out_dir/report.md``."""
    out_dir = Path(out_dir)
    figures = out_dir / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    spent = dict(timings or {})
    store = open_store(store_dir)
    config = store.config()
    table = store.table()
    start = time.perf_counter()
    table = predictions.add_predictions(table)
    table = regimes.label_regimes(table, _bounds_by_cell(table))
    spent["predictions"] = time.perf_counter() - start
    start = time.perf_counter()
    context = context or claims.ClaimContext(figure_dir=figures)
    results = claims.check_claims(table, family=family, context=context)
    spent["claims"] = time.perf_counter() - start
    start = time.perf_counter()
    phase = plots.phase_diagram(table, config, figures / "phase_diagram")[0]
    runs = claims.network_runs(table)
    init = claims.headline_init(runs)
    chosen = claims.base_cell(runs, init)[1] if init is not None else {}
    error_curve = plots.error_vs_fls(runs, figures / "error_vs_fls", chosen=chosen)[0]
    picked = _trajectory_runs(table)
    alignment = (
        plots.alignment_over_time(
            {run_id: store.arrays(run_id) for run_id in picked}, table, figures / "alignment_over_time"
        )[0]
        if picked
        else None
    )
    spent["figures"] = time.perf_counter() - start
    table.to_csv(out_dir / "runs.csv", index=False)

    lines = [f"# Claims report: {config.get('sweep', {}).get('name', 'sweep')}", ""]
    lines += [f"{len(table)} runs ({_status_line(table)}).", ""]
    if "batch_seconds" in table:
        batches = table.drop_duplicates("batch_id")
        seconds = batches["batch_seconds"]
        lines.append(
            f"{len(batches)} batches of median {batches['batch_runs'].median():.0f} runs; wall time per "
            f"batch: median {seconds.median():.1f} s, max {seconds.max():.1f} s, total {seconds.sum():.0f} s."
        )
        if "batch_cpu_seconds" in batches:
            cpu = batches["batch_cpu_seconds"]
            lines.append(
                f"CPU time of the batches: total {cpu.sum():.0f} s, median {cpu.median():.1f} s per batch."
            )
        lines.append("")
    lines += [
        "Wall time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in spent.items()) + ".",
        "",
    ]
    lines += ["## Claims", "", claims_table(results, link_root=out_dir), ""]
    for result in results:
        lines += [f"### ({result.key}) {result.title}: {result.verdict}", "", f"{result.reason}.", ""]
        lines += [f"- {name}: {value}" for name, value in result.evidence.items()]
        if result.figure is not None:
            lines += ["", f"![claim {result.key}]({result.figure.relative_to(out_dir).as_posix()})"]
        lines.append("")
    caption = (
        "Colour: mean test error over seeds. Red lines: predicted boundaries (solid: alignment completes "
        "before escape; dashed: the initial function reaches order one). White dots: measured optimum of "
        "each row; dotted: the literature scaling through the middle row's optimum."
    )
    lines += [
        "## Phase diagram",
        "",
        f"![phase diagram]({phase.relative_to(out_dir).as_posix()})",
        "",
        caption,
        "",
    ]
    lines += [
        "## Test error against FLS",
        "",
        f"![error against FLS]({error_curve.relative_to(out_dir).as_posix()})",
        "",
    ]
    if alignment is not None:
        lines += [
            "## Alignment over time",
            "",
            f"![alignment over time]({alignment.relative_to(out_dir).as_posix()})",
            "",
        ]
    lines += ["## Regimes", "", *_regime_section(table), ""]
    lines += ["## Config", "", "```toml", dump_config(config).rstrip(), "```", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return Report(path, results, table, spent)


def write_report(store_dir: str | Path, out_dir: str | Path) -> Path:
    """Claims and figures from an existing store; returns the path of ``out_dir/report.md``."""
    return build_report(store_dir, out_dir).path
