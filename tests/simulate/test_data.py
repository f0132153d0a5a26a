"""Tests of simulate.data: seeding, closed-form test errors against Monte Carlo, the staircase by hand, bad input."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import ndtr

from fls.simulate.data import (
    GAUSSIAN_PRESETS,
    MAJORITY,
    MINORITY,
    MODELS,
    make_data,
    parity,
    staircase,
    staircase_label,
)
from fls.theory.validation import ParameterError

MONTE_CARLO_N = 200_000
seeds = st.integers(min_value=0, max_value=2**32 - 1)
snr_parameters = st.tuples(st.floats(0.2, 4.0), st.floats(0.2, 2.0))


def _within_standard_errors(estimate: float, exact: float, size: int, z: float = 5.0) -> bool:
    """|estimate - exact| <= z standard errors of a Bernoulli mean (floored at one success in ``size``)."""
    p = min(max(exact, 1.0 / size), 1.0 - 1.0 / size)
    return abs(estimate - exact) <= z * np.sqrt(p * (1.0 - p) / size)


def _empirical_error(X: np.ndarray, y: np.ndarray, direction: np.ndarray) -> float:
    return float(np.mean(y * (X @ direction) <= 0.0))


def _pairwise_orthogonally_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """y_i y_j <x_i, x_j> > 0 for every pair i != j (same label: positive correlation, opposite: negative)."""
    signed = np.outer(y, y) * (X @ X.T)
    return bool(np.all(signed[~np.eye(len(y), dtype=bool)] > 0.0))


# ---- seeding ----


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_same_data_and_different_seed_different_data(name):
    first = make_data(name, n=30, d=6, seed=3, n_test=50)
    again = make_data(name, n=30, d=6, seed=3, n_test=50)
    other = make_data(name, n=30, d=6, seed=4, n_test=50)
    for field in ("X", "y", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.X, other.X)
    assert not np.array_equal(first.X_test, other.X_test)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_test_set_does_not_depend_on_n_and_training_set_not_on_n_test(name):
    small = make_data(name, n=10, d=5, seed=1, n_test=40)
    large = make_data(name, n=25, d=5, seed=1, n_test=40)
    np.testing.assert_array_equal(small.X_test, large.X_test)
    np.testing.assert_array_equal(small.y_test, large.y_test)
    more_test = make_data(name, n=10, d=5, seed=1, n_test=80)
    np.testing.assert_array_equal(small.X, more_test.X)
    np.testing.assert_array_equal(small.y, more_test.y)


def test_distribution_parameters_change_the_test_stream_and_equal_values_hash_equally():
    base = make_data("gaussian_mixture", n=5, d=4, seed=0, kappa=2.0)
    same_value = make_data("gaussian_mixture", n=5, d=4, seed=0, kappa=2)
    other_kappa = make_data("gaussian_mixture", n=5, d=4, seed=0, kappa=2.5)
    np.testing.assert_array_equal(base.X, same_value.X)
    # the noise z = x_{2..d} * sqrt(kappa^2 + sigma^2 d) / sigma would coincide if kappa did not enter the seed
    base_noise = base.X_test[:, 1:] * np.sqrt(2.0**2 + 4)
    other_noise = other_kappa.X_test[:, 1:] * np.sqrt(2.5**2 + 4)
    assert not np.allclose(base_noise, other_noise)


def test_draws_do_not_depend_on_pythons_string_hash_seed():
    code = (
        "from fls.simulate.data import make_data;"
        "print(repr(make_data('rare_feature', n=3, d=4, seed=11, n_test=2).X.sum()))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert outputs == {repr(make_data("rare_feature", n=3, d=4, seed=11, n_test=2).X.sum()) + "\n"}


# ---- resolved parameters and presets ----


def test_params_hold_every_resolved_default_and_types_are_float64():
    ds = make_data("label_noise", n=7, d=3, seed=0)
    assert ds.params == {
        "n": 7,
        "d": 3,
        "n_test": 10_000,
        "kappa": 2.0,
        "sigma": 1.0,
        "balanced": False,
        "rho": 0.1,
    }
    assert ds.X.shape == (7, 3) and ds.X_test.shape == (10_000, 3)
    assert {a.dtype for a in (ds.X, ds.y, ds.X_test, ds.y_test)} == {np.dtype(np.float64)}
    assert set(np.unique(ds.y)) <= {-1.0, 1.0} and set(np.unique(ds.y_test)) <= {-1.0, 1.0}


def test_low_signal_preset_and_explicit_override():
    ds = make_data("gaussian_mixture", preset="low_signal", seed=0)
    assert (ds.n, ds.d, ds.params["kappa"], ds.params["sigma"], ds.params["balanced"]) == (
        40,
        100,
        2.0,
        1.0,
        True,
    )
    assert ds.bayes_error == pytest.approx(0.0227501319481792, rel=1e-12)
    np.testing.assert_array_equal(ds.bayes_direction, np.eye(100)[0])
    assert np.sum(ds.y == 1) == 20
    wider = make_data("gaussian_mixture", preset="low_signal", seed=0, n=80, kappa=3.0)
    assert (wider.n, wider.d, wider.params["kappa"], wider.params["balanced"]) == (80, 100, 3.0, True)


def test_presets_serve_the_label_noise_and_rare_feature_models():
    noisy = make_data("label_noise", preset="low_signal", seed=2, rho=0.25)
    assert noisy.params["d"] == 100 and noisy.flipped.sum() == 10


def test_separable_preset_is_orthogonally_separable_on_the_first_seeds():
    for seed in range(20):
        ds = make_data("gaussian_mixture", preset="separable", seed=seed, n_test=1)
        assert _pairwise_orthogonally_separable(ds.X, ds.y), seed
    low = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=1)
    assert not _pairwise_orthogonally_separable(low.X, low.y)


def test_orthogonally_separable_property_agrees_with_a_pairwise_check():
    pytest.importorskip("fls.theory.smallinit")
    for preset in GAUSSIAN_PRESETS:
        for seed in range(5):
            ds = make_data("gaussian_mixture", preset=preset, seed=seed, n_test=1)
            assert ds.orthogonally_separable == _pairwise_orthogonally_separable(ds.X, ds.y)
    assert make_data("gaussian_mixture", preset="separable", seed=0, n_test=1).orthogonally_separable


# ---- Gaussian mixture (A) ----


@given(seed=seeds, snr=snr_parameters, d=st.integers(1, 40))
def test_mean_squared_norm_is_one_within_monte_carlo_error(seed, snr, d):
    kappa, sigma = snr
    ds = make_data("gaussian_mixture", n=20_000, d=d, seed=seed, n_test=1, kappa=kappa, sigma=sigma)
    squared_norms = np.sum(ds.X**2, axis=1)
    # ||kappa y s + sigma z||^2 = kappa^2 + 2 kappa sigma y z_1 + sigma^2 ||z||^2: variance 4 k^2 s^2 + 2 s^4 d.
    scale2 = kappa**2 + sigma**2 * d
    standard_error = np.sqrt((4 * kappa**2 * sigma**2 + 2 * sigma**4 * d) / scale2**2 / ds.n)
    assert abs(squared_norms.mean() - 1.0) <= 5 * standard_error


@given(seed=seeds, snr=snr_parameters, d=st.integers(1, 8), direction_seed=seeds)
def test_exact_mixture_error_matches_monte_carlo(seed, snr, d, direction_seed):
    kappa, sigma = snr
    ds = make_data("gaussian_mixture", n=1, d=d, seed=seed, n_test=MONTE_CARLO_N, kappa=kappa, sigma=sigma)
    direction = np.random.default_rng(direction_seed).standard_normal(d)
    direction[0] = abs(direction[0])  # errors below 1/2, where the comparison is most informative
    exact = ds.test_error(direction)
    assert exact == pytest.approx(
        ndtr(-(kappa / sigma) * direction[0] / np.linalg.norm(direction)), rel=1e-14
    )
    assert _within_standard_errors(_empirical_error(ds.X_test, ds.y_test, direction), exact, MONTE_CARLO_N)


def test_bayes_direction_attains_the_bayes_error_and_is_scale_free():
    ds = make_data("gaussian_mixture", n=4, d=6, seed=0, kappa=1.5, sigma=0.5)
    assert ds.test_error(3.0 * ds.bayes_direction) == pytest.approx(ds.bayes_error, rel=1e-14)
    assert ds.bayes_error == pytest.approx(ndtr(-3.0), rel=1e-14)
    assert ds.test_error(-ds.bayes_direction) == pytest.approx(1 - ds.bayes_error, rel=1e-14)
    assert ds.test_error(np.eye(6)[2]) == pytest.approx(0.5, abs=1e-15)  # orthogonal: chance level
    assert ds.test_error_is_exact


@pytest.mark.parametrize("n", [1, 6, 7])
def test_balanced_classes_have_exact_counts(n):
    ds = make_data("gaussian_mixture", n=n, d=2, seed=5, n_test=9, balanced=True)
    assert np.sum(ds.y == 1) == n - n // 2 and np.sum(ds.y_test == 1) == 5


def test_unbalanced_labels_are_fair_coins():
    ds = make_data("gaussian_mixture", n=1, d=1, seed=9, n_test=MONTE_CARLO_N)
    assert _within_standard_errors(np.mean(ds.y_test == 1), 0.5, MONTE_CARLO_N)


# ---- label noise (B) ----


@given(seed=seeds, rho=st.floats(0.0, 0.49), n=st.integers(1, 60))
def test_label_noise_flips_round_rho_n_training_labels_and_no_test_labels(seed, rho, n):
    # kappa / sigma = 60: the clean label is sign(x_1) for every point drawn here (error ~ 1e-780).
    ds = make_data("label_noise", n=n, d=3, seed=seed, n_test=500, kappa=60.0, sigma=1.0, rho=rho)
    assert ds.flipped.dtype == bool and ds.flipped.sum() == round(rho * n)
    clean = np.sign(ds.X[:, 0])
    np.testing.assert_array_equal(ds.y[ds.flipped], -clean[ds.flipped])
    np.testing.assert_array_equal(ds.y[~ds.flipped], clean[~ds.flipped])
    np.testing.assert_array_equal(ds.y_test, np.sign(ds.X_test[:, 0]))


def test_label_noise_test_error_is_the_clean_mixture_error():
    ds = make_data("label_noise", n=50, d=4, seed=1, n_test=MONTE_CARLO_N, rho=0.3, kappa=1.0, sigma=1.0)
    direction = np.array([1.0, 1.0, 0.0, -0.5])
    exact = ds.test_error(direction)
    assert exact == pytest.approx(ndtr(-1.0 / 1.5), rel=1e-14)
    assert _within_standard_errors(_empirical_error(ds.X_test, ds.y_test, direction), exact, MONTE_CARLO_N)
    assert ds.bayes_error == pytest.approx(ndtr(-1.0), rel=1e-14)


# ---- rare feature (C) ----


@given(seed=seeds, p=st.floats(0.05, 0.95), snr=snr_parameters, direction_seed=seeds)
def test_rare_feature_group_errors_match_monte_carlo(seed, p, snr, direction_seed):
    kappa, sigma = snr
    ds = make_data("rare_feature", n=1, d=4, seed=seed, n_test=MONTE_CARLO_N, p=p, kappa=kappa, sigma=sigma)
    direction = np.abs(np.random.default_rng(direction_seed).standard_normal(4))
    minority = ds.group_test == MINORITY
    assert _within_standard_errors(minority.mean(), p, MONTE_CARLO_N)
    for group, mask in ((MAJORITY, ~minority), (MINORITY, minority)):
        exact = ds.test_error(direction, group=group)
        unit = direction / np.linalg.norm(direction)
        assert exact == pytest.approx(ndtr(-(kappa / sigma) * unit[group]), rel=1e-14)
        empirical = _empirical_error(ds.X_test[mask], ds.y_test[mask], direction)
        assert _within_standard_errors(empirical, exact, int(mask.sum()))
    overall = ds.test_error(direction)
    assert overall == pytest.approx(
        (1 - p) * ds.test_error(direction, group=MAJORITY) + p * ds.test_error(direction, group=MINORITY)
    )
    assert _within_standard_errors(_empirical_error(ds.X_test, ds.y_test, direction), overall, MONTE_CARLO_N)


def test_rare_feature_signal_sits_on_e2_for_the_minority_only():
    ds = make_data("rare_feature", n=20_000, d=3, seed=4, n_test=1, p=0.3, kappa=2.0, sigma=1.0)
    scale = np.sqrt(2.0**2 + 3)
    signal = ds.y[:, None] * ds.X * scale  # mean kappa e_{g+1} in group g, noise N(0, 1) per coordinate
    minority = ds.group == MINORITY
    tolerance = 5 / np.sqrt(min(minority.sum(), (~minority).sum()))
    np.testing.assert_allclose(signal[minority].mean(axis=0), [0.0, 2.0, 0.0], atol=tolerance)
    np.testing.assert_allclose(signal[~minority].mean(axis=0), [2.0, 0.0, 0.0], atol=tolerance)
    assert ds.bayes_direction is None and ds.bayes_error is None and ds.flipped is None


def test_rare_feature_extreme_probabilities():
    assert make_data("rare_feature", n=30, d=2, seed=0, p=0.0).group.sum() == 0
    assert make_data("rare_feature", n=30, d=2, seed=0, p=1.0).group.sum() == 30


# ---- staircase (D) and parity ----


def test_staircase_values_by_hand():
    X = np.array(
        [
            [1, 1, 1, 1],  # terms 1, 1, 1, 1
            [1, -1, 1, 1],  # terms 1, -1, -1, -1
            [-1, -1, 1, 1],  # terms -1, 1, 1, 1
            [-1, 1, -1, -1],  # terms -1, -1, 1, -1
            [1, -1, -1, 1],  # terms 1, -1, 1, 1
            [1, 1, -1, 1],  # terms 1, 1, -1, -1
            [-1, -1, -1, -1],  # terms -1, 1, -1, 1
        ],
        dtype=float,
    )
    np.testing.assert_array_equal(staircase(X, 1), [1, 1, -1, -1, 1, 1, -1])
    np.testing.assert_array_equal(staircase(X, 2), [2, 0, 0, -2, 0, 2, 0])
    np.testing.assert_array_equal(staircase(X, 3), [3, -1, 1, -1, 1, 1, -1])
    np.testing.assert_array_equal(staircase(X, 4), [4, -2, 2, -2, 2, 0, 0])
    # ties (S_k = 0) take the sign of x1
    np.testing.assert_array_equal(staircase_label(X, 2), [1, 1, -1, -1, 1, 1, -1])
    np.testing.assert_array_equal(staircase_label(X, 4), [1, -1, 1, -1, 1, 1, -1])
    np.testing.assert_array_equal(parity(X, 3), [1, -1, 1, 1, 1, -1, -1])


@given(k=st.integers(1, 10), seed=seeds)
def test_staircase_is_odd_valued_for_odd_k_and_labels_follow_the_tie_rule(k, seed):
    X = np.where(np.random.default_rng(seed).random((200, 10)) < 0.5, -1.0, 1.0)
    values = staircase(X, k)
    assert np.all(values % 2 == k % 2)
    labels = staircase_label(X, k)
    np.testing.assert_array_equal(labels, np.where(values != 0, np.sign(values), X[:, 0]))
    flipped_first = X * np.r_[-1.0, np.ones(9)]
    np.testing.assert_array_equal(staircase_label(flipped_first, k), -labels)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_staircase_data_set_targets(task):
    ds = make_data("staircase", n=300, d=6, seed=2, n_test=100, k=4, task=task)
    assert set(np.unique(ds.X)) == {-1.0, 1.0}
    target = staircase_label if task == "classification" else staircase
    np.testing.assert_array_equal(ds.y, target(ds.X, 4))
    np.testing.assert_array_equal(ds.y_test, target(ds.X_test, 4))
    if task == "regression":
        assert set(np.unique(ds.y)) == {-4.0, -2.0, 0.0, 2.0, 4.0} and ds.bayes_error is None
        with pytest.raises(ParameterError, match="task"):
            ds.test_error(np.ones(6))
    else:
        assert ds.bayes_error == 0.0


@pytest.mark.parametrize(("name", "k"), [("staircase", 2), ("staircase", 3), ("parity", 3)])
def test_hypercube_test_error_matches_exhaustive_enumeration(name, k):
    d = 6
    ds = make_data(name, n=1, d=d, seed=0, n_test=MONTE_CARLO_N, k=k)
    cube = np.array(list(itertools.product((-1.0, 1.0), repeat=d)))
    labels = staircase_label(cube, k) if name == "staircase" else parity(cube, k)
    direction = np.array([1.0, 0.5, 0.25, 0.3, -0.2, 0.1])
    exact = _empirical_error(cube, labels, direction)
    assert not ds.test_error_is_exact
    assert _within_standard_errors(ds.test_error(direction), exact, MONTE_CARLO_N)
    assert np.mean(ds.y_test == 1) == pytest.approx(0.5, abs=5 * 0.5 / np.sqrt(MONTE_CARLO_N))


# ---- bad input ----


@pytest.mark.parametrize(
    ("name", "kwargs", "pattern"),
    [
        ("gaussian_mix", {"n": 5, "d": 2}, r"name = 'gaussian_mix' is not supported; allowed: .*'staircase'"),
        ("gaussian_mixture", {"n": 0, "d": 2}, r"n = 0 is out of range; allowed: integers >= 1"),
        ("gaussian_mixture", {"n": 2.0, "d": 2}, r"n must be an integer >= 1"),
        ("gaussian_mixture", {"d": 2}, r"n is required"),
        ("gaussian_mixture", {"n": 5, "d": 0}, r"d = 0 is out of range; allowed: integers >= 1"),
        ("gaussian_mixture", {"n": 5, "d": 2, "n_test": 0}, r"n_test = 0 is out of range"),
        (
            "gaussian_mixture",
            {"n": 5, "d": 2, "seed": -1},
            r"seed = -1 is out of range; allowed: integers >= 0",
        ),
        (
            "gaussian_mixture",
            {"n": 5, "d": 2, "kappa": 0.0},
            r"kappa = 0.0 is out of range; allowed: \(0, inf\)",
        ),
        ("gaussian_mixture", {"n": 5, "d": 2, "kappa": float("nan")}, r"kappa = nan is out of range"),
        (
            "gaussian_mixture",
            {"n": 5, "d": 2, "sigma": -1.0},
            r"sigma = -1.0 is out of range; allowed: \(0, inf\)",
        ),
        ("gaussian_mixture", {"n": 5, "d": 2, "balanced": "yes"}, r"balanced = 'yes' is not supported"),
        (
            "gaussian_mixture",
            {"n": 5, "d": 2, "rho": 0.1},
            r"unknown parameter\(s\) \['rho'\].*allowed: .*kappa",
        ),
        ("gaussian_mixture", {"preset": "easy"}, r"preset = 'easy' is not supported; allowed: 'low_signal'"),
        ("label_noise", {"n": 5, "d": 2, "rho": 0.5}, r"rho = 0.5 is out of range; allowed: \[0.0, 0.5\)"),
        ("label_noise", {"n": 5, "d": 2, "rho": -0.1}, r"rho = -0.1 is out of range"),
        ("rare_feature", {"n": 5, "d": 2, "p": 1.5}, r"p = 1.5 is out of range; allowed: \[0.0, 1.0\]"),
        ("rare_feature", {"n": 5, "d": 1}, r"d = 1 is out of range; allowed: integers >= 2"),
        (
            "staircase",
            {"n": 5, "d": 3, "k": 4},
            r"k = 4 is out of range; allowed: integers in \[1, d\] = \[1, 3\]",
        ),
        ("staircase", {"n": 5, "d": 3, "k": 0}, r"k = 0 is out of range; allowed: integers >= 1"),
        ("staircase", {"n": 5, "d": 3, "task": "ranking"}, r"task = 'ranking' is not supported"),
        ("staircase", {"n": 5, "d": 3, "preset": "low_signal"}, r"model 'staircase' has no presets"),
        ("parity", {"n": 5, "d": 3, "k": 5}, r"k = 5 is out of range"),
    ],
)
def test_bad_input_names_the_parameter_and_range(name, kwargs, pattern):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ParameterError, match=pattern):
        make_data(name, **kwargs)


def test_bad_directions_and_groups_are_rejected():
    mixture = make_data("gaussian_mixture", n=3, d=3, seed=0, n_test=5)
    rare = make_data("rare_feature", n=3, d=3, seed=0, n_test=5)
    parity_data = make_data("parity", n=3, d=3, seed=0, n_test=5)
    with pytest.raises(ParameterError, match="zero vector"):
        mixture.test_error(np.zeros(3))
    with pytest.raises(ParameterError, match="direction has shape"):
        mixture.test_error(np.ones(4))
    with pytest.raises(ParameterError, match="non-finite"):
        mixture.test_error([1.0, np.inf, 0.0])
    with pytest.raises(ParameterError, match=r"group = 2 is out of range; allowed: \[0, 1\]"):
        rare.test_error(np.ones(3), group=2)
    with pytest.raises(ParameterError, match=r"group = 1 is out of range; allowed: \[0, 0\]"):
        mixture.test_error(np.ones(3), group=1)
    with pytest.raises(ParameterError, match=r"group = 0 is not supported by model 'parity'; allowed: None"):
        parity_data.test_error(np.ones(3), group=0)
    with pytest.raises(ParameterError, match=r"k = 4 is out of range"):
        staircase(np.ones((2, 3)), 4)
