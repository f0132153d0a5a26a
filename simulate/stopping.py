"""Stopping rules of docs/design.md section 2: one object per target, read by the flow and the discrete engines alike.

A run stops at the first time its target holds; for the paper's rule (:class:`TargetRisk`) that is

    tau_eps = inf { t : R(theta_t) <= eps },    R(theta) = (1/n) sum_i w_i l(f(x_i; theta), y_i),

the user's risk: real targets with the squared loss, and the normalized sample weights w_i (mean 1; all 1 when a
run has none, :mod:`theory.losses`), which both faces receive already folded into the per-sample losses.

Every rule has two faces, so that one object (``TargetRisk(0.05)``, say) can be given to
:func:`simulate.flow.integrate_flow` (``stop_rule=``), :func:`simulate.train.train_ensemble` and
:func:`simulate.train.train_deep` (``stop=``) and means the same target in each:

- ``value(f, y, arithmetic)`` (flow engine): a function of the outputs f on the training set that is <= 0 exactly
  when the target holds. It is continuous in time (smooth between activation changes), so the integrator brackets
  its first zero between two samples of the dense output and locates it to the solver's tolerance, like an
  activation event. It works on any leading axes and in any :class:`~simulate.flow.arithmetic.Arithmetic`
  (float64 or mpmath).
- ``reached(evaluation)`` (discrete engines): which members of an ensemble meet the target at step k, from their
  per-sample losses and correctness (:class:`Evaluation`). A rule is checked at the steps k with k % every == 0
  (default every step, which makes the stopping step exact), and a member stops at the first checked step where
  its rule holds: tau_eps = k eta. The flow engine has no steps and ignores ``every``.

The flow engine also asks each rule for ``lower_bound(f_low, f_high, y, arithmetic)``: a lower bound on ``value``
over a box of outputs, so that a step whose outputs provably stay in a box where the target cannot hold need
not form them (:mod:`simulate.flow.output_screen`; docs/flow.md, "Cost").

For binary labels the faces agree: ``value(f, y) <= 0`` exactly when ``reached`` holds at the same outputs, apart
from a margin y_i f_i exactly 0 in :class:`TrainAccuracy` (see there).

Rules:

- :class:`TargetRisk` (the paper's protocol): R <= eps; any targets.
- :class:`PositiveClassLoss` (the paper's positive-class variant): the weighted mean loss over the samples with
  y = +1, sum_{y_i = 1} w_i l_i / sum_{y_i = 1} w_i, <= eps; binary labels only.
- :class:`TrainAccuracy` (binary labels only): at least a fraction ``level`` of the training samples classified correctly; level 0.99 is
  the "train accuracy >= 99 %" variant and :data:`ZERO_TRAIN_ERROR` (level 1) the "zero train error" variant.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from fls.theory.losses import is_binary
from fls.theory.validation import ParameterError, check_in_range, check_int, check_positive

if TYPE_CHECKING:
    import torch

    from fls.simulate.flow.arithmetic import Arithmetic


@dataclass(frozen=True)
class Evaluation:
    """Training-set statistics of every member at one step.

    Attributes:
        losses: per-sample weighted losses w_i l_i, shape (E, n) (their mean is the risk).
        correct: whether each sample is classified correctly, bool, shape (E, n) (for real targets: whether its
            prediction has the target's sign, a diagnostic only).
        positive: mask of the samples with label +1, shape (n,) or (E, n); None for a multi-class task or real
            targets.
        weights: the normalized sample weights w_i, (n,) or (E, n), or None (all 1).
    """

    losses: torch.Tensor
    correct: torch.Tensor
    positive: torch.Tensor | None = None
    weights: torch.Tensor | None = None

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
    """A target: the run stops at the first time it holds. Subclasses declare the field ``every`` (int >= 1)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", check_int("every", self.every))

    @abstractmethod
    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        """The continuous face at outputs f (..., n) and labels y (n,): shape (...), <= 0 where the target holds."""

    @abstractmethod
    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        """The discrete face: bool tensor (E,), which members meet the target at this step."""

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable statement of the target."""

    @abstractmethod
    def lower_bound(self, f_low: np.ndarray, f_high: np.ndarray, y: np.ndarray, arithmetic: Arithmetic) -> float:
        """A lower bound on ``value(f, y)`` over every f with f_low <= f <= f_high (n,) elementwise, float64:
        where it is > 0 the target cannot hold anywhere in that box of outputs (the flow engine's screen of the
        stopping rule's guard, :mod:`simulate.flow.output_screen`; docs/flow.md, "Cost")."""

    def check_labels(self, y: np.ndarray) -> None:
        """Raise ParameterError when the rule cannot be evaluated on these labels (default: always fine)."""

    def due(self, step: int) -> bool:
        """Whether a discrete engine checks the rule at ``step``."""
        return step % self.every == 0


@dataclass(frozen=True)
class TargetRisk(StopRule):
    """The paper's rule: R(theta) = (1/n) sum_i l(y_i f_i) <= eps."""

    eps: float
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "eps", check_positive("eps", self.eps))

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        losses = arithmetic.losses(f, y)
        # the mean as ndarray.mean forms it (a sum, then one division), without its Python wrapper: the flow
        # engine evaluates this guard at every step and event (docs/flow.md, "Cost")
        return losses.sum(-1) / losses.shape[-1] - self.eps

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        return evaluation.risk <= self.eps

    def lower_bound(self, f_low: np.ndarray, f_high: np.ndarray, y: np.ndarray, arithmetic: Arithmetic) -> float:
        """(1/n) sum_i min over [f_low_i, f_high_i] of w_i l(f, y_i), less eps (:func:`least_losses`)."""
        least = least_losses(f_low, f_high, y, arithmetic)
        return float(least.sum() / least.shape[-1] - self.eps)

    def describe(self) -> str:
        return f"training risk <= {self.eps:g}"


@dataclass(frozen=True)
class PositiveClassLoss(StopRule):
    """The positive-class rule: the mean loss over the samples with y = +1 is <= eps.

    During the alignment phase of a small initialization every loss is ~ log 2 > eps (eps < log 2), so its first
    passage below eps comes after that phase, as the paper's protocol requires. It needs binary labels; a member
    without positive samples never reaches it.
    """

    eps: float
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "eps", check_positive("eps", self.eps))

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        positive = np.asarray(arithmetic.to_float(y)) > 0
        losses = arithmetic.losses(f, y)[..., positive]
        if arithmetic.weights is None:
            return losses.mean(-1) - self.eps
        return losses.sum(-1) / arithmetic.weights[positive].sum() - self.eps

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        if evaluation.positive is None:
            raise ParameterError(
                "stop = PositiveClassLoss needs binary labels in {-1, +1}; allowed: TargetRisk, TrainAccuracy"
            )
        mask = evaluation.positive.to(evaluation.losses.dtype).expand_as(evaluation.losses)
        count = mask.sum(-1)
        weight = count if evaluation.weights is None else (mask * evaluation.weights).sum(-1)
        mean = (evaluation.losses * mask).sum(-1) / (weight + (weight == 0))  # a class without weight: 0 / 1
        return (mean <= self.eps) & (weight > 0)

    def describe(self) -> str:
        return f"positive-class mean loss <= {self.eps:g}"

    def lower_bound(self, f_low: np.ndarray, f_high: np.ndarray, y: np.ndarray, arithmetic: Arithmetic) -> float:
        """The positive samples' weighted mean of the least losses on their intervals, less eps
        (:func:`least_losses`)."""
        positive = np.asarray(y) > 0
        least = least_losses(f_low, f_high, y, arithmetic)[positive]
        weight = least.shape[-1] if arithmetic.weights is None else arithmetic.weights[positive].sum()
        return float(least.sum() / weight - self.eps)

    def check_labels(self, y: np.ndarray) -> None:
        require_binary("PositiveClassLoss", y)
        if not np.any(y > 0):
            raise ParameterError(
                "the positive-class stopping rule needs at least one sample with y = +1; got none"
            )


