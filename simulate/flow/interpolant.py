"""Whether a step's dense output is as exact as the step: the interpolant's stability on stiff components.

An explicit Runge–Kutta step of size h multiplies a component of the solution along an eigenvector of the
field's Jacobian (eigenvalue lambda, z = h lambda) by its stability polynomial R(z) at the step's end, and by
R_theta(z) at the fraction theta of the step on its dense output. The error control checks the end only. For
RK23 and RK45 the two nearly agree (their interpolants' stability intervals end within 4 % of their steps'), for
RK12 (:mod:`~simulate.flow.heun_euler`) they are one: R_theta(z) = 1 + theta z + (theta z)^2 / 2 is R at
theta z, at most 1 for z in [-2, 0] (the step's interval) and every theta, so it needs no rule here; but
DOP853's interpolant has a stability interval of its own, far shorter than the step's: max over theta of
|R_theta(-s)| is 1 up to s = 5.06 and then grows fast, to 10.5 at s = 6, 25.6 at the step's stability boundary
6.39 and 1855 at s = 8.7 (a step the error control accepts while it cycles at the boundary). A stiff
component that the steps hold at the tolerance is then 10 to 1000 times the tolerance inside every step,
though the step's end is exact (docs/flow.md, "Robustness", "A dense output beyond its stability interval").

Events are located on the dense output, and the guards most sensitive to the state are the sliding weights
(a rate over a jump): on such a step they cross their bounds where the state does not (a DOP853 run in log
coordinates at rtol 5.8e-7 held 45 times its tolerance inside a step at z = -8.7), the event's selection then
sees a state that is not the flow's, and exits and returns repeat at one instant. So an event that a step of
:class:`~simulate.flow.smooth.ScipyPieces` finds is taken only when the step is inside its interpolant's
stability interval; otherwise the step is retried at the size that puts its |h lambda| at
:data:`RETRY_FRACTION` of that interval (:func:`interpolant_retry_factor`), where the interpolant is exact.
Not ten times smaller, as a step whose dense output overflows is: a stiff run's steps would then
cycle between one rejected step beyond the interval and one accepted at a tenth of it (the error control lets
the next step grow tenfold), its accepted steps at 0.3 of the step's stability boundary, below the half at
which the stiffness test calls a run stiff ("Choosing a method"), so the run stayed explicit at two attempts
per step (DOP853, squared loss, weights of 290, lambda = -5.5e5: 8.6e6 evaluations per time unit, never
handed to Radau). At 0.9 of the interval the accepted steps are at 0.71 of the boundary, and the test sees
them.

The step's z comes at no cost from two stages the step has already evaluated at its end t + h: the stage at
c = 1 and the field at the new state (the stiffness estimate of Hairer's DOPRI codes),
|z| ~ h ||f(y_new) - f(y_stage)|| / ||y_new - y_stage||: the Jacobian's growth along the difference of two
approximations of one state, which the stiff components dominate. To first order it is at most h times the
Jacobian's norm, and |h lambda| when one stiff component dominates the difference (within 2 % on a linear
test, tests/simulate/test_flow_interpolant.py).

The states a run saves between events (``save_at``) come from the same dense output, and a step beyond the
interval holds them as far off (80 times the tolerance at saved times of the first problem above). They are
re-integrated instead: :func:`trusted_observer` hands the recorder, for such a step only, the states of fresh
steps from the step's start to each saved time, each shorter than the step, so inside its stability region,
and held to the run's tolerances by the solver's own error control.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import numpy as np
from scipy.integrate import DOP853, RK23, RK45

#: The explicit scipy solvers whose interpolant's stability interval :func:`interpolant_boundary` measures.
SOLVERS = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853}
#: Fractions of a step at which :func:`interpolant_growth` evaluates the dense output (the interpolant's
#: growth is smooth in theta: 400 intervals resolve its maximum to about 1e-5 relative).
THETAS = np.linspace(0.0, 1.0, 401)
#: Two approximations of one state that differ by less than this many roundoffs of its norm give no estimate.
GAP_ROUNDOFF = 1e3
#: A step retried for its dense output is aimed at this fraction of the interpolant's stability interval (the
#: estimate of |h lambda| is within 2 % on a linear test; the field's own change over the smaller step is
#: left the rest).
RETRY_FRACTION = 0.9
_EPS = float(np.finfo(np.float64).eps)


def interpolant_growth(method: str, s: float) -> float:
    """max over theta in [0, 1] of |R_theta(-s)|: the growth of a component y' = -s y / h over one step of
    ``method``'s dense output, measured by one step of scipy's solver of size 1 on y' = -s y."""
    solver = SOLVERS[method](lambda t, y: -s * y, 0.0, np.ones(1), 1.0, first_step=1.0, rtol=1e3, atol=1e3)
    solver.step()
    return float(np.abs(solver.dense_output()(THETAS)[0]).max())


