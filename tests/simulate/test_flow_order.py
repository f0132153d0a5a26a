"""The order test of the explicit methods and the switch to a higher-order one, and the implicit method's trial
that a stiff switch must pass (docs/flow.md, "Choosing a method")."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.integrate import DOP853, Radau

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.step_control import trial_steps
from fls.simulate.flow.stiffness import StiffnessMonitor
from fls.simulate.flow.tolerance import StepTolerance
from fls.simulate.initialization import init_params
from fls.theory.validation import ParameterError
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_implicit_cost import LinearJacobian
from tests.simulate.test_flow_stress import AGREEMENT, Problem, check, run, state_of

#: The first 0.02 time units of the stored slow-tier problem (RK23 in span coordinates at rtol 1e-11,
#: exponential loss, weights ~150, n = 8, d = 1, m = 10, no event).
SHORT = 0.02


def accuracy_bound_problem() -> Problem:
    """RK23 at rtol 1e-11 in plain coordinates on the stall data (m = 10, alpha = 1, logistic loss, 42 events
    to t = 20): not stiff, so its steps are what a third-order method needs at that tolerance (about 14 700
    evaluations alone, where DOP853 needs about a tenth)."""
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(10, 3, alpha=1.0, scheme="random_sign", seed=0)
    return Problem(W, v, X, y, "logistic", None, 20.0, rtol=1e-11, atol=1e-14, method="RK23", coords="plain")


def test_an_accuracy_bound_rk23_run_goes_on_with_dop853():
    """The order test hands the accuracy-bound run to DOP853 after its first test; the run then takes several
    times fewer evaluations and agrees with RK23 alone and with the tight reference, dense output included."""
    problem = accuracy_bound_problem()
    switched = run(problem)
    alone = run(problem, high_order_method=None)
    reference = run(problem, reference=True)
    switch = switched.info["method_switch"]
    assert (switch["from"], switch["to"], switch["reason"]) == ("RK23", "DOP853", "order")
    assert switch["gain"] >= 3.0 and switch["trial_step"] > 3 * switch["step"]
    assert "accuracy-bound: switched from RK23 to DOP853" in switched.message
    assert switched.info["method_switches"] == [switch]
    assert alone.info["method_switch"] is None and alone.info["order"] is None
    assert switched.rhs_evals * 3 < alone.rhs_evals
    exact = state_of(reference)
    bound = AGREEMENT * (problem.rtol * np.abs(exact).max() + problem.atol)
    assert np.abs(state_of(switched) - exact).max() <= bound
    assert np.abs(state_of(alone) - exact).max() <= bound
    middle = problem.t_max / 2  # the dense output replays RK23 before the switch and DOP853 after it
    W, v = switched.dense(middle)
    W_ref, v_ref = reference.dense(middle)
    assert np.abs(np.concatenate([W.ravel(), v]) - np.concatenate([W_ref.ravel(), v_ref])).max() <= bound


def test_the_implicit_trial_finds_radau_slower_where_the_explicit_step_is_held_by_accuracy():
    """On a problem that is not stiff (a harmonic oscillator) at DOP853's own step for rtol 1e-10, Radau's
    trial does far more evaluations per unit time (gain about 0.04), so a stiff test there would not switch."""

    def oscillator(y):
        return np.array([y[1], -y[0]])

    solver = DOP853(lambda t, y: oscillator(y), 0.0, np.array([1.0, 0.0]), 10.0, rtol=1e-10, atol=1e-12)
    for _ in range(5):
        solver.step()
    monitor = StiffnessMonitor("DOP853", "Radau", StepTolerance(1e-10, 1e-12))
    jac = LinearJacobian(np.array([[0.0, 1.0], [-1.0, 0.0]]))
    assert monitor.implicit_gain(oscillator, jac, solver.y, solver.t - solver.t_old) < 0.2


def test_a_dop853_run_held_at_its_stability_boundary_goes_on_with_radau():
    """DOP853 at rtol 1e-11 on the stored problem: from t ~ 0.3 its step is held at its stability boundary
    (eigenvalue about -5e3); the trial finds Radau about 10 times cheaper, and the switched run takes fewer
    evaluations than DOP853 alone and agrees with it."""
    problem = replace(stored_problem("rk23_tight"), method="DOP853")
    switched, alone = run(problem), run(problem, stiff_method=None)
    assert switched.status == alone.status == "t_max"
    (switch,) = switched.info["method_switches"]
    assert (switch["from"], switch["to"], switch["reason"]) == ("DOP853", "Radau", "stiff")
    assert switch["gain"] > 1.0 and switched.info["stiffness"]["trials"] >= 1
    assert switched.rhs_evals < alone.rhs_evals
    bound = AGREEMENT * (problem.rtol * np.abs(state_of(alone)).max() + problem.atol)
    assert np.abs(state_of(switched) - state_of(alone)).max() <= bound


def test_a_benchmark_run_does_not_switch():
    """benchmarks/flow.py's RK23 run at alpha 1e-4 (low_signal, m = 100, 2051 events, about one every four
    steps): its one order test finds that DOP853 would do about 5 times more work (gain 0.21), where a switch
    needs 3 times less. (Its RK45 runs and those at alpha 0.3 and 3 have too few steps between events to be
    tested.)"""
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    W, v = init_params(100, 100, alpha=1e-4, scheme="random_sign", seed=0)
    result = integrate_flow(
        W, v, data.X, data.y, target_risk=0.05, t_max=1e5, rtol=1e-6, atol=1e-8, method="RK23", save_at=[0.0]
    )
    assert result.status == "target_reached"
    assert result.info["method_switches"] == []
    assert result.info["order"]["tests"] >= 1
    assert result.info["order"]["largest_gain"] < 1.0


def test_the_trial_of_a_method_takes_the_steps_of_its_solver():
    """trial_steps on y' = -y: the steps and evaluations of scipy's own solver from the same start, and a
    Radau trial counts the evaluations of its Jacobian by differences."""

    def decay(y):
        return -y

    y0 = np.array([1.0, 2.0])
    trial = trial_steps(DOP853, decay, y0, 1e-3, StepTolerance(1e-10, 1e-12), 4)
    solver = DOP853(lambda t, y: -y, 0.0, y0, np.inf, rtol=1e-10, atol=1e-12, first_step=1e-3)
    sizes = []
    for _ in range(4):
        solver.step()
        sizes.append(solver.t - solver.t_old)
    assert trial.sizes == tuple(sizes) and trial.evaluations == solver.nfev
    assert trial.rate() == pytest.approx(solver.nfev / solver.t) and trial.work[-1] == solver.nfev
    implicit = trial_steps(Radau, decay, y0, 1e-3, StepTolerance(1e-10, 1e-12), 4)
    assert implicit.evaluations >= 4 + y0.size  # the steps' Newton iterations and one Jacobian's columns


def test_a_trial_that_leaves_the_finite_range_is_none():
    assert trial_steps(DOP853, lambda y: np.exp(y * 1e3), np.array([1.0]), 1.0, StepTolerance(1e-6, 1e-9), 4) is None


def test_high_order_method_is_validated():
    problem = stored_problem("rk23_tight")
    with pytest.raises(ParameterError, match="high_order_method = 'RK23' is not supported"):
        run(replace(problem, t_max=SHORT), high_order_method="RK23")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["rk23_tight", "rk23_tight_b"])
def test_stored_tight_rk23_problem_agrees_with_the_tight_run(name):
    """Each took over 120 s (RK23 alone, then Radau after a stiff switch near t = 0.9); now about 13 s, most
    of it the reference."""
    check(stored_problem(name))
