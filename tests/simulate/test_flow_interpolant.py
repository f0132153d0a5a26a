"""The dense output's stability interval (simulate/flow/interpolant.py; docs/flow.md, "Robustness").

The stored problems were found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py) and are
kept as they were drawn (tests/simulate/data/); both ended ``failed`` with 201 events in a row at one instant:

- ``interpolant_weight_exit``: DOP853 in log coordinates at rtol = atol = 5.8e-7, exponential loss, ten
  collinear samples of both labels merged into one surface, m = 40. DOP853's steps cycle at z = h lambda up
  to -8.7, where its dense output holds the state 45 times the tolerance off inside the step: the sliding
  weight of pair (35, 0) crossed a bound there (the jump through 0), the pair left sliding at a state that was
  not the flow's and crossed back at once, event after event (t = 0.146).
- ``interpolant_pair_dip``: DOP853 in log coordinates, squared loss, m = 32, at z = -6.0: the dense output
  240 times the tolerance off inside the step; pair (31, 8) left sliding through mu = 0 and its guard dipped
  the wrong way by 2.7e-5 on the dense output, where the flow dips by 1e-7 (t = 0.7115).
- ``interpolant_retry_stiff``: DOP853 in plain coordinates, squared loss, n = 5 in d = 1 (two equal samples of
  opposite labels), m = 24, weights of 290 (Jacobian eigenvalue -5.5e5). Every other step found a spurious
  event on its unstable dense output and was retried ten times smaller, so the accepted steps stayed at 0.3 of
  the stability boundary, the stiffness test never called the run stiff, and it took 8.6e6 evaluations per
  time unit (over 120 s in the slow tier).
"""

from dataclasses import replace

import numpy as np
import pytest
from scipy.integrate import DOP853

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.interpolant import (
    RETRY_FRACTION,
    interpolant_boundary,
    interpolant_growth,
    interpolant_retry_factor,
    step_stiffness,
)
from fls.simulate.flow.stiffness import stability_boundary
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

THETAS = np.linspace(0.0, 1.0, 401)


def hermite_growth(s: float) -> float:
    """max over theta of |H_theta(-s)| for RK23's dense output, the cubic Hermite interpolant of the step's end
    values and slopes (y0 = 1, h f0 = z, y1 = R(z), h f1 = z R(z), R(z) = 1 + z + z^2 / 2 + z^3 / 6): a closed
    form independent of scipy's interpolant coefficients."""
    z, t = -s, THETAS
    end = 1 + z + z * z / 2 + z**3 / 6
    values = (
        (2 * t**3 - 3 * t**2 + 1)
        + (t**3 - 2 * t**2 + t) * z
        + (-2 * t**3 + 3 * t**2) * end
        + (t**3 - t**2) * z * end
    )
    return float(np.abs(values).max())


@pytest.mark.parametrize("s", np.linspace(0.0, 4.0, 17))
def test_the_rk23_interpolant_growth_is_that_of_its_cubic_hermite_form(s):
    assert interpolant_growth("RK23", s) == pytest.approx(hermite_growth(s), rel=1e-12, abs=1e-14)


def test_the_rk23_interpolant_boundary_is_where_the_hermite_form_starts_to_grow():
    boundary = interpolant_boundary("RK23")
    assert hermite_growth(boundary - 1e-4) <= 1.0 + 1e-12 < hermite_growth(boundary + 1e-4)


def test_the_dop853_interpolant_is_stable_on_a_shorter_interval_than_its_step():
    """5.06 against the step's 6.39 (the tableau's stability polynomial); RK23's and RK45's within 4 %."""
    assert interpolant_boundary("DOP853") == pytest.approx(5.06, abs=0.01)
    assert interpolant_boundary("DOP853") < 0.8 * stability_boundary("DOP853")
    for method in ("RK23", "RK45"):
        assert 0.96 * stability_boundary(method) < interpolant_boundary(method) <= stability_boundary(method)


def one_dop853_step(z: float) -> tuple[DOP853, float]:
    """One DOP853 step of size 1 on y' = diag(z, -0.1) y from (1e-5, 1): a stiff component at the tolerance
    and a smooth one. Returns the solver and the dense output's largest error inside the step against the exact
    solution, in units of the tolerance 1e-5."""
    rates = np.array([z, -0.1])
    y0 = np.array([1e-5, 1.0])
    solver = DOP853(lambda t, y: rates * y, 0.0, y0, 1.0, first_step=1.0, rtol=1e-5, atol=1e-5)
    solver.step()
    assert solver.t == 1.0  # the step was accepted at its full size
    exact = y0[:, None] * np.exp(rates[:, None] * THETAS)
    return solver, float(np.abs(solver.dense_output()(THETAS) - exact).max() / 1e-5)


