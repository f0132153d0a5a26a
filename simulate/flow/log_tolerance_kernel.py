"""The log coordinates' tolerance per step (:meth:`LogCoordinates.state_tolerance
<simulate.flow.logcoords.LogCoordinates.state_tolerance>`): its own and log-norms' rules and the test for the rows
where the directions' rule may bind, in one compiled pass over the state (imported through
:mod:`simulate.flow.jit` only: it imports numba).

numpy forms these in about a dozen passes over the directions (m, d) and the log-norms (m,): the state's own
rule atol + rtol |y| in three, the log-norms' rule and its minimum, and the rows' test
(:func:`~simulate.flow.logcoords.direction_rule_rows`, with the rows' norms). At low_signal's m = 20000 each
pass over the 2 million directions' numbers is bound by memory traffic (docs/flow.md, "Width"); here one loop
over the neurons does all of it while the row is in cache. The directions' rule itself stays numpy's, on the
rows the test keeps (none on the stall data): its norms are einsum's, whose order of summation over d no loop
here reproduces portably.

Precision: the own and log-norms' rules are the same roundings as numpy's (exp(rho_j) is the caller's,
numpy's), bit for bit; the test sums a row's d squares in order where numpy's
(:func:`~simulate.flow.output_screen.bound_norms`) groups them otherwise, a few roundings apart, which its
relative slack of 1e-9 covers: the result is the smaller of the two rules on every row, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_EPS = float(np.finfo(np.float64).eps)


@njit(cache=True)
def fmin(a: float, b: float) -> float:
    """numpy's fmin of two floats: the smaller, or the one that is not NaN."""
    return a if (a <= b or math.isnan(b)) else b


@njit(cache=True, error_model="numpy")
def own_rules(
    Y: np.ndarray,
    radius: np.ndarray,
    d: int,
    rtol: float,
    atol: float,
    every_row: bool,
    out: np.ndarray,
    near: np.ndarray,
) -> None:
    """Into ``out`` (m d + m,) at the state Y = (U row-major (m, d), rho (m,)) with r = exp(rho) (``radius``,
    (m,)): atol + rtol |y| on every component, at most (atol + rtol r_j) / r_j on rho_j; into ``near`` (m,)
    whether the directions' rule (atol + rtol |r_j u_jk| / ||u_j||) ||u_j|| / r_j may be the smaller on row j
    (:func:`~simulate.flow.logcoords.direction_rule_rows`' test; ``every_row``: every row, an atol below its
    floor)."""
    m = len(radius)
    for j in range(m):
        base, r = j * d, radius[j]
        squares = 0.0
        for k in range(d):
            u = Y[base + k]
            out[base + k] = abs(u) * rtol + atol
            squares += u * u
        out[m * d + j] = fmin(abs(Y[m * d + j]) * rtol + atol, (abs(r) * rtol + atol) / r)
        norm = math.sqrt(squares)
        own_rule = (2 * r <= norm * (1 - 1e-9)) and (16 * _EPS * rtol * (1 + 1e-9) * norm <= atol)
        near[j] = every_row or not own_rule