@dataclass(frozen=True)
class TrainAccuracy(StopRule):
    """Training accuracy >= level: at least ``required(n)`` = ceil(level n) of the n samples classified correctly.

    Discrete face: a sample is correct when its margin y f(x) is > 0 (binary) or its label is the unique arg-max
    (classes); a zero margin is an error. Continuous face (binary): value = minus the (e+1)-th smallest margin,
    e = n - ceil(level n) the allowed errors, so value <= 0 exactly when at least n - e margins are >= 0. The faces
    differ only at a margin exactly 0, which the continuous face counts as met: its zero set is the boundary of the
    open set where the discrete face holds, and the flow stops where that order statistic reaches 0.
    """

    level: float = 0.99
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "level", check_in_range("level", self.level, 0.0, 1.0, closed="right"))

    def required(self, n: int) -> int:
        """ceil(level n), with level read as the decimal it prints as (0.99 means 99/100, not the binary float
        just below it), in exact rational arithmetic."""
        return math.ceil(Fraction(repr(self.level)) * n)

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        n = f.shape[-1]
        return -np.sort(y * f, axis=-1)[..., n - self.required(n)]

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        return evaluation.correct.sum(-1) >= self.required(evaluation.correct.shape[-1])

    def lower_bound(self, f_low: np.ndarray, f_high: np.ndarray, y: np.ndarray, arithmetic: Arithmetic) -> float:
        """Minus the (e+1)-th smallest of the margins' upper ends: each margin y_i f_i is at most y_i f_high_i
        (y_i = +1) or -f_low_i (y_i = -1) on the box, and an order statistic does not decrease in any entry, so
        the (e+1)-th smallest margin is at most that of the upper ends (exact: a comparison and a sign)."""
        n = len(f_low)
        highest_margins = np.where(np.asarray(y) > 0, f_high, -f_low)
        return float(-np.sort(highest_margins)[n - self.required(n)])

    def describe(self) -> str:
        return f"train accuracy >= {self.level:g}"

    def check_labels(self, y: np.ndarray) -> None:
        require_binary("TrainAccuracy", y)


