"""The small-initialization limit against independent references: solve_ivp on the directional field (tanh and
norm laws), central finite differences of H (the field), the derived network field at tiny alpha (the limit
itself), plain Euler on the sphere and random perturbations (the extreme vectors), sympy (the
closed forms)."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from fls.theory.compiled import vector_field
from fls.theory.losses import LOSSES
from fls.theory.smallinit import (
    aligned_norm,
    alignment_potential,
    alignment_rates,
    class_sums,
    directional_field,
    equations,
    escape_time,
    extreme_vectors,
    half_correlation,
    log_norm_rate,
    orthogonal_separability,
    tanh_alignment,
)
from fls.theory.validation import ParameterError


def orthogonally_separable(seed, d, n_pos, n_neg, gamma):
    """Positives r (a + delta z), negatives r (b + delta z) with <a, b> = -gamma, ||z|| <= 1, r in [0.3, 2].

    With (1 + delta)^2 < 1 + gamma <= 2: same-label inner products >= r r' (1 - 2 delta - delta^2) > 0 and
    opposite ones <= r r' (-gamma + 2 delta + delta^2) < 0, so every draw is orthogonally separable.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a = basis[:, 0]
    b = -gamma * a + np.sqrt(1 - gamma**2) * basis[:, 1]
    delta = 0.9 * (np.sqrt(1 + gamma) - 1)

    def cloud(center, k):
        z = rng.standard_normal((k, d))
        z *= rng.uniform(0, 1, (k, 1)) / np.linalg.norm(z, axis=1, keepdims=True)
        return rng.uniform(0.3, 2.0, (k, 1)) * (center + delta * z)

    X = np.vstack([cloud(a, n_pos), cloud(b, n_neg)])
    y = np.concatenate([np.ones(n_pos), -np.ones(n_neg)])
    order = rng.permutation(len(y))
    return X[order], y[order]


separable_sets = st.builds(
    orthogonally_separable,
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 7),
    n_pos=st.integers(1, 6),
    n_neg=st.integers(1, 6),
    gamma=st.floats(0.2, 1.0),
)


# ------------------------------------------------------------------------------------------------------------
# Orthogonal separability
# ------------------------------------------------------------------------------------------------------------


def test_checker_on_hand_built_cases():
    X = np.array([[1.0, 0.2], [2.0, -0.1], [-1.0, 0.3], [-0.5, -0.5]])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    result = orthogonal_separability(X, y)
    assert result.holds
    assert result.min_same_label == pytest.approx(min(1.0 * 2.0 - 0.02, 0.5 - 0.15))
    assert result.max_opposite_label == pytest.approx(max(-1 + 0.06, -0.5 - 0.1, -2 - 0.03, -1 + 0.05))
    assert result.margin > 0

    orthogonal_pair = orthogonal_separability(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]), [1, 1, -1])
    assert not orthogonal_pair.holds and orthogonal_pair.min_same_label == 0.0  # strict: 0 is not positive

    opposite_positive = orthogonal_separability(np.array([[1.0, 0.0], [1.0, 0.5]]), [1, -1])
    assert not opposite_positive.holds and opposite_positive.max_opposite_label == pytest.approx(1.0)

    one_class = orthogonal_separability(np.array([[1.0, 0.0], [1.0, 1.0]]), [-1, -1])
    assert one_class.holds and one_class.max_opposite_label == -np.inf

    single_points = orthogonal_separability(np.array([[1.0, 0.0], [-1.0, 0.1]]), [1, -1])
    assert single_points.holds and single_points.min_same_label == np.inf


@given(separable_sets, st.integers(0, 11))
def test_checker_accepts_separable_sets_and_rejects_a_flipped_label(data, which):
    X, y = data
    assert orthogonal_separability(X, y).holds
    i = which % len(y)
    if np.sum(y == y[i]) >= 2:  # flipping i puts it opposite a former partner with a positive inner product
        flipped = y.copy()
        flipped[i] = -flipped[i]
        assert not orthogonal_separability(X, flipped).holds


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.ones((3, 2)), [1, -1, 0], "only -1 and \\+1"),
        (np.ones((3, 2)), [1, -1], "y has shape \\(2,\\); axis 0 must have size 3"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), [1, -1], "non-finite"),
        (np.ones(3), [1, -1, 1], "2 dimension"),
        (np.ones((0, 2)), [], "no rows"),
    ],
)
def test_checker_validates_input(X, y, match):
    with pytest.raises(ParameterError, match=match):
        orthogonal_separability(X, y)


# ------------------------------------------------------------------------------------------------------------
# The directional field
# ------------------------------------------------------------------------------------------------------------


