"""Bad input to the field gets a clear ParameterError naming the parameter and the allowed range."""

import numpy as np
import pytest

from fls.theory import vector_field
from fls.theory.validation import ParameterError

W = np.ones((3, 2))
v = np.ones(3)
X = np.eye(2)
y = np.array([1.0, -1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"W": np.ones((3, 4))}, "W has shape"),
        ({"v": np.ones(4)}, "v has shape"),
        ({"X": np.ones(2)}, "X must have 2 dimension"),
        ({"y": np.array([1.0, 0.0])}, "y must contain only -1 and \\+1"),
        ({"y": np.array([1.0, 1.0, 1.0])}, "y has shape"),
        ({"X": np.array([[np.nan, 0.0], [0.0, 1.0]])}, "X contains non-finite"),
        ({"v": np.array([1.0, np.inf, 1.0])}, "v contains non-finite"),
        ({"c": -1.0}, "c = -1.0 is out of range; allowed: \\(0, inf\\)"),
        ({"c": 0.0}, "c = 0.0 is out of range"),
        ({"loss": "hinge"}, "loss = 'hinge' is not supported; allowed: 'logistic', 'exponential', 'squared'"),
        ({"W": "abc"}, "W must be a real array"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, match):
    args = {"W": W, "v": v, "X": X, "y": y, "c": 1.0, "loss": "logistic"}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        vector_field(args["W"], args["v"], args["X"], args["y"], c=args["c"], loss=args["loss"])


def test_overflowing_parameters_are_reported():
    with pytest.raises(ParameterError, match="overflowed"):
        vector_field(1e200 * W, 1e200 * v, X, y)
