"""Claims on synthetic run tables whose answer is known by construction."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.compare import claim_figures, claims, registry, statistics, verdict
from fls.theory.validation import ParameterError

ALPHAS = np.logspace(-4, 1, 16)


def make_table(value_of, *, seeds=16, alphas=ALPHAS, inits=("random_sign",), ns=(40,), noise=0.003, seed=0):
    """A run table: value_of(alpha, n, init) -> dict of columns (means); each seed adds Gaussian noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for init in inits:
        for n in ns:
            for alpha in alphas:
                for s in range(seeds):
                    row = {
                        "model.init": init,
                        "data.n": n,
                        "model.width": 100,
                        "model.alpha": alpha,
                        "model.c": 1.0,
                        "fls": 1 / alpha**2,
                        "seed": s,
                        "run_id": f"{init}-{n}-{alpha}-{s}",
                        "status": "target_reached",
                        "train.engine": "gd",
                    }
                    for key, mean in value_of(alpha, n, init).items():
                        row[key] = mean + noise * rng.standard_normal()
                    rows.append(row)
    return pd.DataFrame(rows)


def u_shape(alpha, n=40, init="random_sign", centre=0.2):
    return {"test_error": 0.06 + 0.02 * np.log10(alpha / centre) ** 2}


def test_a_u_shaped_table_passes_and_a_monotone_one_fails():
    passed = claims.interior_optimum(make_table(u_shape))
    assert passed.verdict == "pass"
    assert ALPHAS[8] < 1 / np.sqrt(passed.value) < ALPHAS[11]  # the smooth argmin, near the centre 0.2
    assert passed.interval[0] <= 1 / 0.2**2 <= passed.interval[1]  # its interval (in FLS) holds the centre
    assert passed.interval[0] > 1 / ALPHAS[-1] ** 2 and passed.interval[1] < 1 / ALPHAS[0] ** 2
    monotone = claims.interior_optimum(make_table(lambda a, n, i: {"test_error": 0.1 + 0.01 * np.log10(a)}))
    assert monotone.verdict == "fail"


@pytest.mark.parametrize("seed", range(5))
def test_a_flat_noisy_table_does_not_pass(seed):
    table = make_table(lambda a, n, i: {"test_error": 0.06}, noise=0.02, seed=seed)
    assert claims.interior_optimum(table).verdict in ("inconclusive", "fail")


