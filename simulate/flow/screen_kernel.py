"""The norms of short rows for a step's screens (:func:`~simulate.flow.output_screen.bound_norms`) in a compiled
loop (imported through :mod:`simulate.flow.jit` only: it imports numba).

At m = 20000 in d = 3 numpy's sqrt((A . A) @ 1) over a step's four coefficient blocks takes 0.26 ms, a
reduction over a short axis; the loop below, with rows of 3 written out so that the loop over rows
vectorizes, 0.06 ms (docs/flow.md, "Cost"). The norms serve decisions with a relative slack only
(``output_screen.EXCURSION_SLACK``, ``polynomial_guards.SCREEN_SLACK``), never values that reach the state;
they sum a row's squares in order, within a few ulps of numpy's (tests compare them on random inputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def row_norms(A: np.ndarray, out: np.ndarray) -> None:
    """out[j] = ||A[j, :]|| for a C-contiguous A (r, k), written to ``out`` (r,); rows of 3 (the stall data's
    directions) written out so that the loop over rows vectorizes."""
    r, k = A.shape
    if k == 3:
        for j in range(r):
            x, y, z = A[j, 0], A[j, 1], A[j, 2]
            out[j] = np.sqrt(x * x + y * y + z * z)
        return
    for j in range(r):
        total = 0.0
        for c in range(k):
            total += A[j, c] * A[j, c]
        out[j] = np.sqrt(total)
