"""Stopping rules of DESIGN.md section 2, evaluated for every member of an ensemble at once.

A rule looks at the per-sample training losses and correctness of each member at step k and says which members
have reached their target. The engines stop a member at the first checked step k where its rule holds
(tau_eps = inf { k eta : R(theta_k) <= eps } for :class:`TargetRisk`), freeze it and record it; the others go on.
A rule is checked every ``every`` steps (default every step, which makes the stopping step exact).

Rules:

- :class:`TargetRisk` (the paper's protocol): R = (1/n) sum_i l(y_i f(x_i)) <= eps.
- :class:`PositiveClassLoss` (the paper's positive-class variant): mean loss over the samples with y = +1 < eps.
- :class:`TrainAccuracy`: the fraction of correctly classified training samples >= level; level 0.99 is the
  "train accuracy >= 99 %" variant and :data:`ZERO_TRAIN_ERROR` (level 1) the "zero train error" variant.

A sample counts as correct when its margin y f(x) is > 0 (binary) or its label is the unique arg-max (classes);
a zero margin is an error.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import torch

from theory.validation import ParameterError, check_in_range, check_int, check_positive


@dataclass(frozen=True)
class Evaluation:
    """Training-set statistics of every member at one step.

    Attributes:
        losses: per-sample losses, shape (E, n).
        correct: whether each sample is classified correctly, bool, shape (E, n).
        positive: mask of the samples with label +1, shape (n,) or (E, n); None for a multi-class task.
    """

    losses: torch.Tensor
    correct: torch.Tensor
    positive: torch.Tensor | None = None

    @cached_property
    def risk(self) -> torch.Tensor:
        """R per member, shape (E,)."""
        return self.losses.mean(-1)

    @cached_property
    def accuracy(self) -> torch.Tensor:
        """Training accuracy per member, shape (E,)."""
        return self.correct.to(self.losses.dtype).mean(-1)


@dataclass(frozen=True)
class StopRule(ABC):
    """When a member has reached its target; checked at the steps k with k % every == 0."""

    def __post_init__(self) -> None:
        check_int("every", self.every)

    @abstractmethod
    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        """Bool tensor (E,): which members meet the target at this step."""

    def due(self, step: int) -> bool:
        """Whether the rule is checked at ``step``."""
        return step % self.every == 0


@dataclass(frozen=True)
class TargetRisk(StopRule):
    """Stop at the first step with training risk R <= eps."""

    eps: float
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("eps", self.eps)

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        return evaluation.risk <= self.eps


@dataclass(frozen=True)
class PositiveClassLoss(StopRule):
    """Stop at the first step where the mean loss over the samples with y = +1 is < eps."""

    eps: float
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("eps", self.eps)

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        if evaluation.positive is None:
            raise ParameterError(
                "stop = PositiveClassLoss needs binary labels in {-1, +1}; allowed: TargetRisk, TrainAccuracy"
            )
        mask = evaluation.positive.to(evaluation.losses.dtype).expand_as(evaluation.losses)
        count = mask.sum(-1)
        mean = (evaluation.losses * mask).sum(-1) / count.clamp(min=1)
        return (mean < self.eps) & (count > 0)


@dataclass(frozen=True)
class TrainAccuracy(StopRule):
    """Stop at the first step where at least ``level`` of the training samples are classified correctly."""

    level: float = 0.99
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_in_range("level", self.level, 0.0, 1.0, closed="right")

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        # count needed = ceil(level * n), with level read as the decimal it prints as (0.99 means 99/100, not the
        # binary float just below it), in exact rational arithmetic
        needed = math.ceil(Fraction(repr(float(self.level))) * evaluation.correct.shape[-1])
        return evaluation.correct.sum(-1) >= needed


#: The "zero train error" variant: every training sample classified correctly.
ZERO_TRAIN_ERROR = TrainAccuracy(1.0)