@given(st.integers(0, 2**32 - 1), st.floats(0.1, 5.0), st.sampled_from([1, -1]))
def test_field_is_projected_finite_difference_gradient_of_H(seed, c, sign):
    # H(w / ||w||) has gradient (I - u u^T) g(u) at a unit u (away from the kinks), and u' = c s times that.
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((9, 4)), rng.choice([-1.0, 1.0], 9)
    U = rng.standard_normal((5, 4))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    h = 1e-6
    assume(np.abs(U @ X.T).min() > 10 * h)  # central differences do not cross a kink
    grad = np.stack(
        [
            (alignment_potential(U + h * e, X, y) - alignment_potential(U - h * e, X, y)) / (2 * h)
            for e in np.eye(4)
        ],
        axis=1,
    )
    np.testing.assert_allclose(directional_field(U, X, y, sign=sign, c=c), c * sign * grad, atol=1e-9)
    H = np.einsum("kd,kd->k", U, half_correlation(U, X, y))
    np.testing.assert_allclose(
        log_norm_rate(U, X, y, sign=sign, c=c), c * sign * H, rtol=1e-14, atol=1e-15 * c
    )


@given(st.integers(0, 2**32 - 1), st.floats(0.2, 5.0))
def test_field_is_the_small_alpha_limit_of_the_derived_network_field(seed, c):
    # Balanced neurons w = alpha u, v = s alpha: as alpha -> 0, r_i -> 1/2 and the derived field gives
    # u' = (I - u u^T) w' / ||w|| and (log ||w||)' = <u, w'> / ||w||; the error is O(alpha^2).
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((8, 3)), rng.choice([-1.0, 1.0], 8)
    U = rng.standard_normal((6, 3))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    signs = rng.choice([-1.0, 1.0], 6)
    alpha = 1e-5
    dW, _ = vector_field(alpha * U, alpha * signs, X, y, c=c)
    radial = np.einsum("kd,kd->k", U, dW) / alpha
    tangential = dW / alpha - radial[:, None] * U
    np.testing.assert_allclose(tangential, directional_field(U, X, y, sign=signs, c=c), atol=1e-8)
    np.testing.assert_allclose(radial, log_norm_rate(U, X, y, sign=signs, c=c), atol=1e-8)


def test_field_validates_input():
    X, y = np.eye(2), np.array([1.0, -1.0])
    with pytest.raises(ParameterError, match="zero row"):
        directional_field(np.zeros((1, 2)), X, y, sign=1)
    with pytest.raises(ParameterError, match="sign must contain only"):
        directional_field(np.ones((2, 2)), X, y, sign=0.5)
    with pytest.raises(ParameterError, match="sign has shape \\(3,\\)"):
        directional_field(np.ones((2, 2)), X, y, sign=[1, -1, 1])
    with pytest.raises(ParameterError, match="sign must be a real array"):
        log_norm_rate(np.ones((1, 2)), X, y, sign="up")
    with pytest.raises(ParameterError, match="c = -1"):
        log_norm_rate(np.ones((1, 2)), X, y, sign=1, c=-1)
    with pytest.raises(ParameterError, match="axis 1 must have size 2"):
        half_correlation(np.ones((1, 3)), X, y)


# ------------------------------------------------------------------------------------------------------------
# Tanh law and norm law
# ------------------------------------------------------------------------------------------------------------


@given(
    separable_sets, st.floats(0.1, 10.0), st.sampled_from([1, -1]), st.floats(0.05, 0.95), st.integers(0, 99)
)
def test_tanh_and_norm_laws_match_integrated_directional_flow(data, c, sign, mix, seed):
    X, y = data
    x_class = class_sums(X, y)[0 if sign > 0 else 1]
    rate = alignment_rates(X, y, c=c)[0 if sign > 0 else 1]
    own = y == sign
    # a start active on exactly the own-class points: a point of the segment from the own-class sum to a
    # random direction, before it leaves that activation region
    rng = np.random.default_rng(seed)
    e = x_class / np.linalg.norm(x_class)
    r = rng.standard_normal(X.shape[1])
    u0 = (1 - mix) * e + mix * r / np.linalg.norm(r)
    while not np.array_equal(X @ u0 > 0, own):
        u0 = (u0 + e) / 2
    u0 /= np.linalg.norm(u0)
    psi0 = float(u0 @ e)
    norm0 = 1e-3

    def rhs(_, state):
        u = state[:-1] / np.linalg.norm(state[:-1])
        return np.append(
            directional_field(u[None], X, y, sign=sign, c=c)[0],
            log_norm_rate(u[None], X, y, sign=sign, c=c)[0],
        )

    times = np.linspace(0.0, 4.0 / rate, 9)
    sol = solve_ivp(
        rhs,
        (0.0, times[-1]),
        np.append(u0, np.log(norm0)),
        method="DOP853",
        rtol=1e-12,
        atol=1e-13,
        t_eval=times,
    )
    U = sol.y[:-1].T
    assert np.all((U @ X.T > 0) == own)  # the law's activation pattern is kept along the way
    np.testing.assert_allclose(
        U @ e / np.linalg.norm(U, axis=1), tanh_alignment(times, rate=rate, psi0=psi0), atol=1e-9
    )
    np.testing.assert_allclose(
        sol.y[-1], np.log(aligned_norm(times, rate=rate, psi0=psi0, norm0=norm0)), atol=1e-9
    )


