"""The order of an explicit method against its tolerance: the test that hands an accuracy-bound run to a
higher-order explicit method, and the record of a switch it causes.

A method of order p meets a tolerance tol with steps that shrink like tol^(1 / (p + 1)): at rtol 1e-11 RK23
(order 3) steps about a hundred times shorter than DOP853 (order 8) on the same smooth solution; on an
exponential-loss problem with weights of 150 that is 17 000 evaluations per 0.02 time units against 900
(docs/flow.md, "Choosing a method"). The step size there is held by accuracy, not stability, so the stiffness
test (:mod:`simulate.flow.stiffness`) rightly does not switch; what pays is a method of higher order.

The test measures what the higher-order method would do on the run itself. After :data:`FIRST_TEST`
accepted steps that did not end in an event, and then at every doubling of their count (so the tests cost a
vanishing share of a long run and none of a short one), the higher-order method's own step control (scipy's
solver of ``target``) takes :data:`TRIAL_STEPS` steps from the current state at the run's tolerances,
starting from the running method's step, more while its step still grows; the trial is discarded, and the
mean size of its last two steps is h_high, the step that method takes there. Over the window since the last test (T time units, N accepted
steps that did not end in an event, P pieces begun: every event ends a step early and restarts a piece), the
work in field evaluations per unit time is

    W_low = e_low (N + P) / T,        W_high = e_high (T / h_high + P) / T,

with e the evaluations per accepted step in this engine (``step_control.EVALUATIONS_PER_STEP``). The run
goes on with ``target`` when W_low >= :data:`WORK_FACTOR` W_high. Where events come every few steps, P is
near N and the ratio near e_low / e_high < 1: event-dense runs (the benchmarks of docs/flow.md, "Cost") do
not switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.integrate import RK45

from fls.simulate.flow.error_norm import FiniteNormDOP853
from fls.simulate.flow.step_control import EVALUATIONS_PER_STEP, trial_steps
from fls.simulate.flow.tolerance import StepTolerance

#: The higher-order methods a run may be handed to, with their scipy solvers (the tableaus the engine steps).
TARGETS = {"RK45": RK45, "DOP853": FiniteNormDOP853}
#: The order of each explicit method's solution (the exponent its step size scales the error by, minus one).
ORDER = {"RK12": 2, "RK23": 3, "RK45": 5, "DOP853": 8}
#: Accepted steps before the first test; later tests at every doubling of the count.
FIRST_TEST = 100
#: Steps of the trial, and at most how many while its step is still growing (from the running method's step
#: the trial's may grow tenfold per step, scipy's limit).
TRIAL_STEPS, MAX_TRIAL_STEPS = 4, 8
#: How many times less work the target must do before the run switches: the trial and the switch cost a few
#: steps, and the estimate leaves out rejected steps and Python overhead per step.
WORK_FACTOR = 3.0


@dataclass(frozen=True)
class OrderEstimate:
    """One test's finding: the running method's mean accepted ``step`` over the window, the ``trial_step`` the
    target took from the same state, and ``gain`` = W_low / W_high (module docstring)."""

    reason: ClassVar[str] = "order"  # the switch it causes, for a result's ``info``
    label: ClassVar[str] = "accuracy-bound"  # and for its message

    step: float
    trial_step: float
    gain: float

    def describe(self) -> str:
        """The finding, for a switch's line in the run's message."""
        return f"steps {self.step:.3g} against {self.trial_step:.3g}: {self.gain:.1f} x less work"


class OrderMonitor:
    """Watches the accepted steps of one run under the explicit ``method`` (across its pieces) and says when
    ``target`` would do :data:`WORK_FACTOR` times less work (module docstring): :meth:`begin_piece` at each
    piece's start, :meth:`pays` after each accepted step."""

    def __init__(self, method: str, target: str, tolerance: StepTolerance) -> None:
        if ORDER[target] <= ORDER[method]:
            raise ValueError(f"target = {target!r} is not of higher order than method = {method!r}")
        self.method, self.target, self.tolerance = method, target, tolerance
        self.accepted = 0  # accepted steps of the run that did not end in an event
        self.next_test = FIRST_TEST  # the count at the next test
        self.window_start: float | None = None  # the time the window since the last test began
        self.window_steps, self.window_stepped, self.window_pieces = 0, 0.0, 0
        self.estimate: OrderEstimate | None = None  # the last test's
        self.tests = 0
        self.largest = 0.0  # the largest gain a test found

    def begin_piece(self, t: float) -> None:
        """A piece starts at t (the run's first, or one after an event)."""
        if self.window_start is None:
            self.window_start = float(t)
        self.window_pieces += 1

    def pays(self, fun: Callable[[np.ndarray], np.ndarray], t: float, y: np.ndarray, step: float) -> bool:
        """Whether the run should go on with :attr:`target`, after an accepted step of full size ``step``
        ending at (t, y) that no event cut short (``fun``: the piece's field). Tests at the counts of
        :data:`FIRST_TEST` times a power of two."""
        self.accepted += 1
        self.window_steps += 1
        self.window_stepped += float(step)
        if self.accepted < self.next_test:
            return False
        self.next_test *= 2
        elapsed = float(t) - float(self.window_start if self.window_start is not None else t)
        mean_step = self.window_stepped / self.window_steps
        steps, pieces = self.window_steps, self.window_pieces
        self.window_start, self.window_steps, self.window_stepped, self.window_pieces = float(t), 0, 0.0, 0
        trial_step = self.trial_step(fun, y, mean_step)
        if trial_step is None or not elapsed > 0.0:
            return False
        low = EVALUATIONS_PER_STEP[self.method] * (steps + pieces)  # each piece ended in a step cut short
        high = EVALUATIONS_PER_STEP[self.target] * (elapsed / trial_step + pieces)
        self.estimate = OrderEstimate(mean_step, trial_step, low / high)
        self.tests, self.largest = self.tests + 1, max(self.largest, low / high)
        return low / high >= WORK_FACTOR

    def trial_step(self, fun: Callable[[np.ndarray], np.ndarray], y: np.ndarray, step: float) -> float | None:
        """The step :attr:`target` takes at y under its own step control at the run's tolerances: the mean of
        its last two of :data:`TRIAL_STEPS` steps from ``step``; None where the trial fails."""
        solver = TARGETS[self.target]
        trial = trial_steps(solver, fun, y, step, self.tolerance, TRIAL_STEPS, MAX_TRIAL_STEPS)
        return None if trial is None else float(np.mean(trial.sizes[-2:]))

    def summary(self) -> dict[str, Any]:
        """What the tests found, for a result's ``info``: how many ran and the largest gain (below
        :data:`WORK_FACTOR` on a run that did not switch)."""
        return {"tests": self.tests, "largest_gain": self.largest}
