"""Seeded image augmentation for the deep-network runs: random crop with zero padding, random horizontal flip.

For an image x (C, H, W), a padding p and a draw (dy, dx) uniform in {0, ..., 2p}^2 and a coin b:

    crop(x)[:, i, j] = pad_p(x)[:, dy + i, dx + j],     out = flip_W(crop(x)) if b else crop(x),

with pad_p the zero padding by p on each side of H and W (the usual CIFAR recipe is p = 4 with flips). Deciding is
separate from drawing: :func:`augment` applies given draws, :class:`Augmenter` draws them. Member e of an
ensemble owns a CPU generator seeded from (seed_e, a fixed augmentation stream), independent of its minibatch
stream (:mod:`simulate.train.batches`), and draws (dy, dx, b) for every image of every gradient step; draws are
moved to the device, so a seed gives the same augmented batches on every device (docs/train.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fls.theory.validation import ParameterError, check_int

#: Second entry of the seed sequence (seed_e, AUGMENT_STREAM) of a member's augmentation generator.
AUGMENT_STREAM = 1


@dataclass(frozen=True)
class Augmentation:
    """What to apply to each training image at each gradient step: a crop after zero padding by
    ``crop_padding`` pixels (0: no crop) and, when ``flip``, a horizontal flip with probability 1/2."""

    crop_padding: int = 4
    flip: bool = True

    def __post_init__(self) -> None:
        check_int("crop_padding", self.crop_padding, minimum=0)


def augment(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int) -> torch.Tensor:
    """Crop and flip ``images`` (..., C, H, W) by the given draws: ``offsets`` (..., 2) = (dy, dx) in
    {0, ..., 2 padding}, ``flips`` (...) boolean (module docstring)."""
    height, width = images.shape[-2:]
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    lead = images.shape[:-2]
    rows = offsets[..., 0, None] + torch.arange(height, device=images.device)
    rows = rows[..., None, :, None].expand(*lead, height, padded.shape[-1])
    cropped = padded.gather(-2, rows)
    cols = offsets[..., 1, None] + torch.arange(width, device=images.device)
    cropped = cropped.gather(-1, cols[..., None, None, :].expand(*lead, height, width))
    return torch.where(flips[..., None, None, None], cropped.flip(-1), cropped)


class Augmenter:
    """Draws and applies :class:`Augmentation` for an ensemble whose members have seeds ``seeds``."""

    def __init__(self, augmentation: Augmentation, seeds: Sequence[int], input_shape: Sequence[int]) -> None:
        if len(tuple(input_shape)) != 3:
            raise ParameterError(
                f"input_shape = {tuple(input_shape)!r} cannot be augmented; allowed: images (C, H, W)"
            )
        self.augmentation, self.input_shape = augmentation, tuple(input_shape)
        self._generators = [
            torch.Generator().manual_seed(
                int(
                    np.random.SeedSequence(
                        [check_int("seed", int(s), minimum=0), AUGMENT_STREAM]
                    ).generate_state(1)[0]
                )
            )
            for s in seeds
        ]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augmented copies of the flattened images ``x`` (E, b, D), one fresh draw per member and image."""
        members, batch = x.shape[:2]
        padding = self.augmentation.crop_padding
        offsets = torch.stack(
            [torch.randint(0, 2 * padding + 1, (batch, 2), generator=g) for g in self._generators]
        )
        flips = torch.stack([torch.rand(batch, generator=g) < 0.5 for g in self._generators])
        if not self.augmentation.flip:
            flips = torch.zeros_like(flips)
        images = x.reshape(members, batch, *self.input_shape)
        out = augment(images, offsets.to(x.device), flips.to(x.device), padding)
        return out.reshape(members, batch, -1)

    def keep(self, rows: np.ndarray) -> None:
        """Drop the generators of the members not in ``rows`` (positions in the current batch)."""
        self._generators = [self._generators[i] for i in rows]
