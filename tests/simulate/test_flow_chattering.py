"""Accumulating events: runs that advanced by a fraction of a step per event (docs/flow.md, "Robustness").

The problems were found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py) and are stored
as they were drawn (tests/simulate/data/):

- ``alternating_kept_pairs``: DOP853 at rtol 1e-11, squared loss, n = 3, d = 16, m = 38, antisymmetric init.
  Neurons 18 and 19 (one antisymmetric pair, nearly aligned) touch one surface together and both stay active;
  in the next piece one of them dips below it within the first step (the dense output's error), so only that
  column grazed, and at the next event the other dipped: about 10 000 events in t <= 1, each crossing one of
  the two pairs in turn and changing nothing, 32 s where the run now takes about 1 s.
"""

from fls.simulate.flow import integrate_flow
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check


def test_two_aligned_neurons_that_dip_in_turn_both_graze():
    """Both kept pairs graze after one of them dips, and keep grazing: 34 events where there were 9802 (and 24
    sliding entries and exits of the two neurons where there were 48), in agreement with the tight run."""
    problem = stored_problem("alternating_kept_pairs")
    result = integrate_flow(
        problem.W,
        problem.v,
        problem.X,
        problem.y,
        loss=problem.loss,
        target_risk=problem.target_risk,
        t_max=problem.t_max,
        rtol=problem.rtol,
        atol=problem.atol,
        method=problem.method,
        coords=problem.coords,
        save_at=[0.0],
            )
    assert result.status == "t_max"
    assert result.info["events"] < 100, result.info["events"]
    check(problem)
