"""Real targets, sample weights and hidden biases in the derivation and the compiled field: the derived facts,
weights against repeated samples, and bad input (the comparisons with autograd, mpmath and RK4 over every option
are in test_field.py)."""

import numpy as np
import pytest
import sympy as sp

from fls.theory import fieldcache, vector_field
from fls.theory.losses import LOSSES
from fls.theory.symbolic import derive
from fls.theory.validation import ParameterError


@pytest.mark.parametrize("loss", LOSSES)
def test_biased_derivation_conserves_the_invariant_and_rescales(loss):
    D = derive(loss, True)
    assert D.invariant_rate == 0
    assert D.rescaling_residual == sp.zeros(3, 1)
    assert D.factors_b == D.factors_W  # the bias is the weight of the constant input 1


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
