"""Exits from sliding that a run and its 100x tighter reference used to take differently (docs/flow.md,
"Robustness"). The problems were found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py)
and are stored as they were drawn (tests/simulate/data/):

- ``exit_cross_order``: RK45, m = 1, exponential loss. Pair (0, 9) slides on a surface that has turned
  repelling; at t = 1.0829 pair (0, 14) crosses, after which both one-sided rates of (0, 9) point to its
  active side. The selection sent it to the inactive side (the bound of its clipped weight, right for an
  attracting surface only); the reference then saw it leave that side the wrong way and crossed at the same
  instant, the run's root finder located that crossing one sample interval (0.018) late: 8.1 times the
  suite's bound at amplification 0.8.
- ``mu_pole``: DOP853 at rtol 1e-11, logistic loss, m = 35, span coordinates. Sample 2 merges x with y = +1
  and -1: its jump s = tanh(f / 2) passes through 0 at t = 0.3579 while pair (30, 2) slides, and its weight
  mu = z / s has a pole there. mu reaches 1 at t = 0.35693 first, and 1 - mu plunged to -inf and came back
  from +inf between two samples of one step (0.086, then 1.41): the exit was located at the pole, 1e-3 late
  (1.14 times the suite's bound).
"""

import pytest

from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run


def test_a_pair_on_a_surface_turned_repelling_leaves_to_the_side_its_rates_point_to():
    """Pair (0, 9) leaves sliding to the active side at the instant (0, 14) crosses, in the run as in the
    reference, and the two agree."""
    problem = stored_problem("exit_cross_order")
    log = run(problem, record_events=True).info["event_log"]
    exit_time = log["t"][(log["sample"] == 9) & (log["kind"] == "leave_sliding")][0]
    later = (log["sample"] == 9) & (log["t"] > exit_time) & (log["t"] < 2.0)
    assert not later.any(), log["t"][later]
    check(problem)


def test_a_weight_that_reaches_1_just_before_its_pole_leaves_there():
    """Pair (30, 2) leaves sliding where mu = 1 (t = 0.356934, as in the reference), not at the pole."""
    problem = stored_problem("mu_pole")
    log = run(problem, record_events=True).info["event_log"]
    exits = log["t"][(log["neuron"] == 30) & (log["sample"] == 2) & (log["kind"] == "leave_sliding")]
    assert len(exits) == 1 and exits[0] == pytest.approx(0.35693362, abs=1e-7)
    check(problem)
