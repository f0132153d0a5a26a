"""The stress check's stop times as roots of R(t) = target (tests/simulate/test_flow_stress.py,
:func:`~tests.simulate.test_flow_stress.stop_time_agrees`; docs/flow.md, "Robustness")."""

from dataclasses import replace

import numpy as np
import pytest

from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import (
    AGREEMENT,
    agreement,
    check,
    risk_gap,
    run,
    state_of,
    stop_time_agrees,
)

#: Two stored slow-tier problems (DOP853 in data-span coordinates, squared loss, n = 4, d = 16, m = 37, rtol
#: 1e-11): the risk decays to a floor equal to the target, 0.2, to 1e-12 from t = 0.0095 on.
FLOOR_PROBLEMS = ("stop_at_a_risk_floor", "stop_at_a_risk_floor_b")


@pytest.mark.parametrize("name", FLOOR_PROBLEMS)
def test_a_target_met_at_a_risk_floor_agrees_as_a_root(name):
    """The run and its reference stop 4e-5 apart (the time bound is 1e-8), each where its risk met the
    target in its last digits; the check accepts them as roots of R(t) = target and the states agree."""
    problem = stored_problem(name)
    result, tight = run(problem), run(problem, reference=True)
    assert result.status == tight.status == "target_reached"
    assert abs(result.t_stop - tight.t_stop) > 1e3 * AGREEMENT * problem.rtol
    early, late = (result, tight) if result.t_stop < tight.t_stop else (tight, result)
    gap, _ = risk_gap(problem, late, early.t_stop)
    assert abs(gap) < 1e-13  # the later run was at the target to its last digits
    scale = max(1.0, float(np.abs(state_of(tight)).max()))
    assert stop_time_agrees(problem, result, tight, AGREEMENT * (problem.rtol * scale + problem.atol), 1.0)
    check(problem)


def test_a_run_stopped_before_its_target_is_rejected():
    """On the same problem with the target 1.0, which the risk crosses steeply (about t = 0.0017), a run that
    is exact but stops 1e-6 early (100 times the time bound, its risk 3e-3 above the target where the root's
    bound allows 8e-5) is rejected by the stop-time check, not the state check."""
    problem = replace(stored_problem(FLOOR_PROBLEMS[0]), target_risk=1.0)
    tight = run(problem, reference=True)
    early_stop = tight.t_stop - 1e-6
    W, v = tight.dense(early_stop)
    stopped_early = replace(run(problem), t_stop=early_stop, W=W, v=v)
    gap, slope = risk_gap(problem, tight, early_stop)
    assert gap > 10 * slope * AGREEMENT * problem.rtol * max(1.0, float(np.abs(state_of(tight)).max()))
    with pytest.raises(AssertionError, match="stop time"):
        agreement(problem, stopped_early, tight)
