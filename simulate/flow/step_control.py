"""Step control of the piece integrators (:mod:`simulate.flow.smooth`): the starting step and the RMS norm it
scales by, made safe where scipy's own would overflow (docs/flow.md, "Robustness"); the first step of a piece
after an event, bounded by the spacing of the events (:class:`EventSpacing`, docs/flow.md "Cost"); and the
trials of another method from the current state that the order and stiffness tests measure its work by
(:func:`trial_steps`, docs/flow.md "Choosing a method").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fls.simulate.flow.implicit_cost import LinearAlgebraCount, PricedJacobian
from fls.simulate.flow.tolerance import StepTolerance

#: The error estimator order scipy's :func:`select_initial_step` uses for each method.
ESTIMATOR_ORDER = {"DOP853": 7, "RK45": 4, "RK23": 2, "Radau": 3, "BDF": 1}
#: Field evaluations per accepted step of each explicit method in the engine: the stages after the first
#: (first same as last), and for DOP853 the three extra stages of the dense output its guards are sampled on;
#: RK12's two stages (the first is the last step's f(y_new), formed only where no event ended it).
EVALUATIONS_PER_STEP = {"RK12": 2, "RK23": 3, "RK45": 6, "DOP853": 15}


#: A trial's step that is at least this many times the one before is still climbing to the method's own.
GROWING = 2.0


@dataclass(frozen=True)
class Trial:
    """Steps a method took from one state under its own step control: their ``sizes``, the field
    ``evaluations`` they cost (those of rejected steps included) and ``work``, the work done by the end of
    each step in field-evaluation equivalents: the evaluations, and for an implicit method its Jacobians, LU
    factorizations and solves priced by their operations (:mod:`simulate.flow.implicit_cost`)."""

    sizes: tuple[float, ...]
    evaluations: int
    work: tuple[float, ...]

    def rate(self) -> float:
        """Field-evaluation equivalents per unit time over the trial."""
        return self.work[-1] / sum(self.sizes)


def trial_steps(
    solver_class: Any,
    fun: Callable[[np.ndarray], np.ndarray],
    y: np.ndarray,
    first_step: float,
    tolerance: StepTolerance,
    steps: int,
    max_steps: int | None = None,
    jac: PricedJacobian | None = None,
    caught_up: Callable[[float, float], bool] | None = None,
    step_work: float = 0.0,
) -> Trial | None:
    """Accepted steps of scipy's ``solver_class`` from y (the field is autonomous: from t = 0), starting with
    ``first_step``, at the run's ``tolerance`` (in its coordinates, :mod:`simulate.flow.tolerance`), to
    measure what that method does on a run (docs/flow.md, "Choosing a method"); the run itself does not use
    them. ``steps`` of them, and up to ``max_steps`` while the step is still growing (each at least
    :data:`GROWING` times the one before: the step control climbing from ``first_step`` to the method's own
    step, tenfold per step at most), or with ``caught_up`` until caught_up(time, work) holds for the time
    the steps span and their work (a race with another method's work over that time). An implicit solver
    gets ``jac``, the Jacobian the run's pieces would use (any
    :class:`~simulate.flow.implicit_cost.PricedJacobian`: the engine's
    :class:`~simulate.flow.implicit_cost.AnalyticJacobian`), and its Jacobians, LU factorizations and solves
    are counted in :attr:`Trial.work` (scipy's own Jacobian by differences, with adaptive increments, took a
    Jacobian at every step of a trial where the engine's pieces take one in all: DOP853 handed to Radau,
    squared loss, m = 36 in data-span coordinates). ``step_work``: work counted for each accepted step
    besides its evaluations. None where a step leaves the field's finite range or the solver fails."""
    evaluations, jacobians = 0, 0

    def counted(_t: float, x: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        evaluations += 1
        return fun(x)

    def counted_jacobian(_t: float, x: np.ndarray) -> np.ndarray:
        nonlocal jacobians
        jacobians += 1
        return jac(x)

    def going_on(sizes: list[float], work: list[float]) -> bool:
        if caught_up is None:
            return sizes[-1] >= GROWING * sizes[-2]
        return not caught_up(sum(sizes), work[-1])

    options = {} if jac is None else {"jac": counted_jacobian}
    sizes: list[float] = []
    work: list[float] = []
    limit = max(steps, max_steps or steps)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        try:
            solver = solver_class(
                counted, 0.0, y, np.inf, rtol=tolerance.rtol, atol=tolerance.atol, first_step=first_step, **options
            )
            linear_algebra = None if jac is None else LinearAlgebraCount(solver)
            tolerance.apply_to(solver)
            while len(sizes) < steps or (len(sizes) < limit and going_on(sizes, work)):
                solver.step()
                tolerance.apply_to(solver)
                if solver.status != "running" or not np.all(np.isfinite(solver.y)):
                    return None
                sizes.append(solver.t - solver.t_old)
                done = evaluations + step_work * len(sizes)
                if linear_algebra is not None:
                    done += jac.prices.evaluations(jacobians * jac.prices.jacobian + linear_algebra.flops)
                work.append(done)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return None
    return Trial(tuple(sizes), evaluations, tuple(work))


def initial_step(
    fun: Callable[[float, np.ndarray], np.ndarray],
    t0: float,
    y0: np.ndarray,
    f0: np.ndarray,
    t_bound: float,
    order: int,
    tolerance: np.ndarray,
) -> float:
    """The starting step of Hairer, Norsett & Wanner (I, II.4), as scipy's solvers choose it, made safe against
    overflow: h0 from the sizes of y0 and f0 (RMS norms scaled by ``tolerance``, the error allowed per step in
    each component of y0: atol + rtol |y0| in plain coordinates, :mod:`simulate.flow.tolerance`), then
    h1 = (0.01 / max(|f0|, |f(y0 + h0 f0) - f0| / h0))^(1 / (order + 1)), and min(100 h0, h1, t_bound - t0).

    When the second-derivative estimate |f(y0 + h0 f0) - f0| / h0 is not finite (an Euler trial step that
    overshoots a stiff field into overflow), h0 is divided by 10 until it is; a trial step that shrinks to roundoff of t0 returns 0
    (the caller's "step size too small" ends the piece). Without overflow the result is scipy's.
    """
    scale = tolerance
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, t_bound - t0)
    with np.errstate(over="ignore", invalid="ignore"):
        d2 = _rms((fun(t0 + h0, y0 + h0 * f0) - f0) / scale) / h0
        while not np.isfinite(d2):
            h0 /= 10
            if h0 <= 10 * np.spacing(abs(t0)) or h0 < np.finfo(np.float64).tiny:
                return 0.0
            d2 = _rms((fun(t0 + h0, y0 + h0 * f0) - f0) / scale) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1, t_bound - t0)


