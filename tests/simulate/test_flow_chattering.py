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

from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

#: Where the tests stop ``sliding_weights_in_turn`` (its own t_max, 13.6, costs the tight run 6 s more).
TURNS_T_MAX = 5.0


def test_two_aligned_neurons_that_dip_in_turn_both_graze():
    """Both kept pairs graze after one of them dips, and keep grazing: 34 events where there were 9802 (and 24
    sliding entries and exits of the two neurons where there were 48), in agreement with the tight run."""
    problem = stored_problem("alternating_kept_pairs")
    result = run(problem)
    assert result.status == "t_max"
    assert result.info["events"] < 100, result.info["events"]
    check(problem)


def test_two_surfaces_of_one_neuron_that_dip_in_turn_both_graze():
    """Both pairs of the neuron graze after one of them dips: 31 events to t_max where there were 35 000 a time
    unit, and agreement with the tight run."""
    problem = stored_problem("two_surfaces_of_one_neuron")
    result = run(problem)
    assert result.status == "not_reached"
    assert result.info["events"] < 100, result.info["events"]
    check(problem)


def test_sliding_weights_that_reach_their_bound_in_turn_slide_on():
    """A pair that left sliding through mu = 0 and is back on its surface in the next step slides on while its
    weight is within its resolution of 0 (the sliding mode its exits and returns accumulate to): about 160
    events to t = 5 where the run stalled at t = 4.84, and agreement with the tight run."""
    problem = replace(stored_problem("sliding_weights_in_turn"), t_max=TURNS_T_MAX)
    result = run(problem)
    assert result.status == "not_reached"
    assert result.info["events"] < 400, result.info["events"]
    check(problem)
