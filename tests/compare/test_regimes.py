"""Regime labels (measured and predicted) and the predicted boundaries against independent references."""

import numpy as np
import pandas as pd
import pytest

from fls.compare import limits, regimes
from fls.simulate.data import make_data
from fls.simulate.initialization import init_params
from fls.theory.smallinit import escape_time


def test_measured_regime_from_f0_and_alignment_at_escape():
    assert regimes.measured_regime({"f0_contamination": 0.8, "psi_at_escape": 0.99}) == "over-fitting"
    assert regimes.measured_regime({"f0_contamination": 0.01, "psi_at_escape": 0.95}) == "over-alignment"
    assert regimes.measured_regime({"f0_contamination": 0.01, "psi_at_escape": 0.5}) == "balanced"
    assert regimes.measured_regime({"f0_contamination": 0.0, "psi_at_escape": float("nan")}) == "balanced"
    assert regimes.measured_regime({}) is None


def test_predicted_regime_and_the_zero_f0_init():
    bounds = {"alignment": 100.0, "f0": 1.0}
    assert regimes.predicted_regime(1e3, "random_sign", bounds) == "over-alignment"
    assert regimes.predicted_regime(10.0, "random_sign", bounds) == "balanced"
    assert regimes.predicted_regime(0.5, "random_sign", bounds) == "over-fitting"
    assert regimes.predicted_regime(0.5, "antisymmetric", bounds) == "balanced"


@pytest.mark.parametrize("width", [10, 100, 1000])
def test_alignment_boundary_is_where_the_escape_time_equals_the_alignment_time(width):
    fls = limits.alignment_boundary_fls(width)
    alpha = 1 / np.sqrt(fls)  # c = 1
    rate = 0.37
    t_escape = escape_time(rate=rate, psi0=0.0, norm0=alpha * np.sqrt(width / 2))
    assert t_escape * rate == pytest.approx(np.arctanh(regimes.ALIGNED_PSI), rel=1e-10)


def test_f0_boundary_matches_a_monte_carlo_of_the_initial_function():
    data = make_data("gaussian_mixture", n=6, d=20, seed=0, n_test=10)
    width = 50
    fls = limits.f0_boundary_fls(data.X, width=width)
    alpha = 1 / np.sqrt(fls)
    draws = 2000
    outputs = np.empty((draws, data.n))
    for seed in range(draws):
        W, v = init_params(width, 20, alpha=alpha, scheme="random_sign", seed=seed)
        outputs[seed] = np.maximum(data.X @ W.T, 0) @ v
    mean_variance = np.mean(outputs**2)  # E f0 = 0
    # relative standard error of a mean of squares of ~Gaussian draws: sqrt(2 / draws) ~ 3 %
    assert np.sqrt(mean_variance) == pytest.approx(limits.F0_SCALE, rel=0.1)


def test_label_regimes_adds_measured_and_predicted_columns():
    table = pd.DataFrame(
        {
            "f0_contamination": [0.0, 2.0],
            "psi_at_escape": [0.99, 0.1],
            "fls": [1e4, 0.1],
            "model.init": ["random_sign"] * 2,
            "data.n": [40, 40],
            "model.width": [100, 100],
        }
    )
    out = regimes.label_regimes(table, {(40, 100): {"alignment": 300.0, "f0": 0.7}})
    assert out["regime"].tolist() == ["over-alignment", "over-fitting"]
    assert out["predicted_regime"].tolist() == ["over-alignment", "over-fitting"]
