"""The sliding weights' guards from their numerators (:meth:`~simulate.flow.events.PieceGuards.weight_guards`)
in one compiled call (imported through :mod:`simulate.flow.jit` only: it imports numba).

Elementwise, the same operations in the same order as the numpy code it mirrors (no fused multiply-add, no
fastmath), so the same guards bit for bit (tests compare them exactly on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def weight_guards(
    u: np.ndarray, s: np.ndarray, pair_cols: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(u jump / units, (jump - u) jump / units) (K, pairs) with jump = s[:, pair_cols], from the numerators u
    = mu s_i (K, pairs), the sample factors s (K, n) and the guards' units (pairs,)."""
    K, pairs = u.shape
    low, high = np.empty((K, pairs)), np.empty((K, pairs))
    for k in range(K):
        for p in range(pairs):
            jump = s[k, pair_cols[p]]
            low[k, p] = u[k, p] * jump / units[p]
            high[k, p] = (jump - u[k, p]) * jump / units[p]
    return low, high
