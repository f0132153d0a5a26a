"""The compiled kernels of the flow engine against the numpy code they mirror (simulate/flow/jit.py).

Each kernel on random inputs against its numpy version, to the precision its docstring states; whole runs with
the kernels on against off (``FLS_NUMBA=0``); the numpy path where the switch is off; and no numba import by
``import fls.simulate.flow``.
"""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import events, integrate_flow, jit, pair_test
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.output_screen import EINSUM_MIN_ROW, KERNEL_MIN_ROWS, bound_norms
from fls.simulate.flow.spancoords import SpanCoordinates
from fls.theory.compiled import compile_field
from fls.theory.losses import LOSSES
from tests.simulate.test_flow_grazing import DATA, stored_problem
from tests.simulate.test_flow_stress import agreement, run, state_of

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="numba is not installed or FLS_NUMBA=0")
EPS = float(np.finfo(np.float64).eps)


@given(st.sampled_from(LOSSES), st.floats(-700.0, 700.0), st.sampled_from([-1.0, 1.0, 0.3, -2.5]))
def test_sample_factor_is_the_derived_kernel(loss, f, y):
    """-l'(y f) y written out in the kernel against the sympy-derived numpy kernel: 4 ulps of the value
    (exp and the quotient of expit, each rounded once more or less by another library)."""
    kernels = jit.kernels("field_kernel")
    derived = compile_field(loss).numpy_sample_factor()(np.array([f]), np.array([y]))[0]
    compiled = kernels.sample_factor(kernels.LOSS_CODES[loss], f, y)
    assert abs(compiled - derived) <= 4 * EPS * abs(derived) + 1e-300


def random_mode(rng, m: int, n: int) -> Mode:
    """Active pairs at random and a few sliding pairs (a sliding pair is not active)."""
    sliding = rng.random((m, n)) < 0.15
    return Mode((rng.random((m, n)) < 0.5) & ~sliding, sliding)


def field_sizes(coords, Y, weights, s):
    """The size of each component's terms, by the field's formula on absolute values, with each sample factor
    widened by its sensitivity to the outputs' rounding (|ds/df| times the outputs' terms)."""
    D, amp, _ = coords.parts(Y)
    AD = np.abs(weights.active * D)
    outputs = coords.c * (np.abs(amp) @ AD)
    slope = np.abs(coords.arith.sample_slope(coords.output(Y, weights), coords.y))
    s_size = np.abs(s) + slope * outputs
    gates = weights.active * s_size
    if len(weights.pair_rows):
        gates[weights.pair_rows, weights.pair_cols] = np.abs(weights.map) @ s_size
    rows = coords.rate * np.abs(amp)[:, None] * gates
    if not coords.gates_are_rows:
        rows = rows @ np.abs(coords.X)
    return np.concatenate([rows.ravel(), coords.rate * (AD @ s_size)]), s_size


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(LOSSES),
    st.sampled_from(["plain", "span"]),
    st.booleans(),
    st.floats(0.1, 10.0),
)
def test_mode_field_is_the_numpy_field(seed, loss, coordinates, weighted, c):
    """The compiled field and sample factors against the numpy path, to (m + n) eps of the terms' sizes."""
    rng = np.random.default_rng(seed)
    m, n, d = rng.integers(1, 30), rng.integers(1, 20), rng.integers(1, 30)
    if coordinates == "span":
        d = n + rng.integers(1, 10)
    X, y = rng.standard_normal((n, d)) / np.sqrt(d), rng.choice([-1.0, 1.0], n)
    W, v = rng.standard_normal((m, d)) * rng.uniform(0.1, 3), rng.standard_normal(m)  # outputs up to ~100
    arith = float_arithmetic(loss, rng.uniform(0.2, 2.0, n) if weighted else None)
    if coordinates == "span":
        compiled = SpanCoordinates(X, y, c, W, arith)
        numpy_path = SpanCoordinates(X, y, c, W, arith)
    else:
        compiled, numpy_path = PlainCoordinates(X, y, c, m, arith), PlainCoordinates(X, y, c, m, arith)
    if compiled.samples.merged:
        return  # random normal samples are distinct; merged ones run the numpy path
    numpy_path._kernel = None
    Y = compiled.pack(W, v)
    Y[-m:] = v  # moved off the start in span coordinates too
    if coordinates == "span":
        Y[: m * n] = rng.standard_normal(m * n) * 0.3
    weights = SlidingWeights(random_mode(rng, m, n), X @ X.T, arith)
    got, s_got, _ = compiled.rhs_and_factors(Y, weights)
    expected, s_expected, _ = numpy_path.rhs_and_factors(Y, weights)
    sizes, s_sizes = field_sizes(numpy_path, Y, weights, s_expected)
    assert np.all(np.abs(s_got - s_expected) <= (m + 4) * EPS * s_sizes)
    assert np.all(np.abs(got - expected) <= (m + n + 4) * EPS * sizes + 1e-300)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-10.0, -3.0), st.floats(-4.0, 0.0))
