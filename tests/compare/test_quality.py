"""Feature-learning strength and quality (compare.quality_metrics, quality_runner, quality_claims): the measures
on hand-computable cases, the claim's rule on synthetic tables, the lazy-regime agreement of the network with its after-kernel, and
the runner and verify end to end."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import spearmanr

from fls.compare import claim_figures, quality_claims, quality_config, quality_runner, statistics, verify
from fls.compare.quality_metrics import (
    linear_cka,
    prediction_error,
    quality_gains,
    strength_measures,
)
from fls.compare.verdict import ClaimContext
from fls.simulate.data import make_data, staircase
from fls.simulate.initialization import init_params
from fls.simulate.kernel import KERNELS, kernel_matrices, kernel_regression
from fls.simulate.stopping import TargetRisk
from fls.theory.compiled import compile_field
from fls.theory.validation import ParameterError

# ---------------------------------------------------------------------------------------------------------------
# CKA
# ---------------------------------------------------------------------------------------------------------------


def _matrix(seed: int, n: int, p: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, p))


def _orthogonal(seed: int, p: int) -> np.ndarray:
    return np.linalg.qr(_matrix(seed, p, p))[0]


@given(seed=st.integers(0, 10_000), n=st.integers(3, 30), p=st.integers(1, 6))
def test_cka_of_identical_representations_is_one(seed: int, n: int, p: int) -> None:
    A = _matrix(seed, n, p)
    assert linear_cka(A, A) == pytest.approx(1.0, abs=1e-12)


@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), shift=st.floats(-5, 5))
def test_cka_is_invariant_to_scaling_orthogonal_maps_and_shifts(
    seed: int, scale: float, shift: float
) -> None:
    A, B = _matrix(seed, 20, 4), _matrix(seed + 1, 20, 3)
    reference = linear_cka(A, B)
    assert linear_cka(scale * A @ _orthogonal(seed + 2, 4) + shift, B) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(A, B @ _orthogonal(seed + 3, 3) / scale) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(B, A) == pytest.approx(reference, rel=1e-12)
    assert 0.0 <= reference <= 1.0


@given(seed=st.integers(0, 10_000))
def test_cka_equals_the_centered_alignment_of_the_gram_matrices(seed: int) -> None:
    """Independent reference: <HKH, HLH>_F / (||HKH||_F ||HLH||_F) with the n x n Gram matrices."""
    A, B = _matrix(seed, 15, 3), _matrix(seed + 1, 15, 5)
    H = np.eye(15) - 1.0 / 15
    K, L = H @ A @ A.T @ H, H @ B @ B.T @ H
    expected = np.sum(K * L) / (np.linalg.norm(K) * np.linalg.norm(L))
    assert linear_cka(A, B) == pytest.approx(expected, rel=1e-10)


def test_cka_is_not_invariant_to_a_general_linear_map() -> None:
    A = _matrix(0, 50, 3)
    stretched = A @ np.diag([1.0, 1.0, 30.0])
    assert linear_cka(A, stretched) < 0.9


def test_cka_of_a_constant_representation_is_nan() -> None:
    assert np.isnan(linear_cka(np.ones((5, 2)), _matrix(1, 5, 2)))


# ---------------------------------------------------------------------------------------------------------------
# Strength and quality measures
# ---------------------------------------------------------------------------------------------------------------


def _network(seed: int = 0, m: int = 12, d: int = 5, n: int = 25):
    W0, v0 = init_params(m, d, alpha=0.8, scheme="random_sign", seed=seed)
    X = _matrix(seed + 7, n, d)
    y = np.sign(X[:, 0]) + 0.5 * X[:, 1]
    return W0, v0, X, y


def test_an_untrained_network_has_zero_strength() -> None:
    W0, v0, X, y = _network()
    measures = strength_measures(W0, v0, W0.copy(), v0.copy(), X, y)
    assert measures == pytest.approx({name: 0.0 for name in measures}, abs=1e-12)


@given(scale=st.floats(0.1, 10.0))
def test_strength_of_a_rescaled_network_is_hand_computable(scale: float) -> None:
    """theta -> s theta: weight change |s - 1|; the tangent kernel is quadratic in theta, so kernel change
    |s^2 - 1|; kernel-target alignment and CKA are scale-free, so their changes are 0."""
    W0, v0, X, y = _network(1)
    measures = strength_measures(W0, v0, scale * W0, scale * v0, X, y, c=0.7)
    assert measures["weight_change"] == pytest.approx(abs(scale - 1), abs=1e-12)
    assert measures["kernel_change"] == pytest.approx(abs(scale**2 - 1), rel=1e-10, abs=1e-12)
    assert measures["alignment_change"] == pytest.approx(0.0, abs=1e-12)
    assert measures["cka_change"] == pytest.approx(0.0, abs=1e-12)


def test_strength_grows_when_the_features_change() -> None:
    W0, v0, X, y = _network(2)
    W = W0.copy()
    W[:, 0] += 2.0  # every neuron turns towards e1
    measures = strength_measures(W0, v0, W, v0, X, y)
    assert (
        measures["weight_change"] > 0.5 and measures["kernel_change"] > 0.5 and measures["cka_change"] > 0.05
    )


def test_prediction_error_is_mse_or_error_rate_with_a_floor() -> None:
    assert prediction_error([1.0, 2.0], [0.0, 0.0], "regression") == pytest.approx(2.5)
    assert prediction_error([1.0, -1.0, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0], "classification") == pytest.approx(
        0.5
    )
    assert prediction_error([1.0, -1.0], [1.0, -1.0], "classification") == pytest.approx(0.25)
    with pytest.raises(ParameterError, match="task"):
        prediction_error([1.0], [1.0], "ranking")


def test_quality_gains_are_error_ratios() -> None:
    gains = quality_gains(
        {"network": 0.1, "tangent": 1.0, "tangent_after": 0.5, "conjugate": 2.0, "conjugate_after": 0.0}
    )
    assert gains["gain_network"] == pytest.approx(10.0)
    assert gains["gain_tangent"] == pytest.approx(2.0)
    assert np.isnan(gains["gain_conjugate"])


# ---------------------------------------------------------------------------------------------------------------
# The bias coordinate
# ---------------------------------------------------------------------------------------------------------------


@given(seed=st.integers(0, 10_000))
def test_the_odd_part_of_a_bias_free_network_is_linear(seed: int) -> None:
    """f(x) - f(-x) = c sum_j v_j <w_j, x>: why the quality sweep appends a constant input coordinate."""
    W, v = init_params(9, 6, alpha=1.0, scheme="random_sign", seed=seed)
    X = np.where(_matrix(seed, 20, 6) > 0, 1.0, -1.0)
    field = compile_field("squared")
    odd = field.output(W, v, X, 0.6) - field.output(W, v, -X, 0.6)
    np.testing.assert_allclose(odd, 0.6 * X @ (v @ W), atol=1e-12)
    np.testing.assert_array_equal(quality_runner.with_bias(X)[:, -1], 1.0)


# ---------------------------------------------------------------------------------------------------------------
# The network and its after-kernel agree in the lazy regime
# ---------------------------------------------------------------------------------------------------------------

#: Relative tolerance of the lazy-regime agreement (measured at alpha = 8, width 400: 3.4e-3 in the test predictions,
#: 2.7e-3 in the test error; the gap shrinks like 1 / alpha: 3.5e-2 at alpha = 0.5, 1.5e-2 at 1, 6.7e-3 at 4).
LAZY_TOLERANCE = 0.01


def test_after_kernel_recovers_the_network_in_the_lazy_regime() -> None:
    """At large alpha (antisymmetric init, f0 = 0) GD on the squared loss to a tiny risk is kernel regression with
    the tangent kernel, which barely moves: ridgeless regression with the network's after-kernel must give the
    network's own test predictions and test error within LAZY_TOLERANCE."""
    data = make_data("staircase", n=30, d=6, seed=0, k=3, task="regression", n_test=300)
    X, X_test = quality_runner.with_bias(data.X), quality_runner.with_bias(data.X_test)
    W0, v0 = init_params(400, X.shape[1], alpha=8.0, scheme="antisymmetric", seed=0)
    K0, _ = kernel_matrices("tangent", X, X_test, W=W0, v=v0)
    eta = 1.0 / np.linalg.eigvalsh(K0 / len(X))[-1]
    (record,) = quality_runner.train_members(
        W0[None],
        v0[None],
        X[None],
        data.y[None],
        c=np.ones(1),
        etas=np.array([eta]),
        loss="squared",
        rule=TargetRisk(1e-9),
        max_steps=20_000,
    )
    assert record.status == "target_reached"
    W, v = record.final["W"], record.final["v"]
    K, K_test = kernel_matrices("tangent", X, X_test, W=W, v=v)
    fit = kernel_regression(K, data.y, K_test)
    network = compile_field("squared").output(W, v, X_test, 1.0)
    scale = np.linalg.norm(network)
    assert np.linalg.norm(fit.f_test - network) <= LAZY_TOLERANCE * scale
    errors = [prediction_error(f, data.y_test, "regression") for f in (network, fit.f_test)]
    assert errors[1] == pytest.approx(errors[0], rel=LAZY_TOLERANCE)
    # and the lazy network is not a feature learner: its error is within the tolerance of the kernel at init too
    init = kernel_regression(K0, data.y, kernel_matrices("tangent", X, X_test, W=W0, v=v0)[1])
    assert prediction_error(init.f_test, data.y_test, "regression") == pytest.approx(
        errors[0], rel=LAZY_TOLERANCE
    )


