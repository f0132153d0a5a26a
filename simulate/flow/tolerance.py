"""What rtol and atol mean, in every coordinate system: each step's local error in the network's weights.

A step of the flow is held, component by component, to

    |error in w_jk| <~ atol + rtol |w_jk|,        |error in v_j| <~ atol + rtol |v_j|        (1)

whatever the state the integrator carries (docs/flow.md, "Options"). In plain coordinates the state is (W, v)
and (1) is the solvers' own rule atol + rtol |y|. The other coordinate systems turn (1) into a tolerance on
each component of their own state (``Coordinates.state_tolerance``), all by one rule: a state component y_s
may be wrong by the largest amount that, alone and to first order, moves the weights it acts on within (1),

    tau_s = min over weights p of (atol + rtol |p|) / |dp / dy_s|                                           (2)

(log coordinates: a component acts on one neuron's d + 1 weights, O(m d); data-span coordinates: lambda_ji
acts on the d weights of w_j along x_i, the minimum over them taken within a factor d^(1/8) on the safe side
at the cost of two matrix products, ``SpanCoordinates.state_tolerance``, which converts a neuron's row again
only when its weights may have moved its T by more than ``REUSE_FRACTION`` and scales a reused row to stay
within (2)).

Before, rtol and atol applied to the state itself, so the same tolerances meant a weight error of r atol for
a neuron of norm r in log coordinates (80 times the plain error at r = 80) and, in data-span coordinates
whose state starts at 0, a bound 1e8 times tighter than plain coordinates ask, below the field's roundoff.

Precision: (2) is exact to first order in the error for one component (log coordinates: within 2 % at the
tolerances allowed; data-span coordinates: exact, the map is linear, and up to d^(1/8) tighter). The step's RMS error norm lets the
errors of the state's components add, so a step at error norm 1 is within (1) up to a factor of about the
number of state components that move one weight (1 in plain coordinates, d + 1 in log coordinates, n in
data-span coordinates), and much closer in RMS (tests/simulate/test_flow_tolerance.py).

:class:`StepTolerance` is the one place the piece integrators, their starting step and the grazing
resolution (:meth:`~simulate.flow.hybrid.HybridFlow.resolution`) read a tolerance from.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

#: The size of the last Newton correction, in units of the error allowed per step (the RMS norm a step's
#: error is held to 1 in), at which the Newton iteration of Radau and BDF stops. scipy takes
#: max(10 eps / rtol, min(0.03, rtol^(1/2))): 1.3e-5 of the tolerance at rtol 1.7e-10. For a component whose
#: tolerance is atol alone (a weight at 0, such as a neuron sliding on w_j = 0 in d = 1) that is below what
#: one step resolves, h times the field's roundoff (about |J| eps |y|): the iteration stalls at a contraction
#: rate of 1 and the step halves until it is. A last correction of 3 % of the tolerance is negligible
#: against the step's error, which is held to the whole tolerance (scipy's own value for rtol >= 1e-3).
NEWTON_TOLERANCE = 0.03
_EPS = float(np.finfo(np.float64).eps)


def implicit_floor(y: np.ndarray) -> float:
    """eps max |y|, the roundoff of the state's largest component: the least tolerance per component that
    Radau and BDF are held to. Their Newton iteration must bring its correction below NEWTON_TOLERANCE of the
    component's tolerance, but the collocation residual of a step carries the field's roundoff, h times about
    |J| eps max |y|: where atol alone (a component near 0) is below the state's roundoff the iteration does not
    contract, and the step shrinks until h |J| is of order 1. A stored slow-tier problem (DOP853 handed to Radau,
    squared loss, weights of 290, Jacobian eigenvalue -5e5, atol 1e-14 against a roundoff of 6.4e-14) held
    steps of 2e-8 where they had been 5e-4, with a Jacobian at every step (docs/flow.md, "Robustness", "An atol
    below the state's roundoff"). The explicit methods, which iterate nothing, keep the tolerance as given."""
    return _EPS * float(np.max(np.abs(y), initial=0.0))


def componentwise(values: Any, rtol: float, atol: float) -> Any:
    """atol + rtol |values|: equation (1) on the numbers themselves (the plain meaning)."""
    return atol + rtol * np.abs(values)


class ConvertsTolerance(Protocol):
    """Coordinates that turn equation (1) into their own state's tolerance (``Coordinates.state_tolerance``)."""

    name: str

    def state_tolerance(self, Y: Any, rtol: float, atol: float, out: Any = None) -> Any: ...


class StepTolerance:
    """rtol and atol of a run with the coordinates they are read in: the error allowed per step in each
    component of a state (:meth:`of`), and its forms for the integrators' steps.

    Plain coordinates (or none given) keep the solvers' scalar rule, bit for bit; other coordinates convert
    per state (:mod:`simulate.flow.tolerance`, equation (2))."""

    def __init__(self, rtol: float, atol: float, coords: ConvertsTolerance | None = None) -> None:
        self.rtol, self.atol = rtol, atol
        self.coords = None if coords is None or coords.name == "plain" else coords

    @property
    def converted(self) -> bool:
        """Whether the state's tolerance differs from atol + rtol |y| (coordinates other than plain)."""
        return self.coords is not None

    def of(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The error allowed per step in each component of the state y (size,); converted coordinates write it
        into ``out`` when given (a buffer of y's size)."""
        if self.coords is None:
            return componentwise(y, self.rtol, self.atol)
        if out is None:
            return self.coords.state_tolerance(y, self.rtol, self.atol)
        return self.coords.state_tolerance(y, self.rtol, self.atol, out=out)

    def step_scale(self, y: np.ndarray, y_new: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The scale of a step's error estimate from y to y_new, written to ``out`` (``work``: a buffer of the
        same size, overwritten): atol + rtol max(|y|, |y_new|) as scipy's Runge–Kutta steps form it, in place;
        converted coordinates take the tolerance at the step's start, :meth:`of` (y), formed in ``out`` (no
        state-sized temporary and copy: 2 ms a step on low_signal at m = 20000, docs/flow.md "Cost")."""
        if self.coords is not None:
            return self.of(y, out)
        np.abs(y, out=out)
        np.maximum(out, np.abs(y_new, out=work), out=out)
        out *= self.rtol
        out += self.atol
        return out

    def apply_to(self, solver: Any) -> None:
        """Set a scipy solver object's tolerances to this meaning at its current state (after its construction
        and each accepted step: per step for DOP853, per step and restart for Radau / BDF).

        scipy scales a step's error by atol + rtol |y| with an atol array allowed; converted coordinates give
        atol = :meth:`of` (y) and rtol = 0. Plain coordinates keep the scalars the solver was built with. The
        Newton iteration of Radau / BDF stops at :data:`NEWTON_TOLERANCE` of the error allowed per step,
        whatever rtol (docs/flow.md, "Robustness", "A Newton tolerance below the field's roundoff"), and no
        component's tolerance is below the state's roundoff (:func:`implicit_floor`)."""
        if self.coords is not None:
            solver.rtol, solver.atol = 0.0, self.of(solver.y)
        if hasattr(solver, "newton_tol"):
            solver.newton_tol = NEWTON_TOLERANCE
            solver.atol = np.maximum(self.atol if self.coords is None else solver.atol, implicit_floor(solver.y))
