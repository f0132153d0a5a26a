"""The brackets of a step's crossed guards (:func:`~simulate.flow.brackets.crossed_brackets`) in one compiled
call (imported through :mod:`simulate.flow.jit` only: it imports numba).

Comparisons and indices, and each estimate by the same operations in the same order (no fused multiply-add,
no fastmath), so the same columns, intervals, samples and estimates as the numpy code it mirrors, bit for bit
(tests compare them exactly on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def crossed_brackets(
    G: np.ndarray, ts: np.ndarray, columns: np.ndarray, crossed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(crossed columns, first crossed intervals, last positive samples up to them, the estimates of their
    crossings) of the columns ``columns`` of G (K, C) at times ts with crossed intervals ``crossed`` (K - 1,
    len(columns))."""
    intervals, count = crossed.shape
    chosen = np.empty(count, dtype=np.int64)
    firsts = np.empty(count, dtype=np.int64)
    begins = np.empty(count, dtype=np.int64)
    estimates = np.empty(count)
    found = 0
    for w in range(count):
        for k in range(intervals):
            if crossed[k, w]:
                column = columns[w]
                begin = -1
                for sample in range(k + 1):
                    if G[sample, column] > 0:
                        begin = sample
                chosen[found], firsts[found], begins[found] = column, k, begin
                start, end = ts[begin], ts[k + 1]
                g_start, g_end = G[begin, column], G[k + 1, column]
                estimates[found] = start + (end - start) * g_start / (g_start - g_end)
                found += 1
                break
    return chosen[:found], firsts[:found], begins[:found], estimates[:found]
