"""The sample factors' own precision and the pairs whose jump it does not resolve (simulate/flow/roundoff.py;
docs/flow.md, "Robustness").

The stored problem was found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py) and is
kept as it was drawn (tests/simulate/data/):

- ``factors_at_roundoff``: RK45 in plain coordinates, squared loss, m = 22, rtol 8.1e-11. Its reference
  (DOP853 at 100 times tighter tolerances, handed to Radau at t = 14.7) reaches an equilibrium where the data
  are fitted to roundoff: sample factors of 7e-16, a field of 1e-13. Pair (11, 6) slid with a weight that the
  selection put at 0.031 and the piece's sliding map at -0.2 (both from factors that are a few roundoffs), so
  its lower bound was an event at once, 201 times at t = 19.61, after 53 s of Radau steps at that equilibrium.
"""

import numpy as np
import pytest

from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.modes import ACTIVE, INACTIVE, SLIDING, select_neuron_mode
from fls.simulate.flow.roundoff import float_factors
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check

EPS = float(np.finfo(np.float64).eps)


def coordinates_for(loss: str, y: np.ndarray):
    """Plain coordinates of a small network on 6 distinct samples in 3-d with targets y (6,)."""
    rng = np.random.default_rng(3)
    X, W = rng.standard_normal((6, 3)), rng.standard_normal((4, 3))
    v = np.linalg.norm(W, axis=1)
    return make_coordinates("plain", W, v, X, y, 1.0, float_arithmetic(loss))


@pytest.mark.parametrize("loss", ["squared", "exponential"])
def test_the_factors_precision_is_their_change_under_one_rounding_of_the_outputs(loss):
    """Against the loss's derivative: |ds / df| eps |f|, that is eps |f| for the squared loss (s = y - f, a fit
    at |f| ~ 1: 2.2e-16 where s itself is 1e-15) and eps |f| |s| for the exponential loss (s = y exp(-y f)), to
    within a factor 2 (each output moves by one unit in its last place, between eps |f| / 2 and eps |f|)."""
    rng = np.random.default_rng(7)
    y = rng.choice([-1.0, 1.0], 6)
    coords = coordinates_for(loss, y)
    if loss == "squared":
        f = y * (1 + 1e-15 * rng.uniform(1, 5, 6))
    else:
        f = rng.uniform(4.0, 8.0, 6) * rng.choice([-1.0, 1.0], 6)
    s, offset, errors = float_factors(coords, f, *coords.sample_factors(f))
    assert offset is None
    derivative = np.ones(6) if loss == "squared" else np.abs(s)
    expected = derivative * EPS * np.abs(f)
    assert np.all(errors >= 0.4 * expected) and np.all(errors <= 2.0 * expected), errors / expected


def test_a_pair_whose_jump_its_rates_errors_exceed_does_not_slide():
    """Sample 0 (x = e_1, attracting jump 0.5) has the weight 0.3 from sample 1's rate 0.15: it slides with exact
    factors, and not once the factors are known only to 1 (a rate resolution of 2.1 > the jump). Its rates,
    0.15 and 0.15 - 0.5, are then within the resolution too, so no side is fixed by the data: it takes the side
    its caller prefers (the engine: the side its rate pointed to, inactive for a rate without a sign)."""
    X = np.array([[1.0, 0.0], [0.5, 1.0]])
    s = np.array([-0.5, 0.3])
    side = np.array([SLIDING, ACTIVE], dtype=np.int8)
    args = (X, s, 1.0, side, np.array([0]), side.copy())
    assert select_neuron_mode(*args)[0] == SLIDING
    assert select_neuron_mode(*args, factor_errors=np.zeros(2))[0] == SLIDING
    for preferred in (ACTIVE, INACTIVE):
        prefer = np.array([preferred, ACTIVE], dtype=np.int8)
        assert select_neuron_mode(X, s, 1.0, side, np.array([0]), prefer, factor_errors=np.ones(2))[0] == preferred


def test_a_reference_at_an_equilibrium_below_the_factors_precision_reaches_t_max():
    check(stored_problem("factors_at_roundoff"))
