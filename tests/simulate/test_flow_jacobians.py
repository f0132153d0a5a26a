"""The analytic field Jacobians against central differences of the field in 40-digit mpmath.

Random problems: every loss, modes with active, inactive and sliding pairs, and data with repeated, rescaled and
opposite samples (merged into groups, :mod:`fls.simulate.flow.samples`). The reference differentiates the same
field in mpmath at 40 digits with a step of 1e-12 (truncation ~1e-24, roundoff ~1e-28 relative), so it is exact
to float64; the float64 Jacobian must match it to 1e-9 of the largest entry of its row plus 1e-9 relative.
"""

import mpmath
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.reference import mp_arithmetic
from fls.simulate.flow.spancoords import SpanCoordinates
from fls.theory.losses import LOSSES

DPS, STEP, PRECISION = 40, mpmath.mpf("1e-12"), 1e-9


def problem(seed: int, merge: str):
    """(U, rho, X, y, sign, pair states) of a small random problem; ``merge`` adds a repeated ('same'),
    rescaled ('scaled') or opposite ('opposite') copy of the first sample, or none ('none'). U is the row block
    (the directions, the first-layer weights or W(0)), rho the per-neuron numbers (log-norms or v)."""
    rng = np.random.default_rng(seed)
    m, n, d = rng.integers(1, 4), rng.integers(1, 5), rng.integers(1, 5)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = rng.choice([-1.0, 1.0], n)
    copies = {"same": 1.0, "scaled": 2.5, "opposite": -1.5}
    if merge in copies:
        X, y = np.vstack([X, copies[merge] * X[:1]]), np.append(y, rng.choice([-1.0, 1.0]))
    U, rho = rng.standard_normal((m, d)), rng.uniform(-3.0, 1.0, m)
    return U, rho, X, y, rng.choice([-1.0, 1.0], m), rng.integers(0, 3, (m, n))


def make_field(kind, X, y, sign, W0, pairs, arith):
    """(coordinates, weights) of the field of coordinates ``kind`` in ``arith``: pairs 0 inactive, 1 active, 2
    sliding (on the representatives, so pairs has one column per distinct surface)."""
    X_a, y_a = arith.convert(X), arith.convert(y)
    if kind == "log":
        coords = LogCoordinates(X_a, y_a, 1.3, sign, arith)
    elif kind == "span":
        coords = SpanCoordinates(X_a, y_a, 1.3, W0, arith)
    else:
        coords = PlainCoordinates(X_a, y_a, 1.3, len(sign), arith)
    pairs = pairs[:, : coords.n]
    if pairs.shape[1] < coords.n:
        pairs = np.pad(pairs, ((0, 0), (0, coords.n - pairs.shape[1])), constant_values=1)
    mode = Mode(pairs == 1, pairs == 2)
    return coords, SlidingWeights(mode, coords.X @ coords.X.T, arith)


def central_differences(kind, loss, X, y, sign, W0, pairs, Y) -> np.ndarray:
    """The Jacobian of the field at Y by central differences in mpmath (float64 result)."""
    with mpmath.workdps(DPS):
        arith = mp_arithmetic(loss, DPS)
        coords, weights = make_field(kind, X, y, sign, W0, pairs, arith)
        Y_mp = arith.convert(Y)
        columns = []
        for k in range(len(Y)):
            shift = np.zeros(len(Y), dtype=object)
            shift[:] = mpmath.mpf(0)
            shift[k] = STEP
            ahead, behind = coords.rhs(Y_mp + shift, weights), coords.rhs(Y_mp - shift, weights)
            columns.append((ahead - behind) / (2 * STEP))
        return np.asarray(np.stack(columns, axis=1), dtype=np.float64)


def state(kind, coords, U, rho) -> np.ndarray:
    """A state of ``coords``: (U, rho) in log and plain coordinates, (Lambda, rho) with a Lambda of the same
    draw in span coordinates (U is W(0) there)."""
    if kind == "span":
        U = np.resize(U.ravel(), (len(rho), coords.n))
    return np.concatenate([U.ravel(), rho])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 100_000),
    st.sampled_from(["log", "span", "plain"]),
    st.sampled_from(LOSSES),
    st.sampled_from(["none", "same", "scaled", "opposite"]),
)
def test_analytic_jacobian_matches_high_precision_differences(seed, kind, loss, merge):
    U, rho, X, y, sign, pairs = problem(seed, merge)
    coords, weights = make_field(kind, X, y, sign, U, pairs, float_arithmetic(loss))
    Y = state(kind, coords, U, rho)
    J = coords.jacobian(Y, weights, loss)
    expected = central_differences(kind, loss, X, y, sign, U, pairs, Y)
    scale = np.abs(expected).max(axis=1, keepdims=True)
    assert np.all(np.abs(J - expected) <= PRECISION * (scale + np.abs(expected)) + 1e-300)