@pytest.mark.parametrize("z", [-4.5, -6.0])
def test_the_step_stiffness_estimate_and_the_trust_in_the_dense_output(z):
    """The estimate of |h lambda| from the step's own stages is within 2 % of 6 and 4.5; at z = -6 the dense
    output is 10 tolerances off inside the step (the stiff component grows tenfold there, while the step's end
    is within half the tolerance) and not trusted, at z = -4.5 it is within a fifth of the tolerance and
    trusted."""
    solver, error = one_dop853_step(z)
    assert step_stiffness(solver) == pytest.approx(-z, rel=0.02)
    if z < -interpolant_boundary("DOP853"):
        assert error > 5.0
        assert interpolant_retry_factor("DOP853", solver) is not None
    else:
        assert error < 0.5
        assert interpolant_retry_factor("DOP853", solver) is None


@pytest.mark.parametrize("name, t_max", [("interpolant_weight_exit", 0.2), ("interpolant_pair_dip", None)])
def test_an_event_on_a_dense_output_beyond_its_stability_interval_is_retried(name, t_max):
    """The run no longer ends ``failed`` and agrees with its tight reference (t_max 0.2 for the first: its
    loop was at t = 0.146)."""
    problem = stored_problem(name)
    check(problem if t_max is None else replace(problem, t_max=t_max))


def test_a_retried_step_is_aimed_inside_the_interpolants_interval():
    """At z = -6 the retry factor puts the step's |h lambda| at RETRY_FRACTION of the interval (the estimate is
    within 2 %); a trusted step gets none."""
    solver, _ = one_dop853_step(-6.0)
    factor = interpolant_retry_factor("DOP853", solver)
    assert factor == pytest.approx(RETRY_FRACTION * interpolant_boundary("DOP853") / 6.0, rel=0.02)
    assert interpolant_retry_factor("DOP853", one_dop853_step(-4.5)[0]) is None


def test_a_stiff_run_whose_events_are_retried_is_handed_to_radau():
    """``interpolant_retry_stiff``: with retries inside the interpolant's interval the accepted steps are at 0.71
    of the stability boundary, the run switches to Radau within t = 0.01 (it stayed explicit, at 8.6e6
    evaluations per time unit, with retries ten times smaller), and the check passes."""
    problem = stored_problem("interpolant_retry_stiff")
    result = run(replace(problem, t_max=0.01))
    switches = result.info["method_switches"]
    assert [(s["from"], s["to"]) for s in switches] == [("DOP853", "Radau")]
    assert switches[0]["ratio"] > 0.5
    assert result.rhs_evals < 50_000
    check(problem)


def test_a_state_saved_on_a_step_beyond_the_interpolants_interval_honours_the_tolerance():
    """``interpolant_weight_exit`` saved every 0.005 to t = 0.2: at t = 0.01, 0.03, 0.04, 0.05 and 0.09 the
    state came from the dense output of a step beyond its interpolant's interval, 44.7, 32.8, 18.1, 8.2 and
    14.4 times the tolerance atol + rtol |theta| from the run's own state there (the same run stopped at that
    time, whose last step ends on it). Re-integrated from the step's start, each is within the tolerance."""
    problem = stored_problem("interpolant_weight_exit")
    times = np.array([0.01, 0.03, 0.04, 0.05, 0.09])
    options = {"loss": problem.loss, "rtol": problem.rtol, "atol": problem.atol, "method": problem.method}
    options["coords"] = problem.coords
    saved = integrate_flow(problem.W, problem.v, problem.X, problem.y, t_max=0.2, save_at=times, **options)
    for k, t in enumerate(times):
        ended = integrate_flow(problem.W, problem.v, problem.X, problem.y, t_max=t, save_at=[0.0], **options)
        state = np.concatenate([ended.W.ravel(), ended.v])
        error = np.concatenate([saved.W_t[k].ravel(), saved.v_t[k]]) - state
        assert np.all(np.abs(error) <= problem.atol + problem.rtol * np.abs(state)), (t, np.abs(error).max())
