"""Kernel peers of the network (simulate.kernel): exact ridge(less) regression, logistic kernel flow, the
conjugate kernels and the tangent kernel of torch modules, each against an independent reference."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fls.simulate.initialization import init_params
from fls.simulate.kernel import (
    JITTER_LADDER,
    KERNELS,
    conjugate_kernel,
    conjugate_kernel_closed,
    deep_tangent_kernel,
    kernel_logistic_regression,
    kernel_matrices,
    kernel_regression,
)
from fls.simulate.train.deep import MLP
from fls.theory.lazy import empirical_tangent_kernel, tangent_kernel
from fls.theory.validation import ParameterError


def _points(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), d=st.integers(2, 8))
def test_ridgeless_regression_interpolates_its_training_data(seed: int, n: int, d: int) -> None:
    X = _points(seed, n, d)
    y = np.random.default_rng(seed + 1).standard_normal(n)
    K = tangent_kernel(X, X, alpha=1.0, width=1)  # positive definite on distinct points
    result = kernel_regression(K, y, K[:3])
    assert result.status == "target_reached" and result.engine == "kernel-ridge"
    assert result.info["relative_jitter"] == 0.0
    np.testing.assert_allclose(result.f_train, y, atol=1e-7 * np.abs(y).max())
    np.testing.assert_allclose(result.f_test, y[:3], atol=1e-7 * np.abs(y).max())
    assert result.risk[-1] < 1e-12 * np.mean(y**2)


def test_ridge_regression_matches_a_direct_solve() -> None:
    X = _points(0, 30, 5)
    X_test = _points(1, 10, 5)
    y = np.sin(X[:, 0])
    K, K_test = tangent_kernel(X, X, alpha=1.0, width=1), tangent_kernel(X_test, X, alpha=1.0, width=1)
    result = kernel_regression(K, y, K_test, ridge=0.3)
    reference = K_test @ np.linalg.solve(K + 0.3 * np.eye(30), y)
    np.testing.assert_allclose(result.f_test, reference, rtol=1e-10, atol=1e-12)
    assert result.info["train_residual"] < 1e-10


def test_rank_deficient_kernel_gets_jitter_and_tends_to_least_squares() -> None:
    """A conjugate kernel of m = 5 neurons on n = 40 points has rank 5: Cholesky needs a jitter, and the fit is
    then the minimum-norm least-squares fit on the 5 features (the ridgeless limit), up to the jitter's share."""
    X, X_test = _points(2, 40, 4), _points(3, 15, 4)
    W = _points(4, 5, 4)
    y = np.random.default_rng(5).standard_normal(40)
    K, K_test = kernel_matrices("conjugate", X, X_test, W=W)
    result = kernel_regression(K, y, K_test)
    assert result.status == "target_reached"
    assert result.info["relative_jitter"] > 0.0 and result.info["jitter"] > 0.0
    features, features_test = np.maximum(X @ W.T, 0), np.maximum(X_test @ W.T, 0)
    beta = np.linalg.lstsq(features, y, rcond=None)[0]
    np.testing.assert_allclose(result.f_test, features_test @ beta, rtol=1e-4, atol=1e-4)


def test_kernel_regression_fails_with_a_status_when_no_jitter_helps() -> None:
    K = -np.eye(3)
    result = kernel_regression(K, np.ones(3), np.zeros((1, 3)))
    assert result.status == "failed" and not result.ok
    assert len(JITTER_LADDER) > 1


def test_kernel_regression_rejects_bad_input() -> None:
    with pytest.raises(ParameterError, match="square"):
        kernel_regression(np.ones((2, 3)), np.ones(2), np.ones((1, 3)))
    with pytest.raises(ParameterError, match="symmetric"):
        kernel_regression(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones(2), np.ones((1, 2)))
    with pytest.raises(ParameterError, match="ridge"):
        kernel_regression(np.eye(2), np.ones(2), np.ones((1, 2)), ridge=-1.0)


def _labelled(seed: int, n: int = 30, d: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, X_test = _points(seed, n, d), _points(seed + 1, 20, d)
    y = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, 1.0, -1.0)
    return tangent_kernel(X, X, alpha=1.0, width=1), tangent_kernel(X_test, X, alpha=1.0, width=1), X, y


@pytest.mark.parametrize("eps", [0.3, 0.05])
def test_logistic_kernel_flow_stops_at_its_target(eps: float) -> None:
    K, K_test, _, y = _labelled(0)
    result = kernel_logistic_regression(K, y, K_test, target_risk=eps)
    assert result.status == "target_reached" and result.engine == "kernel-flow"
    assert result.risk[-1] == pytest.approx(eps, rel=1e-6)
    assert np.all(np.diff(result.risk) <= 1e-12)
    margins = y * result.f_train
    assert np.mean(np.log1p(np.exp(-margins))) == pytest.approx(eps, rel=1e-6)


