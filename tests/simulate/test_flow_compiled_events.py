"""The compiled kernels of an event's location and handling (the crossed guards' brackets, the dips between
samples, Newton on a pair's polynomial, the weights' guards, the guards on their bounds) against the code they
mirror, bit for bit, and the first event of a step located alike with them on and off (simulate/flow/jit.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import brackets, dips, events, jit, touching
from fls.simulate.flow.polynomial_guards import newton_root

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="numba is not installed or FLS_NUMBA=0")


def numpy_path(function, *args):
    """``function(*args)`` with the kernels off."""
    with pytest.MonkeyPatch.context() as switch:
        switch.setenv(jit.SWITCH, "0")
        return function(*args)


def random_step(rng, samples: int, guards: int) -> tuple[np.ndarray, np.ndarray]:
    """(ts, G): increasing sample times from 0, and guards that are smooth dips (parabolas whose vertex may lie
    between samples), straight lines (curvature 0), noise, exact zeros and NaN."""
    ts = np.concatenate([[0.0], np.sort(rng.uniform(0.0, 1.0, samples - 1))])
    if rng.random() < 0.3:
        ts = np.linspace(0.0, 1.0, samples)  # equal spacing: a straight line's curvature is exactly 0
    vertex, depth = rng.uniform(-0.2, 1.2, guards), rng.uniform(-0.05, 0.05, guards)
    G = rng.uniform(0.5, 20.0, guards) * (ts[:, None] - vertex) ** 2 + depth
    kinds = rng.integers(0, 4, guards)
    G[:, kinds == 1] = (rng.uniform(-1, 1, (kinds == 1).sum()) * ts[:, None] + rng.uniform(-0.5, 0.5))
    G[:, kinds == 2] = rng.standard_normal((samples, (kinds == 2).sum()))
    G[rng.random(G.shape) < 0.05] = 0.0
    G[rng.random(G.shape) < 0.02] = np.nan
    return ts, G


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 11), st.integers(0, 30))
def test_dips_are_the_numpy_dips_bit_for_bit(seed, samples, guards):
    """The compiled dip candidates against numpy's, exactly, for every ``crossed_by``."""
    rng = np.random.default_rng(seed)
    ts, G = random_step(rng, samples, guards)
    for crossed_by in range(samples):
        assert dips.dip_candidates(ts, G, crossed_by) == numpy_path(dips.dip_candidates, ts, G, crossed_by)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 11), st.integers(0, 30))
def test_brackets_are_the_numpy_brackets_bit_for_bit(seed, samples, guards):
    """The compiled crossed columns, intervals, last positive samples and estimates against numpy's, exactly."""
    rng = np.random.default_rng(seed)
    ts, G = random_step(rng, samples, guards)
    thresholds = rng.choice([0.0, 1e-3, 0.1], guards)
    columns, crossed, _ = events.crossings(G, thresholds)
    compiled = brackets.crossed_brackets(G, ts, columns, crossed)
    expected = numpy_path(brackets.crossed_brackets, G, ts, columns, crossed)
    for got, want in zip(compiled, expected, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)


