"""The field of a mode in plain, log-norm and data-span coordinates, and its Jacobian."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import Mode, SlidingWeights, project_onto_surfaces
from fls.simulate.flow.spancoords import SpanCoordinates
from fls.theory import vector_field
from fls.theory.compiled import compile_field

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


@given(st.integers(0, 100_000), LOSS, st.floats(0.25, 4.0))
def test_span_coordinates_give_the_plain_field_state_and_guards(seed, loss, c):
    """W = W(0) + Lambda X: the field maps to the derived one (dW = dLambda X), and the invariant, cosines,
    projections and step polynomials equal the plain coordinates' at the mapped state."""
    rng = np.random.default_rng(seed)
    W0, v, X, y = network(seed, n=4, d=7)
    arith = float_arithmetic(loss)
    span = SpanCoordinates(X, y, c, W0, arith)
    plain = PlainCoordinates(X, y, c, len(v), arith)
    m, n = len(v), len(y)
    Lambda = rng.standard_normal((m, n))
    W = W0 + Lambda @ X
    Y = np.concatenate([Lambda.ravel(), v])
    assert span.size == m * (n + 1) and np.allclose(span.pack(W, v), Y, rtol=1e-10, atol=1e-12)
    W_back, v_back = span.network(Y)
    assert np.allclose(W_back, W, rtol=1e-13, atol=1e-14) and np.array_equal(v_back, v)
    weights = SlidingWeights(sign_mode(W, X), X @ X.T, arith)
    dY = span.rhs(Y, weights)
    dW, dv = vector_field(W, v, X, y, c=c, loss=loss)
    assert np.allclose(dY[: m * n].reshape(m, n) @ X, dW, rtol=1e-12, atol=1e-13 * np.abs(dW).max())
    assert np.allclose(dY[m * n :], dv, rtol=1e-12, atol=1e-13 * np.abs(dv).max())
    Y_plain = plain.pack(W, v)
    assert np.allclose(span.invariant(Y), plain.invariant(Y_plain), rtol=1e-11, atol=1e-12)
    assert np.allclose(span.cosines(Y), plain.cosines(Y_plain), rtol=1e-11, atol=1e-12)
    assert span.cosine(Y, 1, 2) == pytest.approx(plain.cosine(Y_plain, 1, 2), rel=1e-11, abs=1e-12)
    for j, samples in ((1, np.array([0, 2])), (3, np.array([1]))):
        span.project(Y, j, samples)
        plain.project(Y_plain, j, samples)
        assert np.allclose(span.network(Y)[0], plain.network(Y_plain)[0], rtol=1e-11, atol=1e-12)
        assert np.allclose(span.cosines(Y)[j, samples], 0.0, atol=1e-12)
    C_span = rng.standard_normal((4, span.size))
    C_plain = np.concatenate(  # the same polynomial trajectory in plain coordinates
        [
            np.concatenate(
                [W0.ravel() * (k == 0) + (C_span[k, : m * n].reshape(m, n) @ X).ravel(), C_span[k, m * n :]]
            )
            for k in range(4)
        ]
    )
    for got, expected in zip(
        span.polynomial_parts(C_span), plain.polynomial_parts(C_plain.reshape(4, -1)), strict=True
    ):
        assert np.allclose(got, expected, rtol=1e-11, atol=1e-11)


def merged_network(seed: int, m: int = 5, d: int = 4):
    """A network on 9 samples of which 5 repeat or are multiples (positive and negative) of the first 4."""
    W, v, X, y = network(seed, m=m, n=4, d=d)
    rng = np.random.default_rng(seed + 1)
    X = np.concatenate([X, X[[0]], 2.5 * X[[1]], -X[[2]], -0.5 * X[[1]], 3 * X[[3]]])
    return W, v, X, np.concatenate([y, rng.choice([-1.0, 1.0], 5)])


