"""Sweeps: batching, resuming without recomputing, recording failures, the process pool and Dask giving the same
table as a run in this process, and a sweep SIGKILLed twice that resumes to the table of an uninterrupted one.

The runners here are deterministic stand-ins for compare.runner.execute_batch (module-level, so worker processes
and the subprocesses of the kill test can import them).
"""

import io
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fls.compare.config import ConfigError, expand_runs, load_config
from fls.compare.store import open_store
from fls.compare.sweep import make_batches, run_sweep
from fls.compare.vocabulary import ENSEMBLE_KEYS
from fls.theory.validation import ParameterError

REPO = Path(__file__).resolve().parents[2]
ORIGINAL_ENVIRONMENT = dict(os.environ)
#: Seconds the slow runner spends per run.
SLEEP_PER_RUN = 0.04


@dataclass
class FakeOutput:
    row: dict
    arrays: dict = field(default_factory=dict)


def fake_runner(runs: list[dict]) -> list[FakeOutput]:
    """Status from alpha (alpha >= 10 diverges), metrics and a risk curve drawn from the run id."""
    outputs = []
    for run in runs:
        draw = int(run["run_id"][:8], 16) / 2**32
        status = "diverged" if run["model.alpha"] >= 10 else "target_reached"
        row = {**run, "status": status, "message": f"alpha = {run['model.alpha']}", "test_error": draw}
        row["steps"] = int(1000 * draw)
        outputs.append(FakeOutput(row, {"t": np.arange(4.0), "risk": draw * np.exp(-np.arange(4.0))}))
    return outputs


def slow_runner(runs: list[dict]) -> list[FakeOutput]:
    time.sleep(SLEEP_PER_RUN * len(runs))
    return fake_runner(runs)


def thread_reporting_runner(runs: list[dict]) -> list[FakeOutput]:
    """fake_runner, plus the thread counts of torch and of the BLAS / OpenMP libraries numpy loaded."""
    import torch
    from threadpoolctl import threadpool_info

    outputs = fake_runner(runs)
    for output in outputs:
        output.row["torch_threads"] = torch.get_num_threads()
        output.row["library_threads"] = max(pool["num_threads"] for pool in threadpool_info())
    return outputs


def sweep_config(grid: dict, batch_size: int = 4) -> dict:
    return {
        "data": {"n": 12, "d": 3},
        "model": {"width": 4},
        "grid": grid,
        "sweep": {"name": "test", "batch_size": batch_size},
    }


#: 60 runs in 2 groups (data.n) of 30: 20 batches of 3.
KILL_CONFIG = sweep_config({"data.n": [12, 16], "model.alpha": [0.01, 0.1, 1.0, 10.0, 100.0], "seeds": 6}, 3)
SMALL_CONFIG = sweep_config(
    {"model.alpha": [0.1, 1.0, 10.0], "model.init": ["gaussian", "antisymmetric"], "seeds": 3}
)


def trajectories(store: Path) -> pd.DataFrame:
    """A store's trajectories in a fixed row order (the store returns them in the order batches finished)."""
    long = open_store(store).trajectories()
    return long.sort_values(["run_id", "key", "index"]).reset_index(drop=True)


class CountingRunner:
    """An in-process runner that records the run ids it was asked for."""

    def __init__(self, runner=fake_runner) -> None:
        self.calls: list[list[str]] = []  # the run ids of each call
        self.runner = runner

    def __call__(self, runs):
        self.calls.append([run["run_id"] for run in runs])
        return self.runner(runs)


