"""The run store of a sweep: a Parquet run table keyed by run_id, per-run trajectories, and the sweep's config.

Layout of a store directory:

    config.toml                        the resolved config of the sweep (compare.toml_text.dump_config)
    runs/part-<seq>-<digest>.parquet   one file per finished batch: one row per run (the run's keys, "status",
                                       "message", the runner's metrics, "fls_version")
    trajectories/part-<same>.parquet   the batch's trajectories: one row per (run_id, key) with a list of floats
    analysis/table.parquet             the analysed run table (predictions and regimes added, compare.analyse)
    analysis/claims.json               the claims' verdict records and the fingerprint of what they were made from

Crash safety (a sweep killed at any moment, SIGKILL included, resumes without losing or duplicating a run):
every file is written under a temporary name (``.tmp-*``) in its final directory and renamed to its final name
(``os.replace``, atomic within a file system). The trajectories of a batch are renamed first and its runs part
last, so a batch counts as finished exactly when its runs part exists; readers ignore temporary files and
trajectory parts without their runs part, and :meth:`RunStore.remove_partial_writes` deletes both before a
sweep resumes. Files are not fsync'ed (a killed process loses nothing the kernel has); after a power loss, a
part the file system left truncated has no Parquet footer, and remove_partial_writes deletes it too, so its
batch runs again. A run_id written twice (a failed run computed again with ``retry_failed``) is read from the
newest part only (parts are numbered in write order).

One process writes to a store at a time (the sweep's driver); any number may read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fls.compare.config_schema import RUN_SECTIONS, ConfigError
from fls.compare.toml_text import dump_config
from fls.compare.vocabulary import SEEDS_KEY
from fls.theory.validation import ParameterError

CONFIG_FILE = "config.toml"
RUNS_DIR = "runs"
TRAJECTORIES_DIR = "trajectories"
PART_PREFIX = "part-"
TEMP_PREFIX = ".tmp-"
ANALYSIS_DIR = "analysis"
ANALYSIS_TABLE, ANALYSIS_CLAIMS = "table.parquet", "claims.json"
#: Columns every run table has, even an empty one.
BASE_COLUMNS = ("run_id", "status", "message")


def _write_atomically(path: Path, data: bytes | pa.Table) -> None:
    """Write ``data`` (raw bytes, or a table as Parquet) to ``path`` via a temporary file and a rename."""
    temporary = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}{path.suffix}")
    if isinstance(data, bytes):
        temporary.write_bytes(data)
    else:
        pq.write_table(data, temporary)
    os.replace(temporary, path)


def _read(part: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet part (the single-file reader: a few times faster than the dataset reader on small parts)."""
    with pq.ParquetFile(part) as reader:
        return reader.read(columns=columns, use_threads=False)


def _readable(part: Path) -> bool:
    """Whether a Parquet file is complete (its footer reads)."""
    try:
        pq.read_metadata(part)
    except (OSError, pa.ArrowException):
        return False
    return True


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts of scalars, keys possibly differing between rows) as a table; a missing key is null."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return pa.table({name: pa.array([row.get(name) for row in rows]) for name in columns})


def _trajectories_table(run_ids: Sequence[str], arrays: Sequence[Mapping[str, Any]]) -> pa.Table:
    """One row per (run_id, key) with the trajectory as a list<float64>."""
    owners, keys, chunks = [], [], []
    for owner, named in zip(run_ids, arrays, strict=True):
        for key, values in named.items():
            owners.append(owner)
            keys.append(key)
            chunks.append(np.asarray(values, dtype=np.float64).reshape(-1))
    offsets = np.concatenate([[0], np.cumsum([len(chunk) for chunk in chunks], dtype=np.int64)])
    flat = np.concatenate(chunks) if chunks else np.zeros(0)
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(flat, pa.float64()))
    return pa.table(
        {"run_id": pa.array(owners, pa.string()), "key": pa.array(keys, pa.string()), "values": lists}
    )


def _newest(table: pa.Table, keys: np.ndarray) -> pa.Table:
    """The rows of ``table`` (in write order) that hold the last occurrence of their key."""
    _, last_from_end = np.unique(keys[::-1], return_index=True)
    return table.take(np.sort(len(keys) - 1 - last_from_end))


