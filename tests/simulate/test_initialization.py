"""Tests of simulate.initialization: distributions, balance, exact zero output, alpha scaling, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fls.simulate.initialization import INIT_SCHEMES, init_params
from fls.theory.validation import ParameterError

seeds = st.integers(min_value=0, max_value=2**32 - 1)
alphas = st.floats(min_value=-12.0, max_value=3.0).map(lambda exponent: 10.0**exponent)
EPS = np.finfo(np.float64).eps


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_shapes_dtype_and_reproducibility(scheme):
    W, v = init_params(6, 4, alpha=0.5, scheme=scheme, seed=7)
    assert W.shape == (6, 4) and v.shape == (6,) and W.dtype == v.dtype == np.float64
    W_again, v_again = init_params(6, 4, alpha=0.5, scheme=scheme, seed=7)
    np.testing.assert_array_equal(W, W_again)
    np.testing.assert_array_equal(v, v_again)
    W_other, _ = init_params(6, 4, alpha=0.5, scheme=scheme, seed=8)
    assert not np.array_equal(W, W_other)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
@given(alpha=alphas, seed=seeds)
def test_an_alpha_sweep_scales_the_same_draw(scheme, alpha, seed):
    W_unit, v_unit = init_params(4, 3, alpha=1.0, scheme=scheme, seed=seed)
    W, v = init_params(4, 3, alpha=alpha, scheme=scheme, seed=seed)
    np.testing.assert_array_equal(W, alpha * W_unit)
    np.testing.assert_array_equal(v, alpha * v_unit)


@given(alpha=alphas, seed=seeds, width=st.integers(1, 30), dim=st.integers(1, 30))
def test_random_sign_init_is_balanced(alpha, seed, width, dim):
    W, v = init_params(width, dim, alpha=alpha, scheme="random_sign", seed=seed)
    squared_norms = np.sum(W**2, axis=1)
    # both sides carry a few roundings of alpha^2 ||wbar||^2
    np.testing.assert_array_less(np.abs(v**2 - squared_norms), 8 * EPS * squared_norms + 1e-300)
    assert np.all(np.abs(v) > 0)


@given(seed=seeds, width=st.integers(1, 80).map(lambda half: 2 * half), dim=st.integers(1, 40), alpha=alphas)
def test_antisymmetric_init_gives_exactly_zero_output(seed, width, dim, alpha):
    W, v = init_params(width, dim, alpha=alpha, scheme="antisymmetric", seed=seed)
    np.testing.assert_array_equal(W[0::2], W[1::2])
    np.testing.assert_array_equal(v[0::2], -v[1::2])
    np.testing.assert_allclose(v[0::2] ** 2, np.sum(W[0::2] ** 2, axis=1), rtol=8 * EPS)
    X = np.random.default_rng(seed).standard_normal((25, dim))
    hidden = np.maximum(W @ X.T, 0.0)
    terms = v[:, None] * hidden
    # products, then numpy's sum: sequential (axis 0) and pairwise (contiguous reduction) orders are exact
    assert np.all(terms.sum(axis=0) == 0.0)
    assert np.all(np.ascontiguousarray(terms.T).sum(axis=1) == 0.0)
    # other reductions (fused multiply-add in matrix products, torch's blocked sums) leave rounding residues
    bound = EPS * (np.abs(v) @ hidden)
    W_t, v_t, X_t = (torch.from_numpy(a) for a in (W, v, X))
    torch_outputs = (v_t @ torch.relu(W_t @ X_t.T), torch.from_numpy(terms).sum(dim=0))
    for output in (v @ hidden, *(out.numpy() for out in torch_outputs)):
        assert np.all(np.abs(output) <= bound)


def test_draws_are_nested_across_widths_and_shared_across_schemes():
    W_small, v_small = init_params(5, 3, alpha=1.0, scheme="random_sign", seed=2)
    W_large, v_large = init_params(12, 3, alpha=1.0, scheme="random_sign", seed=2)
    np.testing.assert_array_equal(W_small, W_large[:5])
    np.testing.assert_array_equal(v_small, v_large[:5])
    W_gauss, _ = init_params(5, 3, alpha=1.0, scheme="gaussian", seed=2)
    np.testing.assert_array_equal(W_gauss, W_small)
    W_pairs, _ = init_params(10, 3, alpha=1.0, scheme="antisymmetric", seed=2)
    np.testing.assert_array_equal(W_pairs[0::2], W_small)


def test_first_layer_rows_are_gaussian_with_covariance_identity_over_d():
    width, dim = 20_000, 8
    W, _ = init_params(width, dim, alpha=1.0, scheme="random_sign", seed=0)
    # d ||wbar||^2 ~ chi^2_d: mean d, variance 2 d
    scaled = dim * np.sum(W**2, axis=1)
    assert abs(scaled.mean() - dim) <= 5 * np.sqrt(2 * dim / width)
    covariance = W.T @ W / width
    np.testing.assert_allclose(covariance, np.eye(dim) / dim, atol=5 * np.sqrt(2.0 / width) / dim)


def test_random_signs_are_fair_coins():
    _, v = init_params(40_000, 2, alpha=1.0, scheme="random_sign", seed=1)
    assert abs(np.mean(v > 0) - 0.5) <= 5 * 0.5 / np.sqrt(v.size)


@given(alpha=alphas, seed=seeds)
def test_gaussian_second_layer_variance_is_alpha_squared_over_d(alpha, seed):
    width, dim = 5_000, 10
    _, v = init_params(width, dim, alpha=alpha, scheme="gaussian", seed=seed)
    # d v^2 / alpha^2 ~ chi^2_1: mean 1, variance 2
    scaled = dim * (v / alpha) ** 2
    assert abs(scaled.mean() - 1.0) <= 5 * np.sqrt(2.0 / width)


@pytest.mark.parametrize("alpha", [1e-12, 1e3])
@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_extreme_alphas_stay_finite_and_nonzero(alpha, scheme):
    W, v = init_params(8, 5, alpha=alpha, scheme=scheme, seed=3)
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(v)) and np.all(W != 0) and np.all(v != 0)
    assert np.max(np.abs(W)) < 10 * alpha


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"width": 0}, r"width = 0 is out of range; allowed: integers >= 1"),
        ({"width": 2.0}, r"width must be an integer >= 1"),
        ({"dim": 0}, r"dim = 0 is out of range; allowed: integers >= 1"),
        ({"alpha": 0.0}, r"alpha = 0.0 is out of range; allowed: \(0, inf\)"),
        ({"alpha": -1.0}, r"alpha = -1.0 is out of range"),
        ({"alpha": float("inf")}, r"alpha = inf is out of range"),
        ({"alpha": float("nan")}, r"alpha = nan is out of range"),
        (
            {"scheme": "xavier"},
            r"scheme = 'xavier' is not supported; allowed: 'random_sign', 'antisymmetric'",
        ),
        ({"scheme": "antisymmetric", "width": 3}, r"width = 3 is out of range .*allowed: even integers >= 2"),
        ({"seed": -2}, r"seed = -2 is out of range; allowed: integers >= 0"),
    ],
)
def test_bad_input_names_the_parameter_and_range(kwargs, pattern):
    arguments = {"width": 4, "dim": 3, "alpha": 1.0, "scheme": "random_sign", "seed": 0, **kwargs}
    width, dim = arguments.pop("width"), arguments.pop("dim")
    with pytest.raises(ParameterError, match=pattern):
        init_params(width, dim, **arguments)
