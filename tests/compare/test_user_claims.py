"""Claims a user writes (docs/claims.md): the worked example of the page, run as written, shows in `fls
report` with the threshold its config sets; the report re-renders from the stored analysis without
recomputing; a family from an entry point registers; bad [claims] settings name the key."""

import re
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fls.compare import analyse, registry, report
from fls.compare.cli import main
from fls.compare.config import ConfigError, load_config
from fls.compare.sweep import run_sweep
from fls.compare.toml_text import dump_config
from fls.compare.verdict import ClaimResult
from fls.compare.verify import verify
from fls.theory.validation import ParameterError

PAGE = Path(__file__).resolve().parents[2] / "docs" / "claims.md"

SWEEP = {
    "data": {"model": "gaussian_mixture", "n": 12, "d": 8, "n_test": 500, "kappa": 2.0},
    "model": {"width": 8},
    "train": {"eta": 0.2, "max_steps": 5000},
    "grid": {"model.alpha": {"logspace": [-2, 1, 5]}, "seeds": 4},
    "sweep": {"name": "user-claims"},
}


def page_block(language: str) -> str:
    """The first fenced block of ``language`` on docs/claims.md."""
    return re.search(rf"```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL).group(1)


@pytest.fixture(scope="module")
def example_store(tmp_path_factory):
    """A tiny sweep whose config is the page's [claims] table, with the page's module importable."""
    root = tmp_path_factory.mktemp("user_claims")
    (root / "my_claims.py").write_text(page_block("python"))
    config = root / "my.toml"
    config.write_text(page_block("toml") + "\n" + dump_config(SWEEP))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(root))
        run_sweep(load_config(config), root / "store", workers=0, progress=False)
        result = CliRunner().invoke(main, ["report", str(root / "store"), "--out", str(root / "out")])
        yield root, result


def test_the_worked_example_shows_in_fls_report(example_store):
    root, result = example_store
    assert result.exit_code == 0, result.output
    text = (root / "out" / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| (bayes)"))
    assert "within 0.08 of the Bayes error" in row  # the threshold of [claims.bayes]
    assert "| least mean test error - Bayes error |" in row  # the claim ran (a raising one has no statistic)
    assert re.search(r"\*\*(pass|fail)\*\*", row)
    assert "| (a) an interior optimal FLS exists" in text  # the built-in family next to it
    assert (root / "out" / "figures" / "claim_bayes.png").exists()


def test_fls_report_renders_the_stored_analysis_again_without_recomputing(
    example_store, monkeypatch, tmp_path
):
    root, _ = example_store
    first = (root / "out" / "report.md").read_text()

    def no_analysis(*args, **kwargs):
        raise AssertionError("the stored analysis should have been used")

    monkeypatch.setattr(analyse, "analyse", no_analysis)
    monkeypatch.syspath_prepend(str(root))
    again = report.write_report(root / "store", tmp_path).read_text()
    claims = lambda text: [line for line in text.splitlines() if line.startswith("| (")]
    assert [re.sub(r"\]\(.*?\)", "]", line) for line in claims(again)] == [
        re.sub(r"\]\(.*?\)", "]", line) for line in claims(first)
    ]
    with pytest.raises(AssertionError, match="stored analysis"):
        report.write_report(root / "store", tmp_path, recompute=True)


def test_a_family_prepares_the_table_its_claims_read():
    def count_runs(table, context=None):
        nan = float("nan")
        return ClaimResult("n", "runs", "pass", "counted", "rows", float(table["doubled"].sum()), (nan, nan))

    registry.register_family("counting", {"n": count_runs}, prepare=lambda table: table.assign(doubled=2))
    table = pd.DataFrame({"status": ["target_reached"] * 3})
    prepared = registry.prepare_table(table, ["counting", "counting"])
    assert list(prepared["doubled"]) == [2, 2, 2]
    assert registry.check_claims(prepared, families=["counting"])[0].value == 6.0
    with pytest.raises(ParameterError, match="prepare"):
        registry.register_family("broken", {"n": count_runs}, prepare="not a function")


def test_a_family_from_an_entry_point_registers(example_store, monkeypatch):
    root, _ = example_store
    monkeypatch.syspath_prepend(str(root))
    entry = metadata.EntryPoint(name="mine", value="my_claims", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        registry.metadata, "entry_points", lambda group: [entry] if group == entry.group else []
    )
    registry.load_entry_points()
    assert list(registry.family_claims("mine")) == ["bayes"]


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"families": "fls"}, "claims.families"),
        ({"modules": ["a", "a"]}, "claims.modules"),
        ({"b": 0.9}, "claims.b"),
        ({"b": {"aligned_psi": [0.9]}}, "claims.b.aligned_psi"),
    ],
)
def test_bad_claims_settings_name_the_key(claims, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config({**SWEEP, "claims": claims})


def test_a_module_without_families_is_named():
    with pytest.raises(ConfigError, match="CLAIM_FAMILIES"):
        registry.load_modules(["json"])
    with pytest.raises(ConfigError, match="no_such_module"):
        registry.load_modules(["no_such_module"])


def test_verify_names_an_unknown_family_before_any_run(tmp_path):
    with pytest.raises(ConfigError, match="family = 'nope'"):
        verify(tmp_path, config=SWEEP, workers=0, family="nope")
    assert not (tmp_path / "store").exists()
