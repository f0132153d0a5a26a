"""The over-alignment / over-fitting split against independent references: a Monte-Carlo test error of the
linear classifier, a brute-force and a constrained numerical minimization over the cone, and 50-digit
evaluations of the sympy equations (tail precision)."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from fls.theory.mixture import (
    bayes_error,
    cone_minimizer,
    cone_minimum_error,
    direction_error,
    equations,
    oa_of_split,
)
from fls.theory.validation import ParameterError


def frame(seed, d):
    """A random orthonormal pair (e1, e2) of R^d: s = e1 and the plane of the construction."""
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))[0]
    return q[:, 0], q[:, 1], q


def direction_at(e1, e2, angle):
    return np.cos(angle) * e1 + np.sin(angle) * e2


def cos_angle(a, b):
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


snr = st.floats(0.0, 8.0)
sigmas = st.floats(0.1, 5.0)


@given(st.integers(0, 2**32 - 1), st.integers(2, 20), st.floats(0.0, np.pi), snr, sigmas)
def test_direction_error_matches_monte_carlo(seed, d, angle, ratio, sigma):
    s, e2, _ = frame(seed, d)
    v = 3.0 * direction_at(s, e2, angle)
    kappa = ratio * sigma
    rng = np.random.default_rng(seed + 1)
    N = 100_000
    y = rng.choice([-1.0, 1.0], N)
    X = kappa * y[:, None] * s + sigma * rng.standard_normal((N, d))
    monte_carlo = np.mean(y * (X @ v) < 0)
    E = direction_error(v, s, kappa, sigma)
    assert abs(monte_carlo - E) <= 5 * np.sqrt(E * (1 - E) / N) + 1 / N


def test_direction_error_shapes_and_bayes():
    s = np.array([0.0, 1.0, 0.0])
    assert direction_error(s, s, 2.0, 1.0) == pytest.approx(bayes_error(2.0, 1.0), rel=1e-15)
    assert bayes_error(2.0, 1.0) == pytest.approx(0.022750131948179195, rel=1e-14)
    stack = direction_error(np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]), s, 2.0, 1.0)
    np.testing.assert_allclose(stack, [0.022750131948179195, 1 - 0.022750131948179195, 0.5], rtol=1e-14)
    assert isinstance(direction_error(s, s, 0.0, 1.0), float) and direction_error(s, s, 0.0, 1.0) == 0.5


@given(
    st.integers(0, 2**32 - 1),
    st.integers(3, 15),
    st.floats(0.0, np.pi),
    st.floats(0.0, np.pi),
    st.floats(0.1, 6.0),
    sigmas,
)
def test_cone_minimum_equals_brute_force_minimum(seed, d, phi, cone_angle, ratio, sigma):
    s, e2, _ = frame(seed, d)
    x_plus = 2.5 * direction_at(s, e2, phi)
    psi = np.cos(cone_angle)
    kappa = ratio * sigma
    closed_form = cone_minimum_error(psi, phi, kappa, sigma)
    e = x_plus / np.linalg.norm(x_plus)

    def into_cone(v):
        """Rotate v towards x+ (in their plane) until cos angle(v, x+) = Psi, if it is outside the cone."""
        v = v / np.linalg.norm(v)
        if v @ e >= psi:
            return v
        side = v - (v @ e) * e
        return psi * e + np.sqrt(1 - psi**2) * side / np.linalg.norm(side)

    rng = np.random.default_rng(seed + 7)
    samples = np.array([into_cone(v) for v in rng.standard_normal((1_000, d))])
    assert np.all(samples @ e >= psi - 1e-12)
    assert np.all(direction_error(samples, s, kappa, sigma) >= closed_form * (1 - 1e-13))  # boundary rounding
    # constrained numerical minimization of E over the cone (through -cos angle(v, s), monotone in E)
    best = direction_error(e, s, kappa, sigma)  # x+ itself is in H (and all of H when Psi = 1)
    for v0 in samples[np.argsort(direction_error(samples, s, kappa, sigma))[:2]]:  # polish the best two
        result = minimize(
            lambda v: -cos_angle(v, s),
            v0,
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": lambda v: cos_angle(v, x_plus) - psi}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        best = min(
            best, direction_error(into_cone(result.x), s, kappa, sigma)
        )  # SLSQP may end just outside H
    assert closed_form * (1 - 1e-13) <= best <= closed_form + 1e-7
    minimizer = cone_minimizer(x_plus, s, psi)
    assert minimizer @ e >= psi - 1e-12 and np.linalg.norm(minimizer) == pytest.approx(1.0)
    assert direction_error(minimizer, s, kappa, sigma) == pytest.approx(closed_form, rel=1e-12, abs=1e-300)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(3, 25),
    st.floats(0.0, np.pi),
    st.floats(0.0, np.pi),
    st.floats(0.0, 1.0),
    st.floats(0.05, 25.0),
    sigmas,
)
def test_split_adds_up_and_oa_vanishes_exactly_when_s_is_in_the_cone(
    seed, d, phi, cone_angle, twist, ratio, sigma
):
    s, e2, q = frame(seed, d)
    x_plus = 1.7 * direction_at(s, e2, phi)
    e = x_plus / np.linalg.norm(x_plus)
    # w_hat at angle cone_angle from x+, turned by `twist` out of the (s, x+) plane
    out = q[:, 2]
    in_plane = direction_at(s, e2, phi + np.pi / 2)
    w_hat = 0.3 * (
        np.cos(cone_angle) * e + np.sin(cone_angle) * (np.cos(twist) * in_plane + np.sin(twist) * out)
    )
    kappa = ratio * sigma
    split = oa_of_split(w_hat, x_plus, s, kappa, sigma)
    assert split.psi == pytest.approx(np.cos(cone_angle), abs=1e-12)
    assert split.phi == pytest.approx(phi, abs=1e-12)
    assert split.oa >= 0 and split.of >= -1e-300
    assert split.oa + split.of == pytest.approx(split.excess, rel=1e-12, abs=1e-300)
    assert split.excess == pytest.approx(split.error - split.bayes, rel=1e-9, abs=1e-15)
    # Psi = cos(angle) stores the angle only to ~sqrt(eps) near 0 (arccos is steep there): the split works
    # from the angle itself, the closed form of Psi agrees up to that
    from_psi = cone_minimum_error(split.psi, split.phi, kappa, sigma)
    assert split.cone_error == pytest.approx(from_psi, rel=1e-9, abs=1e-7 * (1 + ratio))
    # s lies in the cone H = {cos angle(v, x+) >= Psi} exactly when Psi <= cos phi; then OA = 0, else OA > 0
    if split.psi <= np.cos(split.phi):
        assert split.oa == 0.0
    elif split.phi - np.arccos(split.psi) > 1e-6 and ratio <= 20:
        assert split.oa > 0


def test_oa_grows_with_alignment():
    # the narrower the cone around x+ (larger Psi), the larger the over-alignment
    psis = np.linspace(-1.0, 1.0, 41)
    oa = [cone_minimum_error(p, 0.8, 2.0, 1.0) - bayes_error(2.0, 1.0) for p in psis]
    assert np.all(np.diff(oa) >= 0) and oa[0] == 0.0 and oa[-1] > 0.0
    assert np.flatnonzero(np.array(oa) > 0)[0] == np.flatnonzero(psis > np.cos(0.8))[0]


def _equation(name):
    return {n: eq for n, eq, _ in equations()}[name]


def _high_precision(expr, values):
    by_name = {s.name: s for s in expr.free_symbols}
    return expr.subs({by_name[k]: sp.Float(v, 60) for k, v in values.items() if k in by_name}).evalf(50)


@pytest.mark.parametrize(
    ("ratio", "phi", "cone_angle", "predictor_angle"),
    [
        (30.0, 0.4, 0.1, 0.5),  # right tail: errors ~ 1e-196 (still representable, so a check of values)
        (20.0, 2.9, 0.8, 2.5),  # left tail: E(w) = 1 - 6e-58, min_H E = 1 - 3e-24; plain subtraction gives 0
        (2.0, 1.0, 0.3, 1.2),  # moderate
    ],
)
def test_split_keeps_relative_precision_in_both_tails(ratio, phi, cone_angle, predictor_angle):
    s = np.array([1.0, 0.0, 0.0])
    x_plus = np.array([np.cos(phi), np.sin(phi), 0.0])
    # w_hat in the (s, x+) plane, at cone_angle from x+ and predictor_angle from s: needs a third axis
    cos_w = (np.cos(predictor_angle) - np.cos(phi) * np.cos(cone_angle)) / np.sin(phi)
    w_hat = np.cos(cone_angle) * x_plus + np.sin(cone_angle) * (
        cos_w * np.array([-np.sin(phi), np.cos(phi), 0.0]) + np.sqrt(1 - cos_w**2) * np.array([0.0, 0.0, 1.0])
    )
    split = oa_of_split(w_hat, x_plus, s, ratio, 1.0)
    values = {
        "kappa": ratio,
        "sigma": 1.0,
        "phi": split.phi,
        "Psi": split.psi,
        "theta_vs": float(np.arccos(np.clip(w_hat @ s / np.linalg.norm(w_hat), -1, 1))),
    }
    error = _high_precision(_equation("direction error").rhs, values)
    bayes = _high_precision(_equation("Bayes error").rhs, values)
    cone = _high_precision(_equation("cone minimum").rhs, values)
    assert split.excess == pytest.approx(float(error - bayes), rel=1e-9, abs=0)
    assert split.of == pytest.approx(float(error - cone), rel=1e-9, abs=0)
    assert split.oa == pytest.approx(float(cone - bayes), rel=1e-9, abs=0)


def test_equations_are_sympy_objects_with_meanings():
    eqs = equations()
    assert [name for name, _, _ in eqs][:3] == ["direction error", "Bayes error", "cone minimum"]
    assert all(isinstance(eq, sp.Eq) and isinstance(meaning, str) and meaning for _, eq, meaning in eqs)
    kappa_over_sigma_zero = _high_precision(_equation("Bayes error").rhs, {"kappa": 0.0, "sigma": 1.0})
    assert float(kappa_over_sigma_zero) == 0.5


def test_mixture_validates_input():
    s = np.array([1.0, 0.0])
    with pytest.raises(ParameterError, match="unit norm"):
        direction_error(s, 2 * s, 1.0, 1.0)
    with pytest.raises(ParameterError, match="kappa = -1"):
        bayes_error(-1.0, 1.0)
    with pytest.raises(ParameterError, match="sigma = 0"):
        bayes_error(1.0, 0.0)
    with pytest.raises(ParameterError, match="zero vector"):
        direction_error(np.zeros(2), s, 1.0, 1.0)
    with pytest.raises(ParameterError, match="psi = 1.5"):
        cone_minimum_error(1.5, 0.3, 1.0, 1.0)
    with pytest.raises(ParameterError, match="phi = 4"):
        cone_minimum_error(0.5, 4, 1.0, 1.0)
    with pytest.raises(ParameterError, match="x_plus has shape"):
        oa_of_split(s, np.ones(3), s, 1.0, 1.0)
    with pytest.raises(ParameterError, match="w_hat is the zero vector"):
        oa_of_split(np.zeros(2), s, s, 1.0, 1.0)
    with pytest.raises(ParameterError, match="non-finite"):
        oa_of_split(np.array([np.nan, 1.0]), s, s, 1.0, 1.0)
