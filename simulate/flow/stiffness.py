"""Stiffness of a piece under an explicit Runge–Kutta method: the test, and the record of a switch it causes.

An explicit method is stable on y' = lambda y only while h lambda lies in its stability region; on the negative
real axis that is [-beta, 0] with beta the method's *stability boundary* (:func:`stability_boundary`, from the
tableau: 2 for RK12, about 2.51 for RK23, 3.31 for RK45, 6.39 for DOP853). On a stiff problem (squared or exponential loss
with weights of 10 and more: the largest eigenvalue of the field's Jacobian is -1e4 to -1e7) the step-size
control holds h near beta / rho for the whole run, however smooth the solution, and the run takes 1e5 to 1e8
steps. An implicit method (Radau) is stable there at any step.

The test (docs/flow.md, "Choosing a method"): the dominant eigenvalue lambda of the piece's Jacobian is estimated
by power iteration, one forward-difference product J v ~ (f(y + e v) - f(y)) / e every :data:`TEST_INTERVAL`
accepted steps, warm-started from the previous test's vector, so the iteration converges over the tests at
one field evaluation each (under 1 % of a run). The Rayleigh quotient lambda = <v, J v> / <v, v> underestimates
|lambda_max| until it has converged, so the test errs towards not switching. h is the largest of the accepted
steps since the last test (their full sizes: an event truncates a step, not what held its size), not their
mean: at the boundary the step-size control cycles, one step beyond the boundary, then a few far below it while
the component it amplified decays, and the shape of the cycle depends on the problem. DOP853 cycles through
0.44, 0.44 and 1.68 times the boundary on one (mean 0.85), and through one step of 1.1 to 2 times it and three
to seven of 0.1 to 0.2 times it on an event-dense squared-loss run (mean 0.38 to 0.42: docs/flow.md,
"Robustness", "A stiff cycle below half the boundary on average"), where a test on the mean never called the
run stiff. The largest step reaches the boundary in every such cycle, and an accuracy-limited run's steps all
stay below it.
A test finds the step held by the fast component when -lambda h >= :data:`STIFF_FRACTION` beta with h the
largest step (the cycle at the boundary), or -lambda h >= :data:`STIFF_PRODUCT` with h the mean step (the
steps stay where each spans the fast component's time constant), and a run is stiff when it does at
:data:`STIFF_TESTS` tests in a row (over about 200 accepted steps): a fast component that is still moving
decays within a few such steps (by |R(-1)| = 0.33 to 0.37 per step of -lambda h = 1 for RK23, RK45 and DOP853,
0.5 for RK12), so a
step size that stays there after that is held by the fast component, not by the accuracy of the slow
solution. At the boundary it is held by stability. Where atol, not rtol, sets the tolerance it can also
settle below the boundary, at a constant size with the whole error estimate in the fast component: RK45 at
-lambda h = 1.63 (0.49 beta), the 50 steps of each window the same size to 1e-5 relative, 99.99 % of the error
norm along the dominant eigenvector, the state 13 to 140 atol off the slow manifold along it (docs/flow.md,
"Robustness", "A step held below the boundary by the fast component's error"). The test against half the
boundary alone never counted that run stiff: it read 0.488 and 0.501 in turn (the forward difference's
second-order term, whose sign follows the power iteration's vector, turned over by J at every test), and
RK45 went on at 2e6 evaluations per time unit with the fast component's error at the tolerance in every
rate an event reads. The second bound reads the mean step, not the largest: one step of a window at
-lambda h >= 1 says nothing of the others (DOP853 on a stored problem: the largest steps at 1.1 to 1.5, the
mean at 0.15 to 0.2 of that, and a trial there lost, delaying the switch). This is the idea of the stiffness
tests of Hairer's DOPRI codes and of LSODA's switching (an estimate of h rho held against a bound over a run
of steps), with an estimate of rho that works for any explicit tableau.

A step held at the stability boundary is not yet a reason to switch: at a tight tolerance the step that
accuracy asks of a high-order method can lie near its boundary too (DOP853 at rtol 1e-11 on an exponential
loss with weights of 150: 0.77 times it), and there the implicit method, of lower order and with a Jacobian to
form, takes more evaluations per unit time, not fewer (that run took 227 s after a switch to Radau, 2.8 s
without). So before switching, the implicit method races the explicit one from the current state (a trial,
discarded; ``step_control.trial_steps``): at least :data:`TRIAL_STEPS` steps under its own step control, with
the analytic Jacobian the switched run's pieces use (in the run's coordinates), and on, up to
:data:`MAX_TRIAL_STEPS`, until its work is below the explicit method's over the time its steps span. The
explicit method's work per unit time is (e + STEP_WORK) / h (e its evaluations per step, h here the mean
accepted step);
the implicit method's is counted in field-evaluation equivalents (:mod:`simulate.flow.implicit_cost`): its
evaluations, and its Jacobians, LU factorizations and solves priced by their operation counts (and both
methods' steps by the engine's own work per step, ``implicit_cost.STEP_WORK``), never by
their timings, so that the decision, which changes the run's results, does not depend on the machine or its
load. The run switches when the race is won: the implicit method's climb from the explicit step is then
paid for, and its later steps are longer still. A trial that priced Jacobians by differences (N + 1
evaluations each, work the switched run does not do) kept an RK23 run on a state of 532 numbers explicit at
its stability boundary (eigenvalue -6e7, 8e7 evaluations per unit time): four Jacobians over 4 steps put Radau
at 25 times the explicit rate; with the analytic Jacobian and the LU factorizations priced (each 160 to 650
evaluations there), Radau catches up after 14 steps and the run ends in 2 s (docs/flow.md, "Choosing a
method", "Limits"). Where the race is lost, the test needs twice as many tests in a row before it tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cache
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy.integrate import BDF, DOP853, RK23, RK45

from fls.simulate.flow.coupled_radau import CoupledRadau
from fls.simulate.flow.heun_euler import HeunEuler
from fls.simulate.flow.implicit_cost import STEP_WORK, PricedJacobian
from fls.simulate.flow.step_control import EVALUATIONS_PER_STEP, trial_steps
from fls.simulate.flow.tolerance import StepTolerance

#: The explicit methods the test watches, by name (their tableaus: scipy's, and RK12's own).
TABLEAUS = {"RK12": HeunEuler, "RK23": RK23, "RK45": RK45, "DOP853": DOP853}
#: Accepted steps between two tests (each one field evaluation).
TEST_INTERVAL = 50
#: Tests in a row that must find the steps held by the fast component before the run is called stiff.
STIFF_TESTS = 4
#: -lambda h (h the largest step since the last test) at or above this fraction of the stability boundary
#: counts as held by stability: a stiff run's step-size control takes a step at 1 to 2 times the boundary in
#: every cycle, an accuracy-limited run's steps stay below it.
STIFF_FRACTION = 0.5
#: -lambda h (h the mean step since the last test) at or above this counts as held by the fast component too:
#: steps that stay at the fast time constant (RK45 settled at 1.63 where atol sets the tolerance, module
#: docstring); an accuracy-limited run's stay far below it (even its largest steps: at most 0.52, DOP853, on
#: benchmarks/flow.py's engine runs).
STIFF_PRODUCT = 1.0
#: The implicit methods a stiff run may be handed to, with the solvers their pieces use (``smooth.SOLVERS``).
IMPLICIT_SOLVERS = {"Radau": CoupledRadau, "BDF": BDF}
#: Steps of the implicit method's trial, and at most how many until it has caught up with the explicit method:
#: from the explicit step, scipy lets a step grow tenfold per step at most (by 1.5 to 3 where a new Jacobian
#: or a rejection intervenes), and a stiff run's implicit step is 1e2 to 1e6 times the explicit one.
TRIAL_STEPS, MAX_TRIAL_STEPS = 4, 24


def stability_polynomial(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The coefficients (ascending powers of z) of R(z) = 1 + z B^T (I - z A)^-1 1, the growth factor of an
    explicit Runge–Kutta method with tableau (A, B) on y' = lambda y, z = h lambda: R(z) = sum_k B^T A^(k-1) 1 z^k
    (A strictly lower triangular, so the series ends at the number of stages)."""
    stages = len(B)
    A = np.asarray(A, dtype=np.float64)
    square = np.zeros((stages, stages))  # scipy stores RK45's A without its last, zero, column
    square[:, : min(stages, A.shape[1])] = A[:stages, :stages]
    A = square
    coefficients, power = [1.0], np.ones(stages)
    for _ in range(stages):
        coefficients.append(float(B @ power))
        power = A @ power
    return np.array(coefficients)


