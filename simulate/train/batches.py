"""Seeded minibatch orders for SGD, one independent stream per ensemble member.

Protocol (the same for a single run and for a member of an ensemble, so the two agree exactly): member e owns a
CPU generator ``torch.Generator().manual_seed(seed_e)``; each epoch draws ``torch.randperm(n, generator=...)`` and
cuts it into consecutive batches of ``batch_size`` (the last batch of an epoch is smaller when ``batch_size`` does
not divide n). Step k uses batch k mod ceil(n / batch_size) of epoch k div ceil(n / batch_size). All members share
n and the batch size, so their batches have one shape at every step and stack into an (E, b) index tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fls.theory.validation import ParameterError, check_int


class MinibatchSampler:
    """Per-member epoch permutations; :meth:`indices` must be called for steps 0, 1, 2, ... in order."""

    def __init__(self, seeds: Sequence[int], n: int, batch_size: int) -> None:
        self.n = check_int("n", n)
        self.batch_size = check_int("batch_size", batch_size)
        if self.batch_size > self.n:
            raise ParameterError(f"batch_size = {batch_size} is out of range; allowed: 1 ... n = {n}")
        self.batches_per_epoch = -(-self.n // self.batch_size)
        self._generators = [
            torch.Generator().manual_seed(check_int("seed", int(s), minimum=0)) for s in seeds
        ]
        self._order: torch.Tensor | None = None
        self._next_step = 0

    def indices(self, step: int) -> torch.Tensor:
        """Sample indices of step ``step`` for every member, int64 CPU tensor of shape (E, b)."""
        if step != self._next_step:
            raise ParameterError(f"step = {step} is out of order; the sampler expects step {self._next_step}")
        self._next_step += 1
        position = step % self.batches_per_epoch
        if position == 0:
            self._order = torch.stack([torch.randperm(self.n, generator=g) for g in self._generators])
        start = position * self.batch_size
        return self._order[:, start : start + self.batch_size]

    def keep(self, rows: np.ndarray) -> None:
        """Drop the streams of the members not in ``rows`` (positions in the current batch)."""
        self._generators = [self._generators[i] for i in rows]
        if self._order is not None:
            self._order = self._order[torch.as_tensor(rows, dtype=torch.int64)]
