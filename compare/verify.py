"""``fls verify``: run the default sweep (or a given one), analyse it, render the report, print a summary
(docs/design.md section 5, "The layers").

The default sweep is ``compare/configs/default.toml`` (:data:`DEFAULT_CONFIG`); the claims checked are the
config's ``claims.families`` (default ``fls``) or the ``family`` given. ``family="quality"`` runs the quality
family's own sweeps instead (:func:`verify_quality`: ``compare/configs/quality.toml``, one sweep per axis of
its claim, and its controls; docs/quality.md). Worker processes inherit the environment, so verify sets one
BLAS thread per process (:data:`compare.vocabulary.THREAD_VARIABLES`, unless already set) before the sweep
starts them: the runs are small matrix products, which several BLAS threads per process on a small CPU make
several times slower (a 100 x 100 SVD: 3 ms on one thread, 120 ms on two cores shared by two processes).
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
from fls.compare.quality_axes import verdicts_by_axis
from fls.compare.quality_claims import FAMILY as QUALITY_FAMILY
from fls.compare.quality_config import MAIN_SWEEP, quality_sweeps, sweep_store
from fls.compare.quality_curves import learning_curves
from fls.compare.quality_report import (
    draw_quality_figures,
    pooled_with_control,
    summary,
    write_quality_report,
)
from fls.compare.quality_runner import run_quality_batch
from fls.compare.refine import REFINEMENT_FILE, refine_optimum, save_refinement
from fls.compare.report import build_report, claims_table
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from fls.compare.verdict import DEFAULT_CONTEXT
from fls.compare.vocabulary import ALPHA_KEY, THREAD_VARIABLES, WIDTH_KEY

#: The packaged default sweep.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.toml"


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
    its rounds under ``out_dir``): claim (a)'s value, interval and figure band are then the resolved optimum's
    (kept in ``out_dir``, :data:`compare.refine.REFINEMENT_FILE`, for a later report into the same directory).
    Unless the config's ``[certify]`` table says ``enabled = false``, a subset of the discrete runs is re-run
    with the exact flow (:mod:`compare.certify`, its store ``out_dir/certify``) and the discretization gap per
    claim is printed and reported.

    ``family="quality"`` runs the strength-versus-quality family instead (:func:`verify_quality`, its own
    staircase sweeps of ``config``, a quality config, default ``compare/configs/quality.toml``;
    ``scheduler`` does not apply to it). ``family="deep"`` runs the deep
    networks' c sweeps (:func:`compare.deep_verify.verify_deep`; ``config`` is then a deep config, and
    ``device`` sets where they train); ``device`` applies to that family only.
    """
    if family == QUALITY_FAMILY:
        return verify_quality(out_dir, workers=workers, config=config)
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
    refinement, timings = None, {"sweep": sweep_seconds}
    (out_dir / REFINEMENT_FILE).unlink(missing_ok=True)
    if refine:
        refinement = refine_optimum(resolved, table, out_dir, workers=workers)
        timings["refine"] = time.perf_counter() - start - sweep_seconds
        save_refinement(refinement, out_dir)
    certification = certify(resolved, store, out_dir, workers=workers, families=families)
    timings["certify"] = certification.seconds
    report = build_report(
        store,
        out_dir,
        families=families,
        timings=timings,
        refinement=refinement,
        sections=certification.markdown(out_dir),
    )
    total = time.perf_counter() - start
    print(claims_table(report.results))
    if refinement is not None:
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


def verify_quality(
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> Path:
    """Run the quality sweeps of ``config`` (default ``compare/configs/quality.toml``: one sweep per axis of the
    claim and the controls, :mod:`compare.quality_config`) into ``out_dir/store-<name>`` (resuming stopped
    ones), check the claim on the main one (stored beside its run table, :mod:`compare.analyse`) and on each
    other axis, combine them (:mod:`compare.quality_axes`), write ``out_dir/quality_report.md`` and
    ``out_dir/figures/``, print a summary and return the report's path."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    sweeps = quality_sweeps(config)
    tables = {
        name: run_sweep(
            sweep.config,
            sweep_store(out_dir, name),
            workers=workers,
            runner=run_quality_batch,
            progress=False,
            runs=sweep.runs,
        )
        for name, sweep in sweeps.items()
    }
    analysis = current_analysis(open_store(sweep_store(out_dir, MAIN_SWEEP)), families=[QUALITY_FAMILY])
    main = draw_claim(analysis.table, analysis.results[0], out_dir / "figures")
    by_axis = {sweep.axis: tables[name] for name, sweep in sweeps.items() if sweep.axis is not None}
    axes = verdicts_by_axis(by_axis, DEFAULT_CONTEXT, {"alpha": main})
    curves = {
        name: learning_curves(table, WIDTH_KEY if sweeps[name].axis == "width" else ALPHA_KEY)
        for name, table in tables.items()
    }
    figures = draw_quality_figures(out_dir / "figures", main, axes, tables, curves)
    pooled = pooled_with_control(tables, DEFAULT_CONTEXT)
    seconds = time.perf_counter() - start
    path = write_quality_report(out_dir, axes, tables, curves, pooled, figures, seconds)
    print("\n".join(summary(axes, pooled, curves)))
    print(f"wall time {seconds:.1f} s; report: {path}")
    return path
