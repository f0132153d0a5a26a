"""Accumulating events: runs that advanced by a fraction of a step per event (docs/flow.md, "Robustness").

The problems were found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py) and are stored
as they were drawn (tests/simulate/data/):

- ``alternating_kept_pairs``: DOP853 at rtol 1e-11, squared loss, n = 3, d = 16, m = 38, antisymmetric init.
  Neurons 18 and 19 (one antisymmetric pair, nearly aligned) touch one surface together and both stay active;
  in the next piece one of them dips below it within the first step (the dense output's error), so only that
  column grazed, and at the next event the other dipped: about 10 000 events in t <= 1, each crossing one of
  the two pairs in turn and changing nothing, 32 s where the run now takes about 1 s.
- ``two_surfaces_of_one_neuron``: DOP853, span coordinates, squared loss, small init (|w| ~ 1e-4). Neuron 3 is
  on two surfaces, one pair kept active and one kept inactive, and they dipped in turn: 35 000 events a time
  unit at steps of 0.84 (1215 events, t = 3.04 after 20 s; the run to t_max = 6.1 now takes 0.5 s).
- ``sliding_weights_in_turn``: DOP853 at rtol 9e-7, squared loss, n = 19, d = 28, m = 30. Neurons 18 and 22
  slide on one surface; each weight in turn reached 0, its pair left sliding, came back across and slid again,
  while the other's weight reached 0: three events per 4e-9 of time at t = 4.84 (an accumulation the run never
  got through). The tests stop it at t = 5, past that stretch.
"""

from dataclasses import replace

import pytest

from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

#: Where the tests stop ``sliding_weights_in_turn`` (its own t_max, 13.6, costs the tight run 6 s more).
TURNS_T_MAX = 5.0


@pytest.mark.parametrize(
    ("name", "t_max", "status", "most_events"),
    [
        ("alternating_kept_pairs", None, "t_max", 100),  # 34 events, where there were 9802
        ("two_surfaces_of_one_neuron", None, "not_reached", 100),  # 31, where there were 35 000 a time unit
        ("sliding_weights_in_turn", TURNS_T_MAX, "not_reached", 400),  # about 160; it stalled at t = 4.84
    ],
)
def test_contacts_that_dip_in_turn_graze_together(name, t_max, status, most_events):
    """Every contact that comes back to its bound within a step of the event that left it there grazes, and
    keeps grazing while its pair keeps its side: a few events where there were thousands a time unit, and
    agreement with the tight run."""
    problem = stored_problem(name)
    if t_max is not None:
        problem = replace(problem, t_max=t_max)
    result = run(problem)
    assert result.status == status
    assert result.info["events"] < most_events, result.info["events"]
    check(problem)
