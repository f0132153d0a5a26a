"""How a smooth piece ends, and the field checked for it: :class:`PieceEnd` (the integrators' report to the
hybrid loop), :class:`FiniteField` (the piece's field, which tells a divergence from a failure of the method),
and the exceptions a step raises: :class:`Diverged`, :class:`StepRejected` (docs/flow.md, "Robustness")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class Diverged(ArithmeticError):
    """The field or the state became NaN or infinite."""


class StepRejected(ArithmeticError):
    """A step's dense output put its first guard event where the field is not finite, or beyond its stability
    interval: the step overshot (a stiff field, an exponential loss far out) and is retried smaller by ``factor``
    (docs/flow.md, "Robustness"): OVERFLOW_FACTOR, or into the interval (``interpolant_retry_factor``)."""

    #: The retry's factor where the field overflowed (an implicit method's overflow too): ten times smaller.
    OVERFLOW_FACTOR = 0.1

    def __init__(self, message: str, factor: float = OVERFLOW_FACTOR) -> None:
        super().__init__(message)
        self.factor = factor


@dataclass
class PieceEnd:
    """Why and where a piece ended: ``kind`` in 'event', 't_bound', 'diverged', 'failed', 'stiff' (the
    integrator's :class:`~simulate.flow.stiffness.StiffnessMonitor` found its explicit steps held at the
    stability boundary; (t, y) is the last accepted step's end) or 'order' (its
    :class:`~simulate.flow.order.OrderMonitor` found a higher-order method several times cheaper; as 'stiff').
    ``stiff``: the monitor found that on the step that ended in this event (the run goes on with an implicit
    method after the event)."""

    kind: str
    t: Any
    y: Any
    step: float | None = None
    column: int | None = None
    values: np.ndarray | None = None  # the guards at t (events): all of them, or those of ``columns``
    message: str = ""
    #: the piece's guard index of each entry of ``values``, when they are not all the guards: every guard not
    #: listed is off its surface (a pair that cannot change sign in the step, a sliding pair's column)
    columns: np.ndarray | None = None
    #: every sample's network output at y under the piece's mode (events), when the integrator computed it
    outputs: Any = None
    stiff: bool = False


class FiniteField:
    """(t, y) -> fun(y), raising :class:`Diverged` when the first value (the field at the piece's start, where
    both integrators evaluate first) is not finite.

    Later values pass through as they are: a stage that overshoots into overflow (an exponential loss far
    out) has a non-finite error estimate, and the step is rejected and retried smaller, as for any step that
    misses its tolerance. ``overflowed`` says whether the last value was not finite: when the step size then
    shrinks to nothing, the field is not finite just beyond the last accepted state (a divergence, not a
    failure of the method).
    """

    def __init__(self, fun: Callable[[Any], Any]) -> None:
        self.fun = fun
        self.started = False
        self.overflowed = False
        self.overflow_seen = False  # some value since the last accepted step was not finite

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        dy = self.fun(y)
        self.overflowed = not np.isfinite(dy @ dy)  # a NaN or inf entry (or a field beyond 1e154)
        self.overflow_seen |= self.overflowed
        if self.overflowed and not self.started:
            raise Diverged(f"the field is not finite at t = {t:.6g}")
        self.started = True
        return dy

    def finite_at(self, y: np.ndarray) -> bool:
        """Whether the field is finite at y (size,), or at every one of states y (K, size) (not counted as a
        value of the step: ``overflowed`` is kept): the field's own cheaper test when it has one
        (``piece_field.PieceField.finite_at``, a third of an evaluation per state), else one evaluation each."""
        own_test = getattr(self.fun, "finite_at", None)
        if own_test is not None:
            return own_test(y)
        return all(np.isfinite(np.vdot(dy, dy)) for dy in map(self.fun, np.atleast_2d(y)))

    def event_outputs(self, y: np.ndarray, known: Any = None) -> tuple[bool, Any]:
        """(whether the field is finite at the state y (size,), every sample's network output there or None).

        From the outputs alone when the field has that test (``piece_field.PieceField.finite_outputs``): ``known``
        (the outputs at y, when the step's guards computed them) or else one output evaluation; else
        :meth:`finite_at` and no outputs."""
        outputs_of = getattr(self.fun, "outputs", None)
        if outputs_of is None:
            return self.finite_at(y), None
        outputs = outputs_of(y) if known is None else known
        return self.fun.finite_outputs(outputs), outputs

    def end(self, t: float, y: np.ndarray, step: float | None, message: str) -> PieceEnd:
        """The piece's end when the step size has shrunk to nothing at (t, y): diverged or failed."""
        if self.overflowed:
            return PieceEnd("diverged", t, y, message=f"the field is not finite beyond t = {t:.6g}")
        return PieceEnd("failed", t, y, step, message=message)
