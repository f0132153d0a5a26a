"""The stiffness test of the explicit methods and the switch to an implicit one (docs/flow.md, "Choosing a method")."""

import math
from dataclasses import replace

import numpy as np
import pytest

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.stiffness import (
    STIFF_TESTS,
    TABLEAUS,
    TEST_INTERVAL,
    StiffnessMonitor,
    stability_boundary,
)
from fls.simulate.flow.tolerance import StepTolerance
from fls.simulate.initialization import init_params
from fls.theory.validation import ParameterError
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_implicit_cost import LinearJacobian
from tests.simulate.test_flow_stress import check, run


def growth_factor(method: str, z: float) -> float:
    """y1 / y0 of one step of ``method`` on y' = lambda y with h lambda = z, stage by stage from scipy's
    tableau (independent of the series of :func:`stability_polynomial`)."""
    tableau = TABLEAUS[method]
    stages = len(tableau.B)
    K = np.zeros(stages)
    for s in range(stages):
        K[s] = z * (1.0 + sum(tableau.A[s, k] * K[k] for k in range(min(s, tableau.A.shape[1]))))
    return 1.0 + float(tableau.B @ K)


def taylor_boundary(coefficients: list[float]) -> float:
    """The smallest x > 0 with |R(-x)| = 1 for a growth factor R with these Taylor coefficients."""
    R = np.polynomial.Polynomial(coefficients)
    roots = np.concatenate([(R + 1).roots(), (R - 1).roots()])
    real = -roots[(abs(roots.imag) < 1e-9) & (roots.real < -1e-9)].real
    return float(real.min())


def test_stability_boundaries_match_the_known_growth_factors():
    # RK23 (Bogacki-Shampine, order 3): R = 1 + z + z^2/2 + z^3/6; RK45 (Dormand-Prince, order 5):
    # R = sum_k<=5 z^k/k! + z^6/600 (Hairer, Norsett & Wanner I, II.5)
    assert stability_boundary("RK23") == pytest.approx(taylor_boundary([1, 1, 1 / 2, 1 / 6]), rel=1e-8)
    dp5 = [1 / math.factorial(k) for k in range(6)] + [1 / 600]
    assert stability_boundary("RK45") == pytest.approx(taylor_boundary(dp5), rel=1e-8)
    for method in TABLEAUS:  # the boundary is where one step of the tableau stops damping
        beta = stability_boundary(method)
        assert abs(growth_factor(method, -beta * (1 - 1e-6))) <= 1.0
        assert abs(growth_factor(method, -beta * (1 + 1e-6))) > 1.0
        assert all(abs(growth_factor(method, -x)) <= 1.0 for x in np.linspace(0, beta * (1 - 1e-6), 200))


