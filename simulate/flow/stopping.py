"""Stopping rules tau = inf { t : value(theta_t) <= 0 } (DESIGN.md section 2), located on the dense output.

Each rule's ``value`` is a continuous function of the network outputs f on the training set (continuous in
time, smooth between activation changes), so the integrator can bracket its first zero between two samples of
the dense output and locate it to the solver's tolerance, exactly like an activation event. ``value`` works on
any leading axes and in any :class:`~simulate.flow.arithmetic.Arithmetic` (float64 or mpmath).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulate.flow.arithmetic import Arithmetic
from theory.validation import ParameterError, check_in_range, check_positive


class StopRule(ABC):
    """A target: the run stops at the first time ``value(f, y) <= 0``."""

    @abstractmethod
    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        """The stopping function at outputs f (..., n) and labels y (n,), shape (...)."""

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable statement of the target."""

    def check_labels(self, y: np.ndarray) -> None:
        """Raise ParameterError when the rule cannot be evaluated on these labels (default: always fine)."""


@dataclass(frozen=True)
class TargetRisk(StopRule):
    """The paper's rule: R(theta_t) = (1/n) sum_i l(y_i f_i) <= eps."""

    eps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_positive("target_risk", self.eps))

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        return arithmetic.losses(f, y).mean(-1) - self.eps

    def describe(self) -> str:
        return f"training risk <= {self.eps:g}"


@dataclass(frozen=True)
class PositiveClassLoss(StopRule):
    """The positive-class rule: the mean loss over the samples with y = +1 is <= eps.

    During the alignment phase of a small initialization every loss is ~ log 2 > eps (eps < log 2), so its
    first passage below eps comes after that phase, as the paper's protocol requires.
    """

    eps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_positive("eps", self.eps))

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        positive = np.asarray(arithmetic.to_float(y)) > 0
        return arithmetic.losses(f, y)[..., positive].mean(-1) - self.eps

    def describe(self) -> str:
        return f"positive-class mean loss <= {self.eps:g}"

    def check_labels(self, y: np.ndarray) -> None:
        if not np.any(y > 0):
            raise ParameterError(
                "the positive-class stopping rule needs at least one sample with y = +1; got none"
            )


@dataclass(frozen=True)
class TrainAccuracy(StopRule):
    """Training accuracy >= level: at most n - ceil(level n) margins y_i f_i <= 0.

    value = minus the (e+1)-th smallest margin, e the allowed number of errors: <= 0 exactly when at least
    n - e margins are >= 0; the first time is where that order statistic (continuous in t) reaches 0.
    level = 1 is the zero-train-error rule (:func:`zero_train_error`).
    """

    level: float = 0.99

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", check_in_range("level", self.level, 0.0, 1.0, closed="right"))

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        n = f.shape[-1]
        allowed_errors = n - math.ceil(self.level * n - 1e-9)
        return -np.sort(y * f, axis=-1)[..., allowed_errors]

    def describe(self) -> str:
        return f"train accuracy >= {self.level:g}"


def zero_train_error() -> TrainAccuracy:
    """The zero-train-error rule: every margin y_i f_i >= 0."""
    return TrainAccuracy(1.0)