@cache
def stability_boundary(method: str) -> float:
    """beta: the largest x with |R(-s)| <= 1 for every s in [0, x] (the method's stability interval on the
    negative real axis), to 1e-9 relative; ``method`` one of :data:`TABLEAUS`."""
    tableau = TABLEAUS[method]
    R = np.polynomial.Polynomial(stability_polynomial(tableau.A, tableau.B))
    s = np.linspace(0.0, 2.0 * len(tableau.B), 20001)
    stable = np.abs(R(-s)) <= 1.0 + 1e-12
    first_unstable = int(np.argmin(stable)) if not stable.all() else len(s) - 1
    low, high = s[first_unstable - 1], s[first_unstable]
    while high - low > 1e-9 * high:
        middle = 0.5 * (low + high)
        if abs(R(-middle)) <= 1.0 + 1e-12:
            low = middle
        else:
            high = middle
    return float(low)


@dataclass(frozen=True)
class StiffnessEstimate:
    """One test's finding: the Rayleigh quotient ``eigenvalue`` of the Jacobian along the power iteration's
    vector, the mean accepted step ``step`` since the last test (the explicit method's rate of work) and the
    largest one ``largest_step``; ``ratio`` = -eigenvalue * largest_step / beta; ``gain``: the explicit method's
    work per unit time over the implicit method's where its trial ended (above 1 where it caught up; None
    before a trial)."""

    reason: ClassVar[str] = "stiff"  # the switch it causes, for a result's ``info``
    label: ClassVar[str] = "stiff"  # and for its message

    eigenvalue: float
    step: float
    largest_step: float
    ratio: float
    gain: float | None = None

    def describe(self) -> str:
        """The finding, for a switch's line in the run's message."""
        return (
            f"Jacobian eigenvalue {self.eigenvalue:.3g}, largest step {self.largest_step:.3g}: "
            f"{self.ratio:.2f} x the stability boundary; mean step {self.step:.3g}; {self.gain:.3g} x less work"
        )


