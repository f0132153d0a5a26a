"""Behaviour kept: ``fls verify`` prints the claims table (and writes the report) that the code printed before
compare/ was cut into layers (docs/design.md section 5). The stored tables were made by that code: a reduced
sweep (tests/compare/data/reduced.toml, fast tier) and the packaged default sweep (slow tier)."""

import contextlib
import functools
import io
from pathlib import Path

import pytest

from fls.compare import verify as verify_module
from fls.compare.refine import refine_optimum
from fls.compare.verify import verify
from fls.compare.vocabulary import THREAD_VARIABLES

DATA = Path(__file__).parent / "data"


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text``, with a figure link reduced to the figure's file name
    (the printed links hold the output directory, which differs between runs)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| ("):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        figure = cells[-1]
        cells[-1] = figure[1 : figure.index("]")] if figure.startswith("[") else figure
        rows.append(cells)
    return rows


def test_table_rows_reduce_links_to_file_names():
    line = "| (a) t | **pass** | s | 1 | [1, 1] | [claim_a.png](/tmp/x/figures/claim_a.png) |"
    assert table_rows(line) == [["(a) t", "**pass**", "s", "1", "[1, 1]", "claim_a.png"]]
    assert table_rows("| claim | verdict |\n| (b) u | **fail** | s | nan | [nan, nan] |  |")[0][-1] == ""


def verify_printed(out, **options):
    """``verify(out, **options)`` in this process, and what it printed."""
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        for variable in THREAD_VARIABLES:  # verify sets the ones not set; keep them out of later tests
            patch.setenv(variable, "1")
        # the fast tier checks the refinement's wiring on the reduced sweeps, with a budget to match them
        patch.setattr(verify_module, "refine_optimum", functools.partial(refine_optimum, max_runs=180))
        report = verify(out, workers=0, **options)
    return report, printed.getvalue()


@pytest.fixture(scope="module")
def reduced_verify(tmp_path_factory):
    return verify_printed(tmp_path_factory.mktemp("reduced"), config=DATA / "reduced.toml")


def test_verify_prints_the_stored_claims_table_of_the_reduced_sweep(reduced_verify):
    _, printed = reduced_verify
    expected = table_rows((DATA / "reduced_claims.md").read_text())
    assert len(expected) == 6
    assert table_rows(printed) == expected


def test_the_report_of_the_reduced_sweep_is_the_stored_one(reduced_verify):
    report, _ = reduced_verify
    text = report.read_text()
    assert text[text.index("## Claims") :] == (DATA / "reduced_report.md").read_text()


@pytest.mark.slow
def test_verify_prints_the_stored_claims_table_of_the_default_sweep(tmp_path, capsys):
    verify(tmp_path, workers=2)
    printed = capsys.readouterr().out
    assert table_rows(printed) == table_rows((DATA / "default_claims.md").read_text())
