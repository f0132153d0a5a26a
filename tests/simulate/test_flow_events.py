"""Event location: sampled guards, dips between samples, the polynomial pair guards, regula falsi in mpmath."""

from dataclasses import dataclass

import mpmath
import numpy as np
import pytest
from scipy.optimize import brentq

from simulate.flow.arithmetic import float_arithmetic
from simulate.flow.coords import PlainCoordinates
from simulate.flow.events import PAIR, PieceGuards, StepGuards, first_event, illinois
from simulate.flow.modes import Mode, SlidingWeights


@dataclass
class ScalarGuards:
    """A stand-in for PieceGuards with scalar guard functions of the 'state' Y = [t]."""

    functions: list

    def __post_init__(self):
        self.kinds = np.full(len(self.functions), PAIR)
        self.thresholds = np.full(len(self.functions), 1e-14)
        self.seen_positive = np.ones(len(self.functions), dtype=bool)

    def evaluate(self, Ys):
        return np.array([[g(Y[0]) for g in self.functions] for Y in Ys])

    def column(self, Y, col):
        return self.functions[col](Y[0])


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


def test_the_earliest_of_several_crossings_in_one_interval_wins():
    guards = ScalarGuards([lambda t: 0.57 - t, lambda t: 0.53 - t, lambda t: np.cos(8 * t)])
    t, column, values = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert column == 2 and t == pytest.approx(np.pi / 16, abs=1e-13)
    assert values[0] > 0 and values[1] > 0


def test_a_guard_leaving_its_surface_the_wrong_way_is_an_event_at_once():
    guards = ScalarGuards([lambda t: -t])
    guards.seen_positive[:] = False
    t, column, _ = first_event(step_over(guards, np.linspace(0.0, 1.0, 11)), xtol=1e-15)
    assert (t, column) == (0.0, 0)


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
    for col in range(len(guards.kinds)):
        j, i = guards.pair_rows[col], guards.pair_cols[col]
        for t in (0.013, 0.2, 0.377):
            scale = np.linalg.norm(Ys[0, j * d : (j + 1) * d]) * np.linalg.norm(X[i])
            assert step.column(t, col) == pytest.approx(
                guards.pair_side[col] * preactivation(t, j, i) / scale, abs=1e-13
            )
    event = first_event(step, xtol=1e-15)
    assert event is not None
    j, i = guards.pair_rows[event[1]], guards.pair_cols[event[1]]
    root = brentq(preactivation, 0.0, float(event[0]) + 1e-3, args=(j, i), xtol=1e-15)
    assert event[0] == pytest.approx(root, abs=1e-12)


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
