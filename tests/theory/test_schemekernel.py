"""K0 per init scheme against a Monte-Carlo mean of the finite network's tangent kernel (an independent
reference: the kernel of drawn networks, fls.theory.lazy.empirical_tangent_kernel, averaged over draws)."""

import numpy as np
import pytest

from fls.simulate.initialization import INIT_SCHEMES, init_params
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.schemekernel import scheme_tangent_kernel
from fls.theory.validation import ParameterError

DIM, WIDTH, DRAWS, ALPHA = 6, 40, 600, 0.7


def _points() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.standard_normal((4, DIM)) / np.sqrt(DIM)


def _monte_carlo(scheme: str, bias: bool = False) -> tuple[np.ndarray, np.ndarray]:
    X = _points()
    kernels = []
    for s in range(DRAWS):
        drawn = init_params(WIDTH, DIM, alpha=ALPHA, scheme=scheme, seed=s, bias=bias)
        kernels.append(
            empirical_tangent_kernel(drawn[0], drawn[1], X, X, c=1.3, b=drawn[2] if bias else None)
        )
    kernels = np.stack(kernels)
    return kernels.mean(axis=0), kernels.std(axis=0, ddof=1) / np.sqrt(DRAWS)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_the_kernel_of_each_scheme_is_the_monte_carlo_mean_within_three_standard_errors(scheme, bias):
    mean, error = _monte_carlo(scheme, bias)
    closed = scheme_tangent_kernel(
        _points(), _points(), alpha=ALPHA, width=WIDTH, scheme=scheme, c=1.3, bias=bias
    )
    z = (mean - closed) / error
    assert np.all(np.abs(z) < 3), z


def test_the_balanced_kernel_does_not_describe_the_gaussian_scheme():
    mean, error = _monte_carlo("gaussian")
    balanced = scheme_tangent_kernel(
        _points(), _points(), alpha=ALPHA, width=WIDTH, scheme="random_sign", c=1.3
    )
    assert np.max(np.abs((mean - balanced) / error)) > 10


def test_an_unknown_scheme_is_refused_with_the_allowed_ones():
    with pytest.raises(ParameterError, match="scheme = 'orthogonal' has no derived.*gaussian"):
        scheme_tangent_kernel(_points(), _points(), alpha=1.0, width=2, scheme="orthogonal")