def held_by_the_fast_component(estimate: StiffnessEstimate) -> bool:
    """Whether a test's steps are held by the fast component (module docstring): the largest at
    :data:`STIFF_FRACTION` of the stability boundary or more, or the mean spanning :data:`STIFF_PRODUCT`
    time constants 1 / -lambda or more."""
    return estimate.ratio >= STIFF_FRACTION or -estimate.eigenvalue * estimate.step >= STIFF_PRODUCT


class SwitchEstimate(Protocol):
    """What a test that switches methods found (:class:`StiffnessEstimate`, ``order.OrderEstimate``): a
    dataclass with a ``reason`` for ``info``, a ``label`` and a :meth:`describe` for the message."""

    reason: ClassVar[str]
    label: ClassVar[str]

    def describe(self) -> str: ...


@dataclass(frozen=True)
class MethodSwitch:
    """A run that went on with another method: at time ``t`` from method ``source`` to ``target``, for the
    reason its ``estimate`` gives: the explicit steps were held at their stability boundary and the implicit
    method's trial was cheaper ('stiff'), or a higher-order method's trial was several times cheaper
    ('order', :mod:`simulate.flow.order`)."""

    t: float
    source: str
    target: str
    estimate: SwitchEstimate

    def describe(self) -> str:
        """One line for the run's message."""
        return (
            f"{self.estimate.label}: switched from {self.source} to {self.target} at t = {self.t:.6g} "
            f"({self.estimate.describe()})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The switch for a result's ``info``: t, from, to, reason, and the estimate's fields (stiff:
        eigenvalue, step, ratio, gain; order: step, trial_step, gain)."""
        about = {"t": self.t, "from": self.source, "to": self.target, "reason": self.estimate.reason}
        return about | asdict(self.estimate)


class StiffnessMonitor:
    """Watches the accepted steps of one run under an explicit ``method`` (across its pieces) and says when
    the run is stiff and the implicit ``target`` would do less work at the run's ``tolerance`` (module
    docstring): :meth:`stiff` after each accepted step."""

    def __init__(self, method: str, target: str, tolerance: StepTolerance) -> None:
        self.method, self.target, self.tolerance = method, target, tolerance
        self.boundary = stability_boundary(method)
        # accepted steps since the last test, the sum of their sizes and the largest
        self.steps, self.stepped, self.largest_step = 0, 0.0, 0.0
        self.in_a_row = 0  # tests in a row that found the step at the boundary
        self.needed = STIFF_TESTS  # tests in a row before the next trial (doubled by each trial that fails)
        self.trials = 0
        self.vector: np.ndarray | None = None  # the power iteration's current vector (unit norm)
        self.estimate: StiffnessEstimate | None = None  # the last test's
        self.tests = 0
        self.largest = 0.0  # the largest ratio a test found

    def stiff(
        self,
        fun: Callable[[np.ndarray], np.ndarray],
        jac: PricedJacobian,
        y: np.ndarray,
        f: np.ndarray | None,
        step: float,
    ) -> bool:
        """Whether the run is stiff, after an accepted step of size ``step`` ending at y with field f = fun(y)
        (None where the step did not form it: RK12's step an event ends; a test then forms it).
        Tests every :data:`TEST_INTERVAL` steps (one evaluation of fun), with the mean and the largest step size
        since the last test; ``jac``: the piece's Jacobian, for the implicit method's trial."""
        self.steps += 1
        self.stepped += float(step)
        self.largest_step = max(self.largest_step, float(step))
        if self.steps < TEST_INTERVAL:
            return False
        estimate = self.test(fun, y, fun(y) if f is None else f, self.stepped / self.steps, self.largest_step)
        self.steps, self.stepped, self.largest_step = 0, 0.0, 0.0
        if estimate is None:
            return False
        self.estimate, self.tests, self.largest = estimate, self.tests + 1, max(self.largest, estimate.ratio)
        self.in_a_row = self.in_a_row + 1 if held_by_the_fast_component(estimate) else 0
        if self.in_a_row < self.needed:
            return False
        self.trials += 1
        self.estimate = replace(estimate, gain=self.implicit_gain(fun, jac, y, estimate.step))
        if self.estimate.gain > 1.0:
            return True
        self.in_a_row, self.needed = 0, 2 * self.needed
        return False

    def implicit_gain(
        self, fun: Callable[[np.ndarray], np.ndarray], jac: PricedJacobian, y: np.ndarray, step: float
    ) -> float:
        """e / h over the implicit method's work per unit time in a trial from y with the Jacobian ``jac``
        (module docstring): a race from y, which the trial ends once its work is below the explicit method's
        over the same time; 0 where the trial fails."""
        explicit_rate = (EVALUATIONS_PER_STEP[self.method] + STEP_WORK) / step
        solver = IMPLICIT_SOLVERS[self.target]
        trial = trial_steps(
            solver, fun, y, step, self.tolerance, TRIAL_STEPS, MAX_TRIAL_STEPS, jac,
            lambda time, work: work < explicit_rate * time, STEP_WORK,
        )
        if trial is None:
            return 0.0
        return explicit_rate / trial.rate()

    def test(
        self,
        fun: Callable[[np.ndarray], np.ndarray],
        y: np.ndarray,
        f: np.ndarray,
        step: float,
        largest_step: float,
    ) -> StiffnessEstimate | None:
        """One power-iteration step at y, with the mean accepted ``step`` and the ``largest_step`` since the last
        test: J v by a forward difference of increment sqrt(eps) max(1, ||y||)
        (relative precision about sqrt(eps), all an order-of-magnitude test needs); None where the shifted field
        is not finite or J v vanishes."""
        if self.vector is None or self.vector.size != y.size:
            vector = np.random.default_rng(0).standard_normal(y.size)
            self.vector = vector / np.linalg.norm(vector)
        increment = np.sqrt(np.finfo(np.float64).eps) * max(1.0, float(np.linalg.norm(y)))
        product = (fun(y + increment * self.vector) - f) / increment
        size = float(np.linalg.norm(product))
        if not np.isfinite(size) or size == 0.0:
            return None
        eigenvalue = float(self.vector @ product)
        self.vector = product / size
        ratio = -eigenvalue * largest_step / self.boundary
        return StiffnessEstimate(eigenvalue, float(step), largest_step, ratio)

    def summary(self) -> dict[str, Any]:
        """What the tests found, for a result's ``info``: how many ran, the largest ratio -lambda h / beta
        (far below :data:`STIFF_FRACTION` on a run that is not stiff) and how many trials of the implicit
        method ran."""
        return {"tests": self.tests, "largest_ratio": self.largest, "trials": self.trials}
