"""One smooth piece of the hybrid flow, integrated step by step with a scipy Runge–Kutta or implicit method.

Within a piece the mode is fixed and the field is smooth (analytic in the state), so an adaptive high-order
method meets its tolerance: DOP853 (order 8, dense output of order 7) by default, RK45 / RK23, or Radau / BDF
with the analytic Jacobian for stiff cases. After every accepted step the guards (:mod:`simulate.flow.events`)
are sampled on the step's dense output; the first crossing ends the piece at its located time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.integrate import BDF, RK23, RK45

from fls.simulate.flow import jit
from fls.simulate.flow.coupled_radau import CoupledRadau
from fls.simulate.flow.error_norm import FiniteNormDOP853
from fls.simulate.flow.events import PieceGuards, StepGuards, first_event
from fls.simulate.flow.guard_nodes import guard_fractions
from fls.simulate.flow.interpolant import interpolant_retry_factor, trusted_observer
from fls.simulate.flow.order import ORDER, OrderMonitor
from fls.simulate.flow.polynomial_guards import PolynomialStepGuards
from fls.simulate.flow.retry_check import RetryCheck
from fls.simulate.flow.rk_step import explicit_step
from fls.simulate.flow.step_control import ESTIMATOR_ORDER, initial_step
from fls.simulate.flow.stiffness import TABLEAUS, StiffnessMonitor
from fls.simulate.flow.tolerance import ConvertsTolerance, StepTolerance

SOLVERS = {"DOP853": FiniteNormDOP853, "RK45": RK45, "RK23": RK23, "Radau": CoupledRadau, "BDF": BDF}
IMPLICIT = ("Radau", "BDF")
#: The methods :class:`ExplicitPieces` integrates itself; the others go through scipy's solver objects.
EXPLICIT = ("RK23", "RK45")


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


_EPS = float(np.finfo(np.float64).eps)  # np.finfo per call costs more than the expression it serves


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


#: observer(t_a, t_b, y_b, dense): called after each accepted (possibly truncated) step on [t_a, t_b];
#: dense(ts) returns the states (K, size) at times ts in [t_a, t_b], during the call (the engine's own steps
#: reuse their buffers for the next step).
Observer = Callable[[Any, Any, Any, Callable[[Any], Any]], None]


def accepted_step(
    guards: PieceGuards | None,
    observer: Observer | None,
    fractions: np.ndarray,
    t_a: float,
    t_b: float,
    y_b: np.ndarray,
    states: Callable[[Any], np.ndarray],
    step_size: float,
    checked: FiniteField,
    coefficients: np.ndarray | None = None,
    retry_factor: Callable[[], float | None] | None = None,
) -> PieceEnd | None:
    """What both integrators do after an accepted step [t_a, t_b]: look for the first guard event on the dense
    output ``states`` (times -> states (K, size)), tell the observer, and return the piece's end at the event,
    or None to go on.

    The guards are sampled at ``t_a + (t_b - t_a) * fractions``; the samples are recorded as seen
    (:meth:`PieceGuards.observe`) when no event is found. ``coefficients``: the dense output in the power basis
    of theta = (t - t_a) / step_size, when it is one; in coordinates that allow it the guards then come from
    the coefficients (:class:`~simulate.flow.polynomial_guards.PolynomialStepGuards`), not from sampled states.
    ``checked`` is the piece's field: an event at a state where the field is not finite raises
    :class:`StepRejected` before the observer sees the step (the step's interior overshot into overflow);
    the test uses the network outputs at the event, which the step's guards may have computed already, and
    the piece's end carries them for the event's handling (one output evaluation per event, docs/flow.md
    "Cost"). So does a step sampled on its states (scipy's solver objects) whose dense output leaves the
    field's finite range at any of its guard sample times (all of them at once, ``finite_at(Ys)``; with guards
    only, where the dense output decides), though its end points agree. The engine's own RK23 / RK45 steps (the
    ``coefficients`` path) need no such test: their interpolants are built from the stages their error
    estimates check. DOP853's error estimate leaves out its last stage
    and the three extra stages of its interpolant, which can meet a field of 7e6 next to stages of 3 (an
    exponential loss of outputs that are sums of large cancelling terms, atol 1e-4). Its interpolant is then
    garbage (states of 1e143 between end points of 70) and its end state can be one where the field is 1e21
    and any further step overflows: an event located in it used to carry that into the projection, a step
    ending there shrank to nothing, and either ended the run ``diverged``.
    ``retry_factor``: None where the step's dense output is as exact as the step, else the factor for a retry
    (scipy's DOP853 beyond its interpolant's stability interval,
    :func:`~simulate.flow.interpolant.interpolant_retry_factor`); an event found on such a step raises
    :class:`StepRejected` with that factor.
    """
    if guards is not None:

        def state_at(t: Any) -> np.ndarray:
            return states(t)[0]

        if coefficients is not None and guards.coords.polynomial_guards:
            step = PolynomialStepGuards(guards, t_a, step_size, fractions, coefficients, state_at)
        else:
            ts = t_a + (t_b - t_a) * fractions
            ts[-1] = t_b
            Ys = states(ts)
            if not checked.finite_at(Ys):
                raise StepRejected(f"the dense output leaves the field's finite range in [{t_a:.6g}, {t_b:.6g}]")
            step = StepGuards(guards, ts, guards.evaluate(Ys, one_scale=True), state_at, Ys)
        xtol = 4 * _EPS * max(abs(t_b), t_b - t_a)  # relative: fast transients near t = 0
        event = first_event(step, xtol)
        if event is not None:
            factor = None if retry_factor is None else retry_factor()
            if factor is not None:
                message = f"the dense output in [{t_a:.6g}, {t_b:.6g}] is beyond its stability interval"
                raise StepRejected(message, factor)
            t_event, column, values = event
            y_event = step.state(t_event)
            finite, outputs = checked.event_outputs(y_event, step.outputs_at(t_event))
            if not finite:
                raise StepRejected(f"the field is not finite at the event at t = {t_event:.6g}")
            if observer is not None:
                observer(t_a, t_event, y_event, states)
            columns = step.value_columns
            return PieceEnd("event", t_event, y_event, step_size, column, values, columns=columns, outputs=outputs)
    if observer is not None:
        observer(t_a, t_b, y_b, states)
    return None


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


class ScipyPieces:
    """Integrates pieces with a scipy solver class, stepping manually so the guards see every step.
    ``monitor``: a stiffness test on the accepted steps (explicit methods), or None. ``tolerance``: what rtol and
    atol mean in the run's coordinates (:mod:`simulate.flow.tolerance`; read on the state until
    :func:`piece_integrator` sets the coordinates)."""

    def __init__(self, method: str, rtol: float, atol: float, monitor: StiffnessMonitor | None = None) -> None:
        self.method, self.monitor = method, monitor
        self.solver_class = SOLVERS[method]
        self.order = ESTIMATOR_ORDER[method]
        self.implicit = method in IMPLICIT
        self.rtol, self.atol = rtol, atol
        self.tolerance = StepTolerance(rtol, atol)
        self.fractions = guard_fractions(method)

    def state_tolerance(self, y: np.ndarray) -> np.ndarray:
        """The error per step allowed in each component of y (:meth:`StepTolerance.of`)."""
        return self.tolerance.of(y)

    def run(
        self,
        fun: Callable[[Any], Any],
        jac: Callable[[Any], Any] | None,
        t0: float,
        y0: np.ndarray,
        t_bound: float,
        guards: PieceGuards | None,
        first_step: float | None,
        observer: Observer | None,
    ) -> PieceEnd:
        """Integrate y' = fun(y) from (t0, y0) until the first guard event or t_bound."""
        if t_bound <= t0:
            return PieceEnd("t_bound", t0, y0, first_step)

        checked = FiniteField(fun)
        options = {"rtol": self.rtol, "atol": self.atol}
        if self.implicit and jac is not None:
            options["jac"] = lambda t, y: jac(y)
        t_good, y_good = t0, y0
        try:
            if first_step is None:  # scipy's own guess would take an overflowing trial step as it is
                first_step = initial_step(
                    checked, t0, y0, checked(t0, y0), t_bound, self.order, self.tolerance.of(y0)
                )
                if first_step == 0:
                    return checked.end(t0, y0, None, "step size too small")
            options["first_step"] = min(first_step, t_bound - t0)
            solver = self.solver_class(checked, t0, y0, t_bound, **options)
            self.tolerance.apply_to(solver)
            while solver.status == "running":
                try:
                    message = solver.step()
                    if solver.status == "failed":
                        return checked.end(solver.t, solver.y, None, str(message))
                    if not np.all(np.isfinite(solver.y)) or not np.all(np.isfinite(getattr(solver, "f", 0.0))):
                        raise Diverged(f"the state or the field is not finite at t = {solver.t:.6g}")
                    end = self._accepted(solver, checked, guards, observer)
                    stiff = self.monitor is not None and self.monitor.stiff(
                        fun, jac, solver.y, solver.f, solver.t - solver.t_old
                    )
                except (ValueError, np.linalg.LinAlgError, StepRejected) as exc:
                    # an implicit method's Newton iteration or Jacobian met an overflowing field, or the step's dense
                    # output put an event there or beyond its stability interval: retry smaller, as a rejected step
                    if not (checked.overflow_seen or isinstance(exc, StepRejected)) or solver.step_size is None:
                        raise
                    checked.overflow_seen = False
                    factor = exc.factor if isinstance(exc, StepRejected) else StepRejected.OVERFLOW_FACTOR
                    options["first_step"] = min(solver.step_size, t_bound - t_good) * factor
                    if options["first_step"] <= 10 * np.spacing(abs(t_good)):
                        checked.overflowed = True
                        return checked.end(t_good, y_good, None, "step size too small")
                    solver = self.solver_class(checked, t_good, y_good, t_bound, **options)
                    self.tolerance.apply_to(solver)
                    continue
                if end is not None:
                    end.stiff = stiff
                    return end
                t_good, y_good = solver.t, solver.y
                self.tolerance.apply_to(solver)
                checked.overflow_seen = False
                if stiff:
                    return PieceEnd("stiff", solver.t, solver.y, solver.step_size)
        except Diverged as exc:
            return PieceEnd("diverged", t_good, y_good, message=str(exc))
        return PieceEnd("t_bound", solver.t, solver.y, solver.step_size)

    def _accepted(
        self, solver: Any, checked: FiniteField, guards: PieceGuards | None, observer: Observer | None
    ) -> PieceEnd | None:
        """:func:`accepted_step` on the solver's last step and its dense output."""
        dense = solver.dense_output()

        def states(ts: Any) -> np.ndarray:
            return dense(np.atleast_1d(np.asarray(ts, dtype=np.float64))).T

        return accepted_step(
            guards,
            trusted_observer(observer, self.method, solver, checked),
            self.fractions,
            solver.t_old,
            solver.t,
            solver.y,
            states,
            solver.step_size,
            checked,
            retry_factor=partial(interpolant_retry_factor, self.method, solver),
        )


