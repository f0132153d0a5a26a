"""A second check of an explicit step retried after a rejection: Simpson's rule on the step's own dense output.

An embedded Runge–Kutta pair estimates a step's error as the difference of two quadratures of the same stages
K_i = f(Y_i) at the nodes c_i. That difference is an error estimate only while the rate is smooth on the
step's scale. A transient shorter than the gaps between the nodes (a logistic factor that turns between two
stages) breaks it: the rate is then close to a step function of time. For a rate that jumps by J at the
fraction s of the step, RK45's estimate is |E . K| = 0.0012 to 0.034 h |J| while the step's error is up to
0.37 h |J|. In the widest gap, s in (0.3, 0.8), the estimate is 0.003 h |J| and the error up to 0.23 h |J|.
RK23's nodes are closer for its order: its estimate, 0.014 to 0.125 h |J|, is within a factor 4 of the error.
On such a step the estimate can pass at 0.22 while the error is 48 times the tolerance (docs/flow.md,
"Robustness", "A transient between the stages").

The check compares the step with an independent quadrature of its rate. Simpson's rule on the rates at the
step's start, its end (both known: f(y) and the first-same-as-last stage f(y_new)) and its midpoint, taken
on the step's dense output (one field evaluation), gives

    q = y_new - y - h (f(y) + 4 f(y(t + h/2)) + f(y_new)) / 6,

measured in the error control's scale (RMS of q / (atol + rtol |y|), as the estimate). On a smooth step q is
the sum of three small errors: Simpson's, h^5 y^(5) / 2880; the step's own; and (2/3) h J_f e_mid, the field's
Jacobian J_f times the dense output's error at the midpoint. They are of the order of the tolerance. On the
benchmark rows and the stored stress problems, 14 441 accepted steps, q is at most 19 times it. With a jump
J, q moves by 0.036 to 0.37 h |J| for RK45, wherever the jump falls. That is 10 to 120 times the estimate's
response, so a step the estimate passes on a transient fails here. The rejected step is retried smaller, by
the step-size control's own factor.

Only a retry is checked. A rejection shows that the controller's error model broke within one step, which is
what a transient does, so the retry, the step the same estimate then passes, is where the check pays. On
``benchmarks/flow.py``'s six RK23 / RK45 rows a run has at most one retry in about 2000 steps, so the check
costs nothing measurable there.

What it cannot catch:
- a transient inside a step the estimate accepts at the first try (only a retry is checked);
- a transient that Simpson's rule and the step integrate wrongly by the same amount (for RK45, a jump in
  the last ninth of the step, where q moves by 0.036 h |J| and the error is up to 0.11 h |J|);
- an error below :data:`SIMPSON_LIMIT` times the tolerance, the level that the comparison's own error reaches
  on smooth steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: A retry whose Simpson comparison exceeds this many tolerances (RMS over the components, as the error
#: estimate) is rejected. It sits above the comparison's own error on smooth steps (at most 19 on 14 441
#: accepted steps) and below a missed transient (141 on the stored problem of docs/flow.md, "Limits").
SIMPSON_LIMIT = 32.0
#: The retry after a failed check shrinks at least this much, the step-size control's own bound.
MIN_FACTOR = 0.2


class RetryCheck:
    """Simpson's rule against a retried step of an explicit pair whose dense output is
    y(t + theta h) = sum_k coefficients_k theta^k. ``powers``: the exponents k (0 .. degree);
    ``exponent``: the step-size control's -1 / (estimator order + 1)."""

    def __init__(self, powers: np.ndarray, exponent: float) -> None:
        self.midpoint = 0.5**powers
        self.exponent = exponent

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
        y: np.ndarray,
        y_new: np.ndarray,
        K: np.ndarray,
        coefficients: np.ndarray,
        h: float,
        scale: np.ndarray,
    ) -> float:
        """1.0 where the retried step passes the check (:meth:`comparison` at most :data:`SIMPSON_LIMIT`), else
        the factor for the next try: the step-size control's 0.9 q^exponent on q as on an estimate, at least
        :data:`MIN_FACTOR` (also where q is not finite)."""
        q = self.comparison(fun, y, y_new, K, coefficients, h, scale)
        if q <= SIMPSON_LIMIT:
            return 1.0
        return max(MIN_FACTOR, 0.9 * q**self.exponent) if np.isfinite(q) else MIN_FACTOR
