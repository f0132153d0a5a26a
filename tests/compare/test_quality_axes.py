"""The quality claim across its axes (compare.quality_axes, quality_config): the verdict per axis and the rule
that combines them on constructed tables, the checks of the [axes] options, the width sweep's float32 training
against float64 (a reduced `fls verify --family quality` runs end to end in tests/compare/test_figures.py)."""

import numpy as np
import pytest

from fls.compare import quality_axes, quality_config, quality_runner
from fls.compare.config import ConfigError
from fls.compare.verdict import ClaimContext, ClaimResult
from tests.compare.test_quality import _synthetic_table, _tiny_runs

CONTEXT = ClaimContext(n_boot=300)

#: Quality as a function of strength (every measure tracks it) and unrelated to it (every one decoupled).
TRACKING = _synthetic_table(lambda s, n, rng: 1 + s)
UNRELATED = _synthetic_table(lambda s, n, rng: np.exp(rng.standard_normal()), seed=1, seeds=20)


def _verdict(axis: str, verdict: str) -> quality_axes.AxisVerdict:
    result = ClaimResult("q", "title", verdict, "reason", "rho", 0.0, (0.0, 0.0), {})
    return quality_axes.AxisVerdict(axis, "setting", result)


# ---------------------------------------------------------------------------------------------------------------
# The verdict per axis and overall
# ---------------------------------------------------------------------------------------------------------------


def test_one_failing_axis_fails_the_claim_where_another_passes() -> None:
    found = quality_axes.verdicts_by_axis({"alpha": UNRELATED, "width": TRACKING}, CONTEXT)
    assert [(v.axis, v.result.verdict) for v in found] == [("alpha", "pass"), ("width", "fail")]
    verdict, reason = quality_axes.combine(found)
    assert (verdict, reason) == ("fail", "fails on the width axis")
    both = [found[1], quality_axes.axis_verdict("task", TRACKING, CONTEXT)]
    assert quality_axes.combine(both) == ("fail", "fails on the width and task axes")


def test_every_axis_passing_passes_the_claim() -> None:
    found = quality_axes.verdicts_by_axis({"task": UNRELATED, "alpha": UNRELATED}, CONTEXT)
    assert [v.axis for v in found] == ["alpha", "task"]  # report order, whatever the mapping's
    assert quality_axes.combine(found)[0] == "pass"


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        (("pass", "pass", "pass"), "pass"),
        (("pass", "fail", "pass"), "fail"),
        (("fail", "inconclusive", "pass"), "fail"),
        (("pass", "inconclusive", "pass"), "inconclusive"),
        (("inconclusive", "inconclusive", "inconclusive"), "inconclusive"),
    ],
)
def test_the_overall_rule_is_a_conjunction_over_the_axes(states, overall) -> None:
    found = [_verdict(axis, state) for axis, state in zip(quality_axes.AXES, states, strict=True)]
    verdict, reason = quality_axes.combine(found)
    assert verdict == overall
    if overall == "inconclusive":
        assert "width" in reason  # the undecided axis is named


def test_no_axis_is_inconclusive_and_an_unknown_axis_is_refused() -> None:
    assert quality_axes.combine([])[0] == "inconclusive"
    with pytest.raises(ValueError, match="axis = 'depth'.*allowed: alpha, width, task"):
        quality_axes.axis_verdict("depth", UNRELATED, CONTEXT)


def test_an_axis_with_too_few_runs_is_inconclusive_and_keeps_the_overall_open() -> None:
    few = quality_axes.axis_verdict("width", TRACKING[TRACKING["data.n"] == 100], CONTEXT)
    assert few.result.verdict == "inconclusive"
    passed = quality_axes.axis_verdict("alpha", UNRELATED, CONTEXT)
    assert quality_axes.combine([passed, few])[0] == "inconclusive"


def test_the_setting_names_what_an_axis_holds_fixed() -> None:
    table = UNRELATED.assign(**{"data.model": "staircase", "data.k": 3, "model.width": 128})
    text = quality_axes.setting(table)
    assert text.startswith("staircase k=3, width 128, alpha 0.01-3.162, n 100-400")
    assert text.endswith(f"{len(table)} runs")


# ---------------------------------------------------------------------------------------------------------------
# The [axes] options
# ---------------------------------------------------------------------------------------------------------------


def _config(**axes: dict) -> dict:
    config = quality_config.read_quality_config()
    for axis, values in axes.items():
        if values is None:
            config["axes"].pop(axis)
        else:
            config["axes"][axis] = {**config["axes"][axis], **values}
    return config


