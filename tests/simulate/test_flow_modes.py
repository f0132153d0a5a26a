"""Mode logic of the flow engine: Filippov weights, minimal-norm selection, projection onto surfaces."""

import itertools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.optimize import lsq_linear

from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.events import PieceGuards
from fls.simulate.flow.modes import (
    ACTIVE,
    INACTIVE,
    SLIDING,
    Mode,
    SlidingWeights,
    _two_weights,
    min_norm_weights,
    project_onto_surfaces,
    select_neuron_mode,
)
from fls.simulate.stopping import TargetRisk

ARITH = float_arithmetic("logistic")


def brute_force_min_norm(A: np.ndarray, b: np.ndarray) -> float:
    """min over mu in [0, 1]^k of ||b + A mu||^2, enumerating which coordinates sit at 0, at 1 or are free."""
    best = np.inf
    for labels in itertools.product((0, 1, 2), repeat=A.shape[1]):
        labels = np.array(labels)
        mu = np.where(labels == 1, 1.0, 0.0)
        free = labels == 2
        if free.any():
            rhs = -(b + A[:, ~free] @ mu[~free])
            mu[free] = np.linalg.lstsq(A[:, free], rhs, rcond=None)[0]
            if np.any(mu[free] < -1e-12) or np.any(mu[free] > 1 + 1e-12):
                continue
        best = min(best, float(np.sum((b + A @ np.clip(mu, 0, 1)) ** 2)))
    return best


@given(st.integers(0, 10_000), st.integers(1, 4))
def test_min_norm_weights_is_the_box_constrained_minimum(seed, k):
    rng = np.random.default_rng(seed)
    A, b = rng.standard_normal((5, k)), rng.standard_normal(5)
    mu = min_norm_weights(A, b)
    assert np.all((mu >= 0) & (mu <= 1))
    assert np.sum((b + A @ mu) ** 2) == pytest.approx(brute_force_min_norm(A, b), rel=1e-10, abs=1e-12)


@given(st.integers(0, 10_000), st.floats(1e-3, 1.0))
def test_two_weights_closed_form_is_the_box_constrained_minimum(seed, spread):
    # columns at every angle down to ~1e-3 rad: the closed form where it answers, bvls (None) where nearly
    # collinear; either way the box-constrained minimum (the brute force over active sets is independent)
    rng = np.random.default_rng(seed)
    first = rng.standard_normal(6)
    A = np.stack([first, first + spread * rng.standard_normal(6)], axis=1) * rng.uniform(0.1, 10.0, 2)
    b = rng.standard_normal(6) * rng.uniform(0.1, 10.0)
    mu = _two_weights(A, b)
    if mu is None:
        cos2 = (A[:, 0] @ A[:, 1]) ** 2 / ((A[:, 0] @ A[:, 0]) * (A[:, 1] @ A[:, 1]))
        assert 1 - cos2 <= 2e-4  # only nearly collinear columns are left to bvls
        return
    assert np.all((mu >= 0) & (mu <= 1))
    assert np.sum((b + A @ mu) ** 2) == pytest.approx(brute_force_min_norm(A, b), rel=1e-10, abs=1e-12)
    reference = lsq_linear(A, -b, bounds=(0.0, 1.0), method="bvls").x
    assert mu == pytest.approx(reference, abs=1e-8)


