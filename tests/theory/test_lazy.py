"""The lazy limit against independent references: Monte-Carlo wide networks built here in numpy (K0 and the f0
covariance, tolerance 5 Monte-Carlo standard errors), central finite differences of f (the empirical kernel),
a fixed-step RK4 integration written here (kernel gradient flow), and special angles worked out by hand."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import expit

from fls.testing import assert_kernel_matches_monte_carlo
from fls.theory.lazy import (
    empirical_tangent_kernel,
    equations,
    initial_function_covariance,
    kernel_gradient_flow,
    tangent_kernel,
)
from fls.theory.validation import ParameterError


def pair_at_angle(d, theta, r1, r2):
    """Two points of R^d with norms r1, r2 at angle theta."""
    x1, x2 = np.zeros(d), np.zeros(d)
    x1[0] = r1
    x2[0], x2[1] = r2 * np.cos(theta), r2 * np.sin(theta)
    return np.stack([x1, x2])


def balanced_init(rng, m, d, alpha):
    """w_j = alpha z_j / sqrt(d), z_j ~ N(0, I), v_j = s_j ||w_j|| with random signs s_j (random_sign)."""
    W = alpha * rng.standard_normal((m, d)) / np.sqrt(d)
    return W, rng.choice([-1.0, 1.0], m) * np.linalg.norm(W, axis=1)


geometry = {
    "d": st.integers(2, 40),
    "theta": st.floats(0.0, np.pi),
    "r1": st.floats(0.2, 3.0),
    "r2": st.floats(0.2, 3.0),
    "alpha": st.floats(0.05, 20.0),
    "c": st.floats(0.05, 20.0),
    "seed": st.integers(0, 2**32 - 1),
}


@given(**geometry)
def test_tangent_kernel_matches_a_monte_carlo_wide_network(d, theta, r1, r2, alpha, c, seed):
    X = pair_at_angle(d, theta, r1, r2)
    m = 20_000
    W, v = balanced_init(np.random.default_rng(seed), m, d, alpha)
    pre = X @ W.T  # (2, m)
    # per-neuron terms c^2 [relu relu + v^2 1 1 <x, x'>], for the pairs (0, 0), (0, 1), (1, 1)
    terms = np.stack(
        [
            c**2
            * (
                np.maximum(pre[i], 0) * np.maximum(pre[j], 0)
                + v**2 * (pre[i] > 0) * (pre[j] > 0) * (X[i] @ X[j])
            )
            for i, j in ((0, 0), (0, 1), (1, 1))
        ]
    )
    monte_carlo = terms.sum(axis=1)
    standard_error = np.sqrt(m) * terms.std(axis=1)
    K0 = tangent_kernel(X, X, alpha=alpha, width=m, c=c)
    closed_form = np.array([K0[0, 0], K0[0, 1], K0[1, 1]])
    rounding = (
        1e-12 * m * c**2 * alpha**2 * max(r1, r2) ** 2
    )  # e.g. sin(pi) = 1e-16 at theta = pi, where MC = 0
    assert np.all(np.abs(monte_carlo - closed_form) <= 5 * standard_error + rounding)
    K_emp = empirical_tangent_kernel(W, v, X, X, c=c)
    np.testing.assert_allclose([K_emp[0, 0], K_emp[0, 1], K_emp[1, 1]], monte_carlo, rtol=1e-10, atol=1e-12)


@given(**geometry)
def test_f0_covariance_matches_monte_carlo_networks(d, theta, r1, r2, alpha, c, seed):
    X = pair_at_angle(d, theta, r1, r2)
    m, networks = 8, 4_000
    rng = np.random.default_rng(seed)
    W = alpha * rng.standard_normal((networks, m, d)) / np.sqrt(d)
    v = rng.choice([-1.0, 1.0], (networks, m)) * np.linalg.norm(W, axis=2)
    f0 = c * np.einsum("rm,rmi->ri", v, np.maximum(W @ X.T, 0))  # (networks, 2)
    products = np.stack([f0[:, 0] ** 2, f0[:, 0] * f0[:, 1], f0[:, 1] ** 2])
    monte_carlo = products.mean(axis=1)
    standard_error = products.std(axis=1) / np.sqrt(networks)
    cov = initial_function_covariance(X, X, alpha=alpha, width=m, c=c)
    closed_form = np.array([cov[0, 0], cov[0, 1], cov[1, 1]])
    rounding = 1e-12 * m * c**2 * alpha**4 * max(r1, r2) ** 2
    assert np.all(np.abs(monte_carlo - closed_form) <= 5 * standard_error + rounding)


@given(d=st.integers(1, 30), r=st.floats(0.1, 5.0), alpha=st.floats(0.1, 10.0), c=st.floats(0.1, 10.0))
def test_closed_forms_at_special_angles(d, r, alpha, c):
    # theta = 0: E relu(<w, x>)^2 = alpha^2 r^2 / (2d) and E v^2 1[<w, x> > 0] = alpha^2 / 2;
    # theta = pi/2: only the feature part, alpha^2 r r' / (2 pi d); theta = pi: nothing is shared.
    x = np.zeros((1, d))
    x[0, 0] = r
    m = 7
    assert tangent_kernel(x, x, alpha=alpha, width=m, c=c)[0, 0] == pytest.approx(
        m * c**2 * alpha**2 * r**2 * (d + 1) / (2 * d), rel=1e-13
    )
    assert tangent_kernel(x, -2 * x, alpha=alpha, width=m, c=c)[0, 0] == pytest.approx(
        0.0, abs=1e-14 * m * c**2 * alpha**2 * r**2
    )
    assert initial_function_covariance(x, x, alpha=alpha, width=m, c=c)[0, 0] == pytest.approx(
        m * c**2 * alpha**4 * (d + 2) / d**2 * r**2 / 2, rel=1e-13
    )
    if d >= 2:
        X = pair_at_angle(d, np.pi / 2, r, 2.0)
        assert tangent_kernel(X[:1], X[1:], alpha=alpha, width=m, c=c)[0, 0] == pytest.approx(
            m * c**2 * alpha**2 * r * 2.0 / (2 * np.pi * d), rel=1e-13
        )
    zero = np.zeros((1, d))
    assert tangent_kernel(zero, x, alpha=alpha, width=m, c=c)[0, 0] == 0.0


@given(st.integers(0, 2**32 - 1), st.floats(0.1, 5.0))
def test_empirical_kernel_equals_finite_difference_jacobian_product(seed, c):
    rng = np.random.default_rng(seed)
    m, d = 7, 4
    W, v = rng.standard_normal((m, d)), rng.standard_normal(m)
    X1, X2 = rng.standard_normal((3, d)), rng.standard_normal((4, d))
    h = 1e-4  # f is bilinear between kinks, so central differences are exact there up to rounding (~1e-11)
    assume(np.abs(np.vstack([X1, X2]) @ W.T).min() > 10 * h)  # no kink inside the stencil

    def f(theta, X):
        return c * np.maximum(X @ theta[: m * d].reshape(m, d).T, 0) @ theta[m * d :]

    theta = np.concatenate([W.ravel(), v])
    basis = np.eye(theta.size)

    def jacobian(X):
        return np.stack([(f(theta + h * e, X) - f(theta - h * e, X)) / (2 * h) for e in basis], axis=1)

    expected = jacobian(X1) @ jacobian(X2).T
    np.testing.assert_allclose(
        empirical_tangent_kernel(W, v, X1, X2, c=c), expected, rtol=1e-8, atol=1e-9 * np.abs(expected).max()
    )


def test_kernels_validate_input():
    X = np.ones((2, 3))
    with pytest.raises(ParameterError, match="alpha = 0"):
        tangent_kernel(X, X, alpha=0, width=3)
    with pytest.raises(ParameterError, match="width = 0"):
        tangent_kernel(X, X, alpha=1.0, width=0)
    with pytest.raises(ParameterError, match="width must be an integer"):
        initial_function_covariance(X, X, alpha=1.0, width=2.5)
    with pytest.raises(ParameterError, match="c = -1"):
        tangent_kernel(X, X, alpha=1.0, width=3, c=-1)
    with pytest.raises(ParameterError, match="X2 has shape \\(2, 4\\)"):
        tangent_kernel(X, np.ones((2, 4)), alpha=1.0, width=3)
    with pytest.raises(ParameterError, match="non-finite"):
        tangent_kernel(np.array([[np.inf, 0.0, 0.0]]), X, alpha=1.0, width=3)
    with pytest.raises(ParameterError, match="v has shape"):
        empirical_tangent_kernel(np.ones((4, 3)), np.ones(5), X, X)


# ------------------------------------------------------------------------------------------------------------
# Kernel gradient flow
# ------------------------------------------------------------------------------------------------------------


def kernel_problem(seed, n=12, n_test=5, d=4, f0_scale=0.0):
    rng = np.random.default_rng(seed)
    X, X_test = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    y = np.where(X[:, 0] + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    K = tangent_kernel(X, X, alpha=1.0, width=3, c=0.5)
    K_test = tangent_kernel(X_test, X, alpha=1.0, width=3, c=0.5)
    return K, K_test, y, f0_scale * rng.standard_normal(n), f0_scale * rng.standard_normal(n_test)


def mean_logistic_risk(f, y):
    return float(np.mean(np.logaddexp(0.0, -y * f)))


def rk4_outputs(K, K_test, y, f0, f0_test, t_end, steps):
    """Fixed-step RK4 on (f_train, f_test), f' = (1/n) K (y sigma(-y f)): the logistic flow written out."""
    n = len(y)

    def rhs(f):
        weights = y * expit(-y * f) / n
        return K @ weights, K_test @ weights

    f, g = f0.copy(), f0_test.copy()
    h = t_end / steps
    risks = [mean_logistic_risk(f, y)]
    for _ in range(steps):
        k1 = rhs(f)
        k2 = rhs(f + h / 2 * k1[0])
        k3 = rhs(f + h / 2 * k2[0])
        k4 = rhs(f + h * k3[0])
        f = f + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        g = g + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        risks.append(mean_logistic_risk(f, y))
    return f, g, np.array(risks)


