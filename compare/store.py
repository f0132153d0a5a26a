"""The run store of a sweep: a Parquet run table keyed by run_id, per-run trajectories, and the sweep's config.

Layout of a store directory:

    config.toml                        the resolved config of the sweep (compare.toml_text.dump_config)
    manifest.jsonl                     the committed batches with their checksums, and the config (compare.manifest)
    lock                               who is writing the store (compare.lock)
    quarantine/                        damaged parts moved aside by a resume
    runs/part-<seq>-<digest>.parquet   one file per finished batch: one row per run (the run's keys, "status",
                                       "message", the runner's metrics, "fls_version")
    trajectories/part-<same>.parquet   the batch's trajectories: one row per (run_id, key) with a list of floats
    analysis/table.parquet             the analysed run table (predictions and regimes added, compare.analyse)
    analysis/claims.json               the claims' verdict records and the fingerprint of what they were made from

Crash safety (a sweep killed at any moment, SIGKILL included, resumes without losing or duplicating a run):
every file is written under a temporary name (``.tmp-*``) in its final directory and renamed to its final name
(``os.replace``, atomic within a file system). A batch's trajectories part and runs part are written first; the
batch is committed when its line, with the SHA-256 of both parts, is appended to the store's manifest
(compare.manifest). Readers read only committed parts. Files are not fsync'ed (a killed process loses nothing
the kernel has).

Integrity: every read of a part checks its checksum, so a damaged part (a flipped bit, a truncated file, a
deleted one) is never read as data: readers skip it and :meth:`RunStore.damage` names it. Before a sweep
resumes, :meth:`RunStore.repair` deletes temporary files and parts that never committed, moves damaged parts
to ``quarantine/`` and drops their manifest lines, so their batches run again. A run_id written twice (a failed
run computed again with ``retry_failed``) is read from the newest part only (parts are numbered in write order).

One process writes to a store at a time (the sweep's driver, holding compare.lock); any number may read it.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fls.compare.config import read_toml
from fls.compare.config_schema import RUN_SECTIONS, ConfigError
from fls.compare.manifest import (
    MANIFEST_FILE,
    Manifest,
    PartEntry,
    append_config,
    append_part,
    digest,
    read_manifest,
    rewrite_manifest,
    sealed,
    unsealed,
)
from fls.compare.toml_text import dump_config
from fls.compare.vocabulary import SEEDS_KEY
from fls.theory.validation import ParameterError

CONFIG_FILE = "config.toml"
RUNS_DIR = "runs"
TRAJECTORIES_DIR = "trajectories"
PART_PREFIX = "part-"
TEMP_PREFIX = ".tmp-"
QUARANTINE_DIR = "quarantine"
ANALYSIS_DIR = "analysis"
ANALYSIS_TABLE, ANALYSIS_CLAIMS = "table.parquet", "claims.json"
#: Columns every run table has, even an empty one.
BASE_COLUMNS = ("run_id", "status", "message")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    temporary = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}{path.suffix}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _parquet_bytes(table: pa.Table) -> bytes:
    """A table as the bytes of a Parquet file."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _read(source: Path | bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet part, from its path or its bytes (the single-file reader: a few times faster than the dataset
    reader on small parts)."""
    with pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source) as reader:
        return reader.read(columns=columns, use_threads=False)


def _readable(part: Path) -> bool:
    """Whether a Parquet file is complete (its footer reads)."""
    try:
        pq.read_metadata(part)
    except (OSError, pa.ArrowException):
        return False
    return True


def _checked_bytes(path: Path, expected: str) -> bytes | str:
    """The bytes of ``path`` when their SHA-256 is ``expected``, else why not (missing, checksum mismatch)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return data if digest(data) == expected else "checksum mismatch"


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

    def _manifest(self) -> Manifest:
        return read_manifest(self.directory)

    def config(self) -> dict[str, Any]:
        """The resolved config of the sweep: the newest one in the manifest (config.toml in a store written
        before manifests, or when the manifest's is damaged)."""
        text = self._manifest().config_text
        if text is not None:
            return tomllib.loads(text)
        return read_toml(self.directory / CONFIG_FILE)

    def _config_copy(self) -> str | None:
        """The text of config.toml, the copy of the config for people to read; None when it cannot be read."""
        try:
            return (self.directory / CONFIG_FILE).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _entries(self) -> list[PartEntry]:
        """The committed batches, oldest first: the manifest's parts, or in a store written before manifests,
        every complete runs part (with no checksum to check)."""
        manifest = self._manifest()
        if manifest.exists:
            return sorted(manifest.parts.values(), key=lambda entry: entry.name)
        return [
            PartEntry(part.name, "", None, 0)
            for part in sorted(self._runs.glob(f"{PART_PREFIX}*.parquet"))
            if _readable(part)
        ]

    def _part(self, folder: Path, name: str, expected: str | None) -> pa.Table | str:
        """A committed part as a table, or why it cannot be read (checked against ``expected`` when known)."""
        if not expected:
            return _read(folder / name) if _readable(folder / name) else "unreadable"
        data = _checked_bytes(folder / name, expected)
        if isinstance(data, str):
            return data
        try:
            return _read(data)
        except (OSError, pa.ArrowException):
            return "unreadable Parquet"

    def damage(self) -> list[Damage]:
        """What is wrong with the store: damaged manifest lines, a config.toml that is not the manifest's
        config, and committed parts that are missing or fail their checksum. Empty for a sound store."""
        manifest = self._manifest()
        problems = [
            Damage(f"{MANIFEST_FILE} line {line}", "damaged", None) for line in manifest.damaged_lines
        ]
        if manifest.config_text is not None and self._config_copy() != manifest.config_text:
            problems.append(Damage(CONFIG_FILE, "differs from the manifest's config (which is used)", None))
        for entry in self._entries():
            for folder, expected in ((self._runs, entry.runs), (self._trajectories, entry.trajectories)):
                found = _checked_bytes(folder / entry.name, expected) if expected else b""
                if isinstance(found, str):
                    problems.append(Damage(f"{folder.name}/{entry.name}", found, entry.name))
        return problems

    def _newest_rows(self, columns: Sequence[str] | None = None) -> pa.Table | None:
        """The rows of every sound committed part (newest row per run_id), or None when there are none."""
        tables = [self._part(self._runs, entry.name, entry.runs) for entry in self._entries()]
        tables = [table for table in tables if not isinstance(table, str)]
        if not tables:
            return None
        if columns is not None:
            tables = [
                table.select([name for name in columns if name in table.column_names]) for table in tables
            ]
        combined = pa.concat_tables(tables, promote_options="permissive")
        return _newest(combined, combined.column("run_id").to_numpy(zero_copy_only=False))

    def statuses(self) -> dict[str, str]:
        """run_id -> status of every finished run."""
        rows = self._newest_rows(["run_id", "status"])
        if rows is None:
            return {}
        return dict(zip(rows.column("run_id").to_pylist(), rows.column("status").to_pylist(), strict=True))

    def table(self) -> pd.DataFrame:
        """The run table: one row per finished run_id in a sound part, sorted by the grid keys (outermost
        first), then run_id. Runs of damaged parts are left out (:meth:`damage` says which parts)."""
        rows = self._newest_rows()
        if rows is None:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        frame = rows.to_pandas()
        grid = self.config().get("grid", {})
        order = [("seed" if key == SEEDS_KEY else key) for key in grid]
        order = [key for key in order if key in frame.columns] + ["run_id"]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)

    def provenance(self) -> pd.DataFrame:
        """Where each run of a sound part was computed: run_id and the fields of compare.provenance (empty
        for batches committed without it)."""
        frames = []
        for entry in self._entries():
            rows = self._part(self._runs, entry.name, entry.runs)
            if entry.provenance and not isinstance(rows, str):
                ids = rows.column("run_id").to_pylist()
                frames.append(
                    pd.DataFrame({"run_id": ids, **{k: [v] * len(ids) for k, v in entry.provenance.items()}})
                )
        if not frames:
            return pd.DataFrame({"run_id": []})
        return pd.concat(frames).drop_duplicates("run_id", keep="last").reset_index(drop=True)

    def fingerprint(self) -> str:
        """A digest of the finished batches (their part names): it changes whenever a batch is committed."""
        names = "\n".join(f"{entry.name} {entry.runs}" for entry in self._entries())
        return digest(names.encode())[:16]

    def write_analysis(self, table: pd.DataFrame, record: Mapping[str, Any]) -> None:
        """Store the analysed run table and a JSON record (the claims' results and what they were made from)
        beside the run table, each file written atomically; the record is written last."""
        directory = self.directory / ANALYSIS_DIR
        directory.mkdir(exist_ok=True)
        data = _parquet_bytes(pa.Table.from_pandas(table, preserve_index=False))
        _write_atomically(directory / ANALYSIS_TABLE, data)
        _write_atomically(directory / ANALYSIS_CLAIMS, sealed({**record, "table_sha256": digest(data)}))

    def analysis(self) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """The stored analysis (table, record) of :meth:`write_analysis`, or None when there is none or either
        file fails its checksum (the analysis is then made again: it is derived from the run table)."""
        directory = self.directory / ANALYSIS_DIR
        try:
            record = unsealed((directory / ANALYSIS_CLAIMS).read_bytes())
        except FileNotFoundError:
            return None
        if record is None:
            return None
        data = _checked_bytes(directory / ANALYSIS_TABLE, str(record.pop("table_sha256", "")))
        if isinstance(data, str):
            return None
        return _read(data).to_pandas(), record

    def _trajectory_rows(self, run_ids: Iterable[str] | None) -> pa.Table | None:
        found = [
            self._part(self._trajectories, entry.name, entry.trajectories)
            for entry in self._entries()
            if entry.trajectories or (not entry.runs and (self._trajectories / entry.name).exists())
        ]
        tables = [table for table in found if not isinstance(table, str)]
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

    def write_batch(
        self,
        rows: Sequence[Mapping[str, Any]],
        arrays: Sequence[Mapping[str, Any]],
        provenance: Mapping[str, Any] | None = None,
    ) -> Path:
        """Commit one finished batch: its trajectories and rows parts, then its manifest line (the commit point)
        with the batch's ``provenance`` (compare.provenance). Returns the runs part."""
        if self._sequence is None:
            manifest = self._manifest()
            numbers = [int(name[len(PART_PREFIX) :].split("-")[0]) for name in manifest.parts]
            numbers += [
                int(part.name[len(PART_PREFIX) :].split("-")[0]) for part in self._runs.glob("part-*")
            ]
            self._sequence = max(numbers, default=-1) + 1
        run_ids = [str(row["run_id"]) for row in rows]
        name = f"{PART_PREFIX}{self._sequence:08d}-{digest(chr(10).join(run_ids).encode())[:12]}.parquet"
        self._sequence += 1
        trajectories = None
        if any(arrays):
            data = _parquet_bytes(_trajectories_table(run_ids, arrays))
            _write_atomically(self._trajectories / name, data)
            trajectories = digest(data)
        data = _parquet_bytes(_rows_table(rows))
        _write_atomically(self._runs / name, data)
        record = None if provenance is None else dict(provenance)
        append_part(self.directory, PartEntry(name, digest(data), trajectories, len(rows), record))
        return self._runs / name

    def repair(self) -> StoreRepair:
        """Make the store sound before a sweep resumes (the caller holds its lock): delete temporary files and
        parts that never committed, move damaged parts to ``quarantine/``, and rewrite the manifest with its
        good lines only, so the batches of damaged or missing parts run again. A store written before
        manifests gets one (its complete parts are adopted as they are)."""
        manifest = self._manifest()
        folders = (self.directory, self._runs, self._trajectories)
        removed = [path for folder in folders for path in folder.glob(f"{TEMP_PREFIX}*")]
        entries = (
            self._adopted()
            if not manifest.exists
            else sorted(manifest.parts.values(), key=lambda entry: entry.name)
        )
        problems = self.damage() if manifest.exists else []
        broken = {problem.part for problem in problems if problem.part is not None}
        sound = [entry for entry in entries if entry.name not in broken]
        kept = {entry.name for entry in sound}
        quarantined = []
        for folder in (self._runs, self._trajectories):
            for part in sorted(folder.glob(f"{PART_PREFIX}*.parquet")):
                if part.name in broken:
                    target = self.directory / QUARANTINE_DIR / folder.name
                    target.mkdir(parents=True, exist_ok=True)
                    os.replace(part, target / part.name)
                    quarantined.append(f"{folder.name}/{part.name}")
                elif part.name not in kept:
                    removed.append(part)
        for path in removed:
            path.unlink()
        if manifest.damaged_lines or manifest.torn_tail or broken or not manifest.exists:
            config_text = manifest.config_text
            if config_text is None and (self.directory / CONFIG_FILE).is_file():
                config_text = (self.directory / CONFIG_FILE).read_text()
            rewrite_manifest(self.directory, config_text, sound)
        return StoreRepair(len(removed), quarantined, problems)

    def _adopted(self) -> list[PartEntry]:
        """Manifest entries for the complete parts of a store written before manifests."""
        entries = []
        for part in sorted(self._runs.glob(f"{PART_PREFIX}*.parquet")):
            trajectories = self._trajectories / part.name
            if not _readable(part) or (trajectories.exists() and not _readable(trajectories)):
                continue
            traj = digest(trajectories.read_bytes()) if trajectories.exists() else None
            entries.append(
                PartEntry(part.name, digest(part.read_bytes()), traj, pq.read_metadata(part).num_rows)
            )
        return entries


@dataclass(frozen=True)
class Damage:
    """A problem :meth:`RunStore.damage` found: the file (relative to the store), what is wrong with it, and
    the batch part it belongs to (None for a manifest line)."""

    file: str
    reason: str
    part: str | None

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class StoreRepair:
    """What :meth:`RunStore.repair` did: files deleted (temporary, never committed), parts quarantined (by
    name) and the problems it found (:meth:`RunStore.damage`)."""

    removed: int
    quarantined: list[str]
    problems: list[Damage]


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
    if path.is_file() or store._manifest().config_text is not None:
        changed = _differences(store.config(), config)
        if changed:
            raise ConfigError(
                f"store {str(store.directory)!r} holds a different sweep (differs in {', '.join(changed)}); "
                "allowed: the store's own config (its config.toml), or a new store directory"
            )
    for directory in (store.directory, store._runs, store._trajectories):
        directory.mkdir(parents=True, exist_ok=True)
    text = dump_config(config)
    _write_atomically(path, text.encode("utf-8"))
    if store._manifest().config_text != text:
        append_config(store.directory, text)
    return store
