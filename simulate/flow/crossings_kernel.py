"""The crossed intervals of a step's sampled guards (:func:`~simulate.flow.events.crossings`) in one compiled
call (imported through :mod:`simulate.flow.jit` only: it imports numba).

Comparisons only, so the same columns and flags as the numpy code it mirrors, bit for bit, NaN included: a
column with a NaN after its first sample is left out, as numpy's minimum (NaN) leaves it (tests compare them
exactly on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def crossings(G: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(columns, crossed, wrong_way) of the samples G (K, C) with the columns' ``thresholds`` (C,): the
    columns at or below -threshold at some sample after the first, and per interval (K - 1, columns) whether
    such a column ends it there having been above 0 at some sample up to its start (crossed) or not
    (wrong_way)."""
    K, C = G.shape
    columns = np.empty(C, dtype=np.int64)
    count = 0
    for c in range(C):
        below, nan = False, False
        for k in range(1, K):
            below = below or G[k, c] <= -thresholds[c]
            nan = nan or np.isnan(G[k, c])
        if below and not nan:
            columns[count] = c
            count += 1
    crossed = np.zeros((K - 1, count), dtype=np.bool_)
    wrong_way = np.zeros((K - 1, count), dtype=np.bool_)
    for w in range(count):
        c = columns[w]
        seen = False
        for k in range(K - 1):
            seen = seen or G[k, c] > 0
            if G[k + 1, c] <= -thresholds[c]:
                crossed[k, w] = seen
                wrong_way[k, w] = not seen
    return columns[:count], crossed, wrong_way
