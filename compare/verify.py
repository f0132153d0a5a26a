"""``fls verify``: run the default sweep (or a given one), analyse it, render the report, print a summary
(docs/design.md section 5, "The layers").

The default sweep is ``compare/configs/default.toml`` (:data:`DEFAULT_CONFIG`); the claims checked are the
config's ``claims.families`` (default ``fls``) or the ``family`` given. ``family="quality"`` runs the quality
family's own sweeps instead (:func:`verify_quality`: ``compare/configs/quality.toml`` and its controls,
docs/quality.md). Worker processes inherit the environment, so verify sets one BLAS thread per process
(:data:`compare.vocabulary.THREAD_VARIABLES`, unless already set) before the sweep starts them: the runs are
small matrix products, which several BLAS threads per process on a small CPU make several times slower (a
100 x 100 SVD: 3 ms on one thread, 120 ms on two cores shared by two processes).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fls.compare import registry
from fls.compare.analyse import claim_settings, current_analysis
from fls.compare.certify import certify
from fls.compare.claim_figures import draw_claim
from fls.compare.config import ConfigError, load_config
from fls.compare.deep_verify import FAMILY as DEEP_FAMILY
from fls.compare.deep_verify import verify_deep
from fls.compare.quality_curves import headline_ratio, learning_curves
from fls.compare.quality_plots import learning_curve_figure
from fls.compare.quality_report import pooled_with_control, write_quality_report
from fls.compare.quality_runner import MAIN_SWEEP, quality_sweeps, run_quality_batch
from fls.compare.refine import refine_optimum
from fls.compare.report import build_report, claims_table
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from fls.compare.verdict import DEFAULT_CONTEXT
from fls.compare.vocabulary import THREAD_VARIABLES

#: The packaged default sweep.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.toml"

#: The family verify runs with its own sweeps rather than the config's.
QUALITY_FAMILY = "quality"


def verify(
    out_dir: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    family: str | None = None,
    device: str | None = None,
    refine: bool = True,
) -> Path:
    """Run the sweep of ``config`` (default :data:`DEFAULT_CONFIG`) into ``out_dir/store`` (resuming a stopped
    one), check the claims of ``family`` (default: the config's ``claims.families``), write
    ``out_dir/report.md`` and its figures, print the claims table and the wall times, and return the report's
    path. With ``refine``, claim (a)'s optimum is resolved further after the grid (:mod:`compare.refine`,
    its rounds under ``out_dir``) and reported. Unless the config's ``[certify]`` table says ``enabled =
    false``, a subset of the discrete runs is re-run with the exact flow (:mod:`compare.certify`, its store
    ``out_dir/certify``) and the discretization gap per claim is printed and reported.

    ``family="quality"`` runs the strength-versus-quality family instead (:func:`verify_quality`, its own
    staircase sweeps; ``config`` and ``scheduler`` do not apply to it). ``family="deep"`` runs the deep
    networks' c sweeps (:func:`compare.deep_verify.verify_deep`; ``config`` is then a deep config, and
    ``device`` sets where they train); ``device`` applies to that family only.
    """
    if family == QUALITY_FAMILY:
        return verify_quality(out_dir, workers=workers)
    if family == DEEP_FAMILY:
        return verify_deep(out_dir, config=config, workers=workers, scheduler=scheduler, device=device)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    resolved = load_config(DEFAULT_CONFIG if config is None else config)
    registry.load_entry_points()
    registry.load_modules(claim_settings(resolved)["modules"])
    families = None if family is None else [family]
    for name in families or claim_settings(resolved)["families"]:
        if name not in registry.families():
            raise ConfigError(
                f"family = {name!r} is not registered; allowed: {', '.join(registry.families())}"
            )
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    store = out_dir / "store"
    table = run_sweep(resolved, store, workers=workers, scheduler=scheduler)
    sweep_seconds = time.perf_counter() - start
    sections, timings = [], {"sweep": sweep_seconds}
    if refine:
        refinement = refine_optimum(resolved, table, out_dir, workers=workers)
        timings["refine"] = time.perf_counter() - start - sweep_seconds
        sections = refinement.markdown()
    certification = certify(resolved, store, out_dir, workers=workers, families=families)
    timings["certify"] = certification.seconds
    sections = [*sections, *certification.markdown(out_dir)]
    report = build_report(store, out_dir, families=families, timings=timings, sections=sections)
    total = time.perf_counter() - start
    print(claims_table(report.results))
    if refine:
        optimum = refinement.optimum
        print(
            f"optimum: {refinement.status} ({refinement.reason})"
            + (f": {optimum.describe()}" if optimum else "")
        )
    print("\n".join(certification.printed()))
    print(
        f"{len(report.table)} runs; wall time {total:.1f} s (sweep {sweep_seconds:.1f} s, "
        + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items() if k != "sweep")
        + ")"
    )
    print(f"report: {report.path}")
    return report.path


def verify_quality(out_dir: str | os.PathLike[str], *, workers: int | None = None) -> Path:
    """Run the default quality sweeps into ``out_dir/store-<name>`` (resuming stopped ones), check the claim on
    the main one (stored beside its run table, :mod:`compare.analyse`), write ``out_dir/quality_report.md``
    and ``out_dir/figures/``, print a summary and return the report's
    path."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    tables = {
        name: run_sweep(
            config, out_dir / f"store-{name}", workers=workers, runner=run_quality_batch, progress=False
        )
        for name, config in quality_sweeps().items()
    }
    context = DEFAULT_CONTEXT
    analysis = current_analysis(open_store(out_dir / f"store-{MAIN_SWEEP}"), families=[QUALITY_FAMILY])
    result = draw_claim(analysis.table, analysis.results[0], out_dir / "figures")
    curves = {name: learning_curves(table) for name, table in tables.items()}
    figures = [p for p in [result.figure] if p is not None]
    figures += learning_curve_figure(curves, out_dir / "figures" / "quality_learning_curves.png")[:1]
    pooled = pooled_with_control(tables, context)
    seconds = time.perf_counter() - start
    path = write_quality_report(out_dir, result, tables, curves, pooled, figures, seconds)
    print(f"(q) {result.title}: {result.verdict} ({result.reason})")
    for key, value in result.evidence.items():
        if key.startswith("rho(") and "gain_network" not in key:
            print(f"  {key}: {value}")
    for correlation in pooled:
        print(f"  pooled with parity, rho({correlation.measure}): {correlation.describe()}")
    for name, table in curves.items():
        ratios = ", ".join(
            f"n={int(r['data.n'])}: {r['ratio']:.3g}" for _, r in headline_ratio(table).iterrows()
        )
        print(f"  {name}: best init kernel / network error at the largest FLS: {ratios}")
    print(f"wall time {seconds:.1f} s; report: {path}")
    return path
