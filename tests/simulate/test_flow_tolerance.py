"""One meaning of rtol and atol in every coordinate system (docs/flow.md, "Options"; simulate/flow/tolerance.py).

The conversions of log and data-span coordinates are checked against the coordinates' own map from the state
to the network (``Coordinates.network``), an independent computation of the weights: an error of one state
component at its converted tolerance moves every weight within atol + rtol |w|. The stored problems were found
by the slow tier of the stress suite (tests/simulate/test_flow_stress.py), stored as drawn (tests/simulate/data/):

- ``log_loose_atol`` (RK45, logistic loss, m = 32, rtol 8.3e-9, atol 9.2e-5, log coordinates forced, norms up
  to 80): atol bounded the log-norms and the directions, so the weights' error was about 80 atol; the run's
  weights ended 14 times the suite's bound from the truth (50 times at atol 9.2e-7, where plain coordinates are
  within it) and its stop time was 0.876 where the truth is 3.6e-4. ``log_loose_atol_b`` is a variant.
- ``span_radau_tiny_atol_run`` and ``span_radau_tiny_atol`` (RK23 handed to Radau, data-span coordinates,
  weights of 60 to 210, atol 1e-14): lambda starts at 0, so atol alone bounded a step, about 1e8 times tighter
  than the plain rule and below the field's roundoff; Radau's Newton iteration failed to converge (280
  Jacobians and 53 s to t = 0.5 of 7.9), and the reference of the second did not reach t = 0.05 in 100 s.
"""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow.api import integrate_flow
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.spancoords import NORM_ORDER, REUSE_FRACTION, SpanCoordinates
from fls.simulate.flow.tolerance import StepTolerance, componentwise, implicit_floor
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

#: First-order slack of a single component's error (its second-order term, relative to the tolerance).
FIRST_ORDER = 1.02


def _weights(coords, Y):
    W, v = coords.network(Y)
    return np.concatenate([np.asarray(W, dtype=np.float64).reshape(-1), np.asarray(v, dtype=np.float64)])


def _log_state(seed, m, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((5, d))
    coords = LogCoordinates(X, np.sign(rng.standard_normal(5)) + 0.5, 1.0, np.sign(rng.standard_normal(m) + 0.1),
                            float_arithmetic("logistic", None))  # fmt: skip
    U = rng.standard_normal((m, d)) * rng.uniform(0.5, 2.0, (m, 1))  # directions of norm 0.5 to 2
    rho = rng.uniform(-25.0, 6.0, m)  # norms from 1e-11 to 400
    return coords, np.concatenate([U.reshape(-1), rho])


def _span_state(seed, m, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W0 = rng.standard_normal((m, d)) * rng.uniform(0.1, 100.0, (m, 1))
    coords = SpanCoordinates(
        X, np.sign(rng.standard_normal(n)) + 0.5, 1.0, W0, float_arithmetic("logistic", None)
    )
    Lambda = rng.standard_normal((m, coords.n)) * rng.uniform(0.0, 50.0)
    return coords, np.concatenate([Lambda.reshape(-1), rng.standard_normal(m) * 100])


def _assert_within(coords, Y, error, rtol, atol, factor):
    """The weights at Y + error are within factor (atol + rtol |w|) of those at Y, plus their roundoff."""
    w = _weights(coords, Y)
    moved = np.abs(_weights(coords, Y + error) - w)
    allowed = factor * componentwise(w, rtol, atol) + 64 * np.finfo(np.float64).eps * (1 + np.abs(w))
    assert np.all(moved <= allowed), np.max(moved / allowed)


tolerances = st.tuples(st.floats(1e-10, 1e-5), st.floats(1e-13, 1e-4))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 5), tolerances, st.data())
def test_one_log_coordinate_at_its_tolerance_moves_every_weight_within_atol_plus_rtol_w(
    seed, m, d, tols, data
):
    rtol, atol = tols
    coords, Y = _log_state(seed, m, d)
    tau = coords.state_tolerance(Y, rtol, atol)
    assert np.all(tau <= componentwise(Y, rtol, atol))  # never looser than the state's own rule
    s = data.draw(st.integers(0, Y.size - 1))
    error = np.zeros_like(Y)
    error[s] = tau[s] * data.draw(st.sampled_from([-1.0, 1.0]))
    _assert_within(coords, Y, error, rtol, atol, FIRST_ORDER)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 5), tolerances)
def test_a_log_state_error_at_its_tolerance_moves_the_weights_by_at_most_one_share_per_component(
    seed, m, d, tols
):
    """Every component at its tolerance (the worst an RMS error norm of 1 allows per component): a weight of
    neuron j moves by at most d + 1 times its tolerance (its direction's d numbers and its log-norm)."""
    rtol, atol = tols
    coords, Y = _log_state(seed, m, d)
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], Y.size)
    _assert_within(
        coords, Y, coords.state_tolerance(Y, rtol, atol) * signs, rtol, atol, FIRST_ORDER * (d + 1)
    )