def test_train_members_fits_real_targets_and_refuses_them_with_a_classification_loss() -> None:
    X = quality_runner.with_bias(np.where(_matrix(3, 20, 4) > 0, 1.0, -1.0))
    y = staircase(X[:, :4], 2)
    W0, v0 = init_params(10, 5, alpha=0.5, scheme="antisymmetric", seed=0)
    (record,) = quality_runner.train_members(
        W0[None],
        v0[None],
        X[None],
        y[None],
        c=np.ones(1),
        etas=np.array([0.05]),
        loss="squared",
        rule=TargetRisk(1e-3),
        max_steps=20,
    )
    output = compile_field("squared").output(record.final["W"], record.final["v"], X, 1.0)
    assert record.history["risk"][-1] == pytest.approx(np.mean((output - y) ** 2) / 2, rel=1e-10)
    assert record.history["risk"][-1] < record.history["risk"][0]
    with pytest.raises(ParameterError, match="squared"):
        quality_runner.train_members(
            W0[None],
            v0[None],
            X[None],
            y[None],
            c=np.ones(1),
            etas=np.array([0.05]),
            loss="logistic",
            rule=TargetRisk(1e-3),
            max_steps=5,
        )


# ---------------------------------------------------------------------------------------------------------------
# The claim's statistics and rule
# ---------------------------------------------------------------------------------------------------------------


