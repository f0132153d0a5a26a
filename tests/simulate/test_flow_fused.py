"""The fused passes of the explicit step and the log coordinates' tolerance (compiled,
simulate/flow/rk_step_kernel.py and log_tolerance_kernel.py) against the numpy code they mirror, on random
inputs to the precision each docstring states; and the stall window with the kernels on and off
(``FLS_NUMBA=0``)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import integrate_flow, jit, logcoords, rk_step
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.rk_step import explicit_step
from fls.simulate.flow.smooth import ExplicitPieces
from fls.simulate.flow.stage_sums import stage_sum
from fls.simulate.flow.tolerance import StepTolerance
from fls.simulate.initialization import init_params
from tests.simulate.test_flow_stress import state_of

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="numba is not installed or FLS_NUMBA=0")
EPS = float(np.finfo(np.float64).eps)


def random_stages(rng, count: int, size: int) -> np.ndarray:
    """Stages of mixed signs and magnitudes (1e-8 to 1e8), some exact zeros."""
    stages = rng.standard_normal((count, size)) * 10.0 ** rng.uniform(-8, 8, (count, size))
    stages[rng.random((count, size)) < 0.05] = 0.0
    return stages


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 7), st.integers(1, 300))
def test_stage_combination_is_numpy_s_to_the_stated_precision(seed, count, size):
    """y + sum_k a_k K_k: bit for bit numpy's for one term, within (k + 1) eps (sum_k |a_k K_k| + |y|) for
    more (the sum's order)."""
    rng = np.random.default_rng(seed)
    stages, y = random_stages(rng, count + 1, size), random_stages(rng, 1, size)[0]
    weights = rng.standard_normal(count) * 10.0 ** rng.uniform(-6, 0, count)
    expected = np.empty(size)
    stage_sum(weights, stages[:count], expected)
    expected += y
    got = np.empty(size)
    jit.kernels("rk_step_kernel").combine(tuple(weights), stages, y, got)
    if count == 1:
        assert np.array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))
    sizes = np.abs(weights[:, None] * stages[:count]).sum(axis=0) + np.abs(y)
    assert np.all(np.abs(got - expected) <= (count + 1) * EPS * sizes)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 7), st.integers(1, 300), st.booleans())
def test_error_and_coefficients_are_numpy_s_to_the_stated_precision(seed, count, size, plain):
    """The squared error estimate sum_i ((sum_k e_k K_ki) / scale_i)^2 within the stated precision of numpy's
    (k eps sum_k |e_k K_ki| / scale_i per component, size eps of the sum); plain coordinates' scale atol +
    rtol max(|y|, |y_new|) bit for bit :meth:`StepTolerance.step_scale`'s, NaN included; the coefficients
    y and sum_k p_rk K_k within k eps sum_k |p_rk K_k| of numpy's matrix product."""
    rng = np.random.default_rng(seed)
    stages = random_stages(rng, count, size)
    weights, rows = rng.standard_normal(count), rng.standard_normal((3, count))
    y, y_new = random_stages(rng, 2, size)
    if plain:
        y[rng.random(size) < 0.02] = np.nan
    tolerance = StepTolerance(1e-7, 1e-10)
    scale, work = np.empty(size), np.empty(size)
    tolerance.step_scale(y, y_new, scale, work)
    got_scale = np.full(size, -1.0) if plain else scale.copy()
    coefficients = np.empty((4, size))
    squares = jit.kernels("rk_step_kernel").error_and_coefficients(
        tuple(weights),
        tuple(tuple(row) for row in rows),
        stages,
        y,
        y_new,
        plain,
        1e-7,
        1e-10,
        got_scale,
        coefficients,
    )
    assert np.array_equal(got_scale, scale, equal_nan=True)
    assert np.array_equal(coefficients[0], y, equal_nan=True)
    expected_rows = rows @ stages
    row_bound = count * EPS * np.abs(rows[:, :, None] * stages[None]).sum(axis=1)
    assert np.all(np.abs(coefficients[1:] - expected_rows) <= row_bound)
    if plain and np.isnan(y).any():
        assert np.isnan(squares)
        return
    ratio = (weights @ stages) / scale
    deviation = count * EPS * np.abs(weights[:, None] * stages).sum(axis=0) / scale
    bound = 2 * np.abs(ratio) @ deviation + deviation @ deviation + size * EPS * (ratio @ ratio)
    assert abs(squares - ratio @ ratio) <= bound * (1 + 1e-9)


class ConvertedRule:
    """A converted tolerance (coordinates other than plain): twice the plain one."""

    name = "converted"

    def state_tolerance(self, Y, rtol, atol, out=None):
        return np.add(atol, 2 * rtol * np.abs(Y), out=out)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["RK12", "RK23", "RK45"]), st.booleans())
