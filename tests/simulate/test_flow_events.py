"""Event location: sampled guards, dips between samples, the polynomial pair guards, regula falsi in mpmath."""

from dataclasses import dataclass, field
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.optimize import brentq

from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.events import PAIR, PieceGuards, StepGuards, first_event, illinois
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.polynomial_guards import PolynomialStepGuards
from fls.simulate.stopping import TargetRisk


@dataclass
class ScalarGuards:
    """A stand-in for PieceGuards with scalar guard functions of the 'state' Y = [t]."""

    functions: list

    def __post_init__(self):
        self.thresholds = np.full(len(self.functions), 1e-14)
        self.grazing = set()

    def evaluate(self, Ys):
        return np.array([[g(Y[0]) for g in self.functions] for Y in Ys])

    def column(self, Y, col):
        return self.functions[col](Y[0])

    def kind(self, col):
        return PAIR


def step_over(guards, ts):
    return StepGuards(guards, ts, guards.evaluate(ts[:, None]), lambda t: np.array([t]))


def test_a_crossing_and_return_between_two_samples_is_found():
    """(t - 0.52)^2 - 1e-4 is positive at every sample 0, 0.1, ..., 1 but crosses at 0.51 and returns at 0.53."""
    guards = ScalarGuards([lambda t: (t - 0.52) ** 2 - 1e-4])
    ts = np.linspace(0.0, 1.0, 11)
    assert np.all(guards.evaluate(ts[:, None]) > 0)
    assert first_event(step_over(guards, ts), xtol=1e-15, refine_dips=False) is None
    t, column, values = first_event(step_over(guards, ts), xtol=1e-15)
    assert column == 0 and t == pytest.approx(0.51, abs=1e-12) and abs(values[0]) < 1e-12


def test_a_dip_whose_lowest_sample_follows_an_earlier_crossing_interval_is_found():
    """The first guard crosses at 0.59, in the interval (0.5, 0.6); the second, (t - 0.57)^2 - 1e-4, has its
    lowest sample at 0.6, after that interval, but crosses at 0.56, before 0.59: its dip's bracket [0.5, 0.7]
    starts inside the crossing's interval, so it is searched (the weight guards at a pole, docs/flow.md,
    "Robustness")."""
    guards = ScalarGuards([lambda t: 0.59 - t, lambda t: (t - 0.57) ** 2 - 1e-4])
    ts = np.linspace(0.0, 1.0, 11)
    assert np.argmin(guards.evaluate(ts[:, None])[:, 1]) == 6
    t, column, values = first_event(step_over(guards, ts), xtol=1e-15)
    assert column == 1 and t == pytest.approx(0.56, abs=1e-12) and values[0] > 0


@pytest.mark.parametrize("centre", [0.02, 0.98])
def test_a_dip_in_a_steps_first_or_last_interval_is_found(centre):
    """(t - centre)^2 - 1e-4 crosses at centre -+ 0.01 inside the first (last) sample interval of the step and
    is lowest at its first (last) sample: no sample inside the step is a local minimum, yet the dip is found
    (1 - mu's guard when a step ends just before a weight's exit at its pole, docs/flow.md, "Robustness")."""
    guards = ScalarGuards([lambda t: (t - centre) ** 2 - 1e-4])
    ts = np.linspace(0.0, 1.0, 11)
    assert np.all(guards.evaluate(ts[:, None]) > 0)
    t, column, values = first_event(step_over(guards, ts), xtol=1e-15)
    assert column == 0 and t == pytest.approx(centre - 0.01, abs=1e-12) and abs(values[0]) < 1e-12


@given(st.floats(0.002, 0.998), st.floats(1e-4, 1e-3))
def test_a_parabolic_dip_anywhere_in_a_step_is_found_at_its_first_root(centre, half_width):
    """(t - c)^2 - r^2 on samples 0, 0.1, ..., 1: the first event is at c - r wherever the dip lies, between two
    samples inside the step, at either end, or across a sample (then a sign change)."""
    guards = ScalarGuards([lambda t: (t - centre) ** 2 - half_width**2])
    ts = np.linspace(0.0, 1.0, 11)
    assume(centre - half_width > 1e-3 and centre + half_width < 1 - 1e-3)
    t, column, _ = first_event(step_over(guards, ts), xtol=1e-15)
    assert column == 0 and t == pytest.approx(centre - half_width, abs=1e-11)


def test_a_guard_rising_from_the_step_start_has_no_dip():
    """A guard that is lowest at the step's start and convex but rising there (its parabola's vertex before the
    step) is not searched: no event."""
    guards = ScalarGuards([lambda t: (t + 0.05) ** 2 - 1e-4])
    assert first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15) is None


