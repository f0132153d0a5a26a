"""Exits from sliding that a run and its 100x tighter reference used to take differently (docs/flow.md,
"Robustness"). The problems were found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py)
and are stored as they were drawn (tests/simulate/data/):

- ``exit_cross_order``: RK45, m = 1, exponential loss. Pair (0, 9) slides on a surface that has turned
  repelling; at t = 1.0829 pair (0, 14) crosses, after which both one-sided rates of (0, 9) point to its
  active side. The selection sent it to the inactive side (the bound of its clipped weight, right for an
  attracting surface only); the reference then saw it leave that side the wrong way and crossed at the same
  instant, the run's root finder located that crossing one sample interval (0.018) late: 8.1 times the
  suite's bound at amplification 0.8.
"""

import numpy as np

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