def test_too_few_seeds_or_missing_runs_make_a_claim_inconclusive():
    few = claims.interior_optimum(make_table(u_shape, seeds=2))
    assert few.verdict == "inconclusive" and "seed" in few.reason
    table = make_table(u_shape)
    table.loc[table.index[: len(table) // 2], "status"] = "not_reached"
    assert claims.interior_optimum(table).verdict == "inconclusive"


def aligned(alpha, n=40, init="random_sign"):
    small = alpha < 0.1
    return {
        "Psi": 0.99 if small else 0.5,
        "cos_bayes": 0.67 if small else 0.4,
        "cos_class_sum_bayes": 0.665,
        "oa": 0.04 if small else 0.0,
        "of": 0.02 if small else 0.3,
    }


def test_over_alignment_and_over_fitting_pass_on_an_aligned_table():
    table = make_table(lambda a, n, i: {**u_shape(a), **aligned(a)})
    assert claims.over_alignment(table).verdict == "pass"
    assert claims.over_fitting(table).verdict == "pass"


def test_over_alignment_fails_without_alignment_and_over_fitting_fails_when_of_falls():
    table = make_table(
        lambda a, n, i: {**u_shape(a), **aligned(a), "Psi": 0.5, "of": 0.3 - 0.02 * np.log10(a)}
    )
    assert claims.over_alignment(table).verdict == "fail"
    assert claims.over_fitting(table).verdict == "fail"


def test_over_fitting_reports_whether_the_antisymmetric_arm_survives():
    def errors(alpha, n, init):
        arm = 0.02 * np.log10(alpha / 0.2) ** 2 if (init == "random_sign" or alpha < 0.2) else 0.0
        return {"test_error": 0.06 + arm, **aligned(alpha)}

    result = claims.over_fitting(make_table(errors, inits=("random_sign", "antisymmetric")))
    assert "survives" in result.evidence["random_sign: error(smallest FLS) - min error"]
    assert "vanishes" in result.evidence["antisymmetric: error(smallest FLS) - min error"]


def test_reduced_models_pass_when_the_predictions_match_and_fail_when_they_do_not():
    def matching(alpha, n, init, offset=0.0):
        error = u_shape(alpha)["test_error"]
        return {
            "test_error": error,
            "pred_small_alpha_error": error + offset,
            "pred_lazy_error": error + offset,
        }

    assert claims.reduced_models(make_table(matching)).verdict == "pass"
    assert claims.reduced_models(make_table(lambda a, n, i: matching(a, n, i, 0.05))).verdict == "fail"
    assert claims.reduced_models(make_table(u_shape)).verdict == "inconclusive"


@pytest.mark.parametrize(("exponent", "verdict"), [(-1.0, "pass"), (0.0, "fail")])
def test_scaling_recovers_the_exponent_of_the_optimum(exponent, verdict):
    ns = (10, 20, 40, 80, 160)
    table = make_table(lambda a, n, i: u_shape(a, centre=0.2 * (n / 40) ** exponent), ns=ns, noise=0.001)
    result = claims.scaling(table, "data.n")
    assert result.verdict == verdict
    assert result.value == pytest.approx(exponent, abs=0.15)
    assert claims.scaling(table, "model.width").verdict == "inconclusive"


def test_scaling_reports_every_init_with_its_own_exponent_and_verdict():
    ns = (10, 20, 40, 80, 160)
    moving = {"random_sign": 0.0, "antisymmetric": -1.0}  # pinned, and on the literature line
    table = make_table(
        lambda a, n, i: u_shape(a, centre=0.2 * (n / 40) ** moving[i]),
        ns=ns,
        noise=0.001,
        inits=tuple(moving),
    )
    result = claims.scaling(table, "data.n")
    assert result.verdict == "fail" and result.value == pytest.approx(0.0, abs=0.15)
    assert result.evidence["antisymmetric: fitted exponent"].startswith("pass: ")
    assert "f0 boundary" in result.evidence["mechanism"]
    assert result.data["others"]["antisymmetric"]["exponent"] == pytest.approx(-1.0, abs=0.15)


def test_smooth_argmin_finds_the_vertex_of_a_parabola():
    x = np.linspace(-3, 3, 13)
    assert statistics.smooth_argmin(x, (x - 0.37) ** 2) == pytest.approx(0.37)
    assert np.isnan(statistics.smooth_argmin(x, x))  # minimum at an end


def test_bootstrap_is_seeded_and_verdicts_are_checked():
    table = make_table(u_shape)
    assert claims.interior_optimum(table) == claims.interior_optimum(table)
    with pytest.raises(ParameterError, match="verdict"):
        verdict.ClaimResult("a", "t", "maybe", "r", "s", 0.0, (0.0, 0.0))


def test_check_claims_runs_the_family_and_names_an_unknown_one():
    results = registry.check_claims(make_table(lambda a, n, i: {**u_shape(a), **aligned(a)}))
    assert [r.key for r in results] == list(claims.CLAIMS)
    with pytest.raises(ParameterError, match="family"):
        registry.check_claims(make_table(u_shape), families=["nope"])


def test_thresholds_are_checked_against_the_claims_parameters():
    table = make_table(lambda a, n, i: {**u_shape(a), **aligned(a)})
    strict = registry.check_claims(table, thresholds={"b": {"aligned_psi": 0.999999}})
    assert strict[1].verdict != "pass"
    with pytest.raises(ParameterError, match="claims.b.tolerance"):
        registry.check_claims(table, thresholds={"b": {"tolerance": 0.1}})
    with pytest.raises(ParameterError, match="claims.z"):
        registry.check_claims(table, thresholds={"z": {}})


def test_claims_write_their_figures(tmp_path):
    table = make_table(lambda a, n, i: {**u_shape(a), **aligned(a)})
    result = claims.interior_optimum(table, verdict.ClaimContext(n_boot=200))
    assert result.figure is None and result.data["argmin_band"]
    again = verdict.ClaimResult.from_dict(json.loads(json.dumps(result.to_dict())))
    drawn = claim_figures.draw_claim(table, again, tmp_path)
    assert drawn.figure.exists() and drawn.figure.with_suffix(".pdf").exists()
    assert drawn.figure.name == "claim_a_error_vs_fls.png"


_numbers = st.floats(allow_nan=True, allow_infinity=True)
_plain = st.one_of(st.text(max_size=8), st.integers(-1000, 1000), st.floats(allow_nan=False, width=32))


@settings(max_examples=60, deadline=None)
@given(
    value=_numbers,
    bounds=st.tuples(_numbers, _numbers),
    evidence=st.dictionaries(st.text(min_size=1, max_size=6), _plain, max_size=4),
    curve=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5),
)
def test_a_verdict_survives_the_json_record_the_analysis_is_stored_as(value, bounds, evidence, curve):
    result = verdict.ClaimResult(
        "k", "t", "fail", "r", "s", value, bounds, evidence, data={"x": np.array(curve), "n": np.int64(3)}
    )
    again = verdict.ClaimResult.from_dict(json.loads(json.dumps(result.to_dict())))
    same = lambda a, b: (np.isnan(a) and np.isnan(b)) or a == b
    assert same(again.value, value) and all(same(a, b) for a, b in zip(again.interval, bounds, strict=True))
    assert again.evidence == evidence and again.data == {"x": curve, "n": 3}
    assert again.key == "k" and again.verdict == "fail" and again.figure is None