def test_logistic_kernel_flow_does_not_depend_on_the_kernel_scale() -> None:
    K, K_test, _, y = _labelled(1)
    one = kernel_logistic_regression(K, y, K_test, target_risk=0.1)
    scaled = kernel_logistic_regression(250.0 * K, y, 250.0 * K_test, target_risk=0.1)
    np.testing.assert_allclose(scaled.f_test, one.f_test, rtol=1e-7, atol=1e-9)
    assert scaled.info["kernel_scale"] == pytest.approx(250.0 * one.info["kernel_scale"])


def test_logistic_kernel_flow_reports_not_reached() -> None:
    K, K_test, _, y = _labelled(2)
    result = kernel_logistic_regression(K, y, K_test, target_risk=1e-3, t_max=1e-3)
    assert result.status == "not_reached" and not result.ok


def test_logistic_kernel_flow_needs_labels_and_a_classification_loss() -> None:
    K, K_test, _, y = _labelled(3)
    with pytest.raises(ParameterError):
        kernel_logistic_regression(K, 2 * y, K_test, target_risk=0.1)
    with pytest.raises(ParameterError, match="loss"):
        kernel_logistic_regression(K, y, K_test, target_risk=0.1, loss="squared")


def test_conjugate_kernel_closed_form_matches_a_wide_network() -> None:
    """The infinite-width conjugate kernel against the empirical one of m = 40 000 random neurons: each entry is a
    mean of m i.i.d. products, so it lies within 6 standard errors (<= 6 sqrt(E relu^4) / sqrt(m) per neuron)."""
    d, m, alpha = 5, 40_000, 0.7
    X = _points(6, 6, d)
    W, _ = init_params(m, d, alpha=alpha, scheme="random_sign", seed=0)
    empirical = conjugate_kernel(W, X, X) / m
    closed = conjugate_kernel_closed(X, X, alpha=alpha)
    norms = np.linalg.norm(X, axis=1)
    per_neuron_sd = (
        np.sqrt(1.5) * alpha**2 * np.outer(norms, norms) / d
    )  # E relu(a)^2 relu(b)^2 <= 1.5 sd(a)^2 sd(b)^2
    assert np.all(np.abs(empirical - closed) <= 6 * per_neuron_sd / np.sqrt(m))
    np.testing.assert_allclose(conjugate_kernel_closed(X, X, alpha=alpha, width=3), 3 * closed)


def test_kernel_matrices_builds_every_kernel_with_consistent_shapes() -> None:
    X, X_test = _points(7, 12, 4), _points(8, 5, 4)
    W, v = init_params(6, 4, alpha=1.3, scheme="random_sign", seed=1)
    for kernel in KERNELS:
        K, K_test = kernel_matrices(kernel, X, X_test, W=W, v=v, c=0.5, alpha=1.3)
        assert K.shape == (12, 12) and K_test.shape == (5, 12)
        np.testing.assert_allclose(K, K.T, atol=1e-12 * np.abs(K).max())
    K, _ = kernel_matrices("tangent", X, X_test, W=W, v=v, c=0.5)
    np.testing.assert_allclose(K, empirical_tangent_kernel(W, v, X, X, c=0.5))
    K, _ = kernel_matrices("tangent_closed", X, X_test, W=W, c=0.5, alpha=1.3)
    np.testing.assert_allclose(K, tangent_kernel(X, X, alpha=1.3, width=6, c=0.5))


def test_kernel_matrices_names_what_is_missing() -> None:
    X = _points(9, 4, 3)
    with pytest.raises(ParameterError, match="W and v"):
        kernel_matrices("tangent", X, X, W=np.ones((2, 3)))
    with pytest.raises(ParameterError, match="alpha"):
        kernel_matrices("conjugate_closed", X, X)
    with pytest.raises(ParameterError, match="kernel"):
        kernel_matrices("gaussian", X, X)


def test_deep_tangent_kernel_of_a_two_layer_module_is_the_closed_form() -> None:
    """torch.func Jacobians of a bias-free MLP with one hidden layer against the closed-form tangent kernel."""
    d, m, c = 5, 7, 0.8
    W, v = init_params(m, d, alpha=1.1, scheme="random_sign", seed=2)
    X1, X2 = _points(10, 9, d), _points(11, 4, d)
    model = MLP(d, [m], 1).to(torch.float64)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.as_tensor(W))
        model.layers[2].weight.copy_(torch.as_tensor(v[None, :]))
    expected = empirical_tangent_kernel(W, v, X1, X2, c=c)
    np.testing.assert_allclose(
        deep_tangent_kernel(model, X1, X2, c=c, chunk=4),
        expected,
        rtol=1e-12,
        atol=1e-12 * np.abs(expected).max(),
    )
    np.testing.assert_allclose(
        deep_tangent_kernel(model, X1, X1, c=c),
        empirical_tangent_kernel(W, v, X1, X1, c=c),
        rtol=1e-12,
        atol=1e-12,
    )