def test_the_earliest_of_several_crossings_in_one_interval_wins():
    guards = ScalarGuards([lambda t: 0.57 - t, lambda t: 0.53 - t, lambda t: np.cos(8 * t)])
    t, column, values = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert column == 2 and t == pytest.approx(np.pi / 16, abs=1e-13)
    assert values[0] > 0 and values[1] > 0


@given(
    st.lists(st.floats(0.01, 0.99), min_size=1, max_size=6),
    st.lists(st.floats(0.02, 0.98), max_size=3),
    st.booleans(),
)
def test_the_earliest_zero_of_many_crossings_and_dips_in_one_step_is_the_event(roots, centres, bent):
    """Guards that cross 0 at ``roots`` (lines, or bent ones) beside parabolic dips (t - c)^2 - r^2 of half-width
    r = 3e-3 at ``centres``, in one step sampled at 0, 0.1, ..., 1: the event is the earliest zero of them all,
    whichever of the brackets (one or several, crossings and dips) holds it."""
    half_width = 3e-3
    guards = ScalarGuards(
        [lambda t, r=r: (r - t) * (1.0 + t if bent else 1.0) for r in roots]
        + [lambda t, c=c: (t - c) ** 2 - half_width**2 for c in centres]
    )
    t, column, values = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    zeros = roots + [c - half_width for c in centres]
    assert t == pytest.approx(min(zeros), abs=1e-11)
    assert zeros[column] == pytest.approx(min(zeros), abs=1e-11) and abs(values[column]) <= 1e-11


def test_a_guard_leaving_its_surface_the_wrong_way_is_an_event_at_once():
    guards = ScalarGuards([lambda t: -t])
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert (t, column) == (0.0, 0)


def test_a_guard_that_drifted_through_0_in_earlier_steps_is_an_event_at_the_step_start():
    """Positive earlier in the piece, through 0 in a step too short to reach -threshold (1e-14), now below it:
    the pair is off its side (it used to be missed for good: no step of the piece went from > 0 to
    <= -threshold, RK23 at t ~ 3e-13 on a stress-suite problem)."""
    guards = ScalarGuards([lambda t: -1e-15 - 1e-13 * t])
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert (t, column) == (0.0, 0)


def test_a_guard_that_passes_within_its_threshold_on_its_way_below_it_has_crossed():
    """0.29 - t with a grazing depth of 0.05: -0.01 at the sample t = 0.3, past the depth at t = 0.4. It crossed
    at 0.29 (no interval went from > 0 to <= -0.05 in one, and the next step would start below 0)."""
    guards = ScalarGuards([lambda t: 0.29 - t])
    guards.thresholds = np.array([0.05])
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert column == 0 and t == pytest.approx(0.29, abs=1e-12)


def test_a_grazing_guard_that_starts_a_step_beyond_its_depth_has_crossed_though_it_comes_back():
    """-0.2 + t after a grazing contact of depth 0.05: below the depth from the step's start, positive at its
    end. A dip within the depth that comes back is the integration's noise; this one is an event at the start."""
    guards = ScalarGuards([lambda t: -0.2 + t])
    guards.thresholds, guards.grazing = np.array([0.05]), {0}
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert (t, column) == (0.0, 0)
    shallow = ScalarGuards([lambda t: -0.02 + t])
    shallow.thresholds, shallow.grazing = np.array([0.05]), {0}
    assert first_event(step_over(shallow, np.linspace(0.0, 1.0, 11)), xtol=1e-15) is None


def test_a_guard_turned_back_within_one_sample_interval_is_located_not_repeated():
    """t (0.05 - t) starts on its surface, rises and comes back at 0.05, before the first sample at 0.1: the
    event is there (reporting it at 0 would repeat the same event forever)."""
    guards = ScalarGuards([lambda t: t * (0.05 - t)])
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert column == 0 and t == pytest.approx(0.05, abs=1e-12)


def test_a_dip_after_a_grazing_contact_that_comes_back_is_no_event():
    """-t (0.15 - t): below the surface until 0.15, then above. After a grazing contact (the pair's rate is
    zero to roundoff) such a dip is the integration's noise; elsewhere it is a wrong-way exit."""
    guards = ScalarGuards([lambda t: -t * (0.15 - t)])
    assert first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)[0] == 0.0
    guards.grazing = {0}
    assert first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15) is None


