"""The guards on their bounds at an event (:func:`~simulate.flow.touching.touched_columns`) in one compiled call
(imported through :mod:`simulate.flow.jit` only: it imports numba).

Comparisons only, so the same pairs and weights as the numpy code it mirrors, bit for bit, NaN included (a
NaN value touches nothing) (tests compare them exactly on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def touched_columns(
    values: np.ndarray, columns: np.ndarray, n_pairs: int, n_sliding: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """(touching pairs (n_pairs,), the weight columns at a bound, in order) from the ``values`` of the guards
    ``columns``."""
    touching = np.zeros(n_pairs, dtype=np.bool_)
    at_bound = np.empty(len(columns), dtype=np.int64)
    count = 0
    for c in range(len(columns)):
        column = columns[c]
        if column < n_pairs:
            if abs(values[c]) <= tol:
                touching[column] = True
        elif column < n_pairs + 2 * n_sliding and values[c] <= tol:
            at_bound[count] = column
            count += 1
    return touching, at_bound[:count]