def stiff_problem():
    """Squared loss on weights ~100 (4 samples in 2-d, 2 neurons): the Jacobian's largest eigenvalue is about
    -1.5e4, so RK45 is held at steps of 2e-4 while the solution varies on a scale of 0.1."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 2)), rng.standard_normal(4)
    W, v = init_params(2, 2, alpha=100.0, scheme="random_sign", seed=1)
    return W, v, X, y


STIFF_OPTIONS = {"loss": "squared", "t_max": 0.5, "coords": "plain"}


@pytest.fixture(scope="module")
def stiff_reference():
    """The stiff problem by DOP853 at rtol 1e-12, never switching (about 7e4 evaluations)."""
    W, v, X, y = stiff_problem()
    return integrate_flow(W, v, X, y, method="DOP853", rtol=1e-12, atol=1e-14, stiff_method=None, **STIFF_OPTIONS)


@pytest.mark.parametrize("target", ["Radau", "BDF"])
def test_a_stiff_problem_switches_and_agrees_with_a_tight_reference(target, stiff_reference):
    W, v, X, y = stiff_problem()
    run = integrate_flow(W, v, X, y, method="RK45", rtol=1e-8, atol=1e-10, stiff_method=target, **STIFF_OPTIONS)
    explicit = integrate_flow(W, v, X, y, method="RK45", rtol=1e-8, atol=1e-10, stiff_method=None, **STIFF_OPTIONS)
    reference = stiff_reference
    switch = run.info["method_switch"]
    assert run.status == "t_max"
    assert (switch["from"], switch["to"]) == ("RK45", target)
    assert switch["ratio"] >= 0.5
    assert switch["eigenvalue"] < -1e4
    assert f"switched from RK45 to {target}" in run.message
    assert explicit.info["method_switch"] is None
    assert run.rhs_evals * 5 < explicit.rhs_evals
    state = np.concatenate([run.W.ravel(), run.v])
    exact = np.concatenate([reference.W.ravel(), reference.v])
    assert np.abs(state - exact).max() <= 1e3 * (1e-8 * np.abs(exact).max() + 1e-10)
    W_half, v_half = run.dense(0.25)  # dense output replays the pieces on both sides of the switch
    W_ref, v_ref = reference.dense(0.25)
    assert np.abs(W_half - W_ref).max() <= 1e3 * (1e-8 * np.abs(W_ref).max() + 1e-10)
    assert np.abs(v_half - v_ref).max() <= 1e3 * (1e-8 * np.abs(v_ref).max() + 1e-10)


@pytest.mark.parametrize("method", ["RK23", "RK45", "DOP853"])
def test_a_non_stiff_run_never_switches(method):
    """The stall problem (logistic loss, 201 events): its 4 to 74 tests find steps below 0.001 times the
    stability boundary (RK23 at this rtol may go on with DOP853 for accuracy: "order", not "stiff")."""
    W, v, X, y = stall_problem(alpha=0.1)
    run = integrate_flow(W, v, X, y, target_risk=0.05, t_max=200.0, method=method, rtol=1e-10, atol=1e-13)
    assert run.status == "target_reached"
    assert all(switch["reason"] == "order" for switch in run.info["method_switches"])
    assert run.info["stiffness"]["tests"] >= 4
    assert 0 < run.info["stiffness"]["largest_ratio"] < 0.01


def test_stiff_method_is_validated():
    W, v, X, y = stiff_problem()
    with pytest.raises(ParameterError, match="stiff_method = 'LSODA' is not supported; allowed: 'Radau', 'BDF'"):
        integrate_flow(W, v, X, y, loss="squared", t_max=0.1, method="RK45", stiff_method="LSODA")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["stiff_exponential_loss", "stiff_squared_loss_with_events"])
def test_stored_stiff_stress_problem_is_integrated_in_seconds(name):
    """Slow-tier time-outs (over 60 s, stored as drawn in tests/simulate/data/): DOP853, exponential loss,
    d = 1, m = 20, eigenvalue -4e4, t_max 25; RK23, squared loss, m = 5, d = 20, eigenvalue -1.6e4, 23
    events. The run and its reference (DOP853 at 100x tighter tolerances) both switch to Radau."""
    check(stored_problem(name))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stiff_run_whose_implicit_step_climbs_for_several_steps_switches():
    """A stored slow-tier time-out (RK45, squared loss, n = d = 26, m = 34, rtol 4.4e-11, t_max 24.7; over
    120 s): Radau's trial step grows tenfold per step from the explicit one, and four steps of it found
    Radau 3 times slower (three Jacobians by differences over 41 explicit steps' worth of time); the trial
    now goes on while its step grows, finds it far faster, and the run switches (about 12 s in all)."""
    problem = stored_problem("stiff_trial_growing_step")
    result = run(replace(problem, t_max=1.0))
    switch = result.info["method_switch"]
    assert (switch["to"], switch["reason"]) == ("Radau", "stiff") and switch["gain"] > 1.0
    check(problem)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stiff_problem_in_data_span_coordinates_has_a_reference_that_ends():
    """A stored slow-tier time-out (RK23 in data-span coordinates, logistic loss, n = 25, d = 29, m = 34, atol
    1e-14): the run takes 5 s, its reference at atol 1e-16 in data-span coordinates did not end (Radau) or
    took 121 s (DOP853 at its stability boundary); in plain coordinates it takes 14 s."""
    check(stored_problem("stiff_span_reference"))


@pytest.mark.timeout(120)
def test_the_implicit_trial_uses_the_engines_jacobian():
    """A slow-tier problem (DOP853 in data-span coordinates, squared loss, m = 36, samples of norm up to 20,
    eigenvalue -6.6e5): with scipy's own Jacobian by differences, Radau's trial took a Jacobian at every step
    and found Radau 16 times slower, and DOP853 went on at its stability boundary (over 120 s); with the
    engine's, as the run's Radau pieces use it, the trial finds it far faster and the run takes 0.4 s."""
    problem = stored_problem("stiff_trial_engine_jacobian")
    result = run(problem)
    switch = result.info["method_switch"]
    assert (switch["from"], switch["to"], switch["reason"]) == ("DOP853", "Radau", "stiff")
    assert result.info["stiffness"]["trials"] == 1
    check(problem)


def test_the_test_reads_the_largest_step_of_a_cycle_at_the_stability_boundary():
    """y' = lambda y held at DOP853's boundary by a cycle of one step at 1.5 times it and four at 0.15 times
    it (mean 0.42 times it, the shape measured on an event-dense squared-loss run): the test finds 1.5 x the
    boundary, from the largest step, and keeps the mean step for the explicit method's rate of work."""
    eigenvalue, boundary = -7.5e4, stability_boundary("DOP853")
    monitor = StiffnessMonitor("DOP853", "Radau", StepTolerance(1e-8, 1e-10, None))
    cycle = np.array([1.5, 0.15, 0.15, 0.15, 0.15]) * boundary / -eigenvalue
    y, jac = np.array([1.0]), LinearJacobian(np.array([[eigenvalue]]))
    for step in np.resize(cycle, TEST_INTERVAL):
        assert not monitor.stiff(lambda state: eigenvalue * state, jac, y, eigenvalue * y, step)
    estimate = monitor.estimate
    assert estimate.eigenvalue == pytest.approx(eigenvalue, rel=1e-6)
    assert estimate.ratio == pytest.approx(1.5, rel=1e-6)
    assert estimate.step == pytest.approx(cycle.mean(), rel=1e-12)
    assert -eigenvalue * estimate.step / boundary < 0.5


def steps_held_at(products: list[float]) -> tuple[StiffnessMonitor, int | None]:
    """RK45's monitor fed steps with -lambda h = ``products`` in turn on y' = diag(lambda, -1) y (lambda = -6e5,
    the eigenvalue of ``rk45_stiff_noise_holds_a_crossing``), for up to 2 STIFF_TESTS tests: the monitor and
    the accepted step at which it called the run stiff (None: never)."""
    eigenvalue = -6e5
    A = np.diag([eigenvalue, -1.0])
    monitor = StiffnessMonitor("RK45", "Radau", StepTolerance(1e-10, 1e-6, None))
    y, jac = np.array([1e-6, 1.0]), LinearJacobian(A)
    steps = np.resize(np.array(products) / -eigenvalue, 2 * STIFF_TESTS * TEST_INTERVAL)
    for k, step in enumerate(steps):
        if monitor.stiff(lambda state: A @ state, jac, y, A @ y, step):
            return monitor, k + 1
    return monitor, None


def test_steps_that_stay_at_the_fast_time_constant_below_half_the_boundary_are_stiff():
    """The test's second bound: -lambda h >= 1 for the mean step of a window. Constant steps at -lambda h = 1.63
    (0.49 times RK45's boundary: where atol sets the tolerance, the step settles there with its error in the
    fast component) are stiff at the STIFF_TESTS-th test after the power iteration's first, and the trial
    finds Radau cheaper. Constant steps at 0.9, and a window of one step at 1.5 among steps at 0.2 (mean 0.33),
    run no trial."""
    monitor, at = steps_held_at([1.63])
    assert monitor.estimate.ratio < 0.5
    assert at == (STIFF_TESTS + 1) * TEST_INTERVAL  # the power iteration's first test, from a random vector, is low
    assert monitor.trials == 1 and monitor.estimate.gain > 1.0
    for products in ([0.9], [1.5] + [0.2] * 9):
        monitor, at = steps_held_at(products)
        assert at is None and monitor.trials == 0 and monitor.tests == 2 * STIFF_TESTS


@pytest.mark.timeout(60)
def test_an_event_dense_stiff_reference_switches_to_radau():
    """A stored slow-tier time-out (RK23 in plain coordinates, squared loss, n = 17, d = 11, m = 32): its
    reference (DOP853 at rtol 4.5e-8) sits at an eigenvalue of -7.5e4 through an event every few hundred steps,
    in a cycle of one step at 1.1 to 2 times the stability boundary and three to seven at 0.1 to 0.2 times it.
    The test on the mean step (0.38 to 0.42 times it) never called it stiff: 8e5 evaluations per time unit,
    no end in minutes. On the largest step it switches to Radau at t = 0.011 (the trial: 3 x less work)."""
    problem = stored_problem("stiff_event_dense_reference")
    result = run(replace(problem, t_max=0.05), reference=True)
    switch = result.info["method_switch"]
    assert (switch["from"], switch["to"], switch["reason"]) == ("DOP853", "Radau", "stiff")
    assert switch["t"] < 0.02 and switch["ratio"] >= 1.0 and switch["gain"] > 1.0
    assert result.status == "t_max" and result.rhs_evals < 10_000


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["stiff_event_dense_reference", "stiff_event_dense_reference_b"])
def test_an_event_dense_stiff_problem_passes_the_stress_check(name):
    """The two variants of that time-out: the run (96 events, Radau from t = 0.017) and its reference now
    agree (the whole check: 1.3 s with one BLAS thread, 8 to 17 s with the default threads at a load of 5;
    89 s with one BLAS thread when the test read the mean step)."""
    check(stored_problem(name))