def least_losses(f_low: np.ndarray, f_high: np.ndarray, y: np.ndarray, arithmetic: Arithmetic) -> np.ndarray:
    """Each sample's least weighted loss w_i l(f, y_i) over f in [f_low_i, f_high_i] (n,), float64.

    Every loss of docs/design.md section 2 is convex in f and >= 0, and the weights are >= 0, so the least value
    on an interval is at an end, unless the loss's minimizer is inside: then the derivative changes sign on
    the interval (the weighted sample factor w s = -w dl/df is > 0 at f_low and < 0 at f_high), and 0 bounds
    it (the squared loss's least value, reached at f = y; the logistic and exponential losses decrease in the
    margin and have no minimizer).
    """
    ends = np.stack([np.asarray(f_low, dtype=np.float64), np.asarray(f_high, dtype=np.float64)])
    losses, factors = arithmetic.losses(ends, y), arithmetic.sample(ends, y)
    inside = (factors[0] > 0) & (factors[1] < 0)
    return np.where(inside, 0.0, np.minimum(losses[0], losses[1]))


def require_binary(rule: str, y: np.ndarray) -> None:
    """Raise ParameterError naming ``rule`` when ``y`` holds real targets rather than labels in {-1, +1}."""
    if not is_binary(y):
        raise ParameterError(
            f"stop = {rule} needs binary labels in {{-1, +1}}; these targets are real-valued; allowed: TargetRisk"
        )


#: The "zero train error" variant: every training sample classified correctly.
ZERO_TRAIN_ERROR = TrainAccuracy(1.0)
