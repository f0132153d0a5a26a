"""compare: sweeps of runs over a grid, a resumable run store, metrics, regimes, claims, plots and the `fls`
CLI (docs/design.md section 5).

The entry points of the sweep machinery: ``load_config`` (check a TOML config and resolve its defaults),
``run_sweep`` (run it on a local process pool or on Dask, into a store) and ``open_store`` (read a store's run
table, trajectories and config). Each is imported on first access (PEP 562), so importing the package, as the
``fls`` command does, loads none of numpy, torch or the engines.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_EXPORTS = {
    "load_config": "fls.compare.config",
    "open_store": "fls.compare.store",
    "run_sweep": "fls.compare.sweep",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """``load_config``, ``open_store`` or ``run_sweep``, imported from its module on first access."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fls.compare' has no attribute {name!r}")