def test_explicit_step_is_numpy_s_step(seed, method, converted):
    """A whole step of a linear field y' = J y, with plain coordinates' scale or a converted tolerance,
    compiled against numpy (the engine's tableau: RK12's without the f(y_new) it does not read): y_new, every
    stage and the dense output's coefficients within 1e-13; the error
    norm is numpy's form on the compiled stages within the estimate's precision (k eps sum_k |h e_k K_k| per
    component over the scale: the estimate cancels, so that is far above eps of the norm)."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 60))
    J = rng.standard_normal((size, size)) / np.sqrt(size)
    y = rng.standard_normal(size)
    pieces = ExplicitPieces(method, 1e-6, 1e-9)
    tableau, read = (pieces.A, pieces.B, pieces.E, pieces.P), len(pieces.E)
    tolerance = StepTolerance(1e-6, 1e-9, ConvertedRule() if converted else None)
    results = []
    for kernel in (None, jit.kernels("rk_step_kernel")):
        K, C = np.zeros((pieces.stages + 1, size)), np.empty((pieces.P.shape[1] + 1, size))
        with pytest.MonkeyPatch.context() as patch:  # compiled at this size too
            patch.setattr(rk_step, "FUSED_MIN_SIZE", 0)
            patch.setattr(rk_step, "FUSED_NORM_MIN_SIZE", 0)
            step = explicit_step(
                lambda x: J @ x, y, J @ y, 0.3, tableau, tolerance, (K, C, np.empty((2, size))), kernel
            )
        results.append((*step, C))
    (y_a, K_a, _, formed_a, _), (y_b, K_b, error_b, formed_b, C_b) = results
    assert not formed_a and formed_b
    assert np.allclose(y_b, y_a, rtol=1e-13, atol=1e-13) and np.allclose(K_b, K_a, rtol=1e-13, atol=1e-13)
    assert np.array_equal(C_b[0], y)
    assert np.allclose(C_b[1:], 0.3 * pieces.P.T @ K_a[:read], rtol=1e-13, atol=1e-13)
    # the error norm from the compiled stages: numpy's form within the estimate's stated precision
    scale = tolerance.of(y) if converted else 1e-9 + 1e-6 * np.maximum(np.abs(y), np.abs(y_b))
    terms = 0.3 * pieces.E[:, None] * K_b[:read]
    ratio = terms.sum(axis=0) / scale
    deviation = len(terms) * EPS * np.abs(terms).sum(axis=0) / scale
    assert (
        abs(error_b - np.sqrt(ratio @ ratio / size))
        <= np.sqrt(deviation @ deviation / size) + 1e-14 * error_b
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 40),
    st.integers(1, 6),
    st.floats(-30.0, 5.0),
    st.sampled_from([1e-7, 1e-10, 1e-320, 0.0]),
    st.booleans(),
)
def test_log_tolerance_is_numpy_s_bit_for_bit(seed, m, d, log_scale, atol, into):
    """The compiled log tolerance against the numpy path, bit for bit: radii from far below to far above the
    directions' norms (the directions' rule binding on some rows), NaN log-norms, atol down to 0, into a
    fresh array or a given one."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((m, d)) * 10.0 ** rng.uniform(-3, 3, (m, 1))
    rho = log_scale + rng.standard_normal(m)
    rho[rng.random(m) < 0.1] = np.nan
    arith = float_arithmetic("logistic")
    X = rng.standard_normal((3, d))
    compiled = LogCoordinates(X, np.ones(3), 1.0, np.ones(m), arith)
    numpy_path = LogCoordinates(X, np.ones(3), 1.0, np.ones(m), arith)
    numpy_path._tolerance_kernel = None
    Y = np.concatenate([U.ravel(), rho])
    with pytest.MonkeyPatch.context() as patch:  # compiled at this size too
        patch.setattr(logcoords, "FUSED_MIN_SIZE", 0)
        got = compiled.state_tolerance(Y, 1e-7, atol, out=np.full(Y.size, -1.0) if into else None)
    expected = numpy_path.state_tolerance(Y, 1e-7, atol)
    assert np.array_equal(got, expected, equal_nan=True)


def test_the_stall_window_runs_alike_with_the_kernels_on_and_off(monkeypatch):
    """flow_width.py's stall problem at m = 100 (log coordinates, RK23 at rtol 1e-7, to t = 5), its steps
    fused at this size too: the same status, events and evaluations, the state within the run's
    tolerance."""
    monkeypatch.setattr(rk_step, "FUSED_MIN_SIZE", 0)
    monkeypatch.setattr(rk_step, "FUSED_NORM_MIN_SIZE", 0)
    monkeypatch.setattr(logcoords, "FUSED_MIN_SIZE", 0)
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(100, 3, alpha=1e-4, scheme="random_sign", seed=0)
    options = {"target_risk": 0.05, "t_max": 5.0, "rtol": 1e-7, "atol": 1e-10, "method": "RK23"}
    compiled = integrate_flow(W, v, X, y, **options)
    monkeypatch.setenv(jit.SWITCH, "0")
    numpy_path = integrate_flow(W, v, X, y, **options)
    assert compiled.info["events"] > 100
    assert (compiled.status, compiled.info["events"]) == (numpy_path.status, numpy_path.info["events"])
    a, b = state_of(compiled), state_of(numpy_path)
    assert np.all(np.abs(a - b) <= 1e-7 * np.abs(b) + 1e-10)
