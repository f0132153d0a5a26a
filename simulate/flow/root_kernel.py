"""Safeguarded Newton on a movable pair's guard polynomial (:func:`~simulate.flow.polynomial_guards.newton_root`)
in one compiled call (imported through :mod:`simulate.flow.jit` only: it imports numba).

Scalar float64 arithmetic, the same operations in the same order as the Python code it mirrors (Horner's rule
highest power first, no fused multiply-add, no fastmath; ``max`` and ``min`` written as Python's, which keep the
first argument on a tie), so the same root bit for bit (tests compare them exactly on random polynomials).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _horner(coefficients: np.ndarray, col: int, theta: float) -> tuple[float, float]:
    """(value, derivative) at theta of column ``col``'s polynomial (coefficients (p + 1, columns), power k in
    row k), from the highest power down."""
    value = slope = 0.0
    for k in range(coefficients.shape[0] - 1, -1, -1):
        slope = slope * theta + value
        value = value * theta + coefficients[k, col]
    return value, slope


@njit(cache=True)
def newton_root(coefficients: np.ndarray, col: int, lo: float, hi: float, tol: float) -> tuple[bool, float]:
    """``newton_root`` of column ``col`` of ``coefficients`` (p + 1, columns), power k in row k."""
    g_lo, g_hi = _horner(coefficients, col, lo)[0], _horner(coefficients, col, hi)[0]
    if not g_lo > 0:
        return True, lo
    theta = lo + (hi - lo) * g_lo / (g_lo - g_hi) if g_lo != g_hi else (lo + hi) / 2
    for _ in range(100):
        if hi - lo <= tol:
            break
        g, slope = _horner(coefficients, col, theta)
        if g == 0:
            return False, theta
        if g > 0:
            lo = theta
        else:
            hi = theta
        newton = theta - g / slope if slope != 0 else lo - 1.0
        if not lo < newton < hi:
            newton = (lo + hi) / 2
        if abs(newton - theta) <= tol / 4:
            left, right = newton - tol / 4, newton + tol / 4
            left = left if left > lo else lo  # noqa: FURB136 (Python's max(lo, left), whatever numba's max does)
            right = right if right < hi else hi  # noqa: FURB136 (Python's min(hi, right))
            if _horner(coefficients, col, left)[0] > 0:
                lo = left
            if _horner(coefficients, col, right)[0] <= 0:
                hi = right
            theta = (lo + hi) / 2
        else:
            theta = newton
    return False, lo
