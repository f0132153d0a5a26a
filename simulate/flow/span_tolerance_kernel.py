"""The data-span coordinates' tolerance per step (:meth:`SpanCoordinates.state_tolerance
<simulate.flow.spancoords.SpanCoordinates.state_tolerance>`) in one compiled call: the kept rows' shares, the
rows converted afresh and the scaled tolerance (imported through :mod:`simulate.flow.jit` only: it imports
numba).

The same rule as the numpy code it mirrors (equation (2) of :mod:`simulate.flow.tolerance` with the maximum
over the d components as a p-norm, the kept rows scaled by 1 - e_j while e_j <= the reuse fraction).
Precision: the sums (||lambda_j - lambda_j^c||_1, w_j = w_j(0) + lambda_j X and the p-norm's) run in another order than
numpy's and the p-th root is the C library's pow, so each kept share, converted tau and slack is within a few
ulps of numpy's relative to its terms' sizes (tests compare them on random inputs); the scaling by the share
and the output weights' atol + rtol |v_j| are the same roundings. A tolerance is a bound that the step's error
is compared with, so these few ulps move only steps whose error estimate is within as much of the limit.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def convert_row(
    j: int,
    Lambda: np.ndarray,
    data: tuple,
    rtol: float,
    atol: float,
    squarings: int,
    tau: np.ndarray,
    slack: np.ndarray,
) -> None:
    """Row j of tau (n,) and its slack S_j from the state's lambda_j: T_c = atol + rtol |w_jc| at w_j = w_j(0)
    + lambda_j X, S_j = min_c T_c / max_i |x_ic|, tau_ji = min_c T_c / (||(min T / T_c)_c ||_p max_c |x_ic|)
    with the p-norm's sum against the scaled powers (|x_ic| / max_c |x_ic|)^p (d, n); a tau that is not finite
    (a sample x_i = 0) is atol + rtol |lambda_ji|. ``data``: (W(0) (m, d), X (n, d), max_i |x_ic| (d,),
    max_c |x_ic| (n,), the scaled powers (d, n)), the coordinates' constants."""
    W0, X, largest_column, largest_x, scaled_x_powers = data
    n, d = X.shape
    allowed = W0[j].copy()
    for i in range(n):
        step = Lambda[j, i]
        for c in range(d):
            allowed[c] += step * X[i, c]
    least, slack_j = np.inf, np.inf
    for c in range(d):
        allowed[c] = atol + rtol * abs(allowed[c])
        least = min(least, allowed[c])
        slack_j = min(slack_j, allowed[c] / largest_column[c])
    slack[j] = slack_j
    sums = np.zeros(n)
    for c in range(d):
        ratio = least / allowed[c]
        for _ in range(squarings):
            ratio = ratio * ratio
        for i in range(n):
            sums[i] += ratio * scaled_x_powers[c, i]
    exponent = 1.0 / 2**squarings
    for i in range(n):
        norm = sums[i] ** exponent if sums[i] > 0 else 1.0
        value = least / (norm * largest_x[i])
        tau[j, i] = value if np.isfinite(value) else atol + rtol * abs(Lambda[j, i])


@njit(cache=True, error_model="numpy")
def state_tolerance(
    Lambda: np.ndarray,
    v: np.ndarray,
    kept: np.ndarray,
    tau: np.ndarray,
    slack: np.ndarray,
    data: tuple,
    rtol: float,
    atol: float,
    reuse: float,
    squarings: int,
    out: np.ndarray,
) -> None:
    """The tolerance (m n + m,) into ``out`` at the state (Lambda (m, n), v (m,)) from the rows as last
    converted (``kept`` = Lambda^c, tau, slack, updated in place where a row is converted afresh): row j is
    scaled by 1 - e_j, e_j = rtol ||lambda_j - lambda_j^c||_1 / S_j, while 1 - e_j >= 1 - ``reuse`` (else,
    or where it is NaN, converted afresh at the state: :func:`convert_row`, which reads ``data``); v_j's is
    atol + rtol |v_j|."""
    m, n = Lambda.shape
    for j in range(m):
        distance = 0.0
        for i in range(n):
            distance += abs(Lambda[j, i] - kept[j, i])
        share = 1.0 - rtol * distance / slack[j]
        if not share >= 1.0 - reuse:
            kept[j] = Lambda[j]
            convert_row(j, Lambda, data, rtol, atol, squarings, tau, slack)
            share = 1.0
        for i in range(n):
            out[j * n + i] = tau[j, i] * share
    for j in range(m):
        out[m * n + j] = atol + rtol * abs(v[j])
