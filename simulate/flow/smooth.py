"""One smooth piece of the hybrid flow, integrated step by step with a scipy Runge–Kutta or implicit method.

Within a piece the mode is fixed and the field is smooth (analytic in the state), so an adaptive high-order
method meets its tolerance: DOP853 (order 8, dense output of order 7) by default, RK45 / RK23, or Radau / BDF
with the analytic Jacobian for stiff cases. After every accepted step the guards (:mod:`simulate.flow.events`)
are sampled on the step's dense output; the first crossing ends the piece at its located time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import BDF, DOP853, RK23, RK45, Radau

from simulate.flow.events import PieceGuards, StepGuards, first_event

SOLVERS = {"DOP853": DOP853, "RK45": RK45, "RK23": RK23, "Radau": Radau, "BDF": BDF}
IMPLICIT = ("Radau", "BDF")
#: Sub-intervals per step at which the guards are sampled: three more than the degree of the method's dense
#: output (7, 4, 3, 3, <= 5), at least 6, so the samples resolve the step's polynomial with room to spare.
NODES = {"DOP853": 10, "RK45": 7, "RK23": 6, "Radau": 6, "BDF": 8}


class Diverged(ArithmeticError):
    """The field or the state became NaN or infinite."""


@dataclass
class PieceEnd:
    """Why and where a piece ended: ``kind`` in 'event', 't_bound', 'diverged', 'failed'."""

    kind: str
    t: Any
    y: Any
    step: float | None = None
    column: int | None = None
    values: np.ndarray | None = None  # all guards at t (events)
    message: str = ""


#: observer(t_a, t_b, y_b, dense): called after each accepted (possibly truncated) step on [t_a, t_b];
#: dense(ts) returns the states (K, size) at times ts in [t_a, t_b].
Observer = Callable[[Any, Any, Any, Callable[[Any], Any]], None]


class ScipyPieces:
    """Integrates pieces with a scipy solver class, stepping manually so the guards see every step."""

    def __init__(self, method: str, rtol: float, atol: float) -> None:
        self.solver_class = SOLVERS[method]
        self.implicit = method in IMPLICIT
        self.rtol, self.atol, self.nodes = rtol, atol, NODES[method]

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

        def checked(t: float, y: np.ndarray) -> np.ndarray:
            dy = fun(y)
            if not np.all(np.isfinite(dy)):
                raise Diverged(f"the field is not finite at t = {t:.6g}")
            return dy

        options = {"rtol": self.rtol, "atol": self.atol}
        if first_step is not None:
            options["first_step"] = min(first_step, t_bound - t0)
        if self.implicit and jac is not None:
            options["jac"] = lambda t, y: jac(y)
        t_good, y_good = t0, y0
        try:
            solver = self.solver_class(checked, t0, y0, t_bound, **options)
            fractions = np.linspace(0.0, 1.0, self.nodes + 1)
            while solver.status == "running":
                message = solver.step()
                if solver.status == "failed":
                    return PieceEnd("failed", solver.t, solver.y, message=str(message))
                if not np.all(np.isfinite(solver.y)):
                    raise Diverged(f"the state is not finite at t = {solver.t:.6g}")
                t_a, t_b = solver.t_old, solver.t
                dense = solver.dense_output()

                def states(ts: Any, dense=dense) -> np.ndarray:
                    return dense(np.atleast_1d(np.asarray(ts, dtype=np.float64))).T

                if guards is not None:
                    ts = t_a + (t_b - t_a) * fractions
                    ts[-1] = t_b
                    Ys = states(ts)
                    G = guards.evaluate(Ys)
                    xtol = 4 * np.finfo(np.float64).eps * max(1.0, abs(t_b))
                    step = StepGuards(guards, ts, G, lambda t, states=states: states(t)[0], Ys)
                    event = first_event(step, xtol)
                    if event is not None:
                        t_event, column, values = event
                        y_event = step.state(t_event)
                        if observer is not None:
                            observer(t_a, t_event, y_event, states)
                        return PieceEnd("event", t_event, y_event, solver.step_size, column, values)
                    guards.observe(G)
                if observer is not None:
                    observer(t_a, t_b, solver.y, states)
                t_good, y_good = t_b, solver.y
        except Diverged as exc:
            return PieceEnd("diverged", t_good, y_good, message=str(exc))
        return PieceEnd("t_bound", solver.t, solver.y, solver.step_size)
