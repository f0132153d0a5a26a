"""Rates at a surface that are zero to roundoff (docs/flow.md, "Robustness", "A tangent rate of zero").

``dead_neuron_repelling_surface`` (tests/simulate/data/, stored as the stress suite's slow tier drew it:
DOP853 in data-span coordinates, squared loss, n = 11 merged to 6 surfaces, d = 10, m = 36): neurons 27 and
29 have no active sample from t = 2.28 on (field 0) and sit on the surface of sample 10, whose jump turns
repelling near t = 4.3. Staying and leaving are both Filippov solutions there; leaving was decided by the sign
of a rate that is roundoff of 0, at whichever event touched the pair: the run left at t = 4.3830, its
reference at 4.6573, 12.5 times the suite's bound apart at amplification 1.63.
"""

import mpmath
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow.modes import ACTIVE, INACTIVE, select_neuron_mode
from fls.simulate.flow.tangent_rates import rate_resolution, resolved, terms_size
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run


def test_a_dead_neuron_on_a_repelling_surface_agrees_with_its_reference():
    check(stored_problem("dead_neuron_repelling_surface"))


def test_a_dead_neuron_stays_on_its_surface_at_every_tolerance():
    """The minimal-norm solution (velocity 0): no transition of the two neurons at sample 10 after t = 3, at
    the run's tolerances and at the reference's; before, the run crossed at t = 4.3830 (at rtol 1.5053e-9,
    atol 5.69e-11) and the reference at t = 4.6573."""
    problem = stored_problem("dead_neuron_repelling_surface")
    for result in (run(problem, record_events=True), run(problem, reference=True, record_events=True)):
        log = result.info["event_log"]
        late = (log["t"] > 3.0) & np.isin(log["neuron"], (27, 29)) & (log["sample"] == 10)
        assert not late.any(), log["t"][late]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 12),
    st.integers(1, 8),
    st.booleans(),
)
def test_a_rate_is_computed_within_its_resolution(seed, n, d, merged):
    """The engine's rate sign(v) <X^T q, x_i> (float64) against the same sum in 50 digits: the difference is
    within rate_resolution, for gates in [0, 1] and offsets of merged opposite samples."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-2, 2, size=(n, 1))
    s = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 2, size=n)
    offset = rng.standard_normal(n) if merged else None
    gates = rng.uniform(0, 1, n) * (rng.uniform(size=n) < 0.7)
    q = s * gates + (0.0 if offset is None else offset)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    rates = (X.T @ q) @ X.T
    with mpmath.workdps(50):
        Xm = mpmath.matrix(X.tolist())
        qm = [mpmath.mpf(float(s[k])) * mpmath.mpf(float(gates[k])) for k in range(n)]
        if offset is not None:
            qm = [qm[k] + mpmath.mpf(float(offset[k])) for k in range(n)]
        h = [mpmath.fsum(qm[k] * Xm[k, c] for k in range(n)) for c in range(d)]
        exact = [mpmath.fsum(h[c] * Xm[i, c] for c in range(d)) for i in range(n)]
    error = np.abs(rates - np.array([float(e) for e in exact]))
    assert (error <= rate_resolution(norms, terms_size(s, offset, norms))).all()


def one_neuron_at_a_repelling_surface(tiny_rate: float):
    """Samples x_0 (active, s_0 = 1) and x_1, at cosine ``tiny_rate`` to x_0 (the rate of pair (j, 1) on its
    inactive side is tiny_rate, roundoff's size), whose jump points away: sign(v) s_1 > 0."""
    X = np.array([[1.0, 0.0], [tiny_rate, 1.0]])
    s = np.array([1.0, 0.5])
    side = np.array([ACTIVE, INACTIVE], dtype=np.int8)
    return X, s, side


@given(st.floats(-1e-15, 1e-15))
def test_a_rate_of_roundoff_size_keeps_the_side_the_pair_is_on(tiny_rate):
    """Inactive pair (j, 1) on a surface that repels on the active side, with an inactive-side rate of
    roundoff's size: it keeps its side whatever the sign of that roundoff (on the engine before, a positive
    one sent it across)."""
    X, s, side = one_neuron_at_a_repelling_surface(tiny_rate)
    new = select_neuron_mode(X, s, 1.0, side, np.array([1]), side.copy())
    assert new[1] == INACTIVE


def test_a_resolved_rate_still_takes_the_pair_across():
    """A rate 1e3 times its resolution decides the side as before: a pair whose inactive-side field points
    into the active side crosses."""
    X, s, side = one_neuron_at_a_repelling_surface(0.0)
    resolution = rate_resolution(np.sqrt(np.einsum("ij,ij->i", X, X))[1], terms_size(s, None, np.ones(2)))
    X, s, side = one_neuron_at_a_repelling_surface(1e3 * float(resolution))
    assert select_neuron_mode(X, s, 1.0, side, np.array([1]), side.copy())[1] == ACTIVE
    assert resolved(np.array([0.5 * resolution, 2 * resolution]), resolution).tolist() == [0.0, 2 * resolution]