def test_span_tolerance_is_the_numpy_tolerance(seed, log_rtol, log_ratio):
    """The compiled span tolerance along a sequence of states (rows kept, scaled and converted afresh)
    against the numpy path: within 1e-12 relative (the inputs keep atol at least 1e-4 of rtol |w|, so a
    few ulps of the terms of w_j are within that of T)."""
    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 30), rng.integers(1, 20)
    d = n + rng.integers(1, 30)
    X, y = rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], n)
    W0 = rng.standard_normal((m, d))
    rtol = 10.0**log_rtol
    atol = rtol * 10.0**log_ratio
    arith = float_arithmetic("logistic")
    compiled, numpy_path = SpanCoordinates(X, y, 1.0, W0, arith), SpanCoordinates(X, y, 1.0, W0, arith)
    numpy_path._tolerance_kernel = None
    Y = compiled.pack(W0, rng.standard_normal(m))
    for step in range(6):
        got = compiled.state_tolerance(Y, rtol, atol)
        expected = numpy_path.state_tolerance(Y, rtol, atol)
        assert np.allclose(got, expected, rtol=1e-12, atol=0), step
        moved = rng.random(m) < 0.5  # some rows move far (converted afresh), the others a little (kept)
        Y[: m * n] += (rng.standard_normal((m, n)) * np.where(moved, 1.0, 1e-9)[:, None]).ravel()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["plain", "span"]), st.integers(3, 5))
def test_pair_test_is_the_numpy_pair_test_bit_for_bit(seed, coordinates, powers):
    """The compiled full pair test against the numpy one: the same columns and coefficients, exactly; pairs
    at 0, past their surface by less or more than their threshold and sliding ones drawn."""
    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 25), rng.integers(1, 15)
    d = n + rng.integers(1, 10) if coordinates == "span" else rng.integers(1, 20)
    X, y = rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], n)
    W = rng.standard_normal((m, d))
    arith = float_arithmetic("logistic")
    with np.errstate(divide="ignore", invalid="ignore"):
        span = coordinates == "span"
        coords = SpanCoordinates(X, y, 1.0, W, arith) if span else PlainCoordinates(X, y, 1.0, m, arith)
    n = coords.n  # merged samples (d = 1) leave fewer surfaces
    every_pair = rng.standard_normal((powers, m, n)) * 10.0 ** rng.uniform(-3, 1, (powers, m, n))
    every_pair[0][rng.random((m, n)) < 0.1] = 0.0
    every_pair[0][rng.random((m, n)) < 0.1] *= 1e-16  # near the surface: past it by about the threshold
    sliding = rng.random((m, n)) < 0.1
    side = np.where(sliding, 0.0, rng.choice([-1.0, 1.0], (m, n)))
    with np.errstate(divide="ignore", invalid="ignore"):
        guards = SimpleNamespace(
            row_map_norms=None,
            sliding_columns=sliding.ravel().nonzero()[0],
            side_over_x=side / coords.x_norms,
            thresholds=np.full(m * n + 3, 1e-15) * rng.uniform(0.5, 2.0, m * n + 3),
        )
    rows = rng.standard_normal((powers, m, coords.row))
    amp0 = rng.standard_normal(m)
    compiled = pair_test.every_pair_test(coords, guards, rows, amp0, every_pair)
    with pytest.MonkeyPatch.context() as switch:
        switch.setenv(jit.SWITCH, "0")
        expected = pair_test.every_pair_test(coords, guards, rows, amp0, every_pair)
    assert np.array_equal(compiled[0], expected[0])
    assert np.array_equal(compiled[1], expected[1], equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 9), st.integers(0, 40))
