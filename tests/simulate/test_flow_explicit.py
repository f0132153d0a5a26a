"""ExplicitPieces: the RK23 / RK45 pairs stepped by the engine itself, against scipy and against exact solutions."""

from unittest import mock

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.problems import switching_problem
from fls.simulate.flow.retry_check import RetryCheck
from fls.simulate.flow.smooth import ExplicitPieces, ScipyPieces, piece_integrator


@pytest.mark.parametrize("method", ["RK23", "RK45"])
@pytest.mark.parametrize("rtol", [1e-6, 1e-9])
def test_smooth_piece_matches_scipy_and_the_exact_solution(method, rtol):
    """y' = A y to t = 3: the same steps as scipy's solver (same tableau and controller), the exact solution to
    the tolerance, and a dense output that interpolates every step's ends. The evaluations are scipy's plus one
    per step that the retry check compared with Simpson's rule (steps after a rejection; it rejects none
    of these smooth steps)."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 6)) / 2 - np.eye(6)
    y0 = rng.standard_normal(6)
    calls = []

    def fun(y):
        calls.append(1)
        return A @ y

    ends = []

    def observer(t_a, t_b, y_b, dense):  # dense is valid during the call (the steps reuse their buffers)
        ends.append((t_a, t_b, y_b, dense([t_a, t_b]), dense((t_a + t_b) / 2)[0]))

    compare = RetryCheck.comparison
    with mock.patch.object(RetryCheck, "comparison", autospec=True, side_effect=compare) as compared:
        end = ExplicitPieces(method, rtol, rtol * 1e-3).run(fun, None, 0.0, y0, 3.0, None, None, observer)
    reference = solve_ivp(lambda t, y: A @ y, (0.0, 3.0), y0, method=method, rtol=rtol, atol=rtol * 1e-3)
    assert end.kind == "t_bound" and end.t == 3.0
    assert len(calls) == reference.nfev + compared.call_count and len(ends) == len(reference.t) - 1
    np.testing.assert_allclose(end.y, reference.y[:, -1], rtol=1e-12, atol=1e-15)
    exact = expm(3.0 * A) @ y0
    assert np.max(np.abs(end.y - exact)) < 100 * rtol * np.max(np.abs(exact))
    for (t_a, t_b, y_b, ends_ab, middle), y_a in zip(ends, [y0] + [e[2] for e in ends[:-1]], strict=True):
        np.testing.assert_allclose(ends_ab, [y_a, y_b], rtol=1e-13, atol=1e-13 * np.abs(y0).max())
        assert np.max(np.abs(middle - expm((t_a + t_b) / 2 * A) @ y0)) < 100 * rtol


def test_non_finite_field_and_blow_up_end_the_piece():
    pieces = ExplicitPieces("RK45", 1e-8, 1e-10)
    nan_beyond = pieces.run(
        lambda y: np.where(y < 2.0, y, np.nan), None, 0.0, np.ones(2), 5.0, None, None, None
    )
    assert nan_beyond.kind == "diverged" and "not finite" in nan_beyond.message
    assert nan_beyond.t < np.log(2.0) and np.all(nan_beyond.y < 2.0)  # the last accepted state
    blow_up = pieces.run(lambda y: y**2, None, 0.0, np.ones(2), 5.0, None, None, None)  # y = 1 / (1 - t)
    assert blow_up.kind == "failed" and "step size too small" in blow_up.message
    assert blow_up.t == pytest.approx(1.0, abs=1e-3)


def test_methods_get_their_integrators():
    assert isinstance(piece_integrator("RK12", 1e-6, 1e-8), ExplicitPieces)
    assert isinstance(piece_integrator("RK23", 1e-6, 1e-8), ExplicitPieces)
    assert isinstance(piece_integrator("RK45", 1e-6, 1e-8), ExplicitPieces)
    assert isinstance(piece_integrator("DOP853", 1e-6, 1e-8), ScipyPieces)


@pytest.mark.parametrize("method", ["RK12", "RK23", "RK45"])
def test_hybrid_run_with_crossings_and_sliding_agrees_with_dop853(method):
    W, v, X, y = switching_problem()
    tight = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-12, atol=1e-14)
    run = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-9, atol=1e-11, method=method)
    assert run.status == "target_reached" and run.info["method"] == method
    assert (run.switches, run.sliding_entries) == (tight.switches, tight.sliding_entries)
    assert run.t_stop == pytest.approx(tight.t_stop, rel=1e-6)
    assert np.allclose(run.W, tight.W, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("method", ["RK23", "RK45"])
def test_rejected_steps_restart_from_the_accepted_first_stage(method):
    """The stages live in buffers kept from step to step; a step rejected after an accepted one (a first step
    far too large, then a fast transient) retries from the accepted state's field, so the steps and the end
    state are scipy's."""
    A = np.diag([-1.0, -30.0, -0.5]) + np.triu(np.ones((3, 3)), 1)
    y0 = np.array([1.0, -2.0, 0.5])

    def fun(y):
        return A @ y + np.array([0.0, 40.0 * np.sin(8 * y[0]), 0.0])

    pieces = ExplicitPieces(method, 1e-8, 1e-11)
    end = pieces.run(fun, None, 0.0, y0, 2.0, None, 0.9, None)
    reference = solve_ivp(
        lambda t, y: fun(y), (0.0, 2.0), y0, method=method, rtol=1e-8, atol=1e-11, first_step=0.9
    )
    assert end.kind == "t_bound" and reference.status == 0
    np.testing.assert_allclose(end.y, reference.y[:, -1], rtol=1e-12, atol=1e-14)