def test_the_default_config_sweeps_every_axis() -> None:
    sweeps = quality_config.quality_sweeps()
    assert {s.axis for s in sweeps.values()} == {"alpha", "width", "task", None}
    width = sweeps[quality_config.WIDTH_SWEEP].runs
    assert sorted({r["model.width"] for r in width}) == [128, 256, 512, 1024, 2048]
    assert {r["model.alpha"] for r in width} == {0.05}
    assert {r[quality_config.DTYPE_KEY] for r in width} == {"float32"}
    assert {r["data.k"] for r in sweeps[quality_config.TASK_SWEEP].runs} == {4}


def test_an_absent_axis_is_not_swept() -> None:
    sweeps = quality_config.quality_sweeps(_config(width=None))
    assert quality_config.WIDTH_SWEEP not in sweeps and quality_config.TASK_SWEEP in sweeps


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"width": {"widths": [128]}}, r"axes\.width\.widths = \[128\] .*at least 2 distinct integers"),
        ({"width": {"widths": [128, 0]}}, r"axes\.width\.widths = 0 is out of range; allowed: integers >= 1"),
        ({"width": {"widths": [128, 128.5]}}, r"axes\.width\.widths must be an integer"),
        ({"width": {"widths": "128"}}, r"axes\.width\.widths = '128'"),
        ({"width": {"alpha": -1.0}}, r"axes\.width\.alpha"),
        ({"width": {"seeds": 1}}, r"axes\.width\.seeds = 1 is out of range; allowed: integers >= 2"),
        ({"width": {"dtype": "float16"}}, r"axes\.width\.dtype = 'float16' .*'float64', 'float32'"),
        ({"width": {"depth": 3}}, r"axes\.width\.depth is not a key of \[axes\.width\]; allowed: widths"),
        ({"task": {"data": {}}}, r"axes\.task\.data = \{\} changes nothing"),
        ({"task": {"data": {"k": 3}}}, r"axes\.task\.data = \{'k': 3\} makes the main sweep's task again"),
        ({"task": {"data": {"k": 40}}}, r"axes\.task\.data: .*data\.k"),
        ({"task": {"seeds": 0}}, r"axes\.task\.seeds = 0 is out of range"),
        (
            {"depth": {"widths": [1, 2]}},
            r"axes\.depth is not an axis of the quality family; allowed: width, task",
        ),
    ],
)
def test_bad_axis_options_are_refused_naming_the_key(axes, message) -> None:
    config = quality_config.read_quality_config()
    for axis, values in axes.items():
        config["axes"][axis] = {**config["axes"].get(axis, {}), **values}
    with pytest.raises(ConfigError, match=message):
        quality_config.quality_sweeps(config)


def test_a_missing_axis_key_is_refused_naming_it() -> None:
    config = quality_config.read_quality_config()
    del config["axes"]["width"]["alpha"]
    with pytest.raises(ConfigError, match=r"axes\.width\.alpha is missing from \[axes\.width\]"):
        quality_config.quality_sweeps(config)


# ---------------------------------------------------------------------------------------------------------------
# float32 training of the width sweep
# ---------------------------------------------------------------------------------------------------------------


def test_float32_training_matches_float64_and_is_recorded_in_the_run() -> None:
    """The width sweep trains in float32: the same runs in float64 reach their target in the same number of
    steps (+-1) with test errors within 1 % and strength measures within 1e-3 (kernel fits are float64 in
    both)."""
    runs64 = _tiny_runs(quality_config.MAIN_SWEEP)
    runs32 = [{**run, quality_config.DTYPE_KEY: "float32"} for run in runs64]
    for a, b in zip(
        quality_runner.run_quality_batch(runs64), quality_runner.run_quality_batch(runs32), strict=True
    ):
        assert a.row["status"] == b.row["status"] == "target_reached"
        assert abs(a.row["steps"] - b.row["steps"]) <= 1
        for column in ("err_network", "err_tangent_after", "err_conjugate_after"):
            assert b.row[column] == pytest.approx(a.row[column], rel=1e-2), column
        for column in ("weight_change", "kernel_change", "alignment_change", "cka_change"):
            assert b.row[column] == pytest.approx(a.row[column], rel=1e-3, abs=1e-6), column


# ---------------------------------------------------------------------------------------------------------------
# A reduced quality config (tests/compare/test_figures.py runs `fls verify --family quality` on it)
# ---------------------------------------------------------------------------------------------------------------


def tiny_quality_config() -> dict:
    """The default quality config made tiny: d = 6, width 24 (width axis 16-64), n in {30, 60}, three alphas,
    two seeds; every axis has the 12 runs the claim needs."""
    config = quality_config.read_quality_config()
    config["data"].update({"d": 6, "n_test": 200})
    config["model"]["width"] = 24
    config["grid"].update({"data.n": [30, 60], "model.alpha": [0.1, 0.5, 2.0], "seeds": 2})
    config["axes"]["width"].update({"widths": [16, 32, 64], "alpha": 0.1, "seeds": 2})
    config["axes"]["task"]["seeds"] = 2
    return config
