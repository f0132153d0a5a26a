"""The full pair test of a step (:func:`~simulate.flow.pair_test.every_pair_test`) in one compiled call
(imported through :mod:`simulate.flow.jit` only: it imports numba).

The same decisions and numbers as the numpy code it mirrors, bit for bit: the excursion sum_{k >= 1} |D_k,ji|
is summed over k in the same order as numpy's reduction over the first axis, each kept column's coefficients
are the same products D_k,ji (side_ji / ||x_i||) / s_j, and the columns come in the same row-major order
(tests compare them exactly on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def every_pair_test(
    pre: np.ndarray,
    map_norms: np.ndarray,
    sliding_columns: np.ndarray,
    side_over_x: np.ndarray,
    thresholds: np.ndarray,
    norms: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, coefficients (p + 1, columns)) of the pairs that can change sign in the step, from every
    pair's coefficients ``pre`` (p + 1, m, n): kept where |D_0| <= sum_{k >= 1} |D_k| or D_0 = 0, on a sample
    with ||Z_i|| > 0 (``map_norms``), not sliding (``sliding_columns``: flat indices), or where the guard
    side_ji D_0 / (||x_i|| s_j) (``side_over_x`` (m, n), the row scales ``norms`` (m,)) is below 0 by no
    more than the column's threshold."""
    powers, m, n = pre.shape
    keep = np.empty(m * n, dtype=np.bool_)
    for j in range(m):
        for i in range(n):
            start = pre[0, j, i]
            excursion = 0.0
            for k in range(1, powers):
                excursion += abs(pre[k, j, i])
            keep[j * n + i] = (abs(start) <= excursion or start == 0) and map_norms[i] > 0
    for column in sliding_columns:
        keep[column] = False
    for j in range(m):
        for i in range(n):
            signed = side_over_x[j, i] * pre[0, j, i]
            if signed < 0 and signed / norms[j] >= -thresholds[j * n + i]:
                keep[j * n + i] = True
    columns = keep.nonzero()[0]
    coefficients = np.empty((powers, len(columns)))
    for c in range(len(columns)):
        j, i = columns[c] // n, columns[c] % n
        factor = side_over_x[j, i] / norms[j]
        for k in range(powers):
            coefficients[k, c] = pre[k, j, i] * factor
    return columns, coefficients
