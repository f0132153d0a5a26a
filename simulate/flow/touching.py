"""The guards on their bounds at an event: the pairs on their surfaces and the sliding weights at 0 or 1
(:meth:`~simulate.flow.hybrid.HybridFlow.event_pairs`).

From the guards' values at the event, a non-sliding pair is on its surface where |side cos| is within the
touching tolerance, and a sliding pair's weight is at a bound where mu or 1 - mu (its two guards) is. A few
numpy calls on the step's few dozen columns, in one compiled call where :mod:`~simulate.flow.jit` allows
(:mod:`~simulate.flow.touching_kernel`: comparisons only, so the same bit for bit).
"""

from __future__ import annotations

import numpy as np

from fls.simulate.flow import jit


def touched_columns(
    values: np.ndarray, columns: np.ndarray, n_pairs: int, n_sliding: int, tol: float
) -> tuple[np.ndarray, list[int]]:
    """(touching (n_pairs,): the pair columns with |value| <= tol, the weight columns (n_pairs <= column <
    n_pairs + 2 n_sliding) with value <= tol) from the float64 ``values`` of the guards ``columns``."""
    if (kernel := jit.kernels("touching_kernel")) is not None:
        touching, at_bound = kernel.touched_columns(values, columns, n_pairs, n_sliding, tol)
        return touching, at_bound.tolist()
    touching = np.zeros(n_pairs, dtype=bool)
    touching[columns[(columns < n_pairs) & (np.abs(values) <= tol)]] = True  # a sliding pair's column is 1
    at_bound = columns[(columns >= n_pairs) & (columns < n_pairs + 2 * n_sliding) & (values <= tol)]
    return touching, at_bound.tolist()
