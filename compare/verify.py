"""``fls verify``: run the default sweep (or a given one), check the claims, write the report, print a summary.

The default sweep is ``compare/configs/default.toml`` (:data:`DEFAULT_CONFIG`). Worker processes inherit the
environment, so verify sets one BLAS thread per process (:data:`BLAS_THREAD_VARIABLES`, unless already set) before
the sweep starts them: the runs are small matrix products, which several BLAS threads per process on a small CPU
make several times slower (a 100 x 100 SVD: 3 ms on one thread, 120 ms on two cores shared by two processes).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fls.compare.claims import FAMILIES
from fls.compare.config import load_config
from fls.compare.report import build_report, claims_table
from fls.compare.sweep import run_sweep
from fls.theory.validation import check_choice

#: The packaged default sweep.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.toml"

#: The claim families ``fls verify --family`` accepts.
VERIFY_FAMILIES = (*FAMILIES, "quality")

#: Environment variables that set the BLAS thread count of worker processes.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def verify(
    out_dir: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    family: str = "fls",
) -> Path:
    """Run the sweep of ``config`` (default :data:`DEFAULT_CONFIG`) into ``out_dir/store`` (resuming a stopped
    one), check the claims of ``family``, write ``out_dir/report.md`` and its figures, print the claims table and
    the wall times, and return the report's path.

    ``family="quality"`` runs the strength-versus-quality family instead (:func:`compare.quality.verify_quality`,
    its own staircase sweeps; ``config`` and ``scheduler`` do not apply to it).
    """
    family = check_choice("family", family, VERIFY_FAMILIES)
    if family == "quality":
        from fls.compare.quality import verify_quality

        return verify_quality(out_dir, workers=workers)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    resolved = load_config(DEFAULT_CONFIG if config is None else config)
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    store = out_dir / "store"
    run_sweep(resolved, store, workers=workers, scheduler=scheduler)
    sweep_seconds = time.perf_counter() - start
    report = build_report(store, out_dir, family=family, timings={"sweep": sweep_seconds})
    total = time.perf_counter() - start
    print(claims_table(report.results))
    print(
        f"{len(report.table)} runs; wall time {total:.1f} s (sweep {sweep_seconds:.1f} s, "
        + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items() if k != "sweep")
        + ")"
    )
    print(f"report: {report.path}")
    return report.path