@given(seed=st.integers(0, 10_000), n=st.integers(3, 25), ties=st.booleans())
def test_spearman_rows_matches_scipy(seed: int, n: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((4, n)), rng.standard_normal((4, n))
    if ties:
        x = np.round(x)
    got = statistics.spearman_rows(x, y)
    for row in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on a constant row, whose rho is NaN
            expected = spearmanr(x[row], y[row]).statistic
        if np.isnan(expected):
            assert np.isnan(got[row])
        else:
            assert got[row] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("interval", "by_size", "state"),
    [
        ((-0.29, 0.29), [(0.1, 0.5)], "decoupled"),  # excludes every |rho| >= 0.3
        ((-0.2, 0.3), [(0.1, 0.5)], "undecided"),  # reaches the decoupling threshold
        ((-0.3, 0.2), [(0.1, 0.5)], "undecided"),
        ((-0.5, 0.9), [(-0.2, 0.9)], "undecided"),  # contains 0 but decides nothing
        ((0.1, 0.45), [(0.1, 0.5)], "undecided"),  # a moderate association is not excluded
        ((0.6, 0.9), [(0.3, 0.8), (-0.9, -0.2)], "undecided"),  # sign change across data sizes
        ((0.6, 0.9), [(0.3, 0.8), (-0.2, 0.5)], "tracks"),
        ((0.5, 0.9), [(0.3, 0.8)], "undecided"),  # touches the tracking threshold
        ((0.51, 0.9), [(0.3, 0.8)], "tracks"),
        ((-0.95, -0.7), [(-0.9, -0.5)], "tracks"),
        ((0.3, 0.8), [(0.2, 0.9)], "undecided"),
        ((np.nan, np.nan), [], "undecided"),
    ],
)
def test_tracking_state_follows_the_stated_rule(interval, by_size, state) -> None:
    assert quality_claims.tracking_state(interval, by_size) == state