def test_a_grazing_dip_hides_no_other_guards_crossing_later_in_the_step():
    """The grazing dip -t (0.15 - t) of the test above, beside a guard 0.48 - t that crosses at 0.48: the dip
    is no event, the crossing is (it used to be dropped with every crossing after the dip's first sample, and
    the pair went on through its surface on its old side; docs/flow.md, "Repeated and collinear samples")."""
    guards = ScalarGuards([lambda t: -t * (0.15 - t), lambda t: 0.48 - t])
    guards.grazing = {0}
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert column == 1 and t == pytest.approx(0.48, abs=1e-12)


def test_a_guard_leaving_the_wrong_way_hides_no_earlier_crossing_in_its_interval():
    """A guard that starts on its surface, rises to a hump and comes down through it at 0.06, t (0.06 - t),
    beside a guard 0.04 - t that crosses at 0.04 inside the same sample interval [0, 0.1]: the crossing at
    0.04 is the first event (it used to be dropped with every crossing from the hump's interval on); one at
    0.08, after the hump's, is not."""
    for crossing, first in ((0.04, (0.04, 1)), (0.08, (0.06, 0))):
        guards = ScalarGuards([lambda t: t * (0.06 - t), lambda t, c=crossing: c - t])
        guards.grazing = set()
        t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
        assert (column, t) == (first[1], pytest.approx(first[0], abs=1e-12))


def test_pair_guards_are_recovered_exactly_from_a_polynomial_dense_output():
    """For a degree-7 trajectory the interpolated <w_j(t), x_i> has the exact root of the true one."""
    rng = np.random.default_rng(4)
    m, n, d = 3, 4, 2
    X, y = rng.standard_normal((n, d)), np.array([1.0, -1.0, 1.0, -1.0])
    coords = PlainCoordinates(X, y, 1.0, m, float_arithmetic("logistic"))
    Y0, A, B = (
        rng.standard_normal(m * (d + 1)),
        rng.standard_normal(m * (d + 1)),
        rng.standard_normal(m * (d + 1)),
    )

    def state(t):
        return Y0 + t * A + t**7 * B

    def preactivation(t, j, i):
        return state(t)[j * d : (j + 1) * d] @ X[i]

    P0 = Y0[: m * d].reshape(m, d) @ X.T
    weights = SlidingWeights(Mode(P0 > 0, np.zeros((m, n), dtype=bool)), X @ X.T, coords.arith)
    guards = PieceGuards(coords, weights, None)
    ts = np.linspace(0.0, 0.4, 11)
    Ys = np.stack([state(t) for t in ts])
    step = StepGuards(guards, ts, guards.evaluate(Ys), state, Ys)
    for col in range(guards.n_pairs):
        j, i = guards.pair(col)
        for t in (0.013, 0.2, 0.377):
            scale = np.linalg.norm(Ys[0, j * d : (j + 1) * d]) * np.linalg.norm(X[i])
            assert step.column(t, col) == pytest.approx(
                weights.mode.side[j, i] * preactivation(t, j, i) / scale, abs=1e-13
            )
    event = first_event(step, xtol=1e-15)
    assert event is not None
    j, i = guards.pair(event[1])
    root = brentq(preactivation, 0.0, float(event[0]) + 1e-3, args=(j, i), xtol=1e-15)
    assert event[0] == pytest.approx(root, abs=1e-12)


@dataclass
class OnePairGuards:
    """A stand-in for PieceGuards with one pair guard whose pre-activation is the first state component."""

    thresholds = np.array([1e-14])
    grazing: set = field(default_factory=set)
    weights = SimpleNamespace(mode=SimpleNamespace(side=np.array([[1]])))
    coords = SimpleNamespace(pair_preactivations=lambda Ys, j, i: (Ys[:, 0], 1.0))

    def kind(self, col):
        return PAIR

    def pair(self, col):
        return 0, 0

    def evaluate(self, Ys):
        return Ys[:, :1]


def test_a_pair_the_interpolant_has_crossed_at_the_bracket_start_is_located_there():
    """The sampled guard is +1e-17 at the step's start (another rounding), the pair's interpolant -t is 0 there
    and negative after: the crossing is at the start, not one sample interval later (regula falsi on a
    bracket without a sign change walked to its end: RK45 kept a pair 0.018 on the wrong side)."""
    ts = np.linspace(0.0, 1.0, 11)
    Ys = -ts[:, None]
    G = Ys.copy()
    G[0] = 1e-17
    step = StepGuards(OnePairGuards(), ts, G, lambda t: np.array([-t]), Ys)
    t, column, _ = first_event(step, xtol=1e-15)
    assert (t, column) == (0.0, 0)


