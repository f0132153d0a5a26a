"""The log coordinates' bound on each neuron's contribution excursion over a step
(:meth:`LogCoordinates.contribution_excursion <simulate.flow.logcoords.LogCoordinates.contribution_excursion>`,
the sliding weights' and the stopping rule's screen, :mod:`simulate.flow.output_screen`) in two compiled
passes over the neurons around numpy's exp (imported through :mod:`simulate.flow.jit` only: it imports numba).

numpy forms the bound in about 25 passes over m numbers (the sums over the step's powers, the radii's
extremes, the amplitudes' quotients and differences, the test for a finite bound), each a call of its own: at
the stall data's m = 20000 about 0.35 ms a step. Here :func:`exponents` forms the movements and the three
exponents in one compiled call, numpy's exp takes them in one call (its vectorized exp: a loop here would
call the C library's, slower and rounding otherwise), and :func:`bounds` the rest in one loop: 0.20 ms a
step (docs/flow.md, "Width: the event at m = 20000").

Precision: the same floating-point operations in the same order as the numpy code (the sums over the
powers in order, as numpy's reduction over the first axis of a C-contiguous block; numpy's maximum, NaN
included; no fused multiply-add, no fastmath), so the same bounds bit for bit (tests compare them exactly
on random inputs).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def exponents(
    row_sizes: np.ndarray, C: np.ndarray, first: int, moved: np.ndarray, arguments: np.ndarray
) -> None:
    """moved[j] = sum_{k >= 1} row_sizes[k, j] and the exponents (3, m) 2 rho_0j, 2 (rho_0j + P_j) and
    2 (rho_0j - P_j) with P_j = sum_{k >= 1} |rho_kj|, from the directions' coefficient norms ``row_sizes``
    (p + 1, m) and the coefficients C (p + 1, size), whose log-norms rho_kj are C[k, first + j]. Loops over
    the neurons innermost (contiguous: they vectorize), the powers summed in order."""
    powers, m = row_sizes.shape
    log_moved = arguments[1]
    for j in range(m):
        moved[j] = row_sizes[1, j]
        log_moved[j] = abs(C[1, first + j])
    for k in range(2, powers):
        for j in range(m):
            moved[j] += row_sizes[k, j]
            log_moved[j] += abs(C[k, first + j])
    for j in range(m):
        start, change = C[0, first + j], log_moved[j]
        arguments[0, j] = 2 * start
        arguments[1, j] = 2 * (start + change)
        arguments[2, j] = 2 * (start - change)


@njit(cache=True, error_model="numpy")
def bounds(norm0: np.ndarray, moved: np.ndarray, powers: np.ndarray, out: np.ndarray) -> None:
    """out[j]: the excursion bound from ||u_j(0)|| (``norm0``), M_j (``moved``) and the exponentials
    (3, m) of :func:`exponents`' exponents; inf where ||u_j|| - M_j is not > 0 or the bound is not finite."""
    for j in range(len(out)):
        lowest, highest = norm0[j] - moved[j], norm0[j] + moved[j]
        amp0 = powers[0, j] / norm0[j]
        amp_high = powers[1, j] / lowest
        amp_low = powers[2, j] / highest
        rise, fall = amp_high - amp0, amp0 - amp_low
        larger = rise if (rise >= fall or math.isnan(rise)) else fall  # numpy's maximum
        bound = larger * highest + amp0 * moved[j]
        out[j] = bound if lowest > 0 and math.isfinite(bound) else np.inf