class ExplicitPieces:
    """Integrates pieces with an embedded explicit Runge–Kutta pair (RK23 or RK45), stepping it directly.

    The tableau (A, B, C), the error weights E and the interpolant P are those of scipy's class of the same name;
    the dense output of a step from (t, y) with size h is y(t + theta h) = y + sum_k (h P^T K)_k theta^(k+1),
    a polynomial of degree 3 (RK23) or 4 (RK45) in t, exactly what :class:`StepGuards` needs. ``monitor``: a
    stiffness test on the accepted steps, or None; ``order_monitor``: the test for a higher-order method
    (:mod:`simulate.flow.order`), or None; ``tolerance`` as for :class:`ScipyPieces`.
    """

    implicit = False

    def __init__(
        self,
        method: str,
        rtol: float,
        atol: float,
        monitor: StiffnessMonitor | None = None,
        order_monitor: OrderMonitor | None = None,
    ) -> None:
        self.method, self.monitor, self.order_monitor = method, monitor, order_monitor
        tableau = SOLVERS[method]
        self.A, self.B, self.C = tableau.A, tableau.B, tableau.C
        self.E, self.P = tableau.E, tableau.P
        self.stages = tableau.n_stages
        self.order = tableau.error_estimator_order
        self.exponent = -1.0 / (self.order + 1)
        self.powers = np.arange(self.P.shape[1] + 1)
        self.rtol, self.atol = rtol, atol
        self.tolerance = StepTolerance(rtol, atol)
        self.fractions = guard_fractions(method)
        self.retry_check = RetryCheck(self.powers, self.exponent)
        self._buffers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.kernel = jit.kernels("rk_step_kernel")  # the compiled step (docs/flow.md, "Width"), or None

    def _workspace(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stages K (stages + 1, size), the dense output's coefficients (degree + 1, size) and two work
        vectors (2, size), kept from step to step: an array of more than 32 MB (K of low_signal at m = 20000)
        would otherwise be mapped afresh and page-faulted at every step (docs/flow.md, "Cost")."""
        if self._buffers is None or self._buffers[0].shape[1] != size:
            self._buffers = (
                np.empty((self.stages + 1, size)),
                np.empty((len(self.powers), size)),
                np.empty((2, size)),
            )
        return self._buffers

    def _step(self, fun: Callable[[Any], Any], y: np.ndarray, f: np.ndarray, h: float):
        """One step of size h: (y_new, stages K (stages + 1, size) with K[-1] = f(y_new), error norm, whether
        the dense output's coefficients were formed), by :func:`~simulate.flow.rk_step.explicit_step`
        (compiled where the switch is on and y is float64). K is the workspace's, until the next step."""
        kernel = self.kernel if y.dtype == np.float64 else None
        tableau = (self.A, self.B, self.E, self.P)
        return explicit_step(fun, y, f, h, tableau, self.tolerance, self._workspace(y.size), kernel)

    def state_tolerance(self, y: np.ndarray) -> np.ndarray:
        """The error per step allowed in each component of y (:meth:`StepTolerance.of`)."""
        return self.tolerance.of(y)

    def run(
        self,
        fun: Callable[[Any], Any],
        jac: Callable[[Any], Any] | None,
        t0: float,
        y0: np.ndarray,
        t_bound: float,
        guards: PieceGuards | None,
        first_step: float | None,
        observer: Observer | None,
    ) -> PieceEnd:
        """Integrate y' = fun(y) from (t0, y0) until the first guard event or t_bound (as ScipyPieces.run)."""
        if t_bound <= t0:
            return PieceEnd("t_bound", t0, y0, first_step)
        checked = FiniteField(fun)
        t, y, used = t0, y0, first_step
        if self.order_monitor is not None:
            self.order_monitor.begin_piece(t0)
        try:
            f = checked(t, y)
            if first_step:
                h = min(first_step, t_bound - t)
            else:
                h = initial_step(checked, t, y, f, t_bound, self.order, self.tolerance.of(y))
            rejected = False
            while t < t_bound:
                h = min(h, t_bound - t)
                if h <= 10 * np.spacing(abs(t)):  # as scipy's solvers: a transient at t ~ 0 may need tiny steps
                    return checked.end(t, y, used, f"step size too small at t = {t:.6g}")
                y_new, K, error, formed = self._step(checked.fun, y, f, h)
                checked.overflowed = not np.isfinite(error)
                if not error < 1:  # rejected (also when a stage is not finite: the error is then NaN or inf)
                    self.retry_check.rejected(t, h, error)
                    h *= max(0.2, 0.9 * error**self.exponent)
                    rejected = True
                    continue
                t_new = t_bound if h == t_bound - t else t + h
                # y(t + theta h) = sum_k coefficients_k theta^k, k = 0 .. degree (row 0 is y): contiguous rows
                coefficients = self._workspace(y.size)[1]
                if not formed:
                    coefficients[0] = y
                    np.matmul(h * self.P.T, K, out=coefficients[1:])
                shrink = self.retry_check.shrink(checked.fun, t, h, y, y_new, self._workspace(y.size))
                if shrink < 1:  # a step whose estimate missed a transient (retry_check): rejected after all
                    h, rejected = h * shrink, True
                    continue

                def states(ts: Any, t=t, h=h, coefficients=coefficients) -> np.ndarray:
                    theta = (np.atleast_1d(np.asarray(ts, dtype=np.float64)) - t) / h
                    return (theta[:, None] ** self.powers) @ coefficients

                try:
                    end = accepted_step(
                        guards, observer, self.fractions, t, t_new, y_new, states, h, checked, coefficients,
                    )
                except StepRejected:  # the step's interior overshot into overflow: as a rejected step
                    checked.overflowed = True
                    h *= 0.2
                    rejected = True
                    continue
                # the whole step's size and end (an event truncates the step, not what held its size)
                stiff = self.monitor is not None and self.monitor.stiff(checked.fun, jac, y_new, K[-1], h)
                if end is not None:
                    end.stiff = stiff
                    return end
                K[0] = K[-1]  # first same as last: the next step's first stage, kept through its rejections
                t, y, f, used = t_new, y_new, K[0], h
                if stiff:
                    return PieceEnd("stiff", t, y, h)
                if self.order_monitor is not None and self.order_monitor.pays(checked.fun, t, y, h):
                    return PieceEnd("order", t, y, h)
                factor = 10.0 if error == 0 else min(10.0, 0.9 * error**self.exponent)
                h *= min(1.0, factor) if rejected else factor
                rejected = False
        except Diverged as exc:
            return PieceEnd("diverged", t, y, message=str(exc))
        return PieceEnd("t_bound", t, y, used)


def piece_integrator(
    method: str,
    rtol: float,
    atol: float,
    stiff_method: str | None = None,
    high_order_method: str | None = None,
    coords: ConvertsTolerance | None = None,
) -> ExplicitPieces | ScipyPieces:
    """The piece integrator of ``method`` (one of :data:`SOLVERS`); with ``stiff_method`` an explicit one ends
    a piece 'stiff' when its steps are held at their stability boundary and that implicit method would do less
    work (:mod:`simulate.flow.stiffness`);
    with ``high_order_method`` (of higher order than RK23 / RK45 ``method``) it ends a piece 'order' when that
    method would do several times less work (:mod:`simulate.flow.order`).
    ``coords``: the run's coordinates, in which rtol and atol bound the weights' error per step
    (:mod:`simulate.flow.tolerance`); None reads them on the state as it is."""
    tolerance = StepTolerance(rtol, atol, coords)
    watched = stiff_method is not None and method in TABLEAUS
    monitor = StiffnessMonitor(method, stiff_method, tolerance) if watched else None
    if method not in EXPLICIT:
        integrator = ScipyPieces(method, rtol, atol, monitor)
    else:
        wanted = high_order_method is not None and ORDER[high_order_method] > ORDER[method]
        order_monitor = OrderMonitor(method, high_order_method, tolerance) if wanted else None
        integrator = ExplicitPieces(method, rtol, atol, monitor, order_monitor)
    integrator.tolerance = tolerance
    return integrator
