"""The order test of the explicit methods and the switch to a higher-order one, and the implicit method's trial
that a stiff switch must pass (docs/flow.md, "Choosing a method")."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.integrate import DOP853, Radau

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.flow.step_control import trial_steps
from fls.simulate.initialization import init_params
from fls.theory.validation import ParameterError
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import AGREEMENT, check, run, state_of

#: The stored slow-tier problem: RK23 in span coordinates at rtol 1e-11, exponential loss, weights ~150,
#: n = 8, d = 1, m = 10, no event. Its first 0.02 time units.
SHORT = 0.02


def test_an_accuracy_bound_rk23_run_goes_on_with_dop853():
    """RK23 at rtol 1e-11 takes 17 000 evaluations in the first 0.02 time units; the order test hands the
    run to DOP853 after its first tests, and the run agrees with RK23 alone and with the tight reference."""
    problem = replace(stored_problem("rk23_tight"), t_max=SHORT)
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
    W, v = switched.dense(SHORT / 2)  # the dense output replays RK23 before the switch and DOP853 after it
    W_ref, v_ref = reference.dense(SHORT / 2)
    assert np.abs(np.concatenate([W.ravel(), v]) - np.concatenate([W_ref.ravel(), v_ref])).max() <= bound


def test_a_dop853_step_that_accuracy_holds_near_its_stability_boundary_stays_explicit():
    """DOP853 at rtol 1e-11 on the same problem: from t ~ 0.9 its step (held by accuracy) is 0.77 times the
    stability boundary, so the stiffness test used to hand the run to Radau, which took 2.5 million
    evaluations (227 s) for the last 0.1 time units. The implicit trial now finds Radau slower there."""
    problem = replace(stored_problem("rk23_tight"), method="DOP853")
    result = run(problem)
    assert result.status == "t_max"
    assert result.info["method_switch"] is None
    stiffness = result.info["stiffness"]
    assert stiffness["largest_ratio"] >= 0.5 and stiffness["trials"] >= 1
    assert result.rhs_evals < 100_000


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
    trial = trial_steps(DOP853, decay, y0, 1e-3, 1e-10, 1e-12, 4)
    solver = DOP853(lambda t, y: -y, 0.0, y0, np.inf, rtol=1e-10, atol=1e-12, first_step=1e-3)
    sizes = []
    for _ in range(4):
        solver.step()
        sizes.append(solver.t - solver.t_old)
    assert trial.sizes == tuple(sizes) and trial.evaluations == solver.nfev
    assert trial.work() == pytest.approx(solver.nfev / solver.t)
    implicit = trial_steps(Radau, decay, y0, 1e-3, 1e-10, 1e-12, 4)
    assert implicit.evaluations >= 4 + y0.size  # the steps' Newton iterations and one Jacobian's columns


def test_a_trial_that_leaves_the_finite_range_is_none():
    assert trial_steps(DOP853, lambda y: np.exp(y * 1e3), np.array([1.0]), 1.0, 1e-6, 1e-9, 4) is None


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