def test_batches_group_runs_that_differ_only_in_ensemble_keys_into_near_equal_chunks():
    runs = expand_runs(
        load_config(sweep_config({"data.n": [12, 16], "model.alpha": [0.1, 1.0, 10.0], "seeds": 5}))
    )
    for batch_size, slots in [(64, 1), (4, 1), (64, 2), (64, 4), (7, 3), (1, 1)]:
        batches = make_batches(runs, batch_size, slots)
        assert sorted(r["run_id"] for b in batches for r in b) == sorted(r["run_id"] for r in runs)
        assert len(batches) >= min(slots, len(runs))
        for batch in batches:
            shared = [{k: v for k, v in run.items() if k not in ENSEMBLE_KEYS} for run in batch]
            assert all(keys == shared[0] for keys in shared)
            assert 1 <= len(batch) <= min(batch_size, -(-len(runs) // slots))
        sizes = {}
        for batch in batches:
            sizes.setdefault(batch[0]["data.n"], []).append(len(batch))
        assert all(max(s) - min(s) <= 1 for s in sizes.values())
    assert [len(b) for b in make_batches(runs, 64)] == [15, 15]
    assert [len(b) for b in make_batches(runs, 4)] == [3, 4, 4, 4] * 2


def test_a_sweep_stores_every_run_once_and_a_second_sweep_computes_nothing(tmp_path):
    runner = CountingRunner()
    table = run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=runner, progress=False)
    runs = expand_runs(load_config(SMALL_CONFIG))
    assert sorted(table["run_id"]) == sorted(r["run_id"] for r in runs)
    assert sorted(rid for call in runner.calls for rid in call) == sorted(table["run_id"])
    again = CountingRunner()
    assert run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=again, progress=False).equals(table)
    assert again.calls == []
    expected = pd.DataFrame([output.row for output in fake_runner(runs)])
    merged = table.merge(expected, on="run_id", suffixes=("", "_expected"))
    assert np.array_equal(merged["test_error"], merged["test_error_expected"])
    assert (table["status"] == np.where(table["model.alpha"] >= 10, "diverged", "target_reached")).all()
    assert (table["fls"] == 1 / table["model.alpha"] ** 2).all()
    assert table["fls_version"].nunique() == 1
    first = table["run_id"][0]
    assert open_store(tmp_path).arrays(first)["t"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_config_error_stops_the_sweep_before_any_run_or_store(tmp_path):
    runner = CountingRunner()
    bad = sweep_config({"model.alpha": [0.1, -1.0]})
    with pytest.raises(ConfigError, match=r"model\.alpha = -1\.0 is out of range; allowed: \(0, inf\)"):
        run_sweep(bad, tmp_path / "store", workers=0, runner=runner)
    assert runner.calls == [] and not (tmp_path / "store").exists()


def _raising_for_antisymmetric(runs):
    if runs[0]["model.init"] == "antisymmetric":
        raise RuntimeError("engine exploded")
    return fake_runner(runs)


def _one_output_short(runs):
    return fake_runner(runs)[:-1]


def _failing_some(runs):
    outputs = fake_runner(runs)
    for output in outputs:
        if output.row["seed"] == 1:
            output.row.update(status="failed", message="no convergence", test_error=float("nan"))
    return outputs


def _row_with_a_list(runs):
    outputs = fake_runner(runs)
    outputs[0].row["history"] = [1.0, 2.0]
    return outputs


@pytest.mark.parametrize(
    ("runner", "failed", "message"),
    [
        (_row_with_a_list, lambda t: t["run_id"].notna(), "['history'] for run"),
        (
            _raising_for_antisymmetric,
            lambda t: t["model.init"] == "antisymmetric",
            "RuntimeError: engine exploded",
        ),
        (_one_output_short, lambda t: t["run_id"].notna(), "ValueError: runner returned"),
        (_failing_some, lambda t: t["seed"] == 1, "no convergence"),
    ],
)
def test_failures_are_recorded_per_run_and_never_stop_the_sweep(tmp_path, runner, failed, message):
    table = run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=runner, progress=False)
    assert len(table) == 18
    bad = failed(table)
    assert 0 < bad.sum() and (table.loc[bad, "status"] == "failed").all()
    assert table.loc[bad, "message"].str.contains(message, regex=False).all()
    assert set(table.loc[~bad, "status"]) <= {"target_reached", "diverged"}


def test_retry_failed_runs_only_the_failed_runs_again(tmp_path):
    run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=_raising_for_antisymmetric, progress=False)
    runner = CountingRunner()
    table = run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=runner, progress=False, retry_failed=True)
    retried = sorted(rid for call in runner.calls for rid in call)
    assert retried == sorted(table.loc[table["model.init"] == "antisymmetric", "run_id"])
    assert "failed" not in set(table["status"]) and len(table) == 18


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_counts_runs_done_running_and_failed_on_a_terminal_only(tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    # batches of 3 runs, each slower than tqdm's minimum redraw interval
    run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=slow_runner)
    drawn = terminal.getvalue()
    assert "18/18" in drawn and "failed=6" in drawn and "running=3" in drawn, drawn
    assert "test: " in drawn and "run/s" in drawn
    resumed = _Terminal()
    monkeypatch.setattr(sys, "stderr", resumed)
    run_sweep(SMALL_CONFIG, tmp_path, workers=0, runner=fake_runner)
    assert "18/18" in resumed.getvalue() and "0/18" not in resumed.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    run_sweep(SMALL_CONFIG, tmp_path / "quiet", workers=0, runner=fake_runner, progress=False)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"workers": -1}, "workers = -1 is out of range"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "workers = 2 applies to local workers"),
        ({"scheduler": "local:two"}, "'local:N' with N >= 1"),
        ({"scheduler": "local:0"}, "'local:N' with N >= 1"),
        ({"workers": 3, "scheduler": "local:2"}, "workers = 3 disagrees"),
        ({"workers": 2, "runner": lambda runs: fake_runner(runs)}, "cannot be sent to worker processes"),
    ],
)
def test_bad_backend_arguments_are_rejected_before_the_store_is_made(tmp_path, options, match):
    options = {"runner": fake_runner, **options}
    with pytest.raises(ParameterError, match=match):
        run_sweep(SMALL_CONFIG, tmp_path / "store", progress=False, **options)
    assert not (tmp_path / "store").exists()


