"""The stress suite's reference at an atol no finer than the weights' roundoff (docs/flow.md, "Robustness", "A
reference tighter than the weights' roundoff"; :func:`tests.simulate.test_flow_stress.reference_atol`).

``reference_below_roundoff`` and ``_b`` (tests/simulate/data/, stored as the slow tier drew them: DOP853 in
data-span coordinates, squared loss, d = 1, m = 18, n = 27 with repeated and opposite samples, weights of 160,
rtol 2.2e-9, atol 1e-14): the run switches to Radau at t = 0.013 and ends in 0.5 s. Its reference, in plain
coordinates at atol 1e-16, did not end in 120 s: Radau's Newton iteration at that atol converges only at steps
of about 1e-7, so the stiffness test's trial kept DOP853, held at its stability boundary (eigenvalue -1.04e5:
4.7e5 evaluations per time unit, about 300 s to t_max = 9.8).
"""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings

from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import AGREEMENT, check, problems, reference_atol, run


@pytest.mark.parametrize("name", ["reference_below_roundoff", "reference_below_roundoff_b"])
def test_stored_problem_agrees_with_the_tight_run(name):
    check(stored_problem(name))


def test_the_reference_goes_on_with_radau_at_the_floor():
    """To t = 0.3 the reference at atol 1e-16 took 144 641 evaluations and no switch; at the floor
    (eps 160 = 3.5e-14) the trial finds Radau cheaper and the run switches."""
    problem = replace(stored_problem("reference_below_roundoff"), t_max=0.3)
    reference = run(problem, reference=True)
    assert [switch["to"] for switch in reference.info["method_switches"]] == ["Radau"]
    assert reference.rhs_evals < 20_000


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(problems())
def test_the_floor_is_far_below_the_agreement_bound(problem):
    """On every drawn problem: at least the run's atol / 100, and at most 1e-4 of the smallest bound the
    check can apply, 1000 (rtol + atol) (the state's scale is at least 1)."""
    floor = reference_atol(problem)
    assert problem.atol / 100 <= floor <= 1e-4 * AGREEMENT * (problem.rtol + problem.atol)
