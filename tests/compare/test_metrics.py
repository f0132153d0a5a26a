"""Metrics pinned on hand-computable cases, identities, and a Monte-Carlo cross-check of the exact errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fls.compare import metrics
from fls.simulate.data import make_data
from fls.simulate.initialization import init_params
from fls.theory.lazy import empirical_tangent_kernel

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def test_psi_of_a_single_neuron_is_its_cosine_with_the_class_sum():
    x_plus = np.array([3.0, 4.0, 0.0])
    reference = metrics.AlignmentReference(x_plus, np.array([1.0, 0.0, 0.0]))
    aligned = metrics.alignment_observables(np.array([[6.0, 8.0, 0.0]]), np.array([10.0]), reference)
    assert aligned["Psi"] == pytest.approx(1.0)
    assert aligned["cos_bayes"] == pytest.approx(0.6)
    orthogonal = metrics.alignment_observables(np.array([[0.0, 0.0, 2.0]]), np.array([2.0]), reference)
    assert orthogonal["Psi"] == pytest.approx(0.0)
    assert orthogonal["norm"] == pytest.approx(np.sqrt(8.0))


def test_positive_combination_ignores_negative_neurons():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    v = np.array([2.0, 3.0, -1.0])
    np.testing.assert_array_equal(metrics.positive_combination(W, v), [2.0, 3.0])


def test_stable_rank_of_rank_one_and_orthonormal_rows():
    assert metrics.stable_rank(np.outer([1.0, -2.0, 3.0], [0.5, 4.0])) == pytest.approx(1.0)
    assert metrics.stable_rank(np.eye(4)[:3]) == pytest.approx(3.0)
    assert np.isnan(metrics.stable_rank(np.zeros((2, 3))))


@given(arrays(np.float64, (4, 3), elements=finite))
def test_stable_rank_lies_between_one_and_the_rank(W):
    if np.linalg.norm(W) < 1e-3:
        return
    rank = np.linalg.matrix_rank(W)
    assert 1 - 1e-9 <= metrics.stable_rank(W) <= rank + 1e-9


def test_kernel_movement_of_an_untrained_network_is_zero():
    data = make_data("gaussian_mixture", n=12, d=6, seed=0, n_test=10)
    W, v = init_params(8, 6, alpha=0.5, scheme="random_sign", seed=1)
    K = empirical_tangent_kernel(W, v, data.X, data.X)
    assert metrics.kernel_movement(K, K) == 0.0
    assert metrics.kernel_movement(K, 3.0 * K) == pytest.approx(2.0)
    assert metrics.relative_change(W, v, W, v) == 0.0


def test_kernel_target_alignment_is_one_for_the_label_kernel():
    y = np.array([1.0, -1.0, 1.0, -1.0])
    assert metrics.kernel_target_alignment(np.outer(y, y), y) == pytest.approx(1.0)
    assert metrics.kernel_target_alignment(np.eye(4), y) == pytest.approx(0.5)  # 4 / (4 * 2)


def test_escape_time_interpolates_the_risk_trajectory():
    # level = 0.7 - 0.1 (0.7 - 0.05) = 0.635, crossed between t = 1 (0.7) and t = 2 (0.4)
    t, risk = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.7, 0.7, 0.4, 0.05])
    assert metrics.escape_time(t, risk, 0.05) == pytest.approx(1.0 + 0.065 / 0.3)
    assert np.isnan(metrics.escape_time(t, np.full(4, 0.7), 0.05))


def test_value_at_interpolates_inside_the_trajectory_only():
    assert metrics.value_at([0.0, 2.0], [0.0, 1.0], 0.5) == pytest.approx(0.25)
    assert np.isnan(metrics.value_at([0.0, 2.0], [0.0, 1.0], 3.0))
    assert np.isnan(metrics.value_at([0.0, 2.0], [0.0, 1.0], float("nan")))


def test_activation_classes_on_a_hand_example():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    y = np.array([1.0, 1.0, -1.0])
    W = np.array([[1.0, 1.0], [-1.0, -1.0], [0.0, -1.0], [-1.0, 1.0]])
    # neuron 0: points 0, 1 (both +); 1: point 2 (-); 2: none; 3: points 1 (+) and 2 (-)
    assert metrics.activation_classes(W, X, y) == {
        "frac_s_plus": 0.25,
        "frac_s_minus": 0.25,
        "frac_dead": 0.25,
        "frac_mixed": 0.25,
    }


def test_error_rate_counts_zero_scores_as_errors():
    rate, se = metrics.error_rate([1.0, -2.0, 0.0, 3.0], [1.0, 1.0, 1.0, -1.0])
    assert rate == 0.75
    assert se == pytest.approx(np.sqrt(0.75 * 0.25 / 4))


def test_over_fitting_diagnostics():
    assert metrics.f0_contamination(np.zeros(3), np.ones(3)) == 0.0
    assert metrics.f0_contamination(np.ones(4), 3 * np.ones(4)) == pytest.approx(0.5)
    flipped = np.array([True, True, False, True])
    assert metrics.fitted_flipped([1.0, -1.0, 1.0, 2.0], [1.0, 1.0, 1.0, -1.0], flipped) == pytest.approx(
        1 / 3
    )
    assert np.isnan(metrics.fitted_flipped([1.0], [1.0], [False]))


def test_run_metrics_against_direct_computations():
    data = make_data("label_noise", n=30, d=8, seed=3, n_test=20_000, kappa=3.0, rho=0.1)
    W0, v0 = init_params(10, 8, alpha=0.1, scheme="random_sign", seed=2)
    rng = np.random.default_rng(0)
    W, v = W0 + 0.3 * rng.standard_normal(W0.shape), v0 + 0.3 * rng.standard_normal(v0.shape)
    out = metrics.run_metrics(
        W, v, W0, v0, data, c=1.0, t=np.arange(3.0), risk=np.array([0.7, 0.3, 0.04]), eps=0.05
    )
    f = np.maximum(data.X_test @ W.T, 0) @ v
    assert out["test_error"] == pytest.approx(np.mean(data.y_test * f <= 0))
    w_hat = metrics.positive_combination(W, v)
    monte_carlo = np.mean(data.y_test * (data.X_test @ w_hat) <= 0)
    tolerance = 4 * np.sqrt(out["surrogate_error"] * (1 - out["surrogate_error"]) / 20_000)
    assert out["surrogate_error"] == pytest.approx(monte_carlo, abs=tolerance)
    assert out["oa"] + out["of"] == pytest.approx(out["surrogate_error"] - out["bayes_error"], abs=1e-12)
    assert 0 <= out["fitted_flipped"] <= 1
    assert set(out) == set(metrics.METRIC_COLUMNS)
