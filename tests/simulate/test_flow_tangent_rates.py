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

from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.modes import ACTIVE, INACTIVE, select_neuron_mode
from fls.simulate.flow.roundoff import float_factors
from fls.simulate.flow.tangent_rates import rate_resolution, rate_scale, resolved
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run

EPS = float(np.finfo(np.float64).eps)


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
    assert (error <= rate_resolution(norms, rate_scale(s, offset, norms))).all()


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
    resolution = rate_resolution(np.sqrt(np.einsum("ij,ij->i", X, X))[1], rate_scale(s, None, np.ones(2)))
    X, s, side = one_neuron_at_a_repelling_surface(1e3 * float(resolution))
    assert select_neuron_mode(X, s, 1.0, side, np.array([1]), side.copy())[1] == ACTIVE
    assert resolved(np.array([0.5 * resolution, 2 * resolution]), resolution).tolist() == [0.0, 2 * resolution]


def exact_factor(loss: str, f: mpmath.mpf, y: float) -> mpmath.mpf:
    """-l'(y f) y at an exact output f, in the working precision: the margin losses' and the squared loss's."""
    if loss == "logistic":
        return y / (1 + mpmath.exp(y * f))
    if loss == "exponential":
        return y * mpmath.exp(-y * f)
    return y - f


def rates_and_exact_rates(loss: str, X: np.ndarray, y: np.ndarray, f: np.ndarray, shift: np.ndarray, gates):
    """The engine's rates <X^T (s . gates), x_i> from the float outputs f, with s and their precision e from
    :func:`float_factors`, and the same rates in 50 digits from the exact outputs f + shift (shift: within half
    a unit in the last place of f, so f is the exact outputs rounded)."""
    n, d = X.shape
    # the factors depend on f and y only: coordinates on n distinct directions, so no samples are merged
    arithmetic = float_arithmetic(loss)
    coords = make_coordinates("plain", np.ones((2, n)), np.sqrt(n) * np.ones(2), np.eye(n), y, 1.0, arithmetic)
    s, offset, errors = float_factors(coords, f, *coords.sample_factors(f))
    assert offset is None
    rates = (X.T @ (s * gates)) @ X.T
    with mpmath.workdps(50):
        q = [exact_factor(loss, mpmath.mpf(float(f[k])) + mpmath.mpf(float(shift[k])), float(y[k])) * float(gates[k])
             for k in range(n)]  # fmt: skip
        h = [mpmath.fsum(q[k] * float(X[k, c]) for k in range(n)) for c in range(d)]
        exact = np.array([float(mpmath.fsum(h[c] * float(X[i, c]) for c in range(d))) for i in range(n)])
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return rates, exact, rate_resolution(norms, rate_scale(s, None, norms, errors))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 12),
    st.integers(1, 8),
    st.sampled_from(["logistic", "exponential", "squared"]),
    st.booleans(),
)
def test_the_rates_resolution_bounds_their_error_from_rounded_outputs(seed, n, d, loss, near_fit):
    """The resolution (1), arithmetic and factors' precision together, bounds the error of the rates computed
    from the outputs rounded to float64, against the rates of the exact outputs in 50 digits: margin losses at
    outputs up to 30 (factors up to 1e13), the squared loss anywhere or fitted to a few roundoffs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-2, 2, size=(n, 1))
    y = rng.choice([-1.0, 1.0], n)
    if loss == "squared" and near_fit:
        f = y * (1 + rng.integers(-8, 9, n) * EPS)
    else:
        f = rng.uniform(-30, 30, n) * 10.0 ** rng.uniform(-3, 0, n)
    shift = rng.uniform(-0.5, 0.5, n) * np.spacing(np.abs(f))
    gates = rng.uniform(0, 1, n) * (rng.uniform(size=n) < 0.7)
    rates, exact, resolution = rates_and_exact_rates(loss, X, y, f, shift, gates)
    assert np.all(np.abs(rates - exact) <= resolution)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12), st.integers(1, 8))
def test_the_rates_resolution_is_within_a_factor_4_of_the_error_where_the_factors_errors_add_up(seed, n, d):
    """Collinear samples (all on one ray, so every <x_k, x_i> > 0), the squared loss fitted to a few
    roundoffs (f_k = 1 + m_k eps, s_k = -m_k eps), every gate 1, and exact outputs 0.49 of a unit in the last
    place above the rounded ones: each factor's error adds to every rate, and the resolution, whose
    factors' part is one unit in the last place per factor, is at most 4 times the error met (about 2)."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(d)
    X = np.outer(10.0 ** rng.uniform(-1, 1, n), direction / np.linalg.norm(direction))
    y = np.ones(n)
    f = 1 + rng.integers(1, 9, n) * EPS
    rates, exact, resolution = rates_and_exact_rates("squared", X, y, f, 0.49 * np.spacing(f), np.ones(n))
    error = np.abs(rates - exact)
    assert np.all(error <= resolution) and np.all(resolution <= 4 * error)
