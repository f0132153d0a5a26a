"""The Heun–Euler pair "RK12": its tableau, its pieces against solve_ivp and the mpmath reference, the field at a
step's end formed only where the next step starts there, and its stiffness and order tests."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.heun_euler import HeunEuler
from fls.simulate.flow.problems import stall_problem, switching_problem
from fls.simulate.flow.reference import reference_flow
from fls.simulate.flow.smooth import ExplicitPieces
from fls.simulate.flow.stiffness import stability_boundary
from fls.simulate.initialization import init_params
from tests.simulate.test_flow_order import accuracy_bound_problem
from tests.simulate.test_flow_stiffness import STIFF_OPTIONS, stiff_problem
from tests.simulate.test_flow_stress import AGREEMENT, run, state_of


def test_the_tableau_is_heun_s_method_with_euler_s_estimate_and_a_dense_output_of_order_two():
    """Order 2 (B sums to 1, B . C = 1/2), the stage nodes C the rows of A, the error y_new less Euler's step,
    a dense output that starts with slope K_0 and ends at y_new, and the stability interval [-2, 0] of
    R(z) = 1 + z + z^2 / 2."""
    tableau = HeunEuler
    assert tableau.B.sum() == 1.0 and tableau.B @ tableau.C == 0.5
    np.testing.assert_array_equal(tableau.A.sum(axis=1), tableau.C)
    np.testing.assert_array_equal(tableau.E[:2], tableau.B - [1.0, 0.0])
    assert tableau.E[-1] == 0.0 and not tableau.P[-1].any()  # no f(y_new) in the error nor the dense output
    np.testing.assert_array_equal(tableau.P.sum(axis=1)[:2], tableau.B)  # theta = 1: y_new
    np.testing.assert_array_equal(tableau.P[:, 0], [1.0, 0.0, 0.0])  # d/dtheta at 0: h K_0
    assert (tableau.order, tableau.error_estimator_order, tableau.n_stages) == (2, 1, 2)
    assert stability_boundary("RK12") == pytest.approx(2.0, rel=1e-8)


@pytest.mark.parametrize("rtol", [1e-5, 1e-7])
def test_a_smooth_piece_meets_its_tolerance_against_solve_ivp(rtol):
    """A damped pendulum coupled to a linear decay to t = 3 against DOP853 at rtol 1e-13: the end state and the
    dense output at every step's midpoint within 100 rtol; each step's dense output ends at its end state."""

    def fun(y):
        return np.array([y[1], -np.sin(y[0]) - 0.1 * y[1], -0.5 * y[2] + 0.2 * y[0]])

    y0 = np.array([1.0, 0.0, 0.5])
    ends = []

    def observer(t_a, t_b, y_b, dense):
        ends.append((t_a, t_b, y_b, dense([t_b])[0], dense((t_a + t_b) / 2)[0]))

    end = ExplicitPieces("RK12", rtol, rtol * 1e-3).run(fun, None, 0.0, y0, 3.0, None, None, observer)
    times = [(t_a + t_b) / 2 for t_a, t_b, *_ in ends]
    reference = solve_ivp(
        lambda t, y: fun(y), (0.0, 3.0), y0, method="DOP853", rtol=1e-13, atol=1e-15, dense_output=True
    )
    assert end.kind == "t_bound" and end.t == 3.0
    assert np.abs(end.y - reference.y[:, -1]).max() < 100 * rtol
    middles = np.array([middle for *_, middle in ends])
    assert np.abs(middles - reference.sol(times).T).max() < 100 * rtol
    for _, _, y_b, dense_end, _ in ends:
        np.testing.assert_allclose(dense_end, y_b, rtol=1e-14, atol=1e-15)


def test_a_run_agrees_with_the_mpmath_reference_through_a_crossing():
    """The switching problem to t = 3 (one crossing) at rtol 1e-8, without the order test's switch: the final
    state within 1e-8 relative of the 30-digit reference (1.1e-9 measured)."""
    W, v, X, y = switching_problem()
    engine = integrate_flow(W, v, X, y, t_max=3.0, rtol=1e-8, atol=1e-10, method="RK12", high_order_method=None)
    reference = reference_flow(W, v, X, y, t_max=3.0, dps=30)
    assert engine.switches == reference.switches == 1 and engine.info["method_switches"] == []
    exact = state_of(reference).astype(np.float64)
    assert np.abs(state_of(engine) - exact).max() < 1e-8 * np.abs(exact).max()


def test_a_step_an_event_ends_costs_its_two_stages():
    """The stall data at m = 2000 from a small init to t = 0.02 (42 events, nearly every step ended by one):
    RK12 takes about 2.2 evaluations per event where RK23 takes 4.2 (its f(y_new) on every step, for the
    error), and both agree with the tight run."""
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(2000, 3, alpha=1e-3 / np.sqrt(2000), scheme="random_sign", seed=0)
    options = {"target_risk": 0.05, "t_max": 0.02, "save_at": [0.0]}
    runs = {
        method: integrate_flow(W, v, X, y, method=method, rtol=rtol, atol=rtol * 1e-3, **options)
        for method, rtol in (("RK12", 1e-7), ("RK23", 1e-7), ("DOP853", 1e-11))
    }
    events = runs["RK12"].info["events"]
    assert events == runs["RK23"].info["events"] == runs["DOP853"].info["events"] > 30
    assert runs["RK12"].rhs_evals < 2.5 * events < 0.6 * runs["RK23"].rhs_evals
    exact = state_of(runs["DOP853"])
    assert np.abs(state_of(runs["RK12"]) - exact).max() <= AGREEMENT * (1e-7 * np.abs(exact).max() + 1e-10)


def test_an_accuracy_bound_rk12_run_goes_on_with_dop853():
    """At rtol 1e-11 on the stall data (m = 10, 42 events to t = 20) the order test hands RK12 to DOP853 at its
    first test, and the run agrees with the tight reference."""
    problem = replace(accuracy_bound_problem(), method="RK12")
    switched, reference = run(problem), run(problem, reference=True)
    switch = switched.info["method_switch"]
    assert (switch["from"], switch["to"], switch["reason"]) == ("RK12", "DOP853", "order")
    assert switch["gain"] >= 3.0 and switched.info["order"]["tests"] == 1
    exact = state_of(reference)
    assert np.abs(state_of(switched) - exact).max() <= AGREEMENT * (problem.rtol * np.abs(exact).max() + problem.atol)


def test_a_stiff_rk12_run_goes_on_with_radau():
    """The stiff problem of test_flow_stiffness (eigenvalue about -1.5e4), RK12 without the order test (which
    hands it to DOP853 first, at rtol 1e-8, and DOP853 to Radau): held at its stability boundary 2 / rho, the
    stiffness test finds it so, and the run goes on with Radau."""
    W, v, X, y = stiff_problem()
    options = {"rtol": 1e-8, "atol": 1e-10, "high_order_method": None, **STIFF_OPTIONS}
    result = integrate_flow(W, v, X, y, method="RK12", **options)
    switch = result.info["method_switch"]
    assert result.status == "t_max"
    assert (switch["from"], switch["to"], switch["reason"]) == ("RK12", "Radau", "stiff")
    assert switch["ratio"] >= 0.5 and switch["eigenvalue"] < -1e4