def test_tanh_law_with_time_origin_and_vectorized_time():
    t = np.array([[0.0, 1.0], [2.0, 3.0]])
    psi = tanh_alignment(t, rate=0.5, psi0=0.2, t0=1.0)
    assert psi.shape == (2, 2)
    assert psi[0, 1] == pytest.approx(0.2, abs=1e-15)
    assert psi[1, 1] == pytest.approx(np.tanh(1.0 + np.arctanh(0.2)), rel=1e-15)
    # e^800 overflows a double, the norm 1e-300 * cosh(800 + a0) / cosh(a0) does not: computed in logs
    a0 = np.arctanh(0.5)
    expected = np.exp(np.log(1e-300) + 800 + a0 - np.log(2) - np.log(np.cosh(a0)))
    assert aligned_norm(800.0, rate=1.0, psi0=0.5, norm0=1e-300) == pytest.approx(expected, rel=1e-11)


@given(st.floats(0.01, 10.0), st.floats(-0.9, 0.99), st.floats(0.1, 10.0), st.floats(1e-12, 1e-2))
def test_escape_time_exact_and_leading_order(rate, psi0, c, alpha):
    norm0 = alpha / np.sqrt(c) * 0.5
    t_esc = escape_time(rate=rate, psi0=psi0, norm0=norm0, c=c)
    assert aligned_norm(t_esc, rate=rate, psi0=psi0, norm0=norm0) == pytest.approx(1 / np.sqrt(c), rel=1e-9)
    # the stated asymptotics, with norm0 = alpha: rate t = log(1/alpha) - log sqrt(c) + log(2/(1+psi0)) + o(1)
    tiny = 1e-14
    t_tiny = escape_time(rate=rate, psi0=psi0, norm0=tiny, c=c)
    predicted = (np.log(1 / tiny) - 0.5 * np.log(c) + np.log(2 / (1 + psi0))) / rate
    assert t_tiny == pytest.approx(predicted, rel=1e-9)


def test_law_inputs_are_validated():
    with pytest.raises(ParameterError, match="psi0 = 1.0"):
        tanh_alignment(1.0, rate=1.0, psi0=1.0)
    with pytest.raises(ParameterError, match="rate = 0"):
        tanh_alignment(1.0, rate=0, psi0=0.1)
    with pytest.raises(ParameterError, match="non-finite"):
        tanh_alignment([0.0, np.inf], rate=1.0, psi0=0.1)
    with pytest.raises(ParameterError, match="already escaped"):
        escape_time(rate=1.0, psi0=0.1, norm0=2.0, c=1.0)
    with pytest.raises(ParameterError, match="norm0"):
        aligned_norm(1.0, rate=1.0, psi0=0.1, norm0=0.0)


# ------------------------------------------------------------------------------------------------------------
# Extreme vectors
# ------------------------------------------------------------------------------------------------------------


@given(separable_sets)
def test_finder_recovers_class_sums_on_orthogonally_separable_data(data):
    X, y = data
    search = extreme_vectors(X, y, n_starts=24, seed=1)
    assert search.unresolved == {1: 0, -1: 0}
    x_plus, x_minus = class_sums(X, y)
    n = len(y)
    for sign, x_class in ((1, x_plus), (-1, x_minus)):
        (found,) = search.of_sign(sign)  # exactly one extreme vector per sign, the rest of the starts die
        np.testing.assert_allclose(found.direction, x_class / np.linalg.norm(x_class), atol=1e-12)
        assert found.value == pytest.approx(sign * np.linalg.norm(x_class) / (2 * n), rel=1e-12)
        assert found.sliding == ()
        assert found.basin + search.dead[sign] == pytest.approx(1.0)
        assert found.residual <= search.tol


