"""A store you can trust: random single-bit flips never change a value silently (each is detected, and a resume
repairs it to the table of an undamaged sweep), a deleted runs file is reported by `fls report` with how many
runs of how many are missing, a second writer is refused while the first holds the lock, and a store path that
cannot be a directory gets a message naming it. Two sweeps started together on one store compute every run
once."""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fls.compare.cli import main
from fls.compare.completeness import PartialStore, completeness, require_complete
from fls.compare.lock import StoreLocked, store_lock
from fls.compare.manifest import MANIFEST_FILE
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from fls.theory.validation import ParameterError
from tests.compare.test_sweep import KILL_CONFIG, fake_runner, sweep_config, trajectories

REPO = Path(__file__).resolve().parents[2]

#: 12 runs in 4 batches of 3.
CONFIG = sweep_config({"model.alpha": [0.1, 1.0, 10.0], "seeds": 4}, batch_size=3)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference") / "store"
    table = run_sweep(CONFIG, directory, workers=0, runner=fake_runner, progress=False)
    return directory, table, trajectories(directory)


def _flip_one_bit(directory, rng: random.Random) -> str:
    files = sorted(path for path in directory.rglob("*") if path.is_file() and path.name != "lock")
    path = rng.choice(files)
    data = bytearray(path.read_bytes())
    bit = rng.randrange(8 * len(data))
    data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))
    return f"{path.relative_to(directory)} bit {bit}"


def _same_rows(found: pd.DataFrame, expected: pd.DataFrame, key: list[str]) -> bool:
    """Every row of ``found`` is a row of ``expected`` with the same values."""
    merged = found.merge(expected, on=list(expected.columns), how="left", indicator=True)
    return len(found) == 0 or bool((merged["_merge"] == "both").all()) and found[key].notna().all().all()


def _check_flips(reference, tmp_path, flips: int, seed: int) -> None:
    """``flips`` random single-bit flips, each in a fresh copy of the reference store: what a reader gets is
    never a changed value, lost rows are reported, and a resume gives the reference table back."""
    source, table, long = reference
    rng = random.Random(seed)
    detected = 0
    for flip in range(flips):
        directory = tmp_path / f"flip-{flip}"
        shutil.copytree(source, directory)
        where = _flip_one_bit(directory, rng)
        store = open_store(directory)
        read, read_long = store.table(), trajectories(directory)
        assert _same_rows(read, table, ["run_id"]), f"a value changed silently: {where}"
        assert _same_rows(read_long, long, ["run_id", "key"]), f"a trajectory changed silently: {where}"
        assert store.config() == open_store(source).config(), where
        held = completeness(store)
        if len(read) < len(table) or len(read_long) < len(long):
            assert held.damage and not held.complete, f"lost rows not reported: {where}"
        detected += bool(held.damage)
        resumed = run_sweep(CONFIG, directory, workers=0, runner=fake_runner, progress=False)
        pd.testing.assert_frame_equal(resumed, table, obj=where)
        pd.testing.assert_frame_equal(trajectories(directory), long, obj=where)
        assert completeness(open_store(directory)).complete, where
        shutil.rmtree(directory)
    assert detected == flips  # every file of the store is checked: the parts, the manifest, config.toml


def test_single_bit_flips_never_change_a_value_silently_and_a_resume_repairs_them(reference, tmp_path):
    _check_flips(reference, tmp_path, 40, 20261205)


@pytest.mark.slow
def test_two_hundred_single_bit_flips_are_all_detected_or_harmless_and_repaired(reference, tmp_path):
    _check_flips(reference, tmp_path, 200, 1205)


def test_report_names_a_deleted_runs_file_and_refuses_a_partial_table_unless_allowed(reference, tmp_path):
    source = reference[0]
    directory = tmp_path / "store"
    shutil.copytree(source, directory)
    lost = sorted((directory / "runs").glob("part-*"))[1]
    lost_ids = pd.read_parquet(lost)["run_id"].tolist()
    lost.unlink()
    with pytest.raises(PartialStore, match=rf"holds 9 of 12 runs; missing 3: .*runs/{lost.name}: missing"):
        require_complete(open_store(directory))
    assert sorted(completeness(open_store(directory)).missing) == sorted(lost_ids)
    result = CliRunner().invoke(main, ["report", str(directory), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "9 of 12 runs" in result.output and "--allow-partial" in result.output
    assert "Traceback" not in result.output


def test_a_second_writer_is_refused_with_the_holder_and_a_dead_holder_leaves_no_lock(tmp_path):
    directory = tmp_path / "store"
    directory.mkdir()
    with store_lock(directory):
        with pytest.raises(StoreLocked, match=rf"in use by pid {os.getpid()} on host .*one sweep per store"):
            run_sweep(CONFIG, directory, workers=0, runner=fake_runner, progress=False)
        assert not (directory / MANIFEST_FILE).exists()  # refused before it touched the store
    script = (
        "import os, sys; from pathlib import Path; from fls.compare.lock import store_lock\n"
        "held = store_lock(Path(sys.argv[1])); held.__enter__(); os.kill(os.getpid(), 9)"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(directory)], check=False)
    assert killed.returncode == -9
    assert len(run_sweep(CONFIG, directory, workers=0, runner=fake_runner, progress=False)) == 12


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_a_store_path_that_cannot_be_a_directory_is_named(tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    store = blocker if where == "file" else blocker / "store"
    with pytest.raises(ParameterError, match=r"store_dir = .*blocker.* a file; allowed: a directory path"):
        run_sweep(CONFIG, store, workers=0, runner=fake_runner, progress=False)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_store_without_write_permission_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ParameterError, match=r"store_dir = .*locked.*(not writable|cannot be created)"):
        run_sweep(CONFIG, locked / "store", workers=0, runner=fake_runner, progress=False)


_DRIVER = (
    "import sys\n"
    "from fls.compare.lock import StoreLocked\n"
    "from fls.compare.sweep import run_sweep\n"
    "from tests.compare.test_sweep import KILL_CONFIG, slow_runner\n"
    "sys.stdin.readline()\n"
    "try:\n"
    "    run_sweep(KILL_CONFIG, sys.argv[1], workers=int(sys.argv[2]), runner=slow_runner, progress=False)\n"
    "except StoreLocked as exc:\n"
    "    print(exc)\n"
    "    sys.exit(3)\n"
)


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_two_sweeps_started_together_on_one_store_compute_every_run_once(tmp_path):
    """Both drivers are ready and get the go at the same instant: one runs the sweep, the other stops with
    a message naming it; the table is an uninterrupted sweep's and no run was written twice."""
    store = tmp_path / "store"
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    drivers = [
        subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(store), str(workers)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for workers in (2, 0)
    ]
    for driver in drivers:
        driver.stdin.write(b"go\n")
        driver.stdin.flush()
    outputs = [driver.communicate(timeout=300)[0].decode() for driver in drivers]
    codes = sorted(driver.returncode for driver in drivers)
    assert codes == [0, 3], outputs
    refused = outputs[[driver.returncode for driver in drivers].index(3)]
    assert "is in use by pid" in refused and "Traceback" not in refused, refused
    reference = run_sweep(KILL_CONFIG, tmp_path / "reference", workers=0, runner=fake_runner, progress=False)
    pd.testing.assert_frame_equal(open_store(store).table(), reference)
    on_disk = sum(pq.read_metadata(part).num_rows for part in (store / "runs").glob("part-*.parquet"))
    assert on_disk == len(reference), "a run was computed twice"
