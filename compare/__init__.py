"""compare: sweeps of runs over a grid, a resumable run store, metrics, regimes, claims, plots and the `fls` CLI.

The entry points of the sweep machinery: ``load_config`` (check a TOML config and resolve its defaults),
``run_sweep`` (run it on a local process pool or on Dask, into a store) and ``open_store`` (read a store's run
table, trajectories and config).
"""

from fls.compare.config import load_config
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep

__all__ = ["load_config", "open_store", "run_sweep"]
