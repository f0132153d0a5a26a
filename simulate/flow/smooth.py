"""One smooth piece of the hybrid flow, integrated step by step with a scipy Runge–Kutta or implicit method.

Within a piece the mode is fixed and the field is smooth (analytic in the state), so an adaptive high-order
method meets its tolerance: DOP853 (order 8, dense output of order 7) by default, RK45 / RK23, or Radau / BDF
with the analytic Jacobian for stiff cases. After every accepted step the guards (:mod:`simulate.flow.events`)
are sampled on the step's dense output; the first crossing ends the piece at its located time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy.integrate import BDF, RK23, RK45

from fls.simulate.flow import jit
from fls.simulate.flow.coupled_radau import CoupledRadau
from fls.simulate.flow.error_norm import FiniteNormDOP853
from fls.simulate.flow.events import PieceGuards, StepGuards, first_event
from fls.simulate.flow.guard_nodes import guard_fractions
from fls.simulate.flow.heun_euler import HeunEuler
from fls.simulate.flow.interpolant import interpolant_retry_factor, trusted_observer
from fls.simulate.flow.order import ORDER, OrderMonitor
from fls.simulate.flow.piece_end import Diverged, FiniteField, PieceEnd, StepRejected
from fls.simulate.flow.polynomial_guards import PolynomialStepGuards
from fls.simulate.flow.retry_check import RetryCheck
from fls.simulate.flow.rk_step import explicit_step
from fls.simulate.flow.stage_sums import stage_value
from fls.simulate.flow.step_control import ESTIMATOR_ORDER, initial_step
from fls.simulate.flow.stiffness import TABLEAUS, StiffnessMonitor
from fls.simulate.flow.tolerance import ConvertsTolerance, StepTolerance

SOLVERS = {
    "DOP853": FiniteNormDOP853, "RK45": RK45, "RK23": RK23, "RK12": HeunEuler, "Radau": CoupledRadau, "BDF": BDF,
}
IMPLICIT = ("Radau", "BDF")
#: The methods :class:`ExplicitPieces` integrates itself; the others go through scipy's solver objects.
EXPLICIT = ("RK12", "RK23", "RK45")
_EPS = float(np.finfo(np.float64).eps)  # np.finfo per call costs more than the expression it serves


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
    end_field: Callable[[], None] | None = None,
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
    :class:`StepRejected` with that factor. ``end_field``: called where no event ends the step, before the
    observer sees it: forms the field at y_b where the pair's step did not (RK12's, read by the next step
    only), and raises :class:`StepRejected` where it is not finite; None where the step formed it.
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
    if end_field is not None:
        end_field()
    if observer is not None:
        observer(t_a, t_b, y_b, states)
    return None


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
    """Integrates pieces with an embedded explicit Runge–Kutta pair (RK12, RK23 or RK45), stepping it directly.

    The tableau (A, B, C), the error weights E and the interpolant P are those of scipy's class of the same name
    (RK12: :class:`~simulate.flow.heun_euler.HeunEuler`); the dense output of a step from (t, y) with size h is
    y(t + theta h) = y + sum_k (h P^T K)_k theta^(k+1), a polynomial of degree 2 (RK12), 3 (RK23) or 4 (RK45)
    in t, exactly what :class:`StepGuards` needs. A pair whose E and P do not read f(y_new) (RK12: ``deferred``)
    forms it only once the step is known not to end in an event (the next step's first stage), or for the
    retry check; a step an event ends costs its stages alone. ``monitor``: a
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
        self.stages = tableau.n_stages
        #: the step reads no f(y_new): it is formed for the next step (``_form_end``), never on an event's step
        self.deferred = not (tableau.E[-1] or tableau.P[-1].any())
        read = self.stages + (0 if self.deferred else 1)  # the rows of K that the error and dense output read
        self.E, self.P = tableau.E[:read], tableau.P[:read]
        self.end_formed = True  # whether K[-1] holds f(y_new) of the last step
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

    def _form_end(self, fun: Callable[[Any], Any], y_new: np.ndarray, K: np.ndarray, checked: bool) -> None:
        """K[-1] = f(y_new) for a ``deferred`` pair's step, once; ``checked``: raise :class:`StepRejected` where
        it is not finite (the step then retried smaller, as a step whose last stage overflows under RK23)."""
        if self.end_formed:
            return
        stage_value(fun, y_new, K[-1])
        self.end_formed = True
        if checked and not np.isfinite(K[-1] @ K[-1]):
            raise StepRejected("the field is not finite at the step's end")

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
                self.end_formed = not self.deferred
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
                    np.matmul(h * self.P.T, K[: len(self.P)], out=coefficients[1:])
                if self.retry_check.at_risk(t):  # Simpson's rule reads f(y_new)
                    self._form_end(checked.fun, y_new, K, checked=False)
                shrink = self.retry_check.shrink(checked.fun, t, h, y, y_new, self._workspace(y.size))
                if shrink < 1:  # a step whose estimate missed a transient (retry_check): rejected after all
                    h, rejected = h * shrink, True
                    continue

                def states(ts: Any, t=t, h=h, coefficients=coefficients) -> np.ndarray:
                    theta = (np.atleast_1d(np.asarray(ts, dtype=np.float64)) - t) / h
                    return (theta[:, None] ** self.powers) @ coefficients

                end_field = partial(self._form_end, checked.fun, y_new, K, True) if self.deferred else None
                try:
                    end = accepted_step(
                        guards, observer, self.fractions, t, t_new, y_new, states, h, checked, coefficients,
                        end_field=end_field,
                    )
                except StepRejected:  # the step's interior overshot into overflow: as a rejected step
                    checked.overflowed = True
                    h *= 0.2
                    rejected = True
                    continue
                # the whole step's size and end (an event truncates the step, not what held its size)
                f_new = K[-1] if self.end_formed else None  # None: formed by the test where it needs it
                stiff = self.monitor is not None and self.monitor.stiff(checked.fun, jac, y_new, f_new, h)
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
    with ``high_order_method`` (of higher order than RK12 / RK23 / RK45 ``method``) it ends a piece 'order' when that
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
