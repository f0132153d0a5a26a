"""verify end to end: a tiny sweep in-process (fast), and the default sweep (slow: minutes)."""

import functools
import json
import time

import pytest

from fls.compare import plots
from fls.compare import verify as verify_module
from fls.compare.config import expand_runs, load_config
from fls.compare.deep_config import expand_deep_runs, load_deep_config
from fls.compare.quality_config import QUALITY_CONFIG, quality_sweeps
from fls.compare.refine import REFINEMENT_FILE, load_refinement, refine_optimum
from fls.compare.report import write_report
from fls.compare.store import open_store
from fls.compare.verify import DEFAULT_CONFIG, verify

TINY = {
    "data": {"model": "gaussian_mixture", "n": 12, "d": 8, "n_test": 500, "kappa": 2.0},
    "model": {"width": 8},
    "train": {"eta": 0.2, "max_steps": 5000},
    "grid": {"data.n": [8, 12, 16], "model.alpha": {"logspace": [-2, 1, 5]}, "seeds": 4},
    "phase": {"x": "fls", "y": "data.n"},
    "sweep": {"name": "tiny"},
}


@pytest.fixture(scope="module")
def tiny_verify(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    with pytest.MonkeyPatch.context() as patch:  # one refinement round: the wiring, not the budget
        patch.setattr(verify_module, "refine_optimum", functools.partial(refine_optimum, max_rounds=1))
        return out, verify(out, config=TINY, workers=0)


def test_verify_writes_a_report_with_every_claim_and_figure(tiny_verify, capsys):
    out, report = tiny_verify
    text = report.read_text()
    assert report == out / "report.md"
    for key in ("(a)", "(b)", "(c)", "(d)", "(e_n)", "(e_m)"):
        assert key in text
    assert "| claim | verdict |" in text and "```toml" in text
    assert "## Resolution of the optimum" in text and "- round 1:" in text
    assert (out / "refine-1").exists()
    for name in ("phase_diagram", "alignment_over_time", "claim_a_error_vs_fls"):
        assert (out / "figures" / f"{name}.png").exists() and (out / "figures" / f"{name}.pdf").exists()
    assert len(open_store(out / "store").table()) == 3 * 5 * 4


def test_report_from_an_existing_store_gives_the_same_verdicts(tiny_verify, tmp_path):
    out, report = tiny_verify
    again = write_report(out / "store", tmp_path)
    verdicts = lambda text: [line.split("|")[2] for line in text.splitlines() if line.startswith("| (")]
    assert verdicts(again.read_text()) == verdicts(report.read_text())


def test_a_later_report_into_the_directory_keeps_claim_a_resolved_and_refuses_another_grids(
    tiny_verify, tmp_path
):
    out, report = tiny_verify
    rows = lambda text: [line for line in text.splitlines() if line.startswith("| (a)")]
    stored = json.loads((out / REFINEMENT_FILE).read_text())
    (tmp_path / REFINEMENT_FILE).write_text(json.dumps(stored))
    again = write_report(out / "store", tmp_path).read_text()
    assert rows(again)[0].split("|")[4:6] == rows(report.read_text())[0].split("|")[4:6]
    assert "## Resolution of the optimum" in again
    found = stored["rounds"][-1]["optimum"]  # the resolved value, not the grid's
    assert rows(again)[0].split("|")[4].strip() == f"{1 / (found['c'] * found['alpha'] ** 2):.4g}"
    stored["grid_optimum"]["alpha"] *= 1.01  # a refinement of another grid is not applied
    (tmp_path / REFINEMENT_FILE).write_text(json.dumps(stored))
    table = open_store(out / "store").table()
    assert load_refinement(tmp_path, table) is None
    assert load_refinement(out, table).rounds


def test_phase_diagram_returns_png_and_pdf(tiny_verify, tmp_path):
    out, _ = tiny_verify
    store = open_store(out / "store")
    paths = plots.phase_diagram(store.table(), store.config(), tmp_path / "phase")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize("path", sorted(DEFAULT_CONFIG.parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_packaged_config_loads(path):
    if path.name.startswith("deep_"):  # the deep family's own schema (docs/deep.md)
        assert expand_deep_runs(load_deep_config(path))
    elif path == QUALITY_CONFIG:  # a sweep config plus the quality family's [axes] (docs/quality.md)
        assert all(sweep.runs for sweep in quality_sweeps(path).values())
    else:
        assert expand_runs(load_config(path))


def test_the_default_config_meets_the_stated_minimums():
    config = load_config(DEFAULT_CONFIG)
    grid = config["grid"]
    assert (
        len(grid["model.alpha"]) >= 16 and min(grid["model.alpha"]) <= 1e-4 and max(grid["model.alpha"]) >= 10
    )
    assert len(grid["seeds"]) >= 16 and len(grid["data.n"]) >= 5
    assert set(grid["model.init"]) == {"random_sign", "antisymmetric"}
    assert config["data"]["kappa"] == 2.0 and config["data"]["d"] == 100 and config["data"]["sigma"] == 1.0
    assert config["model"]["width"] == 100 and config["stop"]["eps"] == 0.05


@pytest.mark.slow
def test_default_verify_finishes_in_ten_minutes_and_finds_an_interior_optimum(tmp_path, capsys):
    start = time.perf_counter()
    report = verify(tmp_path, workers=2)
    assert time.perf_counter() - start < 600
    first = next(line for line in report.read_text().splitlines() if line.startswith("| (a)"))
    assert "**pass**" in first
    assert "wall time" in capsys.readouterr().out