class PolynomialStep(events.StepGuards):
    """A step whose guards are given polynomials in t (coefficients (C, degree + 1), highest power first),
    sampled at ``ts``: what :func:`~simulate.flow.events.first_event` reads of a step."""

    def __init__(self, ts: np.ndarray, coefficients: np.ndarray, thresholds: np.ndarray) -> None:
        self.ts, self.coefficients, self.thresholds = ts, coefficients, thresholds
        self.G = np.stack([self.values(t) for t in ts])
        self.guards = type("Guards", (), {"grazing": set()})()

    def has_polynomial(self, col: int) -> bool:
        return False

    def column(self, t, col: int) -> float:
        return float(np.polyval(self.coefficients[col], t))

    def values(self, t) -> np.ndarray:
        return np.array([np.polyval(c, t) for c in self.coefficients])


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 11), st.integers(1, 12))
def test_the_first_event_is_located_alike_with_the_kernels_on_and_off(seed, samples, guards):
    """On random cubic guards (several crossing, dipping or starting at 0 in one step) the first event's time,
    column and values are the same with the kernels on and off."""
    rng = np.random.default_rng(seed)
    ts = np.linspace(0.0, 1.0, samples)
    roots = rng.uniform(-0.5, 1.5, (guards, 3))
    coefficients = np.stack([np.poly(r) for r in roots]) * rng.choice([-1.0, 1.0], (guards, 1))
    coefficients[:, -1] += rng.choice([0.0, 1e-3, -1e-3], guards)
    thresholds = rng.choice([0.0, 1e-9], guards)
    step = PolynomialStep(ts, coefficients, thresholds)
    compiled = events.first_event(step, 1e-12)
    expected = numpy_path(events.first_event, PolynomialStep(ts, coefficients, thresholds), 1e-12)
    assert (compiled is None) == (expected is None)
    if compiled is not None:
        assert compiled[:2] == expected[:2] and np.array_equal(compiled[2], expected[2], equal_nan=True)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.sampled_from([1e-15, 1e-12, 1e-6]))
def test_newton_is_the_python_newton_bit_for_bit(seed, powers, tol):
    """The compiled safeguarded Newton against the Python one on random polynomials and brackets (a root in
    them, none, or crossed at the start already), exactly."""
    rng = np.random.default_rng(seed)
    coefficients = rng.standard_normal((powers, 3)) * rng.choice([1.0, 1e-8, 1e5], (powers, 1))
    col = int(rng.integers(0, 3))
    if rng.random() < 0.2:
        coefficients[0, col] = 0.0
    lo, hi = sorted(rng.uniform(0.0, 1.0, 2).tolist())
    compiled = jit.kernels("root_kernel").newton_root(coefficients, col, lo, hi, tol)
    assert compiled == newton_root(coefficients[::-1, col].tolist(), lo, hi, tol)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(1, 12))
def test_weight_guards_are_the_numpy_guards_bit_for_bit(seed, samples, pairs):
    """The compiled weights' guards against numpy's on random numerators, factors (some 0) and units."""
    rng = np.random.default_rng(seed)
    n = 20
    s = rng.standard_normal((samples, n)) * rng.choice([1.0, 1e-12], n)
    s[:, rng.random(n) < 0.1] = 0.0
    pair_cols = rng.integers(0, n, pairs)
    u, units = rng.standard_normal((samples, pairs)), rng.uniform(1e-3, 10.0, pairs)
    guards = type("Guards", (), {})()
    guards.weights = type("Weights", (), {"pair_cols": pair_cols, "mu_times_jump": lambda self, s, offset: u})()
    guards.weight_units = units
    compiled = events.PieceGuards.weight_guards(guards, s)
    expected = numpy_path(events.PieceGuards.weight_guards, guards, s)
    for got, want in zip(compiled, expected, strict=True):
        assert np.array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(0, 5))
def test_touched_columns_are_the_numpy_ones_bit_for_bit(seed, pairs, sliding):
    """The compiled pairs on their surfaces and weights at a bound against numpy's: values at, within and
    beyond the tolerance, and NaN."""
    rng = np.random.default_rng(seed)
    size, tol = pairs + 2 * sliding + 1, 1e-12
    columns = np.sort(rng.choice(size, rng.integers(0, size + 1), replace=False)).astype(np.int64)
    values = rng.choice([0.0, tol, -tol, 2 * tol, -2 * tol, 0.5, -0.5, np.nan], len(columns))
    compiled = touching.touched_columns(values, columns, pairs, sliding, tol)
    expected = numpy_path(touching.touched_columns, values, columns, pairs, sliding, tol)
    assert np.array_equal(compiled[0], expected[0]) and compiled[1] == expected[1]
