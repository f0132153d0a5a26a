"""DOP853's error norm where its parts overflow (docs/flow.md, "Robustness", "Overflowing error norms";
:mod:`fls.simulate.flow.error_norm`).

``dop853_error_norm_overflow`` (tests/simulate/data/, stored as the slow tier drew it, seed 9306): DOP853 in
plain coordinates, exponential loss, n = 16, d = 22, m = 10, rtol 1e-11, atol 1e-14, a field of 3e140 at t = 0.
Its reference (rtol 1e-13, atol 1.35e-15, the weights' roundoff) took a step at t = 0 whose error norm was
|h| ||e5||^2 / sqrt(inf) = 0 in scipy's form where it is 7.4e9 (h = 6.2e-143): the conserved
v_j^2 - ||w_j||^2 moved by 3.9e-5 by t = 1e-140, and the reference ended 8.3e-6 from every other tight run at
t = 10, 135 times the check's bound from the run.
"""

from dataclasses import replace

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import DOP853, solve_ivp

from fls.simulate.flow.error_norm import FiniteNormDOP853, dop853_error_norm
from fls.theory import vector_field
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

#: The stored problem's transient: the field falls from 3e140 to 1e137 by this time, before its first event
#: (t = 1.7e-10).
TRANSIENT = 1e-139


def scaled_estimates(solver, K: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DOP853's scaled error estimates (e5, e3) of stages K as the solver forms them."""
    return np.dot(K.T, solver.E5) / scale, np.dot(K.T, solver.E3) / scale


def exact_norm(err5: np.ndarray, err3: np.ndarray, h: float) -> mpmath.mpf:
    """|h| ||e5||^2 / sqrt((||e5||^2 + 0.01 ||e3||^2) N) in 30-digit arithmetic, from the float estimates."""
    with mpmath.workdps(30):
        five = mpmath.fsum(mpmath.mpf(float(e)) ** 2 for e in err5)
        three = mpmath.fsum(mpmath.mpf(float(e)) ** 2 for e in err3)
        return abs(mpmath.mpf(h)) * five / mpmath.sqrt((five + mpmath.mpf("0.01") * three) * len(err5))


def solvers(size: int) -> tuple[DOP853, FiniteNormDOP853]:
    """scipy's DOP853 and the engine's, on a field of the given size (only their error norms are used)."""
    start = np.ones(size)
    return tuple(kind(lambda t, y: -y, 0.0, start, 1.0) for kind in (DOP853, FiniteNormDOP853))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    size=st.integers(1, 40),
    magnitude=st.integers(-20, 300),
    seed=st.integers(0, 2**16),
    h=st.floats(1e-200, 1.0),
)
def test_the_error_norm_is_exact_where_scipys_form_overflows_and_scipys_elsewhere(size, magnitude, seed, h):
    """Stages of size 10^magnitude over a unit scale: the norm is the 30-digit value to 1e-13 relative (a sum of
    N <= 40 squares, each a few roundoffs), and bitwise scipy's wherever scipy's form stays finite."""
    scipy_solver, solver = solvers(size)
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((solver.n_stages + 1, size)) * 10.0**magnitude
    scale = np.ones(size)
    err5, err3 = scaled_estimates(solver, K, scale)
    value = solver._estimate_error_norm(K, h, scale)
    exact = exact_norm(err5, err3, h)
    assert abs(value - exact) <= 1e-13 * exact
    with np.errstate(over="ignore", invalid="ignore"):
        scipys = scipy_solver._estimate_error_norm(K, h, scale)
    if magnitude <= 140:  # every square and sum finite: scipy's form holds
        assert value == scipys


def test_scipys_form_overflows_to_zero_where_the_norm_is_large():
    """The failure itself: finite squared norms whose weighted sum times N overflows (N = 230 components, as the
    stored problem's, stages of 1e152). scipy's DOP853 calls the step exact; the norm is 2e9 here."""
    scipy_solver, solver = solvers(230)
    K = np.random.default_rng(0).standard_normal((solver.n_stages + 1, 230)) * 1e152
    scale = np.ones(230)
    with np.errstate(over="ignore"):
        assert scipy_solver._estimate_error_norm(K, 1e-143, scale) == 0.0
    err5, err3 = scaled_estimates(solver, K, scale)
    value = solver._estimate_error_norm(K, 1e-143, scale)
    assert value > 1 and abs(value - exact_norm(err5, err3, 1e-143)) <= 1e-13 * value


def test_dop853_error_norm_is_nan_for_a_stage_that_overflowed():
    """A non-finite estimate stays non-finite: the step is rejected, as scipy's form rejects it."""
    assert np.isnan(dop853_error_norm(np.array([np.inf, 1.0]), np.array([1.0, 1.0]), 1e-3))


def smooth_transient(problem, t_end: float) -> np.ndarray:
    """(W, v) at t_end by scipy's RK45 at rtol 1e-13, atol 1e-16 on the field of fls.theory, an independent
    integration of the stored problem's first piece (no pair crosses its surface before t = 1.7e-10).
    RK45's error norm multiplies by h before it squares, so it does not overflow here; its own starting step
    would (a field of 3e140 over the scale), so the first step is given."""
    m, d = problem.W.shape

    def field(_t: float, state: np.ndarray) -> np.ndarray:
        dW, dv = vector_field(
            state[: m * d].reshape(m, d), state[m * d :], problem.X, problem.y, loss=problem.loss
        )
        return np.concatenate([dW.ravel(), dv])

    start = np.concatenate([problem.W.ravel(), problem.v])
    solution = solve_ivp(field, (0.0, t_end), start, method="RK45", rtol=1e-13, atol=1e-16, first_step=1e-146)
    assert solution.status == 0
    return solution.y[:, -1]


def test_the_reference_through_an_overflowing_error_norm_agrees_with_an_independent_integration():
    """The stored problem's reference (DOP853 at rtol 1e-13, atol 1.35e-15) to the end of the transient: within
    1000 times its tolerance of RK45 on the field of fls.theory and with v_j^2 - ||w_j||^2 kept (before: 1.1e-5
    from RK45, and 3.9e-5 off the invariant)."""
    problem = replace(stored_problem("dop853_error_norm_overflow"), t_max=TRANSIENT)
    reference = run(problem, reference=True)
    assert reference.status == "not_reached" and reference.t_stop == TRANSIENT
    state = np.concatenate([reference.W.ravel(), reference.v])
    expected = smooth_transient(problem, TRANSIENT)
    bound = 1e3 * (1e-13 * np.abs(expected).max() + 1.35e-15)
    assert np.abs(state - expected).max() <= bound
    assert reference.invariant_drift <= bound


@pytest.mark.slow
def test_stored_problem_agrees_with_the_tight_run():
    """The slow tier's check of the stored problem (about 12 s): 135 times the bound before."""
    check(stored_problem("dop853_error_norm_overflow"))
