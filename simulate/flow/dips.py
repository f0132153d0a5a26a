"""Dips of a guard between the samples of one step: intervals where a guard positive at every sample may still
cross 0 and come back (docs/flow.md, "Robustness").

A guard that is smooth over the step is locally a parabola near its lowest point, so the parabola through three
neighbouring samples says whether a dip below 0 may hide between them: its vertex lies between the samples and
its lowest value is well below the lowest sample. Such an interval is then minimized on the dense output by
:func:`simulate.flow.events.first_event`. The lowest sample may be inside the step (a discrete local minimum,
searched over its two neighbouring intervals) or at either end (searched over the end interval): a weight that
reaches 1 just before its pole has 1 - mu's guard dip there whenever a step ends just before the exit.
"""

from __future__ import annotations

import numpy as np

from fls.simulate.flow import jit


def _parabola_lowest(t: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertex, lowest value, curvature) of the parabolas through the points (t[:, a], g[:, a]), a = 0, 1, 2
    (divided differences; vertex and lowest are inf or nan where the curvature is 0)."""
    slope01, slope12 = (g[:, 1] - g[:, 0]) / (t[:, 1] - t[:, 0]), (g[:, 2] - g[:, 1]) / (t[:, 2] - t[:, 1])
    curvature = (slope12 - slope01) / (t[:, 2] - t[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = (t[:, 0] + t[:, 1]) / 2 - slope01 / (2 * curvature)
        lowest = g[:, 1] + (vertex - t[:, 1]) * (slope01 + curvature * (vertex - t[:, 0]))
    return vertex, lowest, curvature


def dip_candidates(ts: np.ndarray, G: np.ndarray, crossed_by: int) -> list[tuple[int, int, int]]:
    """(a, b, column): guard ``column`` of the step's samples G (K + 1, C) at times ts may dip below 0 in
    [ts[a], ts[b]] and is positive at ts[a], for the brackets that start before sample ``crossed_by`` (the end
    of the earliest crossed interval; only those can hold a zero before that crossing), earliest first.

    - Inside the step: a positive local minimum at sample k (strictly below its left neighbour: a guard held
      constant has none) whose parabola through samples k - 1, k, k + 1 goes below half of it: [k - 1, k + 1].
      A dip at k = crossed_by counts: 1 - mu's dip at a weight's exit just before its pole has its lowest
      sample there when mu crosses at the pole, one sample interval later.
    - At the step's start (end): the lowest of the first (last) three samples, positive, whose parabola has
      its vertex in the first (last) interval and goes below half of it: [0, 1] ([K - 1, K]).

    One compiled call where :mod:`~simulate.flow.jit` allows (:mod:`~simulate.flow.dips_kernel`: the same).
    """
    K = len(ts) - 1
    if K < 2:
        return []
    if (kernel := jit.kernels("dips_kernel")) is not None:
        return sorted(map(tuple, kernel.dip_candidates(ts, G, crossed_by).tolist()))
    mid, left, right = G[1:-1], G[:-2], G[2:]
    local = (mid > 0) & (mid < left) & (mid <= right)
    local[crossed_by:] = False  # row r is sample r + 1, whose bracket starts at sample r
    found = []
    columns = local.any(axis=0).nonzero()[0]  # few: over one step most guards are monotone
    if len(columns):
        rows, which = np.nonzero(local[:, columns])
        found += _deep(ts, G, rows, rows, rows + 2, rows + 1, columns[which])
    # the vertex of a parabola through three samples lies in the first interval only if the second slope is
    # over twice the first (and in the last only if the first is over twice the second, both falling)
    # the slopes of the first two intervals, as np.diff forms them (its Python wrapper costs more than they do)
    first, second = (G[1:3] - G[:2]) / (ts[1:3] - ts[:2])[:, None]
    at_start = ((G[0] > 0) & (G[0] < G[1]) & (second > 2 * first)).nonzero()[0]
    if len(at_start):
        zero = np.zeros(len(at_start), dtype=np.intp)
        found += _deep(ts, G, zero, zero, zero + 1, zero, at_start)
    if K - 1 < crossed_by:
        first, second = (G[K - 1 :] - G[K - 2 : K]) / (ts[K - 1 :] - ts[K - 2 : K])[:, None]
        at_end = ((G[K] > 0) & (G[K] < G[K - 1]) & (first < 2 * second)).nonzero()[0]
        if len(at_end):
            last = np.full(len(at_end), K, dtype=np.intp)
            found += _deep(ts, G, last - 2, last - 1, last, last, at_end)
    return sorted(found)


def _deep(
    ts: np.ndarray,
    G: np.ndarray,
    first: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    low: np.ndarray,
    cols: np.ndarray,
) -> list[tuple[int, int, int]]:
    """The candidates (a, b, column) whose parabola through samples first, first + 1 and first + 2 has its
    vertex inside [ts[a], ts[b]] and goes below half of the lowest sample ``low``."""
    samples = first[:, None] + np.arange(3)  # (candidates, 3)
    vertex, lowest, curvature = _parabola_lowest(ts[samples], G[samples, cols[:, None]])
    deep = (curvature > 0) & (lowest < 0.5 * G[low, cols]) & (ts[a] < vertex) & (vertex < ts[b])
    return list(zip(a[deep].tolist(), b[deep].tolist(), cols[deep].tolist()))