def _rms(values: np.ndarray) -> float:
    """The RMS norm of ``values`` (scipy's ``norm`` for solver steps), finite for every finite ``values``: where
    the sum of squares overflows (a field of 6e144 over a tolerance of 4e-12 is 1.5e156, its square 2e312) the
    values are scaled by their largest magnitude first. scipy's form then gave inf, the starting step
    0.01 d0 / inf = 0, and a division by it ended the run ``failed`` (docs/flow.md, "Robustness")."""
    with np.errstate(over="ignore"):
        rms = float(np.linalg.norm(values) / values.size**0.5)
    if np.isfinite(rms):
        return rms
    largest = float(np.abs(values).max())
    if not np.isfinite(largest):
        return largest
    return largest * float(np.linalg.norm(values / largest) / values.size**0.5)


#: The first step of a piece that starts at an event is at most this many times the mean spacing of the
#: recent events (:class:`EventSpacing`).
SPACING_STEPS = 8.0
#: The weight of the newest piece's length in the running mean of the event spacing.
SPACING_WEIGHT = 0.25


class EventSpacing:
    """The first step of each piece after an event: the step the last piece ended with, at most
    :data:`SPACING_STEPS` times the running mean of the recent pieces' lengths (the time between events).

    A piece ends at its first event, so a step that reaches far beyond the next event is mostly wasted: its
    guards are formed and its crossings bracketed for a stretch the next event throws away (at m = 100 on
    low_signal about 35 guards crossed by the end of each step restarted with the step its event cut short,
    docs/flow.md "Cost"). A first step of about twice the spacing ends in an event most of the time and has
    few crossings; the error control still shrinks it as needed and grows the piece's later steps as usual.
    A smaller step only makes a step more accurate. Pieces that end at the instant they start (events of one
    instant) do not count: they measure no spacing.
    """

    def __init__(self) -> None:
        self.mean: float | None = None

    def first_step(self, start: Any, event: Any, step: float | None) -> float | None:
        """The first step of the piece after an event at time ``event`` that ended a piece started at ``start``,
        whose integrator would otherwise restart with ``step`` (None: its own starting step)."""
        length = float(event - start)
        if length > 0:
            self.mean = length if self.mean is None else self.mean + SPACING_WEIGHT * (length - self.mean)
        if step is None or self.mean is None:
            return step
        return min(step, SPACING_STEPS * self.mean)
