"""A neuron that reaches its origin where the flow is unique: it stays at w_j = 0 and cannot leave
(docs/flow.md, "A neuron at its origin" and "Limits").

``unique_stay_at_an_origin`` (tests/simulate/data/) was drawn by the slow tier (seeds 9321 and 9322): Radau in
data-span coordinates, squared loss, n = 12, d = 2, m = 37, rtol 2.4e-10, atol 8.4e-12, t_max = 6.03. Neuron 0
slides into w_0 = 0 and its events repeat there: the run at t = 3.496976559, its reference
(DOP853 in plain coordinates, 100x tighter) at t = 3.271723899. The independent certificate
(``origin_escape``) finds 0 in the convex hull of the neuron's sector fields and phi(u) > 0 in every sampled
direction (the largest -phi is -7e-5), so the Filippov solution is unique: the neuron stays at its origin,
frozen (relu(0) = 0 makes v_0' = 0). The engine freezes it there and goes on without it
(simulate/flow/freeze.py), and both runs reach t_max and agree.
"""

import numpy as np
import pytest

from fls.simulate.flow.origin import origin_contact as engine_contact
from fls.theory import compile_field
from tests.simulate.origin_escape import origin_contact, weight_scale
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

NAME = "unique_stay_at_an_origin"
#: The four axis samples of d = 2 around an origin: every direction u sees two of them.
AXES = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


@pytest.mark.parametrize(
    ("jump", "stays", "leaves"),
    [(-1.0, True, False), (1.0, True, True), (0.0, True, False)],
)
def test_the_two_answers_at_an_origin_of_four_axis_samples(jump: float, stays: bool, leaves: bool):
    """With v_j = 1 and every jump S_g = ``jump`` on the axis samples, the sector field of the quadrant of u is
    h(u) = jump (sign(u_1), sign(u_2)) and -phi(u) = jump (|u_1| + |u_2|): the four fields hold 0 in their hull
    whatever the jump; with jump < 0 they point into the origin and -phi < 0 everywhere (a unique stay), with
    jump > 0 they point out and -phi > 0 (stay or leave: not unique); with no jump there is no field."""
    contact = engine_contact(1.0, AXES, np.full(4, jump), None)
    assert (contact.stays, contact.leaves) == (stays, leaves)
    assert contact.not_unique == (stays and leaves)


def test_the_stored_runs_freeze_the_neuron_at_an_origin_where_it_stays():
    """The run and its reference both freeze neuron 0 at its origin and go on to t_max; at the state where
    each froze it, the engine's answers and the independent certificate agree: staying is a solution and
    leaving is not (a descent below -1e-5, far beyond its roundoff). From then on its row is w_0 = 0 and v_0
    does not move."""
    problem = stored_problem(NAME)
    for each in (run(problem), run(problem, reference=True)):
        assert each.status == "t_max", each.message
        stays = each.info["stays"]
        assert (
            stays["neuron"][0] == 0
            and f"neuron 0 stays at its origin w = 0 from t = {stays['t'][0]:.10g}" in each.message
        )
        frozen_at = float(stays["t"][0])
        W, v = each.dense(frozen_at)
        network = compile_field(problem.loss)
        s = network.sample_factor(network.output(W, v, problem.X), problem.y)
        certificate = origin_contact(
            W[0], float(v[0]), problem.X, s, weight_scale(problem.W, problem.v, each)
        )
        assert certificate.at_origin and certificate.stays and not certificate.leaves
        assert certificate.descent < -1e-5
        assert np.all(each.W[0] == 0.0) and each.v[0] == each.dense(0.5 * (frozen_at + problem.t_max))[1][0]


def test_the_stress_check_passes():
    check(stored_problem(NAME))
