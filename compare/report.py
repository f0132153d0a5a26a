"""The render stage of the pipeline: the report of a sweep from its stored analysis (docs/design.md section 5,
"The layers"): claims' figures and the sweep's figures drawn, all written to ``report.md`` (Markdown, figures
linked relative to it) with the sweep's resolved config and the analysed table as ``runs.csv``.

:func:`build_report` analyses the store first (:func:`compare.analyse.analyse`) only when no analysis of its
current batches is stored, so ``fls report`` re-renders a finished sweep without recomputing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fls.compare import plots, regimes
from fls.compare.analyse import current_analysis
from fls.compare.applicability import split_by_task
from fls.compare.claim_figures import draw_claim
from fls.compare.completeness import require_complete
from fls.compare.refine import Refinement, load_refinement
from fls.compare.selection import base_cell, headline_init, network_runs
from fls.compare.store import open_store
from fls.compare.toml_text import dump_config
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext, ClaimResult
from fls.compare.vocabulary import ALPHA_KEY, INIT_KEY

#: Where the figures go, relative to the report.
FIGURES = "figures"

#: Runs shown in the alignment-over-time figure (log-spaced over the grid of the base cell, one seed).
TRAJECTORY_RUNS = 6


@dataclass
class Report:
    """A written report: its path, the claims' verdicts, the table it was made from and what each stage
    took."""

    path: Path
    results: list[ClaimResult]
    table: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def claims_table(results: list[ClaimResult], *, link_root: Path | None = None) -> str:
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


def _trajectory_runs(table: pd.DataFrame) -> list[str]:
    """run_ids of the base cell's first seed at TRAJECTORY_RUNS log-spaced alphas (finished runs only)."""
    runs = network_runs(table)
    init = headline_init(runs)
    if init is None:
        return []
    cell, _ = base_cell(runs, init)
    cell = cell[(cell["status"] == "target_reached") & (cell["seed"] == cell["seed"].min())]
    alphas = np.sort(cell[ALPHA_KEY].unique())
    picks = alphas[np.unique(np.linspace(0, len(alphas) - 1, min(TRAJECTORY_RUNS, len(alphas))).astype(int))]
    return cell[cell[ALPHA_KEY].isin(picks)]["run_id"].tolist()


def _regime_section(table: pd.DataFrame) -> list[str]:
    runs = network_runs(table)
    if "regime" not in runs or runs["regime"].isna().all():
        return ["No run has the metrics a regime label needs."]
    rule = (
        f"f0 contamination >= {regimes.F0_CONTAMINATION:g}: over-fitting; else Psi at the escape time >= "
        f"{regimes.ALIGNED_PSI:g}: over-alignment; else balanced"
    )
    lines = [f"Measured regime by init and FLS decade ({rule}); counts of runs:", ""]
    decade = np.floor(np.log10(runs["fls"].astype(float))).astype(int)
    counts = pd.crosstab([runs[INIT_KEY], decade.rename("log10 FLS")], runs["regime"])
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
    families: Sequence[str] | None = None,
    timings: Mapping[str, float] | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
    recompute: bool = False,
    allow_partial: bool = False,
    sections: Sequence[str] = (),
    refinement: Refinement | None = None,
) -> Report:
    """The report of the sweep in ``store_dir``, written to ``out_dir/report.md``: from the stored analysis
    when it is current (:func:`compare.analyse.stored_analysis`) and ``recompute`` is False, else after
    analysing the store (claims of ``families``, default the config's ``claims.families``); ``sections``
    (Markdown lines) follow the claims. A ``refinement`` of claim (a)'s optimum (:mod:`compare.refine`; by
    default the one ``fls verify`` stored in ``out_dir`` for this table's grid, if any) gives that claim its
    value, interval and figure band, and its section follows the claims. A store that lacks
    runs of its sweep or has damaged parts raises compare.completeness.PartialStore naming them, unless
    ``allow_partial`` (then report.md says what the table lacks)."""
    out_dir = Path(out_dir)
    figures = out_dir / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    store = open_store(store_dir)
    held = require_complete(store, allow_partial=allow_partial)
    config = store.config()
    analysis = current_analysis(store, families=families, context=context, recompute=recompute)
    spent = {**dict(timings or {}), **analysis.timings}
    table = analysis.table
    start = time.perf_counter()
    if refinement is None:
        refinement = load_refinement(out_dir, table)
    if refinement is not None:
        sections = [*refinement.markdown(), *sections]
    results = [
        draw_claim(table, refinement.resolve_claim(result) if refinement else result, figures)
        for result in analysis.results
    ]
    labelled, regression = split_by_task(table)
    runs = network_runs(labelled)
    phase = plots.phase_diagram(labelled, config, figures / "phase_diagram")[0] if len(runs) else None
    fitted = network_runs(regression)
    mse_curve = (
        plots.error_vs_fls(fitted, figures / "mse_vs_fls", column="test_mse")[0] if len(fitted) else None
    )
    picked = _trajectory_runs(labelled)
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
    if not held.complete:
        lines += [f"**Partial table**: the store holds {held.summary()}.", ""]
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
    lines += list(sections)
    caption = (
        "Colour: mean test error over seeds. Red lines: predicted boundaries (solid: alignment completes "
        "before escape; dashed: the initial function reaches order one). White dots: measured optimum of "
        "each row; dotted: the literature scaling through the middle row's optimum."
    )
    if phase is not None:
        lines += [
            "## Phase diagram",
            "",
            f"![phase diagram]({phase.relative_to(out_dir).as_posix()})",
            "",
            caption,
            "",
        ]
    if mse_curve is not None:
        lines += [
            "## Test MSE against FLS (regression runs)",
            "",
            f"![test MSE against FLS]({mse_curve.relative_to(out_dir).as_posix()})",
            "",
        ]
    if alignment is not None:
        lines += [
            "## Alignment over time",
            "",
            f"![alignment over time]({alignment.relative_to(out_dir).as_posix()})",
            "",
        ]
    lines += ["## Regimes", "", *_regime_section(labelled), ""]
    lines += ["## Config", "", "```toml", dump_config(config).rstrip(), "```", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return Report(path, results, table, spent)


def write_report(
    store_dir: str | Path, out_dir: str | Path, *, recompute: bool = False, allow_partial: bool = False
) -> Path:
    """Claims and figures from an existing store (its stored analysis unless ``recompute``; a partial store
    only with ``allow_partial``); returns the path of ``out_dir/report.md``."""
    return build_report(store_dir, out_dir, recompute=recompute, allow_partial=allow_partial).path