def test_log_coordinates_keep_their_relative_precision_at_small_norms():
    """Below norm 1 the state's own rule (atol + rtol |y|) is the stricter and is what a step is held to."""
    coords, Y = _log_state(3, 3, 4)
    Y[-3:] = np.log([1e-12, 1e-6, 0.5])
    np.testing.assert_array_equal(coords.state_tolerance(Y, 1e-9, 1e-6), componentwise(Y, 1e-9, 1e-6))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 6), st.integers(1, 8), tolerances, st.data())
def test_one_span_coordinate_at_its_tolerance_moves_every_weight_within_atol_plus_rtol_w(
    seed, m, n, d, tols, data
):
    """Within the bound, and at most d^(1/8) below the largest error that stays within it (the p-norm that
    stands for the maximum over the d components)."""
    rtol, atol = tols
    coords, Y = _span_state(seed, m, n, d)
    tau = coords.state_tolerance(Y, rtol, atol)
    s = data.draw(st.integers(0, Y.size - 1))
    error = np.zeros_like(Y)
    error[s] = tau[s] * data.draw(st.sampled_from([-1.0, 1.0]))
    _assert_within(coords, Y, error, rtol, atol, 1.0 + 1e-9)
    w = _weights(coords, Y)
    reached = np.max(np.abs(_weights(coords, Y + error) - w) / componentwise(w, rtol, atol))
    assert reached >= d ** (-1 / NORM_ORDER) * (1 - 1e-6) or tau[s] * np.abs(coords.X).max() < 1e-12


def test_span_coordinates_at_the_start_allow_the_weights_own_error():
    """lambda = 0 at the start: the state's own rule allowed atol alone, 1e8 times below rtol |w| at |w| ~ 100
    and atol 1e-14; the converted tolerance is min_k (atol + rtol |w_jk|) / |x_ik| within d^(1/8)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 5))
    W0 = 100 * np.ones((2, 5))
    coords = SpanCoordinates(X, np.array([1.0, -1.0, 1.0]), 1.0, W0, float_arithmetic("logistic", None))
    Y = coords.pack(W0, np.ones(2))
    tau = coords.state_tolerance(Y, 1e-8, 1e-14)[: 2 * 3].reshape(2, 3)
    exact = np.broadcast_to(np.min((1e-14 + 1e-8 * 100) / np.abs(X), axis=1), (2, 3))
    assert np.all(tau <= exact * (1 + 1e-12)) and np.all(tau >= exact * 5 ** (-1 / NORM_ORDER))


def test_plain_tolerance_is_the_solvers_own_rule():
    y, y_new = np.array([-3.0, 0.0, 2e-9]), np.array([1.0, -5.0, 0.0])
    tolerance = StepTolerance(1e-6, 1e-9)
    np.testing.assert_array_equal(tolerance.of(y), 1e-9 + 1e-6 * np.abs(y))
    scale = tolerance.step_scale(y, y_new, np.empty(3), np.empty(3))
    np.testing.assert_array_equal(scale, 1e-9 + np.maximum(np.abs(y), np.abs(y_new)) * 1e-6)


@pytest.mark.parametrize(
    "name", ["log_loose_atol", "log_loose_atol_b", "span_radau_tiny_atol_run", "span_radau_tiny_atol"]
)
def test_stored_problem_agrees_with_the_tight_run(name):
    check(stored_problem(name))


def test_plain_log_and_span_runs_agree_with_the_truth_to_a_comparable_error():
    """``log_loose_atol`` at atol 9.2e-7, weights up to 100: each coordinate system's run at t = 0.3 and 0.9
    against one tight plain run is within 10 times the step tolerance of the largest weight (all three switch to
    Radau: 4.7e-7, 6.8e-7 and 2.6e-6 for plain, log and span, where the bound is 1.8e-5). The log run was 8.2e-2,
    50 times the suite's bound, where the plain one was within it."""
    p = replace(stored_problem("log_loose_atol"), atol=9.2e-7)
    times = np.array([0.3, 0.9])

    def states(coords, rtol, atol, method):
        r = integrate_flow(p.W, p.v, p.X, p.y, loss=p.loss, t_max=0.9, rtol=rtol, atol=atol, method=method,
                           coords=coords, save_at=times)  # fmt: skip
        assert r.status == "t_max", r.message
        return np.concatenate([np.asarray(r.W).reshape(2, -1), np.asarray(r.v).reshape(2, -1)], axis=1)

    truth = states("plain", 1e-12, 1e-14, "DOP853")
    errors = {
        coords: np.abs(states(coords, p.rtol, p.atol, p.method) - truth).max()
        for coords in ("plain", "log", "span")
    }
    assert max(errors.values()) <= 10 * (p.atol + p.rtol * np.abs(truth).max()), errors


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 6), st.integers(1, 8), tolerances, st.data())
def test_a_reused_span_tolerance_stays_within_a_fresh_conversion_and_at_most_reuse_fraction_below(
    seed, m, n, d, tols, data
):
    """Along a walk of states (small moves, whose rows are reused, and large ones, converted afresh) the span
    tolerance of one coordinates object is never looser than a fresh object's conversion at the same state, so
    within equation (2), and at most a factor (1 - REUSE_FRACTION) / (1 + REUSE_FRACTION) tighter."""
    rtol, atol = tols
    coords, Y = _span_state(seed, m, n, d)
    rng = np.random.default_rng(seed + 2)
    rows = m * coords.n
    for _ in range(6):
        tau = coords.state_tolerance(Y, rtol, atol)
        fresh = SpanCoordinates(coords.X_all, coords.y, 1.0, coords.W0, float_arithmetic("logistic", None))
        expected = fresh.state_tolerance(Y, rtol, atol)
        assert np.all(tau <= expected * (1 + 1e-12))
        assert np.all(tau >= expected * (1 - REUSE_FRACTION) / (1 + REUSE_FRACTION) * (1 - 1e-12))
        size = data.draw(st.sampled_from([1e-6, 1e-3, 1.0, 30.0]))  # in units of the weights' own tolerance
        Y[:rows] += size * rng.standard_normal(rows) * expected[:rows]