def _differences(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Dotted keys of the run-defining tables whose values differ between two resolved configs."""
    changed = []
    for section in (*RUN_SECTIONS, "grid"):
        before, after = old.get(section, {}), new.get(section, {})
        changed += [
            f"{section}.{key}"
            for key in dict.fromkeys([*before, *after])
            if before.get(key) != after.get(key)
        ]
    return changed


class RunStore:
    """Read and write the store in ``directory`` (see the module docstring for the layout)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._runs = self.directory / RUNS_DIR
        self._trajectories = self.directory / TRAJECTORIES_DIR
        self._sequence: int | None = None

    def __repr__(self) -> str:
        return f"RunStore({str(self.directory)!r})"

    def config(self) -> dict[str, Any]:
        """The resolved config of the sweep (config.toml)."""
        with open(self.directory / CONFIG_FILE, "rb") as handle:
            return tomllib.load(handle)

    def _parts(self) -> list[Path]:
        """Finished batches' run parts, oldest first."""
        return sorted(self._runs.glob(f"{PART_PREFIX}*.parquet"))

    def _newest_rows(self, columns: Sequence[str] | None = None) -> pa.Table | None:
        """The rows of every part (newest row per run_id), or None for an empty store."""
        parts = self._parts()
        if not parts:
            return None
        tables = [_read(part, columns) for part in parts]
        combined = pa.concat_tables(tables, promote_options="permissive")
        return _newest(combined, combined.column("run_id").to_numpy(zero_copy_only=False))

    def statuses(self) -> dict[str, str]:
        """run_id -> status of every finished run."""
        rows = self._newest_rows(["run_id", "status"])
        if rows is None:
            return {}
        return dict(zip(rows.column("run_id").to_pylist(), rows.column("status").to_pylist(), strict=True))

    def table(self) -> pd.DataFrame:
        """The run table: one row per finished run_id, sorted by the grid keys (outermost first), then run_id."""
        rows = self._newest_rows()
        if rows is None:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        frame = rows.to_pandas()
        grid = self.config().get("grid", {})
        order = [("seed" if key == SEEDS_KEY else key) for key in grid]
        order = [key for key in order if key in frame.columns] + ["run_id"]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)

    def fingerprint(self) -> str:
        """A digest of the finished batches (their part names): it changes whenever a batch is committed."""
        names = "\n".join(part.name for part in self._parts())
        return hashlib.sha256(names.encode()).hexdigest()[:16]

    def write_analysis(self, table: pd.DataFrame, record: Mapping[str, Any]) -> None:
        """Store the analysed run table and a JSON record (the claims' results and what they were made from)
        beside the run table, each file written atomically; the record is written last."""
        directory = self.directory / ANALYSIS_DIR
        directory.mkdir(exist_ok=True)
        _write_atomically(directory / ANALYSIS_TABLE, pa.Table.from_pandas(table, preserve_index=False))
        _write_atomically(directory / ANALYSIS_CLAIMS, json.dumps(record, indent=1).encode())

    def analysis(self) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """The stored analysis (table, record) of :meth:`write_analysis`, or None when there is none."""
        directory = self.directory / ANALYSIS_DIR
        if not (directory / ANALYSIS_CLAIMS).exists():
            return None
        record = json.loads((directory / ANALYSIS_CLAIMS).read_text())
        return _read(directory / ANALYSIS_TABLE).to_pandas(), record

    def _trajectory_rows(self, run_ids: Iterable[str] | None) -> pa.Table | None:
        committed = [self._trajectories / part.name for part in self._parts()]
        committed = [part for part in committed if part.exists()]
        tables = [_read(part) for part in committed]
        if run_ids is not None:
            wanted = pa.array([str(owner) for owner in run_ids], pa.string())
            tables = [table.filter(pc.is_in(table.column("run_id"), value_set=wanted)) for table in tables]
        tables = [table for table in tables if table.num_rows]
        if not tables:
            return None
        combined = pa.concat_tables(tables)
        pairs = pc.binary_join_element_wise(combined.column("run_id"), combined.column("key"), "\x00")
        return _newest(combined, pairs.to_numpy(zero_copy_only=False))

    def trajectories(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Trajectories in long format: columns run_id, key, index, value (all runs, or those in ``run_ids``)."""
        rows = self._trajectory_rows(run_ids)
        if rows is None:
            return pd.DataFrame(
                {"run_id": [], "key": [], "index": np.zeros(0, np.int64), "value": np.zeros(0)}
            )
        lists = rows.column("values").combine_chunks()
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return pd.DataFrame(
            {
                "run_id": np.repeat(rows.column("run_id").to_numpy(zero_copy_only=False), lengths),
                "key": np.repeat(rows.column("key").to_numpy(zero_copy_only=False), lengths),
                "index": np.arange(int(lengths.sum()), dtype=np.int64) - starts,
                "value": pc.list_flatten(lists).to_numpy(zero_copy_only=False),
            }
        )

    def arrays(self, run_id: str) -> dict[str, np.ndarray]:
        """The trajectories of one run as key -> 1-D float64 array (empty dict if it has none)."""
        rows = self._trajectory_rows([run_id])
        if rows is None:
            return {}
        return {
            key: np.asarray(values, dtype=np.float64)
            for key, values in zip(
                rows.column("key").to_pylist(), rows.column("values").to_pylist(), strict=True
            )
        }

    def write_batch(self, rows: Sequence[Mapping[str, Any]], arrays: Sequence[Mapping[str, Any]]) -> Path:
        """Commit one finished batch: its trajectories, then its rows (the commit point). Returns the runs part."""
        if self._sequence is None:
            numbers = [int(part.name[len(PART_PREFIX) :].split("-")[0]) for part in self._parts()]
            self._sequence = max(numbers, default=-1) + 1
        run_ids = [str(row["run_id"]) for row in rows]
        digest = hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:12]
        name = f"{PART_PREFIX}{self._sequence:08d}-{digest}.parquet"
        self._sequence += 1
        if any(arrays):
            _write_atomically(self._trajectories / name, _trajectories_table(run_ids, arrays))
        _write_atomically(self._runs / name, _rows_table(rows))
        return self._runs / name

    def remove_partial_writes(self) -> int:
        """Delete temporary files, trajectory parts whose batch never committed, and both parts of a batch with
        an unreadable (truncated) one, so that batch runs again; returns how many files it deleted."""
        folders = (self.directory, self._runs, self._trajectories)
        leftovers = [path for folder in folders for path in folder.glob(f"{TEMP_PREFIX}*")]
        runs = self._parts()
        trajectories = sorted(self._trajectories.glob(f"{PART_PREFIX}*.parquet"))
        broken = {part.name for part in [*runs, *trajectories] if not _readable(part)}
        committed = {part.name for part in runs} - broken
        leftovers += [part for part in runs if part.name in broken]
        leftovers += [part for part in trajectories if part.name not in committed]
        for path in leftovers:
            path.unlink()
        return len(leftovers)


def open_store(store_dir: str | os.PathLike[str]) -> RunStore:
    """The store a sweep wrote to ``store_dir``; ``open_store(d).table()`` is its run table (a DataFrame)."""
    store = RunStore(store_dir)
    if not (store.directory / CONFIG_FILE).is_file():
        raise ParameterError(
            f"store_dir = {str(store_dir)!r} is not a run store (it has no {CONFIG_FILE}); "
            "allowed: a directory written by run_sweep or `fls sweep`"
        )
    return store


def create_store(store_dir: str | os.PathLike[str], config: Mapping[str, Any]) -> RunStore:
    """Open the store of ``config`` in ``store_dir``, creating it if needed.

    An existing store must hold the same sweep: its [data], [model], [train], [stop] and [grid] must equal
    ``config``'s, else ConfigError names the differing keys (a store's runs stay one sweep's runs). The other
    tables ([phase], [sweep]) may change and config.toml is updated.
    """
    store = RunStore(store_dir)
    path = store.directory / CONFIG_FILE
    if path.is_file():
        changed = _differences(store.config(), config)
        if changed:
            raise ConfigError(
                f"store {str(store.directory)!r} holds a different sweep (differs in {', '.join(changed)}); "
                "allowed: the store's own config (its config.toml), or a new store directory"
            )
    for directory in (store.directory, store._runs, store._trajectories):
        directory.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, dump_config(config).encode("utf-8"))
    return store
