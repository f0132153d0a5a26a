"""The dips of a step's sampled guards (:func:`~simulate.flow.dips.dip_candidates`) in one compiled call
(imported through :mod:`simulate.flow.jit` only: it imports numba).

The same candidates as the numpy code it mirrors, bit for bit: the same comparisons, and each parabola's
divided differences, vertex and lowest value formed by the same operations in the same order (no fused
multiply-add, no fastmath; a zero curvature gives numpy's inf and nan, ``error_model="numpy"``), the
candidates in the same order (tests compare them exactly on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def _deep(ts: np.ndarray, G: np.ndarray, first: int, a: int, b: int, low: int, col: int) -> bool:
    """Whether column ``col``'s parabola through samples first, first + 1, first + 2 has its vertex inside
    (ts[a], ts[b]) and goes below half of sample ``low`` (``dips._deep`` for one candidate)."""
    t0, t1, t2 = ts[first], ts[first + 1], ts[first + 2]
    g0, g1, g2 = G[first, col], G[first + 1, col], G[first + 2, col]
    slope01, slope12 = (g1 - g0) / (t1 - t0), (g2 - g1) / (t2 - t1)
    curvature = (slope12 - slope01) / (t2 - t0)
    vertex = (t0 + t1) / 2 - slope01 / (2 * curvature)
    lowest = g1 + (vertex - t1) * (slope01 + curvature * (vertex - t0))
    return curvature > 0 and lowest < 0.5 * G[low, col] and ts[a] < vertex < ts[b]


@njit(cache=True, error_model="numpy")
def dip_candidates(ts: np.ndarray, G: np.ndarray, crossed_by: int) -> np.ndarray:
    """The candidates (a, b, column) (count, 3) of ``dips.dip_candidates`` from the step's samples G (K + 1,
    C) at times ts, in the order the numpy code finds them (before its sort): the interior minima row by
    row, then the step's start, then its end."""
    K = len(ts) - 1
    C = G.shape[1]
    found = np.empty((max(K - 1, 0) * C + 2 * C, 3), dtype=np.int64)
    count = 0
    if K < 2:
        return found[:0]
    for r in range(min(K - 1, crossed_by)):  # row r of the interior minima is sample r + 1
        for c in range(C):
            mid = G[r + 1, c]
            if mid > 0 and mid < G[r, c] and mid <= G[r + 2, c] and _deep(ts, G, r, r, r + 2, r + 1, c):
                found[count, 0], found[count, 1], found[count, 2] = r, r + 2, c
                count += 1
    for c in range(C):
        first = (G[1, c] - G[0, c]) / (ts[1] - ts[0])
        second = (G[2, c] - G[1, c]) / (ts[2] - ts[1])
        if G[0, c] > 0 and G[0, c] < G[1, c] and second > 2 * first and _deep(ts, G, 0, 0, 1, 0, c):
            found[count, 0], found[count, 1], found[count, 2] = 0, 1, c
            count += 1
    if K - 1 < crossed_by:
        for c in range(C):
            first = (G[K - 1, c] - G[K - 2, c]) / (ts[K - 1] - ts[K - 2])
            second = (G[K, c] - G[K - 1, c]) / (ts[K] - ts[K - 1])
            if G[K, c] > 0 and G[K, c] < G[K - 1, c] and first < 2 * second and _deep(ts, G, K - 2, K - 1, K, K, c):
                found[count, 0], found[count, 1], found[count, 2] = K - 1, K, c
                count += 1
    return found[:count]
