"""The run store: one row per run_id, newest write wins, trajectories in long format, partial writes ignored and
cleaned, a store keeps one sweep."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fls.compare.config import ConfigError
from fls.compare.store import create_store, open_store
from fls.theory.validation import ParameterError

CONFIG = {
    "data": {"model": "gaussian_mixture", "n": 8, "d": 3},
    "model": {"width": 4},
    "grid": {"model.alpha": [0.1, 1.0], "seeds": [0, 1]},
    "sweep": {"name": "s", "batch_size": 2},
}


def row(alpha: float, seed: int, **extra) -> dict:
    return {"run_id": f"id-{alpha}-{seed}", "model.alpha": alpha, "seed": seed, "status": "t_max", **extra}


def test_rows_of_all_batches_form_one_table_sorted_by_the_grid(tmp_path):
    store = create_store(tmp_path, CONFIG)
    store.write_batch([row(1.0, 1, test_error=0.5), row(0.1, 1, test_error=0.25)], [{}, {}])
    store.write_batch([row(1.0, 0, status="failed", message="boom"), row(0.1, 0, test_error=0.125)], [{}, {}])
    table = open_store(tmp_path).table()
    assert list(table["run_id"]) == ["id-0.1-0", "id-0.1-1", "id-1.0-0", "id-1.0-1"]
    assert table["test_error"].tolist()[:2] == [0.125, 0.25] and np.isnan(table["test_error"][2])
    assert table["message"].tolist()[2] == "boom" and pd.isna(table["message"][0])
    assert table["seed"].dtype == np.int64 and table["model.alpha"].dtype == np.float64


def test_the_newest_row_of_a_run_id_wins_and_statuses_agree(tmp_path):
    store = create_store(tmp_path, CONFIG)
    store.write_batch([row(0.1, 0, status="failed"), row(1.0, 0, status="failed")], [{}, {}])
    store.write_batch([row(0.1, 0, status="target_reached", test_error=0.5)], [{"t": [0.0, 1.0]}])
    table = store.table()
    assert len(table) == 2 and table.set_index("run_id")["status"].to_dict() == store.statuses()
    assert store.statuses() == {"id-0.1-0": "target_reached", "id-1.0-0": "failed"}
    assert store.arrays("id-0.1-0")["t"].tolist() == [0.0, 1.0]


def test_trajectories_come_back_in_long_format(tmp_path):
    store = create_store(tmp_path, CONFIG)
    risk = np.array([0.7, 0.3, 0.1])
    store.write_batch(
        [row(0.1, 0), row(0.1, 1), row(1.0, 0)], [{"t": [0.0, 2.0, 4.0], "risk": risk}, {}, {"t": [5.0]}]
    )
    long = store.trajectories()
    assert list(long.columns) == ["run_id", "key", "index", "value"] and len(long) == 7
    mine = long[(long["run_id"] == "id-0.1-0") & (long["key"] == "risk")]
    assert mine["index"].tolist() == [0, 1, 2] and np.array_equal(mine["value"].to_numpy(), risk)
    assert store.trajectories(["id-1.0-0"])[["key", "index", "value"]].values.tolist() == [["t", 0, 5.0]]
    assert store.trajectories(["nobody"]).empty and store.arrays("id-0.1-1") == {}
    assert set(store.arrays("id-0.1-0")) == {"t", "risk"}


def test_partial_writes_are_ignored_by_readers_and_removed_before_a_resume(tmp_path):
    store = create_store(tmp_path, CONFIG)
    store.write_batch([row(0.1, 0)], [{"t": [1.0]}])
    (tmp_path / "runs" / ".tmp-killed.parquet").write_bytes(b"PAR1 half a file")
    (tmp_path / "trajectories" / ".tmp-killed.parquet").write_bytes(b"garbage")
    orphan = tmp_path / "trajectories" / "part-00000009-abc.parquet"  # its batch never committed its rows
    pq.write_table(pq.read_table(next((tmp_path / "trajectories").glob("part-*"))), orphan)
    assert len(store.table()) == 1 and len(store.trajectories()) == 1
    assert store.repair().removed == 3
    committed = next((tmp_path / "runs").glob("part-*")).name
    left = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.parquet")}
    assert left == {f"runs/{committed}", f"trajectories/{committed}"}


def test_a_batch_with_a_truncated_part_is_quarantined_whole_so_it_runs_again(tmp_path):
    store = create_store(tmp_path, CONFIG)
    kept = store.write_batch([row(0.1, 0)], [{"t": [1.0]}])
    lost = store.write_batch([row(0.1, 1), row(1.0, 1)], [{"t": [1.0]}, {"t": [2.0, 3.0]}])
    store.write_batch([row(1.0, 0)], [{"t": [4.0]}])
    truncated = tmp_path / "trajectories" / lost.name
    truncated.write_bytes(truncated.read_bytes()[:-20])  # as a power loss may leave it
    assert [str(problem) for problem in store.damage()] == [f"trajectories/{lost.name}: checksum mismatch"]
    repair = store.repair()
    assert repair.quarantined == [f"runs/{lost.name}", f"trajectories/{lost.name}"] and repair.removed == 0
    assert not lost.exists() and not truncated.exists() and kept.exists() and store.damage() == []
    assert (tmp_path / "quarantine" / "runs" / lost.name).exists()
    assert sorted(store.statuses()) == ["id-0.1-0", "id-1.0-0"]
    assert store.arrays("id-1.0-0")["t"].tolist() == [4.0]


def test_a_store_keeps_one_sweep(tmp_path):
    create_store(tmp_path, CONFIG)
    renamed = {**CONFIG, "sweep": {"name": "renamed", "batch_size": 8}}
    assert create_store(tmp_path, renamed).config()["sweep"]["name"] == "renamed"
    wider = {**CONFIG, "model": {"width": 5}, "grid": {"model.alpha": [0.1], "seeds": [0, 1]}}
    with pytest.raises(
        ConfigError, match=r"differs in model\.width, grid\.model\.alpha.*new store directory"
    ):
        create_store(tmp_path, wider)


def test_open_store_needs_a_store_and_an_empty_store_has_an_empty_table(tmp_path):
    with pytest.raises(ParameterError, match="not a run store"):
        open_store(tmp_path)
    store = create_store(tmp_path / "new", CONFIG)
    assert store.table().empty and list(store.table().columns) == ["run_id", "status", "message"]
    assert store.trajectories().empty and store.statuses() == {}
