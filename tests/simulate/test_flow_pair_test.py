"""The full test over every pair (fls.simulate.flow.pair_test) keeps the columns the screens of
polynomial_guards._movable_pairs keep, with the same coefficients bit for bit: sliding pairs, pairs past their
surface within a (widened) threshold, pre-activations at exactly 0 and a sample at the origin included."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import polynomial_guards
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.events import PieceGuards
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import ACTIVE, INACTIVE, SLIDING, Mode, SlidingWeights
from fls.simulate.flow.pair_test import every_pair_test
from fls.simulate.flow.spancoords import SpanCoordinates

ARITH = float_arithmetic("logistic")


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["plain", "span", "log"]),
    m=st.integers(1, 30),
    n=st.integers(2, 8),
    d=st.integers(2, 6),
    size=st.sampled_from([1e-6, 1e-3, 1e-1, 1.0]),
    zero_sample=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_full_test_keeps_what_the_screens_keep(kind, m, n, d, size, zero_sample, seed):
    with np.errstate(divide="ignore", invalid="ignore"):  # a sample at the origin: its cosines are 0 / 0
        check_both_ways(kind, m, n, d, size, zero_sample, np.random.default_rng(seed))


def check_both_ways(kind, m, n, d, size, zero_sample, rng):
    X = rng.standard_normal((n, d))
    if zero_sample:
        X[-1] = 0.0
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    W = rng.standard_normal((m, d))
    if kind == "plain":
        coords = PlainCoordinates(X, y, 1.0, m, ARITH)
    elif kind == "span":
        coords = SpanCoordinates(X, y, 1.0, W, ARITH)
    else:
        coords = LogCoordinates(X, y, 1.0, rng.choice([-1.0, 1.0], m), ARITH)
    sliding = (rng.random((m, n)) < 0.2) & (np.arange(n) < d - 1)
    sides = np.where(sliding, SLIDING, np.where(rng.random((m, n)) < 0.5, ACTIVE, INACTIVE)).astype(np.int8)
    weights = SlidingWeights(Mode.of_sides(sides), coords.X @ coords.X.T, ARITH)
    guards = PieceGuards(coords, weights, None)
    guards.graze({int(col): 0.3 for col in rng.choice(m * n, size=m * n // 3, replace=False)})  # wide thresholds
    C = rng.standard_normal((4, coords.size)) * np.array([1.0, size, size / 3, size / 9])[:, None]
    rows, _, amp0 = coords.row_blocks(C)
    every_pair = coords.all_coefficients(rows, coords.start_preactivations(rows[0], slice(None)))
    every_pair[0].reshape(-1)[rng.choice(m * n, size=2)] = 0.0  # pre-activations at exactly 0

    columns, coefficients = every_pair_test(coords, guards, rows, amp0, every_pair)
    polynomial_guards.MARGIN_MIN_PAIRS, kept = 0, polynomial_guards.MARGIN_MIN_PAIRS  # the screens' path
    try:
        screened, screened_coefficients = polynomial_guards._movable_pairs(
            coords, guards, rows, None, amp0, 0.0, 1.0, every_pair
        )
    finally:
        polynomial_guards.MARGIN_MIN_PAIRS = kept
    np.testing.assert_array_equal(columns, screened)
    np.testing.assert_array_equal(coefficients, screened_coefficients)
