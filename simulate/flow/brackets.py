"""Where the brackets of a step's crossed guards lie: each crossed column's first crossed sample interval and
the last sample up to it where the guard was above 0 (:func:`~simulate.flow.events.first_event`).

From the intervals that :func:`~simulate.flow.events.crossings` marks crossed (the guard at or below minus its
threshold at the interval's end, above 0 at some sample up to its start), a crossed column's root lies between
its last positive sample and the end of its first crossed interval. A few numpy calls on arrays of a few
dozen numbers, in one compiled call where :mod:`~simulate.flow.jit` allows
(:mod:`~simulate.flow.brackets_kernel`: comparisons and indices only, so the same bit for bit).
"""

from __future__ import annotations

import numpy as np

from fls.simulate.flow import jit


def last_positive(G: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """For each column of G (K, C), the last sample at or before ``intervals`` (C,) where it is > 0, -1 where
    there is none."""
    samples = np.where(G > 0, np.arange(len(G))[:, None], -1)
    return np.maximum.accumulate(samples, axis=0)[intervals, np.arange(G.shape[1])]


def crossed_brackets(
    G: np.ndarray, ts: np.ndarray, columns: np.ndarray, crossed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(crossed columns, their first crossed intervals k, their last positive samples b up to those, the
    linear-interpolation estimates of their crossings) from the step's float64 samples G (K, C) at times ts
    (K,) and :func:`~simulate.flow.events.crossings`' ``columns`` and ``crossed`` (K - 1, len(columns)): the
    columns of G that have a crossed interval, in order. The estimate of a bracket [ts_b, ts_(k + 1)] with
    values g_b > 0 >= g_(k + 1) is ts_b + (ts_(k + 1) - ts_b) g_b / (g_b - g_(k + 1)), the operations of
    ``events._estimate``."""
    if (kernel := jit.kernels("brackets_kernel")) is not None:
        return kernel.crossed_brackets(G, ts, columns, crossed)
    which = crossed.any(axis=0).nonzero()[0]
    intervals = crossed[:, which].argmax(axis=0)
    crossed_columns = columns[which]
    begins = last_positive(G[:, crossed_columns], intervals)
    start, end = ts[begins], ts[intervals + 1]
    g_start, g_end = G[begins, crossed_columns], G[intervals + 1, crossed_columns]
    return crossed_columns, intervals, begins, start + (end - start) * g_start / (g_start - g_end)
