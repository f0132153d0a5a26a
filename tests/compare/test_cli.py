"""The `fls` command line: help and version everywhere, argument and config errors as one-line messages, and a
tiny real sweep end to end (compare.runner), resumed without recomputing, with `fls run` reproducing one of
its runs."""

import subprocess
import sys
from importlib import metadata

import pytest
from click.testing import CliRunner

from fls.compare import commands
from fls.compare.cli import SUMMARIES, main
from fls.compare.store import open_store

TINY = """
[data]
model = "gaussian_mixture"
n = 10
d = 5
n_test = 200

[model]
width = 6

[train]
eta = 0.1
max_steps = 300

[stop]
eps = 0.1

[grid]
"model.alpha" = [0.1, 1.0]
seeds = 2

[sweep]
name = "tiny"
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.mark.parametrize("command", [[], ["verify"], ["sweep"], ["phase"], ["report"], ["run"]])
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and "--help" in result.output


def test_version_is_the_package_version():
    result = invoke("--version")
    assert result.exit_code == 0 and metadata.version("fls") in result.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("width = 6", "width = 0"), "model.width = 0 is out of range; allowed: integers >= 1"),
        (("width = 6", "widht = 6"), "unknown key(s) model.widht; allowed in [model]"),
        (
            ("eps = 0.1", "eps = 'small'"),
            "stop.eps = 'small' has the wrong type (str); allowed: a real number",
        ),
        (("seeds = 2", 'seeds = 2\n"model.alhpa" = [1.0]'), "grid key(s) 'model.alhpa' name no config key"),
    ],
)
def test_a_bad_config_is_a_one_line_error_before_anything_runs(tiny, tmp_path, edit, message):
    tiny.write_text(TINY.replace(*edit))
    store = tmp_path / "store"
    for command in (["sweep", tiny, "--store", store], ["run", tiny]):
        result = invoke(*command)
        assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output
    assert not store.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["sweep", "missing.toml"], 2, "does not exist"),
        (["sweep", "{tiny}", "--workers", "-1"], 2, "x>=0"),
        (
            ["sweep", "{tiny}", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
            1,
            "applies to local workers",
        ),
        (["sweep", "{tiny}", "--scheduler", "local:zero"], 1, "'local:N' with N >= 1"),
        (["run", "{tiny}", "--seed", "-2"], 2, "x>=0"),
        (["run", "{tiny}", "--set", "model.alpha"], 1, "is not KEY=VALUE"),
        (["run", "{tiny}", "--set", "model.alpha=-3"], 1, "model.alpha = -3.0 is out of range"),
        (["run", "{tiny}", "--set", "data.preset=separable"], 1, "'data.preset' name no config key"),
        (["report", "missing-store"], 2, "does not exist"),
    ],
)
def test_bad_arguments_are_rejected_with_a_message(tiny, tmp_path, args, code, message):
    result = invoke(
        *[arg.format(tiny=tiny) for arg in args], *(["--store", tmp_path / "s"] if "sweep" in args else [])
    )
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (tmp_path / "s").exists()


def test_a_tiny_real_sweep_end_to_end_and_fls_run_reproduces_one_of_its_runs(tiny, tmp_path):
    store = tmp_path / "store"
    first = invoke("sweep", tiny, "--store", store, "--workers", "0", "--no-progress")
    assert first.exit_code == 0, first.output
    assert first.output.startswith(f"4 runs in {store}: ")
    table = open_store(store).table()
    assert len(table) == 4 and table["run_id"].is_unique
    assert (
        set(table["status"]) <= {"target_reached", "not_reached"} and table["test_error"].between(0, 1).all()
    )
    assert set(open_store(store).trajectories()["key"]) >= {"t", "risk"}
    parts = sorted(path.name for path in (store / "runs").iterdir())

    again = invoke("sweep", tiny, "--store", store, "--workers", "0", "--no-progress")
    assert again.exit_code == 0 and again.output == first.output
    assert sorted(path.name for path in (store / "runs").iterdir()) == parts, "a finished run was recomputed"

    single = invoke("run", tiny, "--set", "model.alpha=1.0", "--seed", "1")
    assert single.exit_code == 0, single.output
    printed = dict(line.split(" = ", 1) for line in single.output.splitlines() if " = " in line)
    printed = {key.strip(): value for key, value in printed.items()}
    stored = table[(table["model.alpha"] == 1.0) & (table["seed"] == 1)].iloc[0]
    assert printed["run_id"] == stored["run_id"] and printed["status"] == stored["status"]
    assert float(printed["test_error"]) == pytest.approx(stored["test_error"], abs=1e-6)
    assert "risk" in single.output and "points" in single.output


def test_the_group_help_lists_each_commands_own_summary():
    for name, summary in SUMMARIES.items():
        command = getattr(commands, name)
        assert command.get_short_help_str(limit=200) == summary
    listed = invoke("--help").output
    assert all(name in listed for name in SUMMARIES)


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_heavy_module(flag):
    code = (
        "import sys\n"
        "from fls.compare.cli import main\n"
        "try:\n"
        f"    main([{flag!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'sympy', 'pandas', 'matplotlib', 'numpy', 'scipy', 'numba', 'fls.simulate', 'fls.theory')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
