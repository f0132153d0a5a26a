"""The command line around a store: every bad input of the issue's list gets a message naming the parameter or
file (no traceback), huge grids are counted and refused before anything is made, `fls run` picks its run from
a large grid without making the others, `--set` works on sweep, phase and verify, and `fls runs` lists,
filters and selects runs."""

import io
import platform
import socket
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fls.compare import sweep
from fls.compare.cli import main
from fls.compare.config import ConfigError, count_runs, load_config
from fls.compare.overrides import with_assignments
from fls.compare.store import create_store
from fls.compare.sweep import run_sweep
from fls.theory.validation import ParameterError
from tests.compare.test_cli import TINY
from tests.compare.test_sweep import fake_runner, sweep_config


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _fails_naming(result, *names: str) -> None:
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    for name in names:
        assert name in result.output, result.output


@pytest.mark.parametrize(
    ("edit", "names"),
    [
        (("width = 6", "width = 0"), ["model.width", ">= 1"]),
        (("n = 10", "n = 0"), ["data.n", ">= 1"]),
        (("d = 5", "d = 0"), ["data.d"]),
        (('"model.alpha" = [0.1, 1.0]', '"model.alpha" = [1e200]'), ["model.alpha", "c alpha^2"]),
        (("eps = 0.1", "eps = 1.0"), ["stop.eps", "t = 0", "0.693147"]),
        (("eps = 0.1", "eps = 0.6931471805599453"), ["stop.eps", "0 < eps < 0.693147"]),
    ],
)
def test_bad_config_values_are_named(tiny, tmp_path, edit, names):
    tiny.write_text(TINY.replace(*edit))
    _fails_naming(invoke("sweep", tiny, "--store", tmp_path / "s", "--workers", 0), *names)


