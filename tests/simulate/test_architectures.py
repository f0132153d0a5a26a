"""The architectures: the homogeneity degree each one states, checked on the network itself, and bad settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.train.architectures import Architecture
from fls.theory.validation import ParameterError

SHAPES = {1: (2, 9), 2: (2, 6, 5)}


@st.composite
def architectures(draw) -> tuple[Architecture, tuple[int, ...]]:
    kind = draw(st.sampled_from(["mlp", "cnn", "vgg", "resnet"]))
    hidden = tuple(draw(st.lists(st.integers(1, 4), min_size=0 if kind == "mlp" else 1, max_size=3)))
    depth = draw(st.integers(1, 2))
    batch_norm = kind == "resnet" and draw(st.booleans())
    architecture = Architecture(kind, hidden, depth=depth, batch_norm=batch_norm, norm_eps=1e-300)
    return architecture, SHAPES[draw(st.sampled_from([1, 2]))]


@settings(max_examples=40, deadline=None)
@given(case=architectures(), scale=st.floats(0.2, 5.0), seed=st.integers(0, 1000))
def test_stated_degree_is_the_networks_homogeneity(case, scale, seed):
    """h(s theta) = s^L h(theta) for the architecture's L: the init scale alpha multiplies every parameter."""
    architecture, shape = case
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((6, int(np.prod(shape)))))
    base = architecture.build(shape, 3, seed=seed, alpha=1.0)
    scaled = architecture.build(shape, 3, seed=seed, alpha=scale)
    with torch.no_grad():
        expected = scale**architecture.degree * base(x)
        np.testing.assert_allclose(
            scaled(x).numpy(), expected.numpy(), rtol=1e-10, atol=1e-12 * expected.abs().max()
        )


def test_degree_is_not_a_looser_power():
    """The check above can fail: a wrong degree misses by a factor s."""
    architecture = Architecture("resnet", (2, 3))
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 2 * 6 * 5)))
    with torch.no_grad():
        base = architecture.build((2, 6, 5), 3, seed=0, alpha=1.0)(x)
        scaled = architecture.build((2, 6, 5), 3, seed=0, alpha=2.0)(x)
    assert torch.allclose(scaled, 2.0**architecture.degree * base, rtol=1e-12)
    assert not torch.allclose(scaled, 2.0 ** (architecture.degree - 1) * base, rtol=1e-3)


def test_a_residual_block_without_gains_would_not_be_homogeneous():
    """Why the skip carries the gains a b: with a = b = 1 held fixed, scaling breaks the power law."""
    architecture = Architecture("resnet", (2,))
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((4, 2 * 6 * 5)))
    base = architecture.build((2, 6, 5), 3, seed=0, alpha=1.0)
    scaled = architecture.build((2, 6, 5), 3, seed=0, alpha=2.0)
    with torch.no_grad():
        for module in scaled.modules():
            if getattr(module, "gains", None) is not None:
                module.gains.fill_(1.0)
        assert not torch.allclose(scaled(x), 2.0**architecture.degree * base(x), rtol=1e-3)


def test_bad_architectures_name_the_parameter():
    with pytest.raises(ParameterError, match="kind"):
        Architecture("transformer")
    with pytest.raises(ParameterError, match="batch_norm = True is not supported for kind = 'vgg'"):
        Architecture("vgg", (2,), batch_norm=True)
    with pytest.raises(ParameterError, match="hidden = \\(\\) is empty"):
        Architecture("resnet", ())
    with pytest.raises(ParameterError, match="depth"):
        Architecture("vgg", (2,), depth=0)
    with pytest.raises(ParameterError, match="norm_eps"):
        Architecture("resnet", (2,), batch_norm=True, norm_eps=0.0)
    with pytest.raises(ParameterError, match="input_shape"):
        Architecture("vgg", (2,)).build((1, 2, 2, 2), 1, seed=0, alpha=1.0)
