"""The derived and compiled vector field, with every option of the model (loss, real targets, hidden biases,
sample weights), against independent references (fls.testing: torch autograd on a network written directly in
torch, 40-digit central differences of an mpmath risk) and the exact structural facts of the model (homogeneity,
the conserved quantity v^2 - ||w||^2 - b^2, the (alpha, c) time rescaling)."""

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from fls.testing import assert_field_matches_autograd, assert_field_matches_mpmath, problems
from fls.theory import symbolic as S
from fls.theory.augment import augment_inputs, augment_weights
from fls.theory.compiled import compile_field, vector_field
from fls.theory.losses import as_sample_weight
from fls.theory.symbolic import LOSSES, derive


def field_of(problem):
    return vector_field(problem.W, problem.v, problem.X, problem.y, **problem.options())


def compiled_problem(problem):
    """(field, W, v, X, y, c, weights) of the problem in the compiled layout (rows (w_j, b_j) on (x_i, 1) with
    biases, theory.augment; normalized weights)."""
    p = problem
    W, X = (p.W, p.X) if p.b is None else (augment_weights(p.W, p.b), augment_inputs(p.X))
    weights = as_sample_weight(p.sample_weight, len(p.y))
    return compile_field(p.loss, p.b is not None), W, p.v, X, p.y, p.c, weights


@given(problems())
def test_field_equals_torch_autograd(problem):
    """Every loss, labels or real targets, biases or not, weights or not: relative error <= 1e-10."""
    assert_field_matches_autograd(field_of, problem)


@given(problems(max_m=4, max_d=4, max_n=6))
def test_field_equals_finite_differences_off_boundaries(problem):
    """Central differences at 40 digits with h = 1e-15: truncation ~h^2, rounding ~1e-40 / h, both far below
    the 1e-10 tolerance; valid when no pre-activation is within 1e-6 of an activation surface."""
    b = 0.0 if problem.b is None else problem.b
    assume(np.min(np.abs(problem.X @ problem.W.T + b)) > 1e-6)
    assert_field_matches_mpmath(field_of, problem)


@given(problems(), st.floats(0.01, 100.0))
def test_output_is_two_homogeneous(problem, lam):
    _, W, v, X, _, c, _ = compiled_problem(problem)
    field = compile_field()
    scale = lam**2 * c * (np.maximum(X @ W.T, 0.0) @ np.abs(v))  # size of the terms: the bound on rounding
    gap = field.output(lam * W, lam * v, X, c) - lam**2 * field.output(W, v, X, c)
    assert np.all(np.abs(gap) <= 1e-12 * scale)


@pytest.mark.parametrize("loss", LOSSES)
def test_symbolic_invariant_and_rescaling_vanish(loss):
    D = derive(loss)
    assert D.invariant_rate == 0
    assert D.rescaling_residual == sp.zeros(2, 1)


def test_derived_field_is_the_design_equation():
    D = derive("logistic")
    expected_sample = S.yi / (1 + sp.exp(S.f * S.yi))  # r_i y_i with r_i = 1 / (1 + exp(y_i f_i))
    assert sp.simplify(D.factors_W[2].rewrite(sp.exp) - expected_sample) == 0
    assert D.factors_W[1] == sp.Heaviside(S.P, 0)
    assert sp.simplify(D.factors_W[0] - S.c * S.vp / S.n) == 0  # w_j' = (c / n) v_j sum_i ...
    assert sp.simplify(D.factors_v[0] - S.c / S.n) == 0 and D.factors_v[1] == S.ReLU(S.P)


def test_relu_derivative_at_zero_is_zero():
    # a neuron exactly on the surface of sample 0 gets no pull from it
    W = np.array([[1.0, 0.0]])
    v = np.array([1.0])
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([1.0, 1.0])
    dW, _ = vector_field(W, v, X, y)
    assert dW[0, 1] == 0.0


def rk4_step(field, W, v, X, y, c, h, weights=None):
    """One classical RK4 step on the compiled field."""
    k1 = field.field(W, v, X, y, c, weights=weights)
    k2 = field.field(W + h / 2 * k1[0], v + h / 2 * k1[1], X, y, c, weights=weights)
    k3 = field.field(W + h / 2 * k2[0], v + h / 2 * k2[1], X, y, c, weights=weights)
    k4 = field.field(W + h * k3[0], v + h * k3[1], X, y, c, weights=weights)
    return W + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]), v + h / 6 * (
        k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]
    )


def rk4(field, W, v, X, y, c, h, steps, weights=None):
    for _ in range(steps):
        W, v = rk4_step(field, W, v, X, y, c, h, weights)
    return W, v