def test_the_process_pool_gives_the_table_of_a_run_in_this_process_with_one_thread_per_worker(tmp_path):
    pytest.importorskip("threadpoolctl")
    serial = run_sweep(
        SMALL_CONFIG, tmp_path / "serial", workers=0, runner=thread_reporting_runner, progress=False
    )
    pooled = run_sweep(
        SMALL_CONFIG, tmp_path / "pool", workers=2, runner=thread_reporting_runner, progress=False
    )
    assert (pooled["torch_threads"] == 1).all() and (pooled["library_threads"] == 1).all()
    assert not set(os.environ) & {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"} - set(ORIGINAL_ENVIRONMENT)
    threads = ["library_threads"]  # this process's BLAS keeps its own count
    pd.testing.assert_frame_equal(pooled.drop(columns=threads), serial.drop(columns=threads), check_like=True)
    pd.testing.assert_frame_equal(trajectories(tmp_path / "pool"), trajectories(tmp_path / "serial"))


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_table_of_the_local_pool(tmp_path):
    pooled = run_sweep(SMALL_CONFIG, tmp_path / "pool", workers=2, runner=fake_runner, progress=False)
    dask = run_sweep(SMALL_CONFIG, tmp_path / "dask", scheduler="local:2", runner=fake_runner, progress=False)
    pd.testing.assert_frame_equal(dask, pooled, check_like=True)
    pd.testing.assert_frame_equal(trajectories(tmp_path / "dask"), trajectories(tmp_path / "pool"))


# ---- SIGKILL at random moments ----------------------------------------------------------------------------------

#: A sweep driver: it imports and checks everything first, then waits for a line on stdin to start, so the test
#: can start the next driver while the current one runs.
_DRIVER_SCRIPT = (
    "import sys\n"
    "from fls.compare.config import load_config\n"
    "from fls.compare.sweep import run_sweep\n"
    "from tests.compare.test_sweep import KILL_CONFIG, slow_runner\n"
    "load_config(KILL_CONFIG)\n"
    "sys.stdin.readline()\n"
    "run_sweep(KILL_CONFIG, sys.argv[1], workers=int(sys.argv[2]), runner=slow_runner, progress=False)\n"
)


def _committed(store: Path) -> int:
    return len(list((store / "runs").glob("part-*.parquet")))


def _alive_in_group(group: int) -> list[int]:
    """Pids of the live (not zombie) processes of a process group, from /proc."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _start_driver(store: Path, workers: int, log: Path) -> subprocess.Popen:
    """A sweep driver in its own process group (with its workers), waiting for the go."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    with open(log, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-c", _DRIVER_SCRIPT, str(store), str(workers)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _go_and_kill(driver: subprocess.Popen, store: Path, parts: int, delay: float, log: Path) -> None:
    """Start the sweep; SIGKILL its driver ``delay`` seconds after ``parts`` batches are committed; check that
    its workers exit by themselves."""
    driver.stdin.write(b"go\n")
    driver.stdin.close()
    deadline = time.monotonic() + 120
    while _committed(store) < parts:
        if driver.poll() is not None:
            pytest.fail(f"the sweep ended before it was killed:\n{log.read_text()}")
        assert time.monotonic() < deadline, f"the sweep made no progress:\n{log.read_text()}"
        time.sleep(0.002)
    time.sleep(delay)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 10
    while Path("/proc").is_dir() and _alive_in_group(driver.pid):
        assert time.monotonic() < deadline, f"workers outlived their driver: {_alive_in_group(driver.pid)}"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and process groups are POSIX")
def test_a_sweep_killed_twice_resumes_to_the_table_of_an_uninterrupted_sweep(tmp_path):
    """Kill 1: a driver with a pool of 2 workers; kill 2: a driver running batches itself; then resume."""
    rng = random.Random(20240611)
    store = tmp_path / "killed"
    total = len(expand_runs(load_config(KILL_CONFIG)))
    logs = [tmp_path / "driver-1.log", tmp_path / "driver-2.log"]
    drivers = [_start_driver(store, 2, logs[0]), _start_driver(store, 0, logs[1])]
    try:
        _go_and_kill(drivers[0], store, rng.randint(1, 5), rng.uniform(0.0, 0.1), logs[0])
        after_first = _committed(store)
        assert len(open_store(store).statuses()) < total
        _go_and_kill(drivers[1], store, after_first + rng.randint(1, 4), rng.uniform(0.0, 0.1), logs[1])
        assert after_first < _committed(store) and len(open_store(store).statuses()) < total
    finally:
        for driver in drivers:
            if driver.poll() is None:
                driver.kill()
                driver.wait()

    resumed = run_sweep(KILL_CONFIG, store, workers=0, runner=fake_runner, progress=False)
    reference = run_sweep(KILL_CONFIG, tmp_path / "reference", workers=0, runner=fake_runner, progress=False)
    assert len(resumed) == total and resumed["run_id"].is_unique
    pd.testing.assert_frame_equal(resumed, reference, check_like=True)
    pd.testing.assert_frame_equal(trajectories(store), trajectories(tmp_path / "reference"))
    on_disk = sum(pq.read_metadata(part).num_rows for part in (store / "runs").glob("part-*.parquet"))
    assert on_disk == total, "a run was written twice"
    assert not list(store.rglob(".tmp-*"))