def test_crossings_are_the_numpy_crossings_bit_for_bit(seed, samples, guards):
    """The compiled crossed intervals against numpy's: exactly, guards at 0, at their threshold and NaN."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((samples, guards))
    G[rng.random(G.shape) < 0.1] = 0.0
    thresholds = rng.choice([0.0, 1e-3, 0.5], guards)
    G[rng.random(G.shape) < 0.05] = -0.5
    G[rng.random(G.shape) < 0.02] = np.nan
    compiled = events.crossings(G, thresholds)
    with pytest.MonkeyPatch.context() as switch:
        switch.setenv(jit.SWITCH, "0")
        expected = events.crossings(G, thresholds)
    for got, want in zip(compiled, expected, strict=True):
        assert got.shape == want.shape and np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(0, 300), st.integers(1, EINSUM_MIN_ROW - 1))
def test_screen_norms_are_the_numpy_norms(seed, blocks, extra_rows, k):
    """The screens' norms of short rows (a step's coefficient blocks, as strided views of its coefficients, and
    one block) against numpy's sqrt((A . A) @ 1): within 4 ulps (the same squares, summed in order)."""
    rng = np.random.default_rng(seed)
    rows = KERNEL_MIN_ROWS + extra_rows  # blocks that take the compiled loop
    coefficients = rng.standard_normal((blocks, rows * k + 7)) * 10.0 ** rng.uniform(-100, 100, (blocks, 1))
    A = coefficients[:, : rows * k].reshape(blocks, rows, k)
    got = bound_norms(A)
    with pytest.MonkeyPatch.context() as switch:
        switch.setenv(jit.SWITCH, "0")
        expected = bound_norms(A)
    np.testing.assert_allclose(got, expected, rtol=4 * EPS, atol=0)
    np.testing.assert_array_equal(bound_norms(A[0]), got[0])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 5), st.integers(1, 5))
def test_contribution_excursion_is_the_numpy_bound_bit_for_bit(seed, m, d, powers):
    """The log coordinates' excursion bounds (``excursion_kernel``) against numpy's, exactly: coefficients of
    every scale, movements past the directions' norms (an infinite bound), overflowing exp, zeros and NaN."""
    rng = np.random.default_rng(seed)
    coords = LogCoordinates(rng.standard_normal((3, d)), np.array([1.0, -1.0, 1.0]), 1.0, np.ones(m),
                            float_arithmetic("logistic", None))  # fmt: skip
    C = rng.standard_normal((powers, m * (d + 1))) * 10.0 ** rng.uniform(-8, 1, (powers, 1))
    C[0, m * d :] = rng.choice([-30.0, -5.0, 0.0, 2.0, 400.0], m) * rng.uniform(0.5, 1.5, m)
    C[rng.random(C.shape) < 0.05] = 0.0
    C[rng.random(C.shape) < 0.01] = rng.choice([np.nan, np.inf, -0.0])
    row_sizes = bound_norms(C[:, : m * d].reshape(powers, m, d))
    got = coords.contribution_excursion(C, row_sizes)
    with pytest.MonkeyPatch.context() as switch:
        switch.setenv(jit.SWITCH, "0")
        expected = coords.contribution_excursion(C, row_sizes)
    np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


