"""Real targets, sample weights and hidden biases in the derivation and the compiled field, against the
independent references of fls.testing (torch autograd, 40-digit mpmath differences) and RK4."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings

from fls.testing import assert_field_matches_autograd, assert_field_matches_mpmath, problems
from fls.theory import fieldcache, vector_field
from fls.theory.losses import LOSSES
from fls.theory.symbolic import derive
from fls.theory.validation import ParameterError


def field_of(problem):
    return vector_field(problem.W, problem.v, problem.X, problem.y, **problem.options())


@given(problems())
def test_field_with_every_option_equals_torch_autograd(problem):
    assert_field_matches_autograd(field_of, problem)


@settings(max_examples=15, deadline=None)
@given(problems(max_m=3, max_d=3, max_n=4))
def test_field_with_every_option_equals_mpmath_differences(problem):
    b = 0.0 if problem.b is None else problem.b
    assume(np.min(np.abs(problem.X @ problem.W.T + b)) > 1e-6)
    assert_field_matches_mpmath(field_of, problem)


@pytest.mark.parametrize("loss", LOSSES)
def test_biased_derivation_conserves_the_invariant_and_rescales(loss):
    D = derive(loss, True)
    assert D.invariant_rate == 0
    assert D.rescaling_residual == sp.zeros(3, 1)
    assert D.factors_b == D.factors_W  # the bias is the weight of the constant input 1


@settings(max_examples=15, deadline=None)
@given(problems(bias=True, max_m=4, max_n=6))
def test_invariant_with_biases_holds_along_rk4(problem):
    """v_j^2 - ||w_j||^2 - b_j^2 to 1e-12 along 50 RK4 steps that stay in one activation region (RK4 is exact
    to O(h^5) per step for the quadratic invariant of a smooth field; across a surface it is not)."""
    W, v, b = problem.W.copy(), problem.v.copy(), problem.b.copy()
    h = 1e-4
    pattern = problem.X @ W.T + b > 0

    def rate(W, v, b):
        return vector_field(W, v, problem.X, problem.y, **{**problem.options(), "b": b})

    start = v**2 - (W**2).sum(1) - b**2
    for _ in range(50):
        k1 = rate(W, v, b)
        k2 = rate(*(a + h / 2 * k for a, k in zip((W, v, b), (k1[0], k1[1], k1[2]), strict=True)))
        k3 = rate(*(a + h / 2 * k for a, k in zip((W, v, b), (k2[0], k2[1], k2[2]), strict=True)))
        k4 = rate(*(a + h * k for a, k in zip((W, v, b), (k3[0], k3[1], k3[2]), strict=True)))
        W, v, b = (a + h / 6 * (p + 2 * q + 2 * r + s) for a, p, q, r, s in zip((W, v, b), k1, k2, k3, k4, strict=True))
        assume(np.array_equal(problem.X @ W.T + b > 0, pattern))
    drift = np.abs(v**2 - (W**2).sum(1) - b**2 - start)
    scale = 1 + np.abs(v**2) + (W**2).sum(1) + b**2
    assert np.all(drift <= 1e-12 * scale), drift / scale


def test_weight_k_equals_a_sample_repeated_k_times_in_the_field():
    rng = np.random.default_rng(0)
    W, v, b, X, y = rng.normal(size=(3, 2)), rng.normal(size=3), rng.normal(size=3), rng.normal(size=(4, 2)), rng.normal(size=4)
    weighted = vector_field(W, v, X, y, loss="squared", b=b, sample_weight=[1, 3, 1, 1])
    repeated = vector_field(W, v, np.r_[X, X[[1, 1]]], np.r_[y, y[[1, 1]]], loss="squared", b=b)
    for a, r in zip(weighted, repeated, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-13, atol=1e-15)


def test_the_loss_decides_the_targets():
    W, v, X = np.ones((1, 1)), np.ones(1), np.ones((2, 1))
    with pytest.raises(ParameterError, match="y must contain only -1 and \\+1.*loss = 'squared'"):
        vector_field(W, v, X, [0.5, 1.0], loss="logistic")
    vector_field(W, v, X, [0.5, 1.0], loss="squared")


@pytest.mark.parametrize(
    ("weights", "message"),
    [([1.0, -1.0], "negative entries.*allowed: finite values >= 0"), ([0.0, 0.0], "sums to 0"),
     ([1.0], "sample_weight has shape"), ([1.0, np.nan], "sample_weight contains non-finite")],
)  # fmt: skip
def test_bad_sample_weights_are_named(weights, message):
    with pytest.raises(ParameterError, match=message):
        vector_field(np.ones((1, 1)), np.ones(1), np.ones((2, 1)), [1.0, -1.0], sample_weight=weights)


def test_bad_biases_are_named():
    with pytest.raises(ParameterError, match="b has shape"):
        vector_field(np.ones((2, 1)), np.ones(2), np.ones((2, 1)), [1.0, -1.0], b=[0.0])
    with pytest.raises(ParameterError, match="bias must be True or False"):
        derive("logistic", "yes")


def test_the_cache_key_covers_the_bias_option(tmp_path, monkeypatch):
    monkeypatch.setenv(fieldcache.CACHE_DIR_VARIABLE, str(tmp_path))
    plain, biased = fieldcache.cache_key("squared"), fieldcache.cache_key("squared", True)
    assert plain != biased and fieldcache.entry_path(plain) != fieldcache.entry_path(biased)
    assert "bias" in fieldcache.entry_path(biased).name