def test_finder_on_hand_built_sliding_example():
    # x1 = (1, 1/2) labelled +1, x2 = (0, 1) labelled -1. A positive neuron is pushed onto <u, x2> = 0 from
    # both sides and slides to (1, 0) (weight mu = 1/2, H = 1/4); a negative one slides on <u, x1> = 0 to
    # (-1, 2) / sqrt 5 (mu = 2/5, H = -1 / (2 sqrt 5)). Both attract every start that does not die.
    X = np.array([[1.0, 0.5], [0.0, 1.0]])
    y = np.array([1.0, -1.0])
    angles = (np.arange(360) + 0.5) * 2 * np.pi / 360
    search = extreme_vectors(X, y, starts=np.column_stack([np.cos(angles), np.sin(angles)]))
    (positive,) = search.of_sign(1)
    (negative,) = search.of_sign(-1)
    np.testing.assert_allclose(positive.direction, [1.0, 0.0], atol=1e-15)
    assert positive.value == pytest.approx(0.25, rel=1e-14) and positive.sliding == (1,)
    np.testing.assert_allclose(negative.direction, np.array([-1.0, 2.0]) / np.sqrt(5), atol=1e-15)
    assert negative.value == pytest.approx(-1 / (2 * np.sqrt(5)), rel=1e-14) and negative.sliding == (0,)
    # Dead ends: a positive neuron dies from the arc where it is inactive on x1 (half the circle: on x2 alone
    # it turns away from x2 until silent); a negative one from the arc where it is inactive on x2 (half too).
    assert search.dead == {1: pytest.approx(0.5, abs=1 / 360), -1: pytest.approx(0.5, abs=1 / 360)}
    assert positive.basin == negative.basin == pytest.approx(0.5, abs=1 / 360)


