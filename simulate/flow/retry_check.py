"""A second check of the explicit steps at risk: the step against Simpson's rule on its own dense output.

An embedded Runge–Kutta pair estimates a step's error as the difference of two quadratures of the same stages
K_i = f(Y_i) at the nodes c_i. That is an estimate only while the rate is smooth on the step's scale. A
transient shorter than the gaps between the nodes, such as a logistic factor that turns between two stages,
makes the rate nearly a step function of time. For a rate that jumps by J at the fraction s of the step,
RK45's estimate |E . K| is 0.0012 to 0.034 h |J|, while the step's error is up to 0.37 h |J|. In the widest
gap, s in (0.3, 0.8), the estimate is 0.003 h |J| and the error up to 0.23 h |J|. RK23's nodes are closer
for its order: its estimate, 0.014 to 0.125 h |J|, is within a factor 4 of its error. The stored problem of
docs/flow.md ("Robustness", "A transient between the stages") has an RK45 step accepted at an estimate of
0.22 whose error is 48 times the tolerance.

The check compares the step with an independent quadrature of its rate. Simpson's rule takes the rates at the
step's start and end, which are known (f(y), and f(y_new), the first-same-as-last stage), and at its midpoint
on the step's dense output, which costs one field evaluation:

    q = y_new - y - h (f(y) + 4 f(y(t + h/2)) + f(y_new)) / 6,

measured in the error control's scale: RMS of q / (atol + rtol |y|), as the estimate is. On a smooth step q is
the sum of three errors of the order of the tolerance: Simpson's own, h^5 y^(5) / 2880; the step's; and
(2/3) h J_f e_mid, the field's Jacobian J_f times the dense output's error at the midpoint. On every accepted
step of the benchmark rows, the stall window and the stored stress problems' RK runs without a transient
(14 507 steps, ``benchmarks/retry_margin.py``) q is at most 18.4 tolerances. A jump J moves q by
0.036 to 0.37 h |J| for RK45 wherever it falls: 2 to 125 times the estimate's response, and 10 to 125 times
unless the jump is in the last ninth of the step. So a step that the estimate passes on a transient fails
here. q also measures the dense output at the midpoint, on which the guards locate events. A step whose q
exceeds :data:`SIMPSON_LIMIT` is rejected and retried at the step-size control's factor, taking q as an
estimate.

Which steps are checked (:class:`RetryCheck`):
- The retry after any rejection. The rejection shows that the control's model of the error broke within one
  step, which is what a transient does; the retry is the step that the same estimate then passes.
- After a rejection at an estimate above :data:`LARGE_ESTIMATE`, or a step that fails the check, every step
  that starts within that step's interval, since the transient lies somewhere in it. The steps after a
  passed retry keep its size and then grow, and at their first try they may take the transient's tail.

A checked step costs one evaluation. ``benchmarks/flow.py``'s six RK23 / RK45 rows have one retry or none each
(in 282 to 2219 steps), and no large rejection.

What it cannot catch:
- a transient inside a step that the estimate accepts at its first try, away from any rejection;
- a transient that Simpson's rule and the step integrate wrongly by about the same amount (for RK45, a jump
  in the last ninth of the step, where q moves by 0.036 h |J| and the error is up to 0.11 h |J|);
- an error below about :data:`SIMPSON_LIMIT` tolerances, the level that the comparison's own error reaches on
  smooth steps. On a stored problem a step with an error of 15 tolerances passed at q = 31.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: A checked step whose Simpson comparison exceeds this many tolerances (RMS over the components, as the error
#: estimate) is rejected. It sits above the comparison's own error on smooth steps (at most 18.4 on 14 507
#: accepted steps, ``benchmarks/retry_margin.py``) and below the missed transients measured (141 and 102
#: tolerances; errors of 48 and 49).
SIMPSON_LIMIT = 32.0
#: A rejection above this estimate is more than the step-size control's misjudgment of a smooth error. The
#: control aims each step at an estimate of 0.9^(p + 1) (0.59 for RK45), so such an estimate means the
#: error constant grew more than 17-fold within one step: the step ran into a transient. Its whole interval
#: is checked.
LARGE_ESTIMATE = 10.0
#: The retry after a failed check shrinks at least this much, the step-size control's own bound.
MIN_FACTOR = 0.2


class RetryCheck:
    """Simpson's rule against the steps at risk of an explicit pair whose dense output is
    y(t + theta h) = sum_k coefficients_k theta^k. ``powers``: the exponents k (0 .. degree);
    ``exponent``: the step-size control's -1 / (estimator order + 1).

    The steps at risk are the retry after any rejection (it starts at ``retry_at``), and every step that
    starts before ``watched_until``. That is the end of the last step rejected with an estimate above
    :data:`LARGE_ESTIMATE`, or of a step the check rejected: the transient lies somewhere in that step's
    interval. The steps after a passed retry keep its size and then grow, and may take the transient's tail
    at their first try."""

    def __init__(self, powers: np.ndarray, exponent: float) -> None:
        self.midpoint = 0.5**powers
        self.exponent = exponent
        self.retry_at = -np.inf
        self.watched_until = -np.inf

    def rejected(self, t: float, h: float, estimate: float) -> None:
        """The error control rejected the step [t, t + h] at ``estimate``: check its retry. Where the estimate
        is large (or not finite), also check each step that starts within [t, t + h]."""
        self.retry_at = t
        if not estimate <= LARGE_ESTIMATE:
            self.watched_until = max(self.watched_until, t + h)

    def at_risk(self, t: float) -> bool:
        """Whether the step that starts at t is checked: the retry after a rejection, or one that starts before
        ``watched_until``."""
        return t == self.retry_at or t < self.watched_until

    def comparison(
        self,
        fun: Callable[[Any], Any],
        y: np.ndarray,
        y_new: np.ndarray,
        K: np.ndarray,
        coefficients: np.ndarray,
        h: float,
        scale: np.ndarray,
    ) -> float:
        """RMS of (y_new - y - h (K[0] + 4 f(y_mid) + K[-1]) / 6) / scale: the step against Simpson's rule, in
        tolerances (``K[0]`` = f(y), ``K[-1]`` = f(y_new), y_mid the dense output at the midpoint; ``scale``:
        the error control's atol + rtol |y| of the step). One evaluation of ``fun``. Not finite where the
        field is not finite at y_mid."""
        # a fresh array: the field may return its own buffer
        difference = fun(self.midpoint @ coefficients) * (-4.0 * h / 6.0)
        difference -= (h / 6.0) * (K[0] + K[-1])
        difference += y_new
        difference -= y
        difference /= scale
        return float(np.sqrt(difference @ difference / difference.size))

    def shrink(
        self,
        fun: Callable[[Any], Any],
        t: float,
        h: float,
        y: np.ndarray,
        y_new: np.ndarray,
        workspace: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> float:
        """1.0 where the step [t, t + h] from y to y_new is not at risk (not a retry, and it starts at or
        after ``watched_until``) or passes the check (:meth:`comparison` at most :data:`SIMPSON_LIMIT`).
        Otherwise the factor for the next try: the step-size control's 0.9 q^exponent, taking q as an
        estimate, at least :data:`MIN_FACTOR` (also where q is not finite); the failed step's interval is
        then watched too.
        ``workspace``: the integrator's (stages K, dense-output coefficients, (work, the step's error scale)),
        as ``smooth.ExplicitPieces._step`` leaves them, with K[-1] = f(y_new) (RK12's formed for the check)."""
        if not self.at_risk(t):
            return 1.0
        K, coefficients, (_, scale) = workspace
        q = self.comparison(fun, y, y_new, K, coefficients, h, scale)
        if q <= SIMPSON_LIMIT:
            return 1.0
        self.watched_until = max(self.watched_until, t + h)
        return max(MIN_FACTOR, 0.9 * q**self.exponent) if np.isfinite(q) else MIN_FACTOR
