"""The field of a mode in plain and log-norm coordinates and its Jacobian."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulate.flow.arithmetic import float_arithmetic
from simulate.flow.coords import PlainCoordinates
from simulate.flow.logcoords import LogCoordinates
from simulate.flow.modes import Mode, SlidingWeights, project_onto_surfaces
from theory import vector_field

LOSS = st.sampled_from(["logistic", "squared"])  # squared: a sample factor that changes sign


def network(seed: int, m: int = 5, n: int = 7, d: int = 4, balanced: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = rng.choice([-1.0, 1.0], n)
    W = rng.standard_normal((m, d))
    v = rng.choice([-1.0, 1.0], m) * np.linalg.norm(W, axis=1) if balanced else rng.standard_normal(m)
    return W, v, X, y


def sign_mode(W, X):
    P = W @ X.T
    return Mode(P > 0, np.zeros_like(P, dtype=bool))


@given(st.integers(0, 100_000), LOSS, st.floats(0.25, 4.0))
def test_plain_mode_field_is_the_derived_field_on_its_region(seed, loss, c):
    W, v, X, y = network(seed)
    arith = float_arithmetic(loss)
    coords = PlainCoordinates(X, y, c, len(v), arith)
    weights = SlidingWeights(sign_mode(W, X), X @ X.T, arith)
    dW, dv = vector_field(W, v, X, y, c=c, loss=loss)
    expected = np.concatenate([dW.ravel(), dv])
    assert np.allclose(
        coords.rhs(coords.pack(W, v), weights), expected, rtol=1e-13, atol=1e-14 * np.abs(expected).max()
    )


@given(st.integers(0, 100_000), st.floats(1e-12, 10.0))
def test_log_coordinates_give_the_same_flow_by_the_chain_rule(seed, alpha):
    """W' = e^rho (rho' u + u'), v' = sign e^rho rho' for balanced neurons, at any scale alpha."""
    W, v, X, y = network(seed, balanced=True)
    W, v = alpha * W, alpha * v
    arith = float_arithmetic("logistic")
    coords = LogCoordinates(X, y, 1.0, np.sign(v), arith)
    weights = SlidingWeights(sign_mode(W, X), X @ X.T, arith)
    Y = coords.pack(W, v)
    W_back, v_back = coords.network(Y)
    assert np.allclose(W_back, W, rtol=1e-14) and np.allclose(v_back, v, rtol=1e-14)
    dY = coords.rhs(Y, weights)
    m, d = W.shape
    dU, drho = dY[: m * d].reshape(m, d), dY[m * d :]
    scale = np.linalg.norm(W, axis=1)
    dW, dv = vector_field(W, v, X, y)
    U = W / scale[:, None]
    assert np.allclose(
        scale[:, None] * (drho[:, None] * U + dU), dW, rtol=1e-12, atol=1e-13 * np.abs(dW).max()
    )
    assert np.allclose(np.sign(v) * scale * drho, dv, rtol=1e-12, atol=1e-13 * np.abs(dv).max())


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_analytic_jacobian_matches_finite_differences_with_a_sliding_pair(loss):
    W, v, X, y = network(3)
    W[0] = project_onto_surfaces(W[0], X[[2]], float_arithmetic(loss))
    active = W @ X.T > 0
    sliding = np.zeros_like(active)
    sliding[0, 2], active[0, 2] = True, False
    arith = float_arithmetic(loss)
    coords = PlainCoordinates(X, y, 1.5, len(v), arith)
    weights = SlidingWeights(Mode(active, sliding), X @ X.T, arith)
    Y = coords.pack(W, v)
    J = coords.jacobian(Y, weights, loss)
    h = 1e-6
    numeric = np.stack(
        [(coords.rhs(Y + h * e, weights) - coords.rhs(Y - h * e, weights)) / (2 * h) for e in np.eye(len(Y))],
        axis=1,
    )
    assert np.allclose(J, numeric, rtol=1e-6, atol=1e-8)