@cache
def interpolant_boundary(method: str) -> float:
    """The interpolant's stability interval on the negative real axis: the largest x with
    :func:`interpolant_growth` <= 1 for every s in [0, x] (scanned at steps of 0.1, then bisected to 1e-6).
    DOP853: 5.06, where its step's is 6.39; RK45 3.26 and RK23 2.41, just inside their steps' 3.31 and 2.51
    (:func:`~simulate.flow.stiffness.stability_boundary`)."""
    grid = np.arange(0.0, 12.0, 0.1)
    growing = [s for s in grid if interpolant_growth(method, float(s)) > 1.0 + 1e-12]
    high = float(growing[0]) if growing else float(grid[-1])
    low = high - 0.1
    while high - low > 1e-6:
        middle = 0.5 * (low + high)
        if interpolant_growth(method, middle) > 1.0 + 1e-12:
            high = middle
        else:
            low = middle
    return low


def step_stiffness(solver: Any) -> float | None:
    """|h lambda| of a scipy explicit solver's last accepted step (module docstring), or None where the
    method has no stage at the step's end before its last (RK23) or the two states agree to within
    :data:`GAP_ROUNDOFF` roundoffs of the state (then no component is large enough to matter, and the ratio
    would be one of roundoffs, which retried steps would meet again at any size)."""
    stages = solver.n_stages
    if solver.C[stages - 1] != 1.0:
        return None
    h = solver.h_previous
    K = solver.K  # the stages and, last, the field at the new state
    y_stage = solver.y_old + h * (solver.A[stages - 1, : stages - 1] @ K[: stages - 1])
    gap = float(np.linalg.norm(solver.y - y_stage))
    if not gap > GAP_ROUNDOFF * _EPS * float(np.linalg.norm(solver.y)):  # a ratio of two roundoffs
        return None
    return abs(h) * float(np.linalg.norm(K[stages] - K[stages - 1])) / gap


def interpolant_retry_factor(method: str, solver: Any) -> float | None:
    """None where the dense output of ``solver``'s last step is as exact as the step (its |h lambda|,
    :func:`step_stiffness`, within the interpolant's stability interval, or not measured); else the factor
    RETRY_FRACTION x boundary / |h lambda| (below 0.9) by which the step shrinks so that its |h lambda| is
    RETRY_FRACTION of the interpolant's stability interval."""
    if method not in SOLVERS:
        return None
    stiffness = step_stiffness(solver)
    boundary = interpolant_boundary(method)
    if stiffness is None or not stiffness > boundary:
        return None
    return RETRY_FRACTION * boundary / stiffness


def trusted_observer(
    observer: Callable[..., None] | None,
    method: str,
    solver: Any,
    fun: Callable[[float, np.ndarray], np.ndarray],
) -> Callable[..., None] | None:
    """``observer`` (t_a, t_b, y_b, states) for ``solver``'s last step, with ``states`` replaced where that step's
    dense output is not as exact as the step (:class:`TrustedObserver`); ``observer`` itself where it is None
    or the method has no interpolant of concern."""
    if observer is None or method not in SOLVERS:
        return observer
    return TrustedObserver(observer, method, solver, fun)


class TrustedObserver:
    """An observer of ``solver``'s last step whose states are as exact as the step (module docstring).

    Where the step's dense output is beyond its stability interval (:func:`interpolant_retry_factor` not
    None), each state asked for is that of a new solver of the step's class and tolerances on ``fun`` from the
    step's start to the time asked. Decided only when the observer asks for states (saved times inside the
    step): a step without one costs the construction of this object (about 0.5 us), and an asked state on an
    untrusted step one short step, about 12 evaluations for DOP853.
    """

    __slots__ = ("fun", "method", "observer", "solver")

    def __init__(self, observer: Callable[..., None], method: str, solver: Any, fun: Callable[..., Any]) -> None:
        self.observer, self.method, self.solver, self.fun = observer, method, solver, fun

    def __call__(self, t_a: Any, t_b: Any, y_b: Any, states: Callable[[Any], np.ndarray]) -> None:
        self.observer(t_a, t_b, y_b, partial(self.states, states))

    def states(self, interpolated: Callable[[Any], np.ndarray], ts: Any) -> np.ndarray:
        """The states at times ``ts`` in the step: ``interpolated`` (the dense output) where it is trusted."""
        if interpolant_retry_factor(self.method, self.solver) is None:
            return interpolated(ts)
        return np.stack([self.reintegrated(float(tau)) for tau in np.atleast_1d(ts)])

    def reintegrated(self, tau: float) -> np.ndarray:
        """The state at ``tau`` in the step, integrated afresh from its start (the step's own tolerances: the
        solver's, which converted coordinates set per step, as they were for this step)."""
        solver = self.solver
        if tau == solver.t_old:
            return solver.y_old
        fresh = SOLVERS[self.method](self.fun, solver.t_old, solver.y_old, tau, first_step=tau - solver.t_old)
        fresh.rtol, fresh.atol = solver.rtol, solver.atol
        while fresh.status == "running":
            fresh.step()
        return fresh.y