def test_a_binary_config_is_named(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    _fails_naming(invoke("sweep", binary, "--store", tmp_path / "s"), "binary.toml", "not text")


@pytest.mark.parametrize(
    ("scheduler", "names"),
    [("foo", ["scheduler = 'foo'", "PROTOCOL://HOST:PORT"]), ("local:0", ["scheduler = 'local:0'"])],
)
def test_a_bad_scheduler_is_named(tiny, tmp_path, scheduler, names):
    _fails_naming(invoke("sweep", tiny, "--store", tmp_path / "s", "--scheduler", scheduler), *names)


def test_an_unreachable_scheduler_is_named_within_its_connect_timeout(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "CONNECT_SECONDS", 1)
    result = invoke("sweep", tiny, "--store", tmp_path / "s", "--scheduler", "tcp://127.0.0.1:9")
    _fails_naming(result, "tcp://127.0.0.1:9", "did not answer within 1 s")


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_a_store_under_a_file_is_named(tiny, tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    store = blocker if where == "file" else blocker / "store"
    _fails_naming(invoke("sweep", tiny, "--store", store, "--workers", 0), "store", "blocker")


def test_report_on_a_store_killed_before_its_first_batch_says_what_it_lacks(tiny, tmp_path):
    store = tmp_path / "store"
    create_store(store, load_config(tiny))
    _fails_naming(invoke("report", store), "holds 0 of 4 runs", "--allow-partial")


def test_report_on_a_store_whose_config_is_garbage_names_the_file(tmp_path):
    store = tmp_path / "store"
    (store / "runs").mkdir(parents=True)
    (store / "config.toml").write_bytes(b"\x00\xff not toml [[[")
    _fails_naming(invoke("report", store), "config.toml")


def test_a_grid_of_ten_million_runs_is_refused_at_once_with_its_count(tmp_path):
    huge = sweep_config({"model.alpha": {"logspace": [-3, 1, 1000]}, "train.eta": [0.1, 0.2], "seeds": 5000})
    start = time.perf_counter()
    assert count_runs(load_config(huge, check_runs=False)) == 10_000_000
    with pytest.raises(ParameterError, match=r"the grid has 10000000 runs \(1000 x 2 x 5000\).*--yes"):
        run_sweep(huge, tmp_path / "s", workers=0, runner=fake_runner, progress=False)
    assert time.perf_counter() - start < 10  # the bound is 1 s; generous on a loaded machine
    assert not (tmp_path / "s").exists()


def test_fls_run_picks_its_run_from_a_large_grid_without_making_the_others(tiny):
    tiny.write_text(TINY.replace("seeds = 2", "seeds = 100000"))  # 2e5 runs
    start = time.perf_counter()
    result = invoke("run", tiny, "--set", "model.alpha=1.0", "--seed", 7)
    assert result.exit_code == 0, result.output
    assert "model.alpha" in result.output and " = 1.0" in result.output and "seed" in result.output
    assert time.perf_counter() - start < 20  # the issue: under 1 s; it was 52 s; generous under load


def test_set_changes_tables_and_grid_entries():
    tables = {"model": {"width": 4}, "grid": {"model.width": [2, 4], "model.alpha": [0.1]}}
    changed = with_assignments(tables, ["model.width=8", "grid.seeds=3", "fls=100", 'sweep.name="x"'])
    assert changed == {
        "model": {"width": 8},
        "grid": {"seeds": 3, "fls": [100]},
        "sweep": {"name": "x"},
    }
    assert tables["grid"] == {"model.width": [2, 4], "model.alpha": [0.1]}  # the input is not changed
    with pytest.raises(ConfigError, match=r"--set nothing.here=1 names no config key"):
        with_assignments(tables, ["nothing.here=1"])


def test_sweep_with_set_then_runs_lists_and_filters_them(tiny, tmp_path):
    store = tmp_path / "store"
    result = invoke("sweep", tiny, "--store", store, "--workers", 0, "--set", "grid.seeds=1", "--no-progress")
    assert result.exit_code == 0 and "2 runs in" in result.output, result.output
    listed = invoke("runs", store, "--csv", "--columns", "run_id,model.alpha,status")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "run_id,model.alpha,status" and len(lines) == 3
    picked = invoke("runs", store, "--where", "`model.alpha` > 0.5", "--columns", "model.alpha")
    assert picked.exit_code == 0 and picked.output.split() == ["model.alpha", "1.0"], picked.output
    _fails_naming(invoke("runs", store, "--where", "alpha >"), "--where", "backticks")
    _fails_naming(invoke("runs", store, "--columns", "nope"), "--columns", "nope", "run_id")
    table = pd.read_csv(__import__("io").StringIO(invoke("runs", store, "--csv", "--columns", "all").output))
    assert len(table) == 2 and {"run_id", "status", "model.alpha", "fls_version"} <= set(table.columns)


def test_progress_comes_as_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    config = sweep_config({"model.alpha": [0.1, 1.0, 10.0], "seeds": 4}, batch_size=3)
    run_sweep(config, tmp_path / "s", workers=0, runner=fake_runner)
    lines = log.getvalue().splitlines()
    assert lines[0] == "test: 12 runs, 0 stored, 12 to run", lines
    assert lines[1].startswith("test: 3/12 runs (0 failed, ") and "s left" in lines[1], lines
    assert lines[-1].startswith("test: 12/12 runs (4 failed, 0 running)"), lines
    assert "\r" not in log.getvalue()  # no bar drawn into a file


def test_each_run_records_where_it_was_computed(tmp_path):
    config = sweep_config({"model.alpha": [0.1, 1.0], "seeds": 2}, batch_size=2)
    run_sweep(config, tmp_path / "s", workers=0, runner=fake_runner, progress=False)
    listed = invoke("runs", tmp_path / "s", "--csv", "--columns", "run_id", "--provenance")
    assert listed.exit_code == 0, listed.output
    table = pd.read_csv(io.StringIO(listed.output))
    assert len(table) == 4 and table["run_id"].is_unique
    assert set(table["python_version"]) == {platform.python_version()}
    assert set(table["numpy_version"]) == {np.__version__} and set(table["host"]) == {socket.gethostname()}
    assert table["sweep_started"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert {"torch_version", "scipy_version", "git_commit"} <= set(table.columns), table.columns
