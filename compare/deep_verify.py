"""``fls verify --family deep``: run the deep c sweeps, check the deep claims, write the report (docs/deep.md;
docs/design.md section 5, "The layers").

The default (:data:`DEFAULT_SWEEPS`, packaged in ``compare/configs/``) runs on a small CPU in minutes:
bias-free MLPs on scikit-learn's digits (uncentered and centered) and on MNIST-1D, and a small CNN on digits,
9 values of c in [2^-8, 2^8], SGD to 99 % training accuracy, and the (alpha, c) equivalence twins in float64. A config given
instead (e.g. ``compare/configs/deep_cifar10.toml``) is run alone. Each sweep is a store of its own
(``out_dir/store-<name>``, resumable: a stopped verify continues where it stopped) run by
:func:`compare.sweep.run_sweep` with :func:`compare.deep_runner.run_deep_batch` on the local pool or a Dask
scheduler; ``device`` overrides every sweep's ``train.device`` (``cuda``: one member batch per GPU worker,
:func:`compare.deep_runner.members_per_batch`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fls.compare import registry
from fls.compare.claim_figures import draw_claim
from fls.compare.config import read_toml
from fls.compare.deep_config import expand_deep_runs, load_deep_config
from fls.compare.deep_report import write_deep_report
from fls.compare.deep_runner import run_deep_batch
from fls.compare.report import claims_table
from fls.compare.sweep import run_sweep
from fls.compare.vocabulary import THREAD_VARIABLES

CONFIGS = Path(__file__).parent / "configs"
#: The default sweeps: name -> packaged config.
DEFAULT_SWEEPS = {
    "digits-mlp": CONFIGS / "deep_digits.toml",
    "digits-cnn": CONFIGS / "deep_digits_cnn.toml",
    "mnist1d-mlp": CONFIGS / "deep_mnist1d.toml",
    "equivalence": CONFIGS / "deep_equivalence.toml",
}
FAMILY = "deep"


def deep_sweeps(
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None, *, device: str | None = None
) -> dict[str, dict[str, Any]]:
    """The resolved configs to run: :data:`DEFAULT_SWEEPS`, or ``config`` alone (named by its
    ``sweep.name``), each with ``train.device`` set to ``device`` when given."""
    raws = (
        {name: read_toml(path) for name, path in DEFAULT_SWEEPS.items()}
        if config is None
        else {"": dict(config) if isinstance(config, Mapping) else read_toml(config)}
    )
    sweeps = {}
    for name, raw in raws.items():
        if device is not None:
            raw = {**raw, "train": {**raw.get("train", {}), "device": device}}
        resolved = load_deep_config(raw)
        sweeps[name or resolved["sweep"]["name"]] = resolved
    return sweeps


def _thresholds(sweeps: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The [claims.<key>] tables of every sweep, merged."""
    merged: dict[str, dict[str, Any]] = {}
    for config in sweeps.values():
        for key, value in config["claims"].items():
            if isinstance(value, Mapping):
                merged.setdefault(key, {}).update(value)
    return merged


def verify_deep(
    out_dir: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    device: str | None = None,
) -> Path:
    """Run the deep sweeps (module docstring) into ``out_dir/store-<name>``, check the claims of the deep
    family on all their runs together, write ``out_dir/deep_report.md``, ``out_dir/deep_claims.json`` and
    ``out_dir/figures/``, print the claims and the wall times, and return the report's path."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    sweeps = deep_sweeps(config, device=device)
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    tables, seconds = {}, {}
    for name, resolved in sweeps.items():
        began = time.perf_counter()
        tables[name] = run_sweep(
            resolved,
            out_dir / f"store-{name}",
            workers=workers,
            scheduler=scheduler,
            runner=run_deep_batch,
            progress=False,
            runs=expand_deep_runs(resolved),
        )
        seconds[name] = time.perf_counter() - began
        print(f"sweep {name}: {len(tables[name])} runs in {seconds[name]:.1f} s")
    combined = pd.concat([table.assign(sweep=name) for name, table in tables.items()], ignore_index=True)
    results = registry.check_claims(combined, families=[FAMILY], thresholds=_thresholds(sweeps))
    results = [draw_claim(combined, result, out_dir / "figures") for result in results]
    (out_dir / "deep_claims.json").write_text(json.dumps([r.to_dict() for r in results], indent=1))
    total = time.perf_counter() - start
    path = write_deep_report(out_dir, results, tables, seconds, total)
    print(claims_table(results))
    for result in results:
        print(f"({result.key}) {result.verdict}: {result.reason}")
    print(f"{len(combined)} runs; wall time {total:.1f} s; report: {path}")
    return path