def run_pair(problem, monkeypatch):
    """The problem's run with the compiled kernels and with FLS_NUMBA=0."""
    compiled = run(problem)
    monkeypatch.setenv(jit.SWITCH, "0")
    numpy_path = run(problem)
    monkeypatch.delenv(jit.SWITCH)
    return compiled, numpy_path


def assert_same_run(problem, compiled, numpy_path):
    """Same status; state and stop time as the stress suite's agreement with a reference run asks
    (:func:`~tests.simulate.test_flow_stress.agreement`: ``AGREEMENT`` times the run's tolerance, or the
    problem's amplification of it, a stop time also as a root of R(t) = target where the risk is flat there,
    as in stop_at_a_risk_floor_b: 0.011489 and 0.011633). Roundoff moves a step's accept or reject decision now and then, and two runs whose steps differ
    differ by their global errors, several times their per-step tolerance (alternating_kept_pairs, rtol 1e-11:
    4.1 times). The stored problems sit on roundoff's edge by their making (a tangency repeated at one
    instant, a pair past its surface by 3e-16), so how many events an instant takes may differ too
    (tangency_at_one_instant: 52 and 50, the states within 4e-9 of the tolerance)."""
    assert compiled.status == numpy_path.status
    agreement(problem, compiled, numpy_path)


@pytest.mark.parametrize("name", ["tangency_at_one_instant", "wrong_side_drift", "factors_at_roundoff"])
def test_stored_problems_run_alike_with_the_kernels_on_and_off(name, monkeypatch):
    """A few stored problems (span and plain coordinates, three losses): the run with FLS_NUMBA=0 takes the
    numpy path and agrees with the compiled one."""
    problem = stored_problem(name)
    compiled, numpy_path = run_pair(problem, monkeypatch)
    assert_same_run(problem, compiled, numpy_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", sorted(path.stem for path in DATA.glob("*.npz") if "coords" in np.load(path).files)
)
def test_every_stored_problem_runs_alike_with_the_kernels_on_and_off(name, monkeypatch):
    problem = stored_problem(name)
    compiled, numpy_path = run_pair(problem, monkeypatch)
    assert_same_run(problem, compiled, numpy_path)


def test_the_switch_turns_the_kernels_off(monkeypatch):
    arith = float_arithmetic("logistic")
    X = np.random.default_rng(0).standard_normal((3, 5))
    assert SpanCoordinates(X, np.ones(3), 1.0, np.ones((2, 5)), arith)._kernel is not None
    monkeypatch.setenv(jit.SWITCH, "0")
    coords = SpanCoordinates(X, np.ones(3), 1.0, np.ones((2, 5)), arith)
    assert coords._kernel is None and coords._tolerance_kernel is None


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [1e-4, 0.3, 3.0])
@pytest.mark.parametrize(("method", "rtol"), [("DOP853", 1e-8), ("RK45", 1e-7), ("RK23", 1e-6)])
def test_flow_benchmark_runs_alike_with_the_kernels_on_and_off(alpha, method, rtol, monkeypatch):
    """benchmarks/flow.py's runs (low_signal, m = 100, to the target) with the kernels on and off."""
    from fls.simulate.data import make_data
    from fls.simulate.initialization import init_params

    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    W, v = init_params(100, 100, alpha=alpha, scheme="random_sign", seed=0)
    options = {"target_risk": 0.05, "t_max": 1e5, "rtol": rtol, "atol": rtol * 1e-2, "method": method}
    compiled = integrate_flow(W, v, data.X, data.y, **options)
    monkeypatch.setenv(jit.SWITCH, "0")
    numpy_path = integrate_flow(W, v, data.X, data.y, **options)
    assert (compiled.status, compiled.info["events"]) == (numpy_path.status, numpy_path.info["events"])
    assert abs(compiled.t_stop - numpy_path.t_stop) <= rtol * numpy_path.t_stop
    a, b = state_of(compiled), state_of(numpy_path)
    assert np.all(np.abs(a - b) <= rtol * np.abs(b) + rtol * 1e-2)


def test_importing_the_engine_does_not_import_numba():
    code = "import sys\nimport fls.simulate.flow\nprint('numba' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
