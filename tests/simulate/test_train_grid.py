"""The c grid: member order and records, and the (alpha, c) equivalence of the FLS knobs for every architecture."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fls.simulate.realdata import load_digits
from fls.simulate.stopping import TargetRisk
from fls.simulate.train.architectures import Architecture
from fls.simulate.train.grid import train_c_grid
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.validation import ParameterError


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    data = load_digits("multiclass")
    return SimpleNamespace(
        X=data.X[:48], y=data.y[:48], X_test=data.X_test[:30], y_test=data.y_test[:30], params=data.params
    )


HOMOGENEOUS = {
    "mlp-3-layers": (Architecture("mlp", (10, 8)), 3),
    "cnn": (Architecture("cnn", (3, 4)), 3),
    "vgg": (Architecture("vgg", (3, 4), depth=2), 5),
    "resnet": (Architecture("resnet", (3, 4)), 7),
    "resnet-2-blocks": (Architecture("resnet", (3,), depth=2), 6),
}


def test_degrees_and_equivalent_steps():
    for architecture, degree in HOMOGENEOUS.values():
        assert architecture.degree == degree
    assert Architecture("mlp", (16,)).equivalent_init_scale(4.0, 0.5, 1.5) == (3.0, 0.5)
    alpha, eta = Architecture("vgg", (3, 4), depth=2).equivalent_init_scale(32.0, 1.0)
    assert alpha == pytest.approx(2.0, rel=1e-15) and eta == pytest.approx(32.0 ** (2 / 5 - 1), rel=1e-15)
    assert Architecture("resnet", (3, 4), batch_norm=True).degree == 2
    assert Architecture("mlp", (16,), bias=True).degree is None
    with pytest.raises(ParameterError, match="bias = True"):
        Architecture("cnn", (3,), bias=True).equivalent_init_scale(2.0, 0.1)


@pytest.mark.parametrize("name", sorted(HOMOGENEOUS))
@pytest.mark.parametrize("batch_size", [None, 16])
def test_init_scale_knob_equals_multiplier_knob(digits, name, batch_size):
    """Multiplier c at step eta / c equals init scale c^(1/L) at step eta c^(2/L - 1), theta mapped by c^(1/L)."""
    architecture, degree = HOMOGENEOUS[name]
    c_values, seeds = [0.3, 5.0], [1, 2]
    options = {"stop": None, "max_steps": 15, "batch_size": batch_size, "save": SaveSchedule.every(5)}
    by_knob = {
        knob: train_c_grid(
            digits,
            architecture=architecture,
            c_values=c_values,
            seeds=seeds,
            eta=[0.5, 0.1],
            knob=knob,
            **options,
        )
        for knob in ("multiplier", "init_scale")
    }
    for multiplied, scaled in zip(by_knob["multiplier"], by_knob["init_scale"], strict=True):
        c = multiplied.info["grid_c"]
        assert scaled.info["c"] == 1.0 and scaled.info["alpha"] == pytest.approx(c ** (1 / degree))
        for key, value in multiplied.info["state"].items():
            np.testing.assert_allclose(
                c ** (1 / degree) * value, scaled.info["state"][key], rtol=1e-10, atol=1e-12
            )
        np.testing.assert_allclose(multiplied.risk, scaled.risk, rtol=1e-11)
        np.testing.assert_array_equal(multiplied.info["test_accuracy"], scaled.info["test_accuracy"])
    # the equivalence is not vacuous: the members moved, and a different c gives a different run
    first = by_knob["multiplier"][0]
    assert first.risk[-1] < first.risk[0]
    assert not np.allclose(first.risk, by_knob["multiplier"][2].risk)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_batch_norm_resnet_is_2_homogeneous_as_eps_goes_to_0(digits, batch_size):
    """With batch norm h(s theta) = s^2 h(theta) exactly at eps = 0: at eps = 1e-14 the knobs agree to rounding;
    at torch's eps = 1e-5 they drift apart (eps against the pre-normalization variances), as documented."""
    gaps = {}
    for eps in (1e-14, 1e-5):
        architecture = Architecture("resnet", (3, 4), depth=2, batch_norm=True, norm_eps=eps)
        assert architecture.degree == 2
        multiplied, scaled = (
            train_c_grid(
                digits,
                architecture=architecture,
                c_values=[4.0],
                seeds=[0],
                knob=knob,
                stop=None,
                max_steps=15,
                eta=0.2,
                batch_size=batch_size,
            )[0]
            for knob in ("multiplier", "init_scale")
        )
        for key, value in multiplied.info["state"].items():
            if eps == 1e-14:
                np.testing.assert_allclose(2.0 * value, scaled.info["state"][key], rtol=1e-9, atol=1e-11)
        gaps[eps] = np.abs(multiplied.risk - scaled.risk).max()
    assert gaps[1e-14] < 1e-9
    assert gaps[1e-5] > 1e-6


def test_grid_records_are_c_major_and_labelled(digits):
    runs = train_c_grid(
        digits,
        architecture=Architecture("mlp", (12,)),
        c_values=[0.5, 1.0, 8.0],
        seeds=[3, 4],
        eta=1.0,
        stop=TargetRisk(1.5),
        max_steps=200,
    )
    assert [(r.info["grid_c"], r.info["grid_seed"], r.info["c_index"]) for r in runs] == [
        (c, s, i) for i, c in enumerate([0.5, 1.0, 8.0]) for s in (3, 4)
    ]
    for run in runs:
        assert run.info["knob"] == "multiplier" and run.info["c"] == run.info["grid_c"]
        assert run.info["step_size"] == pytest.approx(1.0 / run.info["grid_c"])
        assert run.status == "target_reached" and run.risk[-1] <= 1.5
    # the default stop rule is the practical protocol: 99 % training accuracy
    default = train_c_grid(
        digits, architecture=Architecture("mlp", (12,)), c_values=[1.0], seeds=[0], max_steps=0
    )
    assert "TrainAccuracy(level=0.99" in default[0].info["stop"]


def test_grid_bad_arguments(digits):
    architecture = Architecture("mlp", (4,))
    with pytest.raises(ParameterError, match="knob"):
        train_c_grid(digits, architecture=architecture, c_values=[1.0], seeds=[0], knob="width")
    with pytest.raises(ParameterError, match="c_values"):
        train_c_grid(digits, architecture=architecture, c_values=[], seeds=[0])
    with pytest.raises(ParameterError, match="c_values"):
        train_c_grid(digits, architecture=architecture, c_values=[1.0, -2.0], seeds=[0])
    with pytest.raises(ParameterError, match="seeds"):
        train_c_grid(digits, architecture=architecture, c_values=[1.0], seeds=[])
    with pytest.raises(ParameterError, match="eta has 3 values"):
        train_c_grid(digits, architecture=architecture, c_values=[1.0, 2.0], seeds=[0], eta=[1, 2, 3])
    with pytest.raises(ParameterError, match="bias = True"):
        train_c_grid(
            digits,
            architecture=Architecture("mlp", (4,), bias=True),
            c_values=[2.0],
            seeds=[0],
            knob="init_scale",
        )