@pytest.mark.parametrize(("n", "d", "seed"), [(12, 3, 0), (10, 12, 2)])
def test_extreme_vectors_are_strict_local_maxima_and_euler_limits(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = rng.choice([-1.0, 1.0], n)
    starts = rng.standard_normal((12, d))
    search = extreme_vectors(X, y, starts=starts)
    assert search.unresolved == {1: 0, -1: 0}
    for vec in search.vectors:
        assert vec.residual <= search.tol
        assert np.all(X[list(vec.active)] @ vec.direction > 0)
        assert np.abs(X[list(vec.sliding)] @ vec.direction).max(initial=0.0) < 1e-14
        for eps in (1e-3, 1e-5):
            step = rng.standard_normal((500, d))
            moved = vec.direction + eps * step / np.linalg.norm(step, axis=1, keepdims=True)
            assert np.all(vec.sign * alignment_potential(moved, X, y) < vec.sign * vec.value)
    # Plain explicit Euler on the sphere (relu'(0) = 0, g written out again here, step 1e-2 in units of the
    # angle) ends within O(step) of the exact limit of its start: the number of Euler end points near each
    # extreme vector is its count (a start near a basin boundary may go to the neighbour: one miss allowed).
    scale = np.linalg.norm(X, axis=1).mean() / 2
    for sign in (1, -1):
        U = starts / np.linalg.norm(starts, axis=1, keepdims=True)
        for _ in range(20_000):
            U += 1e-2 * sign * ((U @ X.T > 0) * y) @ X / (2 * n * scale)
            U /= np.linalg.norm(U, axis=1, keepdims=True)
        found = search.of_sign(sign)
        near = [int(np.sum(np.linalg.norm(U - vec.direction, axis=1) < 0.01)) for vec in found]
        euler_dead = int(np.sum(~(U @ X.T > 0).any(axis=1)))
        mismatch = sum(abs(a - vec.count) for a, vec in zip(near, found)) + abs(
            euler_dead - search.dead[sign] * 12
        )
        assert mismatch <= 2  # one start moved from one end point to another counts twice


def test_finder_validates_input():
    X, y = np.eye(2), np.array([1.0, -1.0])
    with pytest.raises(ParameterError, match="tol"):
        extreme_vectors(X, y, tol=0.1)
    with pytest.raises(ParameterError, match="n_starts"):
        extreme_vectors(X, y, n_starts=0)
    with pytest.raises(ParameterError, match="starts has shape \\(3, 4\\); axis 1 must have size 2"):
        extreme_vectors(X, y, starts=np.ones((3, 4)))
    with pytest.raises(ParameterError, match="starts has a zero row"):
        extreme_vectors(X, y, starts=np.zeros((1, 2)))


# ------------------------------------------------------------------------------------------------------------
# Symbolic forms
# ------------------------------------------------------------------------------------------------------------


def test_equations_solve_their_differential_equations_and_match_the_code():
    eqs = {name: eq for name, eq, _ in equations()}
    assert all(isinstance(meaning, str) and meaning for _, _, meaning in equations())
    t, t0 = sp.Symbol("t", positive=True), sp.Symbol("t_0", positive=True)
    psi = eqs["tanh law"].rhs
    lam = next(s for s in psi.free_symbols if s.name == "lambda_+")
    psi0 = next(s for s in psi.free_symbols if s.name == "psi_0")
    assert sp.simplify(sp.diff(psi, t) - lam * (1 - psi**2)) == 0
    norm = eqs["aligned norm"].rhs
    assert sp.simplify(sp.diff(sp.log(norm), t) - lam * psi) == 0
    assert sp.simplify(psi.subs(t, t0) - psi0) == 0
    values = {lam: 0.7, psi0: -0.3, t0: 0.5}
    w0 = next(s for s in norm.free_symbols if s.name == r"\|w_{0}\|")
    for time in (0.5, 2.0, 9.0):
        assert float(psi.subs({**values, t: time})) == pytest.approx(
            tanh_alignment(time, rate=0.7, psi0=-0.3, t0=0.5), rel=1e-13
        )
        assert float(norm.subs({**values, w0: 0.01, t: time})) == pytest.approx(
            aligned_norm(time, rate=0.7, psi0=-0.3, norm0=0.01, t0=0.5), rel=1e-12
        )
    escape = eqs["escape time"].rhs
    c = next(s for s in escape.free_symbols if s.name == "c")
    assert float(escape.subs({**values, w0: 0.01, c: 2.0})) == pytest.approx(
        escape_time(rate=0.7, psi0=-0.3, norm0=0.01, c=2.0, t0=0.5), rel=1e-12
    )


@given(st.integers(0, 2**32 - 1), st.floats(0.2, 5.0), st.sampled_from(LOSSES))
def test_field_with_biases_weights_and_targets_is_the_small_alpha_limit(seed, c, loss):
    """The same limit with every option of the model: directions of (w_j, b_j), real targets for the squared
    loss, sample weights; the reference is the derived network field at alpha = 1e-5 (error O(alpha^2))."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 3))
    y = rng.standard_normal(8) if loss == "squared" else rng.choice([-1.0, 1.0], 8)
    weights = rng.uniform(0.0, 2.0, 8)
    U = rng.standard_normal((6, 4))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    signs = rng.choice([-1.0, 1.0], 6)
    alpha = 1e-5
    dW, _, db = vector_field(alpha * U[:, :3], alpha * signs, X, y, c=c, loss=loss, b=alpha * U[:, 3],
                             sample_weight=weights)  # fmt: skip
    velocity = np.c_[dW, db] / alpha
    radial = np.einsum("kd,kd->k", U, velocity)
    model = {"loss": loss, "sample_weight": weights, "bias": True}
    np.testing.assert_allclose(
        velocity - radial[:, None] * U, directional_field(U, X, y, sign=signs, c=c, **model), atol=1e-8
    )
    np.testing.assert_allclose(radial, log_norm_rate(U, X, y, sign=signs, c=c, **model), atol=1e-8)


def test_extreme_vectors_with_biases_and_real_targets_are_stationary():
    """Three points in 1-d, real targets, biases: every end point is a rest point of the directional flow on
    (x, 1) (Filippov residual <= tol) and active exactly where it says."""
    X, y = np.array([[-1.0], [0.2], [1.0]]), np.array([0.6, -0.4, 0.8])
    search = extreme_vectors(X, y, loss="squared", bias=True, n_starts=64, seed=1)
    assert search.unresolved == {1: 0, -1: 0} and search.vectors
    augmented = np.c_[X, np.ones(3)]
    for vec in search.vectors:
        assert vec.direction.shape == (2,) and vec.residual <= search.tol
        assert np.all(augmented[list(vec.active)] @ vec.direction > 0)
        if not vec.sliding:
            field = directional_field(vec.direction[None], X, y, sign=vec.sign, loss="squared", bias=True)
            assert np.linalg.norm(field) < 1e-12


def test_the_model_options_are_validated():
    X, y = np.eye(2), np.array([1.0, -1.0])
    with pytest.raises(ParameterError, match="bias must be True or False"):
        directional_field(np.ones((1, 3)), X, y, sign=1, bias="yes")
    with pytest.raises(ParameterError, match="zero pull"):
        directional_field(np.ones((1, 2)), X, np.zeros(2), sign=1, loss="squared")
    with pytest.raises(ParameterError, match="margin loss"):
        half_correlation(np.ones((1, 2)), X, [0.5, 1.0])
    with pytest.raises(ParameterError, match="sample_weight has negative"):
        extreme_vectors(X, y, sample_weight=[1.0, -1.0])