_RHO = st.floats(-1.0, 1.0)


@given(_RHO, _RHO, st.lists(st.tuples(_RHO, _RHO).map(sorted), max_size=4))
def test_a_measure_is_decoupled_only_when_its_interval_excludes_a_moderate_association(a, b, by_size) -> None:
    lo, hi = sorted((a, b))
    state = quality_claims.tracking_state((lo, hi), by_size)
    bound = quality_claims.DECOUPLED_RHO
    assert (state == "decoupled") == (-bound < lo and hi < bound)
    if state == "tracks":
        assert lo > quality_claims.TRACKING_RHO or hi < -quality_claims.TRACKING_RHO


def _synthetic_table(quality_of, seed: int = 0, seeds: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for n in (100, 200, 400):
        for alpha in np.logspace(-2, 0.5, 6):
            for s in range(seeds):
                strength = 1.0 / alpha + 0.05 * rng.standard_normal()
                rows.append(
                    {
                        "data.n": n,
                        "model.alpha": alpha,
                        "seed": s,
                        "fls": 1 / alpha**2,
                        "status": "target_reached",
                        "weight_change": strength,
                        "kernel_change": strength**2,
                        "alignment_change": 0.01 * strength,
                        "cka_change": strength / (1 + strength),
                        "err_tangent": 1.0,
                        "err_network": 1.0,
                        "err_conjugate": 1.0,
                        "err_conjugate_after": 1.0,
                        "err_tangent_after": 1.0 / quality_of(strength, n, rng),
                    }
                )
    return pd.DataFrame(rows)


def test_claim_fails_when_quality_is_a_function_of_strength() -> None:
    result = quality_claims.strength_quality_claim(
        _synthetic_table(lambda s, n, rng: 1 + s), ClaimContext(n_boot=300)
    )
    assert result.verdict == "fail" and result.value > 0.9
    assert "tracks" in result.evidence["rho(weight_change)"]


def test_claim_passes_when_quality_is_unrelated_given_runs_enough_to_exclude_an_association() -> None:
    unrelated = quality_claims.strength_quality_claim(
        _synthetic_table(lambda s, n, rng: np.exp(rng.standard_normal()), seeds=20), ClaimContext(n_boot=300)
    )
    assert unrelated.verdict == "pass"
    lo, hi = unrelated.interval
    assert -quality_claims.DECOUPLED_RHO < lo and hi < quality_claims.DECOUPLED_RHO


def test_few_unrelated_runs_or_a_sign_change_leave_the_claim_undecided() -> None:
    """54 unrelated runs give intervals of rho about +-0.27 wide: they contain 0 but do not exclude a moderate
    association, so no measure is decoupled; nor is one whose rho changes sign with the data size."""
    few = quality_claims.strength_quality_claim(
        _synthetic_table(lambda s, n, rng: np.exp(rng.standard_normal())), ClaimContext(n_boot=300)
    )
    assert few.verdict == "inconclusive"
    flipping = quality_claims.strength_quality_claim(
        _synthetic_table(lambda s, n, rng: (1 + s) ** (1 if n < 200 else -1)), ClaimContext(n_boot=300)
    )
    assert flipping.verdict == "inconclusive"
    assert all("undecided" in flipping.evidence[f"rho({m})"] for m in quality_claims.STRENGTH_MEASURES)


def test_claim_is_inconclusive_without_enough_runs(tmp_path) -> None:
    table = _synthetic_table(lambda s, n, rng: 1 + s)
    result = quality_claims.strength_quality_claim(table[table["data.n"] == 100], ClaimContext(n_boot=100))
    assert result.verdict == "inconclusive" and "data sizes" in result.reason
    unmeasured = table[["data.n", "model.alpha", "seed", "fls"]].assign(status="failed", message="broken")
    assert quality_claims.strength_quality_claim(unmeasured).verdict == "inconclusive"
    result = quality_claims.strength_quality_claim(table, ClaimContext(n_boot=100))
    figure = claim_figures.draw_claim(table, result, tmp_path).figure
    assert figure is not None and figure.exists()


# ---------------------------------------------------------------------------------------------------------------
# The runner and verify
# ---------------------------------------------------------------------------------------------------------------


def _tiny_runs(name: str, **changes: dict) -> list[dict]:
    """The seed-0 runs of the default quality sweep ``name`` made tiny (d = 6, width 40, n = 40), with
    ``changes`` (table -> values) to the main config; the axes are left out."""
    config = quality_config.read_quality_config()
    config.pop(quality_config.AXES_TABLE)
    config["data"].update({"d": 6, "n_test": 200})
    config["grid"].update({"data.n": [40], "model.alpha": [0.1, 2.0], "seeds": 1})
    config["model"]["width"] = 40
    for table, values in changes.items():
        config.setdefault(table, {}).update(values)
    return [run for run in quality_config.quality_sweeps(config)[name].runs if run["seed"] == 0]


@pytest.mark.parametrize("name", [quality_config.MAIN_SWEEP, "staircase-classification", "parity"])
def test_run_quality_batch_measures_every_run(name: str) -> None:
    outputs = quality_runner.run_quality_batch(_tiny_runs(name))
    assert len(outputs) == 2
    for output in outputs:
        row = output.row
        assert row["status"] == "target_reached", row["message"]
        assert row["task"] == ("regression" if name == quality_config.MAIN_SWEEP else "classification")
        for column in (
            "err_network",
            *[f"err_{k}" for k in (*KERNELS, *quality_runner.AFTER_FITS)],
            *quality_claims.STRENGTH_MEASURES,
        ):
            assert np.isfinite(row[column]), column
        assert len(output.arrays["t"]) == len(output.arrays["risk"])
    rich, lazy = (o.row for o in outputs)
    assert rich["weight_change"] > 10 * lazy["weight_change"]
    assert rich["eta"] >= lazy["eta"]


def test_run_quality_batch_fits_logistic_peers_by_kernel_flow() -> None:
    """With the logistic loss the network and every kernel peer stop at the same target risk."""
    runs = _tiny_runs(
        "staircase-classification",
        data={"task": "classification"},
        model={"loss": "logistic"},
        stop={"rule": "risk", "eps": 0.1},
    )
    (output,) = quality_runner.run_quality_batch(runs[:1])
    assert output.row["status"] == "target_reached" and output.row["final_risk"] <= 0.1
    for name in (*KERNELS, *quality_runner.AFTER_FITS):
        assert output.row[f"fit_{name}"] == "target_reached", name
        assert 0.0 < output.row[f"err_{name}"] < 0.5, name


def test_quality_sweeps_are_valid_configs() -> None:
    sweeps = quality_config.quality_sweeps()
    axes = {quality_config.MAIN_SWEEP, quality_config.WIDTH_SWEEP, quality_config.TASK_SWEEP}
    assert set(sweeps) == {*axes, *quality_config.CONTROLS}
    for sweep in sweeps.values():
        assert sweep.runs and len({run["run_id"] for run in sweep.runs}) == len(sweep.runs)
    assert "task" not in sweeps["parity"].config["data"]


@pytest.mark.slow
def test_verify_quality_end_to_end(tmp_path, capsys) -> None:
    path = verify.verify_quality(tmp_path, workers=2)
    text = path.read_text()
    printed = capsys.readouterr().out
    assert path.name == "quality_report.md" and "Claim (q)" in text
    assert any(word in printed for word in ("pass", "fail", "inconclusive")) and "wall time" in printed
    assert (tmp_path / "figures" / "quality_strength.png").exists()
    assert (tmp_path / "figures" / "quality_learning_curves.png").exists()