@pytest.mark.parametrize(("seed", "f0_scale", "target"), [(0, 0.0, 0.1), (1, 0.0, 0.3), (2, 0.5, 0.2)])
def test_kernel_flow_stops_at_target_and_matches_rk4(seed, f0_scale, target):
    K, K_test, y, f0, f0_test = kernel_problem(seed, f0_scale=f0_scale)
    sol = kernel_gradient_flow(
        K, y, K_test_train=K_test, f0_train=f0, f0_test=f0_test, target_risk=target, t_max=1e5
    )
    assert sol.status == "target_reached" and sol.reached and sol.t_stop > 0
    assert mean_logistic_risk(sol.f_train, y) == pytest.approx(target, rel=1e-9)
    assert np.all(np.diff(sol.risk) <= 1e-15)  # monotone along the solver's steps
    np.testing.assert_allclose(sol.f_train, f0 + K @ sol.coefficients, rtol=1e-14, atol=1e-14)
    f, g, risks = rk4_outputs(K, K_test, y, f0, f0_test, sol.t_stop, steps=2_000)
    assert np.all(np.diff(risks) <= 1e-15)  # and along the independent integration
    assert risks[-2] > target  # the target is first reached at t_stop, not before
    np.testing.assert_allclose(sol.f_train, f, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(sol.f_test, g, rtol=1e-8, atol=1e-8)


def test_kernel_flow_reports_not_reached_and_already_reached():
    K, K_test, y, _, _ = kernel_problem(3)
    late = kernel_gradient_flow(K, y, K_test_train=K_test, target_risk=0.01, t_max=1e-3)
    assert late.status == "not_reached" and not late.reached and late.t_stop == 1e-3
    assert mean_logistic_risk(late.f_train, y) > 0.01 and late.f_test.shape == (5,)
    early = kernel_gradient_flow(K, y, target_risk=0.7, t_max=1.0)  # log 2 = 0.693 < 0.7 at f = 0
    assert early.status == "target_reached" and early.t_stop == 0.0 and early.f_test.shape == (0,)


def test_kernel_flow_validates_input():
    K, K_test, y, _, _ = kernel_problem(4)
    with pytest.raises(ParameterError, match="symmetric"):
        kernel_gradient_flow(K + np.triu(np.ones_like(K)), y, target_risk=0.1, t_max=1.0)
    with pytest.raises(ParameterError, match="positive semi-definite"):
        kernel_gradient_flow(K - 2 * np.abs(K).max() * np.eye(len(y)), y, target_risk=0.1, t_max=1.0)
    with pytest.raises(ParameterError, match="non-empty square matrix"):
        kernel_gradient_flow(K[:, :5], y, target_risk=0.1, t_max=1.0)
    with pytest.raises(ParameterError, match="only -1 and"):
        kernel_gradient_flow(K, 2 * y, target_risk=0.1, t_max=1.0)
    with pytest.raises(ParameterError, match="f0_test needs K_test_train"):
        kernel_gradient_flow(K, y, f0_test=np.zeros(5), target_risk=0.1, t_max=1.0)
    with pytest.raises(ParameterError, match="K_test_train has shape"):
        kernel_gradient_flow(K, y, K_test_train=K_test[:, :3], target_risk=0.1, t_max=1.0)
    with pytest.raises(ParameterError, match="target_risk = 0"):
        kernel_gradient_flow(K, y, target_risk=0, t_max=1.0)
    with pytest.raises(ParameterError, match="loss = 'hinge'"):
        kernel_gradient_flow(K, y, target_risk=0.1, t_max=1.0, loss="hinge")


def test_equations_are_sympy_and_reduce_to_the_special_angles():
    eqs = {name: (eq, meaning) for name, eq, meaning in equations()}
    assert {"tangent kernel K0", "f0 covariance", "kernel gradient flow"} <= set(eqs)
    K0 = eqs["tangent kernel K0"][0].rhs
    symbols = {s.name: s for s in K0.free_symbols}
    theta, d = symbols["theta"], symbols["d"]
    nx, nx2 = symbols[r"\|x\|"], symbols[r"\|x'\|"]
    m, c, alpha = symbols["m"], symbols["c"], symbols["alpha"]
    at_zero = K0.subs({theta: 0, nx2: nx})
    assert sp.simplify(at_zero - m * c**2 * alpha**2 * nx**2 * (d + 1) / (2 * d)) == 0
    assert sp.simplify(K0.subs(theta, sp.pi)) == 0
    assert all(isinstance(meaning, str) and meaning for _, meaning in eqs.values())


@given(**{key: geometry[key] for key in ("d", "theta", "r1", "r2", "alpha", "c")}, seed=st.integers(0, 2**16))
def test_tangent_kernel_with_biases_matches_a_monte_carlo_wide_network(d, theta, r1, r2, alpha, c, seed):
    """K0 with hidden biases (rows (w_j, b_j) on (x, 1)) against a width-20000 network drawn by init_params with
    bias=True: 5 Monte-Carlo standard errors (fls.testing); and the empirical kernel of a biased network equals
    the bias-free one on the augmented arrays (exact reduction)."""
    X = pair_at_angle(d, theta, r1, r2)

    def biased(X1, X2, *, alpha, width, c):
        return tangent_kernel(X1, X2, alpha=alpha, width=width, c=c, bias=True)

    assert_kernel_matches_monte_carlo(biased, X, alpha=alpha, width=20_000, c=c, bias=True, seed=seed)
    rng = np.random.default_rng(seed)
    W, v, b = rng.normal(size=(5, d)), rng.normal(size=5), rng.normal(size=5)
    np.testing.assert_allclose(
        empirical_tangent_kernel(W, v, X, X, c=c, b=b),
        empirical_tangent_kernel(np.c_[W, b], v, np.c_[X, np.ones(2)], np.c_[X, np.ones(2)], c=c),
        rtol=1e-14,
    )


def test_tangent_kernel_bias_must_be_a_flag():
    with pytest.raises(ParameterError, match="bias must be True or False"):
        tangent_kernel(np.ones((1, 2)), np.ones((1, 2)), alpha=1.0, width=1, bias="yes")


def test_kernel_flow_with_weights_and_real_targets_decreases_the_weighted_risk():
    """Squared loss on real targets with weights: R' = -(1/n^2) s^T K s <= 0 along the flow, and a weight k
    is k repeated samples (the kernel repeated with it)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    K, y = A @ A.T + np.eye(4), rng.normal(size=4)
    weighted = kernel_gradient_flow(K, y, loss="squared", sample_weight=[1, 2, 1, 1], target_risk=1e-3, t_max=50.0)
    assert weighted.status == "target_reached" and np.all(np.diff(weighted.risk) <= 1e-12)
    rows = [0, 1, 1, 2, 3]
    repeated = kernel_gradient_flow(K[np.ix_(rows, rows)], y[rows], loss="squared", target_risk=1e-3, t_max=50.0)
    assert repeated.t_stop == pytest.approx(weighted.t_stop, rel=1e-6)
    with pytest.raises(ParameterError, match="margin loss"):
        kernel_gradient_flow(K, y, loss="logistic", target_risk=0.1, t_max=1.0)
