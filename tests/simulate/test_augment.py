"""Crop-and-flip augmentation: the batched transform against a per-image numpy reference, seeding, training use."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.train.architectures import Architecture
from fls.simulate.train.augment import Augmentation, Augmenter, augment
from fls.simulate.train.deep import train_deep
from fls.theory.validation import ParameterError


def reference(image: np.ndarray, dy: int, dx: int, flip: bool, padding: int) -> np.ndarray:
    """One image (C, H, W): zero-pad by ``padding``, cut the H x W window at (dy, dx), mirror the columns."""
    height, width = image.shape[1:]
    padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)))
    window = padded[:, dy : dy + height, dx : dx + width]
    return window[:, :, ::-1] if flip else window


@settings(max_examples=30, deadline=None)
@given(
    padding=st.integers(0, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_augment_equals_the_per_image_reference(padding, height, width, seed):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((2, 3, 2, height, width))
    offsets = rng.integers(0, 2 * padding + 1, (2, 3, 2))
    flips = rng.random((2, 3)) < 0.5
    out = augment(
        torch.from_numpy(images), torch.from_numpy(offsets), torch.from_numpy(flips), padding
    ).numpy()
    for e in range(2):
        for i in range(3):
            expected = reference(images[e, i], *offsets[e, i], flips[e, i], padding)
            np.testing.assert_array_equal(out[e, i], expected)


def test_augmenter_draws_per_member_streams():
    x = torch.arange(2 * 5 * 16, dtype=torch.float64).reshape(2, 5, 16)
    shape = (1, 4, 4)
    first = Augmenter(Augmentation(1, True), [7, 8], shape)(x)
    again = Augmenter(Augmentation(1, True), [7, 8], shape)(x)
    alone = Augmenter(Augmentation(1, True), [8], shape)(x[1:])
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    torch.testing.assert_close(
        first[1:], alone, rtol=0, atol=0
    )  # a member's draws do not depend on the others
    assert not torch.equal(first, x)
    identity = Augmenter(Augmentation(0, False), [7, 8], shape)(x)
    torch.testing.assert_close(identity, x, rtol=0, atol=0)
    with pytest.raises(ParameterError, match=r"input_shape = \(2, 12\) cannot be augmented"):
        Augmenter(Augmentation(), [0], (2, 12))
    with pytest.raises(ParameterError, match="crop_padding"):
        Augmentation(-1)


def test_training_with_augmentation_is_seeded_per_member():
    """Member (seed 5) of a two-member ensemble equals the same member trained alone; centered runs start at 0."""
    rng = np.random.default_rng(0)
    X, X_test = rng.random((24, 2 * 6 * 6)), rng.random((10, 2 * 6 * 6))
    data = SimpleNamespace(
        X=X,
        y=rng.integers(0, 3, 24).astype(float),
        X_test=X_test,
        y_test=rng.integers(0, 3, 10).astype(float),
        params={"input_shape": (2, 6, 6)},
    )
    options = {
        "architecture": Architecture("cnn", (3,)),
        "augmentation": Augmentation(2, True),
        "centered": True,
        "stop": None,
        "max_steps": 12,
        "batch_size": 8,
        "eta": 0.5,
    }
    pair = train_deep(data, seeds=[4, 5], c=[1.0, 2.0], **options)
    alone = train_deep(data, seeds=[5], c=[2.0], **options)[0]
    for name, value in alone.info["state"].items():
        np.testing.assert_allclose(pair[1].info["state"][name], value, rtol=1e-12, atol=1e-14)
    plain = train_deep(data, seeds=[5], c=[2.0], **{**options, "augmentation": None})[0]
    assert not np.allclose(plain.risk[1:], alone.risk[1:])
    assert alone.risk[0] == pytest.approx(np.log(3.0), rel=1e-15)  # centered: f = 0 at the start
    assert alone.info["augmentation"] == {"crop_padding": 2, "flip": True}