@given(st.integers(0, 100_000), LOSS)
def test_merged_samples_give_the_derived_field_in_every_coordinate_system(seed, loss):
    """Repeated and collinear samples are integrated on their 4 distinct surfaces; the field is unchanged."""
    W, v, X, y = merged_network(seed)
    v = np.sign(v) * np.linalg.norm(W, axis=1)  # balanced, for the log coordinates
    arith = float_arithmetic(loss)
    dW, dv = vector_field(W, v, X, y, loss=loss)
    m, d = W.shape
    for coords in (
        PlainCoordinates(X, y, 1.0, m, arith),
        SpanCoordinates(X, y, 1.0, W, arith),
        LogCoordinates(X, y, 1.0, np.sign(v), arith),
    ):
        assert coords.n == 4 and coords.samples.opposite
        weights = SlidingWeights(sign_mode(W, coords.X), coords.X @ coords.X.T, arith)
        Y = coords.pack(W, v)
        assert np.allclose(coords.output(Y, weights), (v @ np.maximum(W @ X.T, 0.0)), rtol=1e-12, atol=1e-13)
        dY = coords.rhs(Y, weights)
        if coords.name == "log":
            scale = np.linalg.norm(W, axis=1)
            dU, drho = dY[: m * d].reshape(m, d), dY[m * d :]
            got_W = scale[:, None] * (drho[:, None] * W / scale[:, None] + dU)
            got_v = np.sign(v) * scale * drho
        elif coords.name == "span":
            got_W, got_v = dY[: m * 4].reshape(m, 4) @ coords.X, dY[m * 4 :]
        else:
            got_W, got_v = dY[: m * d].reshape(m, d), dY[m * d :]
        assert np.allclose(got_W, dW, rtol=1e-11, atol=1e-12 * np.abs(dW).max())
        assert np.allclose(got_v, dv, rtol=1e-11, atol=1e-12 * np.abs(dv).max())


def test_sliding_on_a_surface_shared_by_opposite_samples_keeps_the_motion_tangent():
    """One weight mu for the whole group: the opposite samples get 1 - mu, and <w_0', x_1> = 0."""
    W, v, X, y = merged_network(7)
    arith = float_arithmetic("logistic")
    coords = PlainCoordinates(X, y, 1.0, len(v), arith)
    W[0] = project_onto_surfaces(W[0], coords.X[[1]], arith)
    active = W @ coords.X.T > 0
    sliding = np.zeros_like(active)
    sliding[0, 1], active[0, 1] = True, False
    weights = SlidingWeights(Mode(active, sliding), coords.X @ coords.X.T, arith)
    Y = coords.pack(W, v)
    dW = coords.rhs(Y, weights)[: W.size].reshape(W.shape)
    assert abs(dW[0] @ coords.X[1]) < 1e-13 * np.linalg.norm(dW[0])
    S, N = coords.sample_factors(coords.output(Y, weights))
    mu = weights.mu(S, N)[0]
    # the same velocity from every sample's own gate: mu on the group's samples along x_1, 1 - mu on the others
    s = compile_field("logistic").sample_factor(coords.output(Y, weights), y)
    gates = (W[0] @ X.T > 0).astype(float)
    along = np.isclose(np.abs(X @ coords.X[1]), np.linalg.norm(X, axis=1) * np.linalg.norm(coords.X[1]))
    positive = X @ coords.X[1] > 0
    gates[along] = np.where(positive[along], mu, 1 - mu)
    expected = v[0] * (s * gates) @ X / len(y)
    assert np.allclose(dW[0], expected, rtol=1e-12, atol=1e-14)


@given(st.integers(0, 100_000), LOSS)
def test_span_invariant_after_outputs_is_the_fresh_one_and_never_stale(seed, loss):
    """The invariant reads the product Lambda K that output kept at the same state: bitwise the one formed
    afresh (and the outputs bitwise the parts' ones); after the state's rows change in place it is formed anew."""
    W, v, X, y = network(seed)
    arith = float_arithmetic(loss)
    span = SpanCoordinates(X, y, 1.0, W, arith)
    Y = span.pack(W, v)
    assert not Y[: span.m * span.n].any()  # the start: Lambda = 0
    Y[: span.m * span.n] = np.random.default_rng(seed).standard_normal(span.m * span.n)
    weights = SlidingWeights(sign_mode(span.network(Y)[0], span.X), span.X @ span.XT, arith)
    fresh = SpanCoordinates(X, y, 1.0, W, arith)
    D, amp, _ = fresh.parts(Y)
    assert np.array_equal(span.output(Y, weights), fresh.output_of_parts(D, amp, weights))
    assert np.array_equal(span.invariant(Y), fresh.invariant(Y))
    Y[0] += 1.0  # the same array, another state
    assert np.array_equal(span.invariant(Y), fresh.invariant(Y))