def test_a_polynomial_pair_guard_below_0_at_its_bracket_start_is_located_there():
    """Newton on a pair's polynomial -1e-17 - theta that the samples had above 0 at theta = 0: the crossing is
    the bracket's start, never a time before it."""
    step = PolynomialStepGuards.__new__(PolynomialStepGuards)
    step.t_a, step.h, step.n_candidates, step._reversed = 0.0, 1.0, 1, {}
    step.pair_coefficients = np.array([[-1e-17], [-1.0]])
    assert step.root(0, 0.0, 0.1, 1e-17, -0.1, 1e-15) == 0.0


def test_illinois_converges_in_mpmath_to_the_working_precision():
    with mpmath.workdps(40):
        root = illinois(
            lambda t: mpmath.cos(t),
            mpmath.mpf(1),
            mpmath.mpf(2),
            mpmath.cos(1),
            mpmath.cos(2),
            xtol=mpmath.mpf(10) ** -35,
        )
        assert abs(root - mpmath.pi / 2) < mpmath.mpf(10) ** -34


def polynomial_step_problem(seed: int, c: float, sizes: tuple[float, ...]):
    """Plain coordinates for m = 6 neurons, n = 8 samples in d = 3, and a random cubic step C (4, size) whose
    coefficient k has scale sizes[k]; P0: the pre-activations at the step's start."""
    rng = np.random.default_rng(seed)
    m, n, d = 6, 8, 3
    X = rng.standard_normal((n, d))
    coords = PlainCoordinates(
        X, np.where(np.arange(n) % 2 == 0, 1.0, -1.0), c, m, float_arithmetic("logistic")
    )
    C = rng.standard_normal((4, m * (d + 1))) * np.array(sizes)[:, None]
    return coords, C, C[0, : m * d].reshape(m, d) @ X.T


def sliding_step(coords, C: np.ndarray, P0: np.ndarray):
    """(guards, polynomial step guards, t -> state) of the cubic step C on [0.3, 0.5], from the mode of the
    pre-activations P0 with the pairs (1, 2) and (4, 5) sliding and a stopping rule (every kind of guard)."""
    X, (m, n) = coords.X, P0.shape
    sliding = np.zeros((m, n), dtype=bool)
    sliding[1, 2] = sliding[4, 5] = True
    weights = SlidingWeights(Mode((P0 > 0) & ~sliding, sliding), X @ X.T, coords.arith)
    guards = PieceGuards(coords, weights, TargetRisk(0.1))
    t_a, h = 0.3, 0.2

    def state_at(t):
        return ((t - t_a) / h) ** np.arange(4) @ C

    step = PolynomialStepGuards(guards, t_a, h, np.linspace(0.0, 1.0, 7), C, state_at)
    assert 0 < len(step.candidates) < guards.n_pairs - 2
    return guards, step, state_at


@given(st.integers(0, 10_000))
def test_weight_guards_have_the_signs_of_mu_and_1_minus_mu_and_no_pole(seed):
    """The weight guards are mu and 1 - mu at the piece's start, keep their signs wherever the jump s_i is not
    0, and stay finite where it is (mu's pole)."""
    coords, C, P0 = polynomial_step_problem(seed, c=1.0, sizes=(1.0, 0.3, 0.1, 0.05))
    X, (m, n) = coords.X, P0.shape
    sliding = np.zeros((m, n), dtype=bool)
    sliding[1, 2] = sliding[4, 5] = True
    weights = SlidingWeights(Mode((P0 > 0) & ~sliding, sliding), X @ X.T, coords.arith)
    guards = PieceGuards(coords, weights, None, start=C[0])
    s_start = coords.sample_factors(coords.output(C[:1], weights))[0]
    low, high = guards.weight_guards(s_start)
    mu = weights.mu(s_start)
    assert low == pytest.approx(mu, rel=1e-12) and high == pytest.approx(1 - mu, rel=1e-12)
    s = np.random.default_rng(seed).standard_normal((20, n))
    low, high = guards.weight_guards(s)
    mu = weights.mu(s)
    assert np.array_equal(np.sign(low), np.sign(mu)) and np.array_equal(np.sign(high), np.sign(1 - mu))
    s[:, [2, 5]] = 0.0
    low, high = guards.weight_guards(s)
    assert np.all(low == 0) and np.all(high == 0)


