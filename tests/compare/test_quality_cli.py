"""A quality config through the `fls` command line (docs/quality.md, "The axes"): `fls sweep` and `fls run`
accept its [axes] table and run its main (alpha) sweep with the quality runner, saying where the other axes
run; `fls verify --family quality --config FILE` sweeps FILE's axes; `fls report` on the main store gives the
verdict per axis and overall when the axes' stores lie beside it, and says that only the alpha axis was decided
otherwise."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from fls.compare.cli import main
from fls.compare.quality_config import MAIN_SWEEP, TASK_SWEEP, WIDTH_SWEEP, sweep_store
from fls.compare.store import open_store
from fls.compare.toml_text import dump_config
from fls.compare.vocabulary import THREAD_VARIABLES, WIDTH_KEY
from tests.compare.test_quality_axes import tiny_quality_config


def _write(path: Path, config: dict) -> Path:
    path.write_text(dump_config(config))
    return path


@pytest.fixture
def quiet_threads(monkeypatch):
    """verify sets the BLAS thread variables it finds unset; keep them out of later tests."""
    for variable in THREAD_VARIABLES:
        monkeypatch.setenv(variable, "1")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    """A tiny quality config (two widths of its own on the width axis) as a TOML file."""
    config = tiny_quality_config()
    config["sweep"]["name"] = "tiny-quality"
    config["axes"]["width"]["widths"] = [16, 48]
    return _write(tmp_path_factory.mktemp("config") / "quality.toml", config)


def test_fls_sweep_runs_the_main_sweep_of_a_quality_config_and_report_says_only_alpha(tmp_path, tiny_file):
    store = tmp_path / "store"
    swept = CliRunner().invoke(
        main, ["sweep", str(tiny_file), "--store", str(store), "--workers", "0", "--no-progress"]
    )
    assert swept.exit_code == 0, swept.output
    assert "its main sweep, the claim's alpha axis" in swept.output
    assert f"fls verify --family quality --config {tiny_file}" in swept.output
    table = open_store(store).table()
    assert len(table) == 12 and set(table["status"]) == {"target_reached"}
    assert "err_tangent_after" in table and "weight_change" in table  # the quality runner's measures
    reported = CliRunner().invoke(main, ["report", str(store)])
    assert reported.exit_code == 0, reported.output
    text = (tmp_path / "report.md").read_text()
    assert "## Claim (q) per axis" in text
    assert "only the alpha axis was decided" in text and "Not decided on width, task" in text


def test_fls_run_runs_one_run_of_a_quality_config_with_the_quality_runner(tiny_file):
    ran = CliRunner().invoke(main, ["run", str(tiny_file)])
    assert ran.exit_code == 0, ran.output
    assert "err_tangent_after" in ran.output and "target_reached" in ran.output


def test_a_bad_axis_is_refused_by_fls_sweep_naming_the_key(tmp_path):
    config = tiny_quality_config()
    config["axes"]["width"]["seeds"] = 1
    bad = _write(tmp_path / "bad.toml", config)
    result = CliRunner().invoke(main, ["sweep", str(bad), "--store", str(tmp_path / "s"), "--workers", "0"])
    assert result.exit_code == 1
    assert "axes.width.seeds = 1 is out of range; allowed: integers >= 2" in result.output
    assert not (tmp_path / "s").exists()


def test_verify_quality_uses_the_config_file_and_report_gives_every_axis(tmp_path, tiny_file, quiet_threads):
    out = tmp_path / "out"
    verified = CliRunner().invoke(
        main, ["verify", "--family", "quality", "--config", str(tiny_file), "--out", str(out), "--workers", "0"]
    )
    assert verified.exit_code == 0, verified.output
    assert "overall:" in verified.output
    widths = open_store(sweep_store(out, WIDTH_SWEEP)).table()[WIDTH_KEY]
    assert sorted(set(widths)) == [16, 48]  # the file's widths, not the packaged 128-2048
    main_store = sweep_store(out, MAIN_SWEEP)
    reported = CliRunner().invoke(main, ["report", str(main_store), "--out", str(tmp_path / "report")])
    assert reported.exit_code == 0, reported.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Claim (q) per axis" in text and "Overall rule:" in text
    for axis in ("alpha", "width", "task"):
        assert f"| {axis} |" in text, axis
    assert "Not decided" not in text
    # without the task axis's store beside it, the report names what it did not decide
    sweep_store(out, TASK_SWEEP).rename(tmp_path / "elsewhere")
    again = CliRunner().invoke(main, ["report", str(main_store), "--out", str(tmp_path / "report")])
    assert again.exit_code == 0, again.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| width |" in text and "| task |" not in text and "Not decided on task" in text