@given(problems(max_m=6, max_d=5, max_n=8))
def test_invariant_conserved_along_fine_rk4(problem):
    """v_j^2 - ||w_j||^2 - b_j^2 is constant (to 1e-12): checked on the smooth part of the trajectory (until the
    first activation change, where a method without event handling loses its order; the flow engine handles
    those). With biases W holds the rows (w_j, b_j), so ||w_j||^2 below includes b_j^2."""
    field, W, v, X, y, c, weights = compiled_problem(problem)
    q0 = v**2 - (W**2).sum(1)
    scale = max(1.0, (v**2).max(), (W**2).sum(1).max())  # tolerance relative to the size of each side
    x_norm = np.linalg.norm(X, axis=1).max()
    for _ in range(250):
        dW, dv = field.field(W, v, X, y, c, weights=weights)
        rate = np.sqrt((dW**2).sum() + (dv**2).sum()) / np.sqrt((W**2).sum() + (v**2).sum())
        h = 1.25e-4 / (1.0 + rate)  # steps small against the local rate
        if np.abs(X @ W.T).min() < 10 * h * x_norm * np.abs(dW).max():
            break  # no RK4 stage may reach an activation surface
        W, v = rk4_step(field, W, v, X, y, c, h, weights)
        assert np.abs(v**2 - (W**2).sum(1) - q0).max() < 1e-12 * scale


@given(problems(max_m=6, max_d=5, max_n=8), st.floats(0.05, 5.0))
def test_alpha_c_equivalence_on_trajectories(problem, c):
    """(alpha, c) at time t == (sqrt(c) alpha, 1) at time c t, after theta -> theta / sqrt(c)."""
    field, W, v, X, y, _, weights = compiled_problem(problem)
    h, steps = 1e-2, 50
    with np.errstate(all="ignore"):
        Wc, vc = rk4(field, W, v, X, y, c, h, steps, weights)
    assume(np.all(np.isfinite(Wc)) and np.all(np.isfinite(vc)))  # the exponential loss can blow up
    W1, v1 = rk4(field, np.sqrt(c) * W, np.sqrt(c) * v, X, y, 1.0, c * h, steps, weights)
    np.testing.assert_allclose(W1 / np.sqrt(c), Wc, rtol=1e-10, atol=1e-13 * np.abs(Wc).max())
    np.testing.assert_allclose(v1 / np.sqrt(c), vc, rtol=1e-10, atol=1e-13 * np.abs(vc).max())


def test_batched_torch_field_equals_numpy():
    rng = np.random.default_rng(1)
    E, m, d, n = 3, 5, 4, 7
    W = rng.normal(size=(E, m, d))
    v = rng.normal(size=(E, m))
    X = rng.normal(size=(n, d))
    y = rng.choice([-1.0, 1.0], size=n)
    c = np.array([0.5, 1.0, 3.0])
    field = compile_field()
    dWt, dvt = field.field(*(torch.tensor(a) for a in (W, v, X, y, c)))
    for e in range(E):
        dW, dv = field.field(W[e], v[e], X, y, c[e])
        np.testing.assert_allclose(dWt[e].numpy(), dW, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(dvt[e].numpy(), dv, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shared_data", [True, False])
@pytest.mark.parametrize("with_gates", [False, True])
def test_member_blocks_equal_the_single_networks(monkeypatch, shared_data, with_gates):
    """An ensemble evaluated in blocks of members (uneven last block) equals each member evaluated alone, with
    per-member data, multipliers and gates, into ``out=`` buffers, and the outputs come back in order."""
    from fls.theory import compiled

    rng = np.random.default_rng(2)
    E, m, d, n = 5, 4, 3, 6
    monkeypatch.setattr(compiled, "BLOCK_ELEMENTS", 2 * m * n)  # blocks of 2, 2, 1 members
    W, v = rng.normal(size=(E, m, d)), rng.normal(size=(E, m))
    X = rng.normal(size=(n, d)) if shared_data else rng.normal(size=(E, n, d))
    y = rng.choice([-1.0, 1.0], size=n if shared_data else (E, n))
    c = np.array([0.5, 1.0, 3.0, 2.0, 0.25])
    gates = rng.uniform(size=(E, m, n)) if with_gates else None
    field = compile_field()
    out = (torch.empty(E, m, d, dtype=torch.float64), torch.empty(E, m, dtype=torch.float64))
    tensors = [torch.tensor(a) for a in (W, v, X, y, c)]
    dWt, dvt, ft = field.field_and_output(*tensors, None if gates is None else torch.tensor(gates), out=out)
    assert dWt is out[0] and dvt is out[1]
    for e in range(E):
        Xe, ye = (X, y) if shared_data else (X[e], y[e])
        dW, dv, f = field.field_and_output(W[e], v[e], Xe, ye, c[e], None if gates is None else gates[e])
        np.testing.assert_allclose(dWt[e].numpy(), dW, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(dvt[e].numpy(), dv, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ft[e].numpy(), f, rtol=1e-13, atol=1e-15)
