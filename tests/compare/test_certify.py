"""Certification by the exact flow (compare.certify, compare.discretization; docs/design.md section 5): the
[certify] table's checks, the substitution of flow rows into a run table, the gaps, and `fls verify`
printing the discretization gap per claim on a reduced grid, where the discrete and flow verdicts agree."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fls.compare import claims
from fls.compare.certify import certify, certify_settings, subset_config
from fls.compare.cli import main
from fls.compare.config import ConfigError, load_config
from fls.compare.discretization import TWIN, Gap, Pair, claim_shifts, relative_distance, substitute
from fls.compare.store import open_store
from fls.compare.toml_text import dump_config
from fls.compare.verdict import ClaimResult
from fls.compare.vocabulary import FLOW_METHODS
from fls.simulate.flow.smooth import SOLVERS
from tests.compare.test_baseline import verify_printed
from tests.compare.test_claims import make_table, u_shape
from tests.compare.test_verify import TINY

CERTIFIED = {**TINY, "certify": {"seeds": 2}, "sweep": {"name": "tiny-certified"}}


@pytest.fixture(scope="module")
def certified_verify(tmp_path_factory):
    out = tmp_path_factory.mktemp("certified")
    return (out, *verify_printed(out, config=CERTIFIED, refine=False))


def test_verify_prints_the_gap_per_claim_and_the_verdicts_agree(certified_verify):
    _, _, printed = certified_verify
    lines = printed.splitlines()
    head = next(line for line in lines if line.startswith("discretization ("))
    assert "max |test error difference|" in head and "relative parameter distance" in head
    shifts = [line.strip() for line in lines if line.strip().startswith("(") and "verdict" in line]
    assert [line.split(")")[0] + ")" for line in shifts] == ["(a)", "(b)", "(c)", "(d)", "(e_n)", "(e_m)"]
    assert all(line.endswith("(agree)") for line in shifts)


def test_the_report_has_a_discretization_section_and_figure(certified_verify):
    out, report, _ = certified_verify
    text = report.read_text()
    section = text[text.index("## Discretization") :]
    assert "| a: an interior optimal FLS exists |" in section
    assert "![discretization](figures/discretization.png)" in section
    assert (out / "figures" / "discretization.png").exists()


def test_the_flow_twins_have_the_data_init_and_stop_rule_of_the_discrete_runs(certified_verify):
    out, _, _ = certified_verify
    main = open_store(out / "store").table().set_index("run_id")
    runs = open_store(out / "certify").table()
    discrete = runs[runs["train.engine"] == "gd"]
    assert len(discrete) == 5 * 2 and len(runs) == 2 * len(discrete)
    # the discrete re-runs (kept for their final parameters) reproduce the main store's runs exactly
    np.testing.assert_array_equal(
        discrete["test_error"].to_numpy(), main.loc[discrete["run_id"], "test_error"].to_numpy()
    )
    flow = runs[runs["train.engine"] == "flow"]
    assert set(flow["model.alpha"]) == set(discrete["model.alpha"]) and set(flow["seed"]) == {0, 1}
    reached = flow[flow["status"] == "target_reached"]
    assert len(reached) > 0 and (reached["final_risk"] <= 0.05 * (1 + 1e-9)).all()  # stop.eps of TINY


def test_a_resumed_certification_recomputes_no_run(certified_verify, tmp_path):
    out, _, _ = certified_verify
    store = open_store(out / "certify")
    before = store.fingerprint()
    again = certify(load_config(CERTIFIED), out / "store", tmp_path)
    assert open_store(out / "certify").fingerprint() == before
    assert again.status == "certified" and all(shift.agrees for shift in again.shifts)


def test_a_substituted_row_changes_the_statistic_and_keeps_its_cell():
    table = make_table(u_shape)
    before = claims.interior_optimum(table)
    cell = table[np.isclose(table["model.alpha"], 0.2, rtol=0.5)]
    flow = cell.copy()
    flow[TWIN] = flow["run_id"]
    flow["run_id"] = "flow-" + flow["run_id"]
    flow["train.engine"] = "flow"
    flow["test_error"] = 0.5  # the flow's value: far worse at the discrete argmin
    substituted = substitute(table, flow)
    assert (substituted.loc[cell.index, "test_error"] == 0.5).all()
    assert (substituted.loc[cell.index, "train.engine"] == "gd").all()  # config keys stay: same cell
    assert (substituted["run_id"] == table["run_id"]).all()
    after = claims.interior_optimum(substituted)
    (shift,) = claim_shifts([before], [after])
    assert shift.change > 0 and not np.isclose(after.value, before.value)
    unchanged = claims.interior_optimum(substitute(table, flow.assign(test_error=cell["test_error"])))
    assert unchanged.value == before.value


def test_substitute_refuses_a_twin_that_names_no_run():
    table = make_table(u_shape, seeds=2)
    flow = table.iloc[:1].assign(**{TWIN: "nowhere"})
    with pytest.raises(KeyError, match="nowhere"):
        substitute(table, flow)


def _pair(flow_error, flow_stop, status="target_reached"):
    return Pair("r", "random_sign", 0.1, 100.0, 0, status, "", 0.10, flow_error, 10.0, flow_stop, 0.01)


def test_the_gap_is_the_largest_over_the_pairs_with_both_results():
    gap = Gap.of([_pair(0.12, 11.0), _pair(0.09, 8.0), _pair(np.nan, np.nan, "not_reached")])
    assert gap.pairs == 3 and gap.compared == 2
    assert gap.error == pytest.approx(0.02) and gap.stop_time == pytest.approx(0.25)
    assert relative_distance(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert np.isnan(relative_distance(np.empty(0), np.ones(2)))


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"seeds": 0}, "certify.seeds"),
        ({"cells": "every"}, "certify.cells"),
        ({"inits": "uniform"}, "certify.inits"),
        ({"enabled": "yes"}, "certify.enabled"),
        ({"subset": 3}, "certify.subset"),
    ],
)
def test_bad_certify_keys_name_the_parameter(table, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config({**TINY, "certify": table})


def test_a_subset_the_sweep_cannot_give_names_the_parameter():
    config = load_config({**TINY, "certify": {"seeds": 5}})
    with pytest.raises(ConfigError, match=r"certify\.seeds = 5 .* allowed: integers in \[1, 4\]"):
        subset_config(config, pd.DataFrame(), certify_settings(config))
    config = load_config({**TINY, "certify": {"inits": "antisymmetric"}})
    with pytest.raises(ConfigError, match=r"certify\.inits = 'antisymmetric' is not an init of the sweep"):
        subset_config(config, pd.DataFrame(), certify_settings(config))


def test_the_default_subset_is_the_headline_cell_two_seeds_every_init():
    config = load_config({**TINY, "grid": {**TINY["grid"], "model.init": ["random_sign", "antisymmetric"]}})
    table = make_table(u_shape, seeds=4, ns=(8, 12, 16), inits=("random_sign", "antisymmetric"))
    subset, words = subset_config(config, table, certify_settings(config))
    grid = subset["grid"]
    assert grid["data.n"] == [12] and grid["seeds"] == [0, 1]
    assert grid["model.init"] == ["random_sign", "antisymmetric"] and grid["train.engine"] == ["gd", "flow"]
    assert grid["model.alpha"] == config["grid"]["model.alpha"] and "data.n=12" in words


def test_the_flow_methods_are_the_engines_solvers():
    assert set(FLOW_METHODS) == set(SOLVERS)


def test_fls_sweep_and_report_certify_a_config_with_a_certify_table(certified_verify, tmp_path):
    out, _, _ = certified_verify
    config = tmp_path / "certified.toml"
    config.write_text(dump_config(CERTIFIED))
    store = out / "store"  # the verify's store and its certification: both resume, nothing runs again
    swept = CliRunner().invoke(main, ["sweep", str(config), "--store", str(store), "--workers", "0"])
    assert swept.exit_code == 0, swept.output
    assert "discretization (claim (a)'s cell" in swept.output and "(agree)" in swept.output
    reported = CliRunner().invoke(main, ["report", str(store), "--out", str(tmp_path / "report")])
    assert reported.exit_code == 0, reported.output
    assert "## Discretization" in (tmp_path / "report" / "report.md").read_text()


def test_a_claims_tolerance_is_half_its_interval_and_a_claim_without_one_is_not_compared():
    def result(value, interval, verdict="pass"):
        return ClaimResult("a", "t", verdict, "r", "s", value, interval)

    (moved,) = claim_shifts([result(1.0, (0.8, 1.2))], [result(1.3, (1.0, 1.6), "fail")])
    assert moved.tolerance == pytest.approx(0.2) and moved.change == pytest.approx(0.3)
    assert moved.within is False and not moved.agrees
    (held,) = claim_shifts([result(1.0, (0.8, 1.2))], [result(1.1, (0.9, 1.3))])
    assert held.within is True and held.agrees
    (undefined,) = claim_shifts([result(np.nan, (np.nan, np.nan))], [result(np.nan, (np.nan, np.nan))])
    assert undefined.within is None