def test_polynomial_step_guards_equal_the_guards_of_the_sampled_states():
    """Guards from the dense output's coefficients == guards of the states (pairs scaled at t_a); a pair that is
    not sampled (left out of an event's values, so off its surface) keeps its sign over the whole step."""
    coords, C, P0 = polynomial_step_problem(7, c=1.3, sizes=(1.0, 0.3, 0.1, 0.05))
    guards, step, state_at = sliding_step(coords, C, P0)
    t_a, h = step.t_a, step.h
    held = np.setdiff1d(np.arange(guards.n_pairs), np.union1d(step.candidates, guards.sliding_columns))
    start = guards.evaluate(C[:1])[0]  # cos angle(w_j, x_i) at t_a
    for k, t in enumerate(step.ts):
        assert step.values(t) == pytest.approx(step.G[k], rel=1e-12, abs=1e-14)
    for t in np.linspace(t_a, t_a + h, 51):
        expected = guards.evaluate(np.stack([C[0], state_at(t)]), one_scale=True)[1]
        _, _, got = step.event(t, 0, step.values(t))
        assert got == pytest.approx(expected[step.value_columns], rel=1e-12, abs=1e-14)
        assert step.outputs_at(t) == pytest.approx(
            coords.output(state_at(t), guards.weights), rel=1e-12, abs=1e-14
        )
        assert np.all(np.sign(expected[held]) == np.sign(start[held]))
    assert not np.isin(step.value_columns, np.union1d(held, guards.sliding_columns)).any()


@pytest.mark.parametrize("seed", range(6))
def test_polynomial_step_guards_locate_the_first_crossing_to_roundoff(seed):
    """Safeguarded Newton on a movable pair's polynomial: the located time is the earliest sign change of any
    guard (checked on a fine grid of the states), to 1e-13 in time."""
    coords, C, P0 = polynomial_step_problem(seed, c=1.0, sizes=(1.0, 0.5, 0.2, 0.1))
    X = coords.X
    guards = PieceGuards(
        coords, SlidingWeights(Mode(P0 > 0, np.zeros_like(P0, dtype=bool)), X @ X.T, coords.arith), None
    )

    def state_at(t):
        return np.atleast_1d(t)[:, None] ** np.arange(4) @ C

    step = PolynomialStepGuards(guards, 0.0, 1.0, np.linspace(0.0, 1.0, 7), C, lambda t: state_at(t)[0])
    t_event, column, _ = first_event(step, xtol=1e-15)
    grid = np.linspace(0.0, 1.0, 20001)
    cosines = guards.evaluate(state_at(grid))[:, : guards.n_pairs]
    first_sign_change = grid[np.flatnonzero((cosines <= 0).any(axis=1))[0]]
    assert t_event == pytest.approx(first_sign_change, abs=1e-4)  # the grid's resolution
    j, i = guards.pair(column)
    assert abs(coords.cosine(state_at(t_event)[0], j, i)) < 1e-13
    assert guards.evaluate(state_at(t_event - 1e-9))[0, : guards.n_pairs].min() > 0


def test_polynomial_step_guards_in_log_coordinates_equal_the_guards_of_the_sampled_states():
    """Log coordinates: the pair guards are <u_j(t), x_i> / (||u_j(t_a)|| ||x_i||) (the sampled cosine times
    ||u_j(t)|| / ||u_j(t_a)||, the same sign), and mu, 1 - mu and the stopping value, computed from the
    coefficients and the amplitude at each time, equal those of the sampled states."""
    rng = np.random.default_rng(3)
    m, n, d = 6, 8, 3
    X = rng.standard_normal((n, d))
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    coords = LogCoordinates(
        X, y, 1.3, np.where(np.arange(m) % 3 == 0, -1.0, 1.0), float_arithmetic("logistic")
    )
    C = rng.standard_normal((4, m * (d + 1))) * np.array([1.0, 0.3, 0.1, 0.05])[:, None]
    U0 = C[0, : m * d].reshape(m, d)
    guards, step, state_at = sliding_step(coords, C, U0 @ X.T)
    for t in np.linspace(step.t_a, step.t_a + step.h, 51):
        Y = state_at(t)
        expected = guards.evaluate(Y[None])[0]
        growth = np.linalg.norm(Y[: m * d].reshape(m, d), axis=1) / np.linalg.norm(U0, axis=1)
        expected[: guards.n_pairs] *= np.repeat(growth, n)
        expected[guards.sliding_columns] = 1.0
        _, _, got = step.event(t, 0, step.values(t))
        assert got == pytest.approx(expected[step.value_columns], rel=1e-12, abs=1e-14)
        # the outputs the event's handling reuses are the network's at the dense output's state
        assert step.outputs_at(t) == pytest.approx(coords.output(Y, guards.weights), rel=1e-12, abs=1e-14)
    assert step.outputs_at(step.t_a + 0.5 * step.h) is None  # not computed there