def random_neuron(seed: int, n: int = 8, d: int = 5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    s = rng.choice([-1.0, 1.0], n) * rng.uniform(0.1, 1.0, n)
    side = rng.choice([ACTIVE, INACTIVE], n).astype(np.int8)
    touching = np.sort(rng.choice(n, size=rng.integers(1, d), replace=False))
    prefer = rng.choice([ACTIVE, INACTIVE], n).astype(np.int8)
    return X, s, rng.choice([-1.0, 1.0]), side, touching, prefer


def field_of(X, s, side):
    """h = X^T q of one neuron: s on active pairs, z on sliding pairs from K_SS z = -K_{S,:}(s . 1_A)."""
    K = X @ X.T
    q = s * (side == ACTIVE)
    S = np.flatnonzero(side == SLIDING)
    if len(S):
        q[S] = np.linalg.solve(K[np.ix_(S, S)], -K[S] @ q)
    return X.T @ q, q


@given(st.integers(0, 100_000))
def test_selected_mode_is_a_consistent_filippov_mode(seed):
    """Sliding pairs move tangentially with mu in [0, 1]; the others leave towards the side of their gate."""
    X, s, sign_v, side, touching, prefer = random_neuron(seed)
    new = select_neuron_mode(X, s, sign_v, side, touching, prefer)
    untouched = np.setdiff1d(np.arange(len(s)), touching)
    assert np.array_equal(new[untouched], side[untouched])
    h, q = field_of(X, s, new)
    rate = sign_v * (X @ h)
    scale = np.abs(s).max() * np.abs(X).max() ** 2
    for i in touching:
        if new[i] == SLIDING:
            assert sign_v * s[i] < 0  # only pairs whose jump points into the surface can slide
            assert abs(rate[i]) <= 1e-9 * scale
            assert -1e-9 <= q[i] / s[i] <= 1 + 1e-9
        elif new[i] == ACTIVE:
            assert rate[i] >= -1e-9 * scale
        else:
            assert rate[i] <= 1e-9 * scale


def test_two_surfaces_get_their_weights_from_one_problem_not_pair_by_pair():
    """A neuron on two surfaces: the joint minimal-norm weights keep it on both; pair-by-pair ones do not."""
    rng = np.random.default_rng(6)  # a draw where both pairs slide jointly
    X = rng.standard_normal((4, 3))
    s = np.array([-0.5, -0.5, 0.5, 0.5]) * rng.uniform(0.5, 1, 4)
    side = np.array([SLIDING, SLIDING, ACTIVE, ACTIVE], dtype=np.int8)
    new = select_neuron_mode(X, s, 1.0, side, np.array([0, 1]), np.full(4, INACTIVE, dtype=np.int8))
    assert list(new[:2]) == [SLIDING, SLIDING]
    h, q = field_of(X, s, new)
    assert np.allclose(X[:2] @ h, 0.0, atol=1e-14)
    # Pair by pair: each weight chosen as if the other pair were off its surface (gate 0).
    base = X[2:].T @ s[2:]
    mu_single = np.array([min_norm_weights((X[i] * s[i])[:, None], base)[0] for i in (0, 1)])
    h_single = base + X[:2].T @ (s[:2] * mu_single)
    assert np.max(np.abs(X[:2] @ h_single)) > 1e-2
    assert np.max(np.abs(mu_single - q[:2] / s[:2])) > 0.2


def test_hint_sends_a_pair_whose_weight_reached_its_bound_to_that_side():
    """At a weight event mu = 1 the least-squares weight is 1 - O(roundoff): the hint says 'leave active'."""
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    s = np.array([-1.0, 1.0])
    side = np.array([SLIDING, ACTIVE], dtype=np.int8)
    # q_0 from K_00 z = -K_01 s_1: z = -1, mu = 1 exactly at this state.
    prefer = np.full(2, INACTIVE, dtype=np.int8)
    X_perturbed = X.copy()
    X_perturbed[1, 0] -= 1e-11  # mu = 1 - 1e-11: interior without the hint
    assert select_neuron_mode(X_perturbed, s, 1.0, side, np.array([0]), prefer)[0] == SLIDING
    hinted = select_neuron_mode(X_perturbed, s, 1.0, side, np.array([0]), prefer, {0: ACTIVE})
    assert hinted[0] == ACTIVE


@given(st.floats(-3.0, 3.0), st.floats(0.1, 3.0), st.sampled_from([1.0, -1.0]))
def test_a_sliding_pair_on_a_repelling_surface_leaves_to_the_side_both_rates_point_to(rate0, jump, sign_v):
    """One sliding sample x = e_1 whose jump J = sign_v s ||x||^2 > 0 points away (a repelling surface) and an
    offset N that puts the rate on the inactive side at r_0 = sign_v N: the rate on the active side is r_0 + J.
    Where both point to one side the pair takes it (r_0 > 0: active, r_0 + J < 0: inactive; the least-squares
    weight (2) is then at the other bound), else it slides with mu = -r_0 / J."""
    assume(abs(rate0) > 1e-6 and abs(rate0 + jump) > 1e-6)
    X = np.array([[1.0, 0.0]])
    s, offset = np.array([sign_v * jump]), np.array([sign_v * rate0])
    new = select_neuron_mode(
        X, s, sign_v, np.array([SLIDING]), np.array([0]), np.array([INACTIVE]), offset=offset
    )
    expected = ACTIVE if rate0 > 0 else INACTIVE if rate0 + jump < 0 else SLIDING
    assert new[0] == expected


@given(st.integers(0, 100_000))
def test_sliding_weights_keep_every_sliding_pair_on_its_surface(seed):
    rng = np.random.default_rng(seed)
    m, n, d = 4, 7, 5
    X = rng.standard_normal((n, d))
    sliding = np.zeros((m, n), dtype=bool)
    for j in range(m):
        sliding[j, rng.choice(n, size=rng.integers(0, d), replace=False)] = True
    active = ~sliding & (rng.random((m, n)) < 0.5)
    weights = SlidingWeights(Mode(active, sliding), X @ X.T, ARITH)
    s = rng.uniform(0.1, 1.0, n) * rng.choice([-1.0, 1.0], n)
    q = weights.weighted_gates(s)
    H = q @ X
    assert np.allclose((H @ X.T)[sliding], 0.0, atol=1e-10)
    assert np.allclose(q[active], np.broadcast_to(s, (m, n))[active])
    assert np.all(q[~active & ~sliding] == 0)
    assert np.allclose(weights.mu(s), q[sliding] / np.broadcast_to(s, (m, n))[sliding])
    batch = np.stack([s, 2 * s])  # leading axes broadcast
    assert np.allclose(weights.weighted_gates(batch)[1], 2 * q)


@given(st.integers(0, 100_000), st.integers(1, 3))
def test_projection_lands_on_every_surface_and_moves_least(seed, k):
    rng = np.random.default_rng(seed)
    X_T, w = rng.standard_normal((k, 5)), rng.standard_normal(5)
    p = project_onto_surfaces(w, X_T, ARITH)
    assert np.allclose(X_T @ p, 0.0, atol=1e-12)
    # The displacement lies in the span of X_T (orthogonal projection: the nearest point of the subspace).
    coeffs = np.linalg.lstsq(X_T.T, w - p, rcond=None)[0]
    assert np.allclose(X_T.T @ coeffs, w - p, atol=1e-12)


@given(st.integers(0, 100_000))
def test_an_event_s_shortcuts_give_the_whole_computation_s_numbers(seed):
    """The event loop's shortcuts (docs/flow.md, "The event loop at m = 100"): the gates of one neuron, of
    several and of all (sliding or not) are those rows of the whole network's, and a selection given the
    samples' norms is the one that computes them."""
    rng = np.random.default_rng(seed)
    m, n, d = 4, 7, 5
    X = rng.standard_normal((n, d))
    sliding = np.zeros((m, n), dtype=bool)
    for j in range(1, m):  # neuron 0 does not slide
        sliding[j, rng.choice(n, size=rng.integers(0, d), replace=False)] = True
    active = ~sliding & (rng.random((m, n)) < 0.5)
    s = rng.uniform(0.1, 1.0, n) * rng.choice([-1.0, 1.0], n)
    for mode in (Mode(active, sliding), Mode(active, np.zeros_like(sliding))):
        weights = SlidingWeights(mode, X @ X.T, ARITH)
        q = weights.weighted_gates(s)
        for neurons in [[j] for j in range(m)] + [[1, 3], list(range(m))]:
            # the sliding pairs' z from the neurons' rows of the map: a smaller product, the same to roundoff
            np.testing.assert_allclose(
                weights.neuron_gates(s, None, neurons), q[neurons], rtol=1e-13, atol=1e-15
            )
    X, s, sign_v, side, touching, prefer = random_neuron(seed)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    assert np.array_equal(
        select_neuron_mode(X, s, sign_v, side, touching, prefer, norms=norms),
        select_neuron_mode(X, s, sign_v, side, touching, prefer),
    )


@given(st.integers(0, 100_000), st.integers(1, 4))
def test_weights_and_guards_updated_from_the_previous_piece_equal_fresh_ones(seed, events):
    """Events change some neurons' rows, piece after piece; the incremental SlidingWeights (their map bit for
    bit: only the changed neurons' rows are looked up again) and PieceGuards equal new ones."""
    rng = np.random.default_rng(seed)
    m, n, d = 5, 7, 4
    X = rng.standard_normal((n, d))
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    coords = PlainCoordinates(X, y, 1.0, m, ARITH)

    def random_rows():
        sliding = (rng.random((m, n)) < 0.15) & (np.arange(n) < d - 1)  # at most d - 1 surfaces per neuron
        return np.where(sliding, SLIDING, np.where(rng.random((m, n)) < 0.5, ACTIVE, INACTIVE)).astype(
            np.int8
        )

    side = random_rows()
    mode = Mode(side == ACTIVE, side == SLIDING)
    gram, cache = X @ X.T, {}
    weights = SlidingWeights(mode, gram, ARITH, cache)
    guards = PieceGuards(coords, weights, TargetRisk(0.1))
    for _ in range(events):
        new_rows = random_rows()
        changed = sorted(rng.choice(m, size=rng.integers(1, m + 1), replace=False).tolist())
        next_mode = mode.with_rows({j: new_rows[j] for j in changed})
        updated = SlidingWeights(next_mode, gram, ARITH, cache, weights, changed)
        fresh = SlidingWeights(next_mode, gram, ARITH)
        s = rng.uniform(0.1, 1.0, n) * rng.choice([-1.0, 1.0], n)
        assert np.array_equal(next_mode.side, np.where(next_mode.active, 1, np.where(next_mode.sliding, 0, -1)))
        assert np.array_equal(updated.map, fresh.map) and np.array_equal(updated.offset_map, fresh.offset_map)
        assert np.allclose(updated.weighted_gates(s), fresh.weighted_gates(s), rtol=1e-13, atol=1e-13)
        assert np.allclose(updated.mu(s), fresh.mu(s), rtol=1e-13, atol=1e-13)
        updated_guards = PieceGuards(coords, updated, TargetRisk(0.1), guards, changed)
        fresh_guards = PieceGuards(coords, fresh, TargetRisk(0.1))
        Ys = rng.standard_normal((3, coords.size))
        assert np.array_equal(updated_guards.evaluate(Ys), fresh_guards.evaluate(Ys))
        assert np.array_equal(updated_guards.thresholds, fresh_guards.thresholds)
        mode, weights, guards = next_mode, updated, updated_guards