def test_a_zero_sample_gets_the_plain_rule_in_span_coordinates_silently():
    """A sample x_i = 0 moves no weight: its lambda column's equation-(2) tolerance is infinite, and the rows
    fall back to atol + rtol |lambda| there, at the first conversion and at a reconversion of moved rows; the
    divisions by zero on the way are expected and raise nothing even where numpy is set to raise."""
    coords, Y = _span_state(3, 3, 4, 5)
    X = coords.X_all.copy()
    X[2] = 0.0
    with np.errstate(invalid="ignore"):  # the sample groups' unit vector of x_i = 0 is nan: a group of its own
        coords = SpanCoordinates(X, coords.y, 1.0, coords.W0, float_arithmetic("logistic", None))
    for moved in (0.0, 1e4):  # the first conversion, then every row converted again
        Y[: 3 * 4] += moved
        with np.errstate(all="raise"):
            tau = coords.state_tolerance(Y, 1e-6, 1e-9)
        Lambda = Y[: 3 * 4].reshape(3, 4)
        np.testing.assert_array_equal(tau[: 3 * 4].reshape(3, 4)[:, 2], componentwise(Lambda[:, 2], 1e-6, 1e-9))
        assert np.all(np.isfinite(tau)) and np.all(tau > 0)


def test_span_tolerance_is_converted_again_only_for_the_rows_that_moved():
    """A state whose rows moved far less than their weights' tolerance reuses every row; moving one neuron's
    row by more than its share converts that row alone, to the fresh value."""
    coords, Y = _span_state(5, 4, 3, 6)
    first = coords.state_tolerance(Y, 1e-6, 1e-9)
    converted = coords._converted[(1e-6, 1e-9)]
    kept_rows = converted.Lambda.copy()
    Y[: coords.n] += 1e-3 * first[: coords.n]  # neuron 0, well within its share
    Y[coords.n : 2 * coords.n] += 1e4 * np.abs(converted.Lambda[1]) + 1.0  # neuron 1, far beyond it
    tau = coords.state_tolerance(Y, 1e-6, 1e-9)
    np.testing.assert_array_equal(converted.Lambda[[0, 2, 3]], kept_rows[[0, 2, 3]])
    np.testing.assert_array_equal(converted.Lambda[1], Y[coords.n : 2 * coords.n])
    fresh = SpanCoordinates(coords.X_all, coords.y, 1.0, coords.W0, float_arithmetic("logistic", None))
    row = slice(coords.n, 2 * coords.n)
    np.testing.assert_allclose(tau[row], fresh.state_tolerance(Y, 1e-6, 1e-9)[row], rtol=1e-14)
    assert np.all(tau[: coords.n] < first[: coords.n])  # scaled by 1 - e_0 < 1


def test_radau_holds_no_component_below_the_states_roundoff():
    """``radau_atol_below_roundoff`` (slow tier: DOP853 handed to Radau at t = 0.0031, squared loss, weights of
    290, atol 1e-14 against the state's roundoff of 6.4e-14): with the floor the run reaches t_max = 1 in a few
    thousand evaluations, and the check passes; with atol alone as the Newton iteration's scale its steps fell
    from 5e-4 to 2e-8 at t = 0.00375, a Jacobian at each, and it ended ``failed`` (step size below the spacing
    of the numbers) after 1.8e6 evaluations."""
    problem = stored_problem("radau_atol_below_roundoff")
    assert problem.atol < implicit_floor(np.concatenate([problem.W.ravel(), problem.v]))
    result = run(problem)
    assert result.status == "not_reached" and result.t_stop == problem.t_max
    assert [s["to"] for s in result.info["method_switches"]] == ["Radau"]
    assert result.rhs_evals < 50_000
    check(problem)
