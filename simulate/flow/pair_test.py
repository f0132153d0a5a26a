"""The pairs that can change sign in a step, by the full test over every pair when every pair's coefficients are
formed anyway: a small network's shortcut past the screens of :func:`~simulate.flow.polynomial_guards._movable_pairs`.

A pair guard can change sign within a step only if |D_ji(0)| <= sum_{k >= 1} |D_k,ji| (its polynomial's
largest excursion on [0, 1]), or if it starts past its surface by less than its crossing threshold (an
event's projection left it there by roundoff). On a large network the movable pairs are found by screens
that form D(0) and the higher coefficients for few pairs. Where the step's output guards have formed every
pair's coefficients D_k (p + 1, m, n) anyway (sliding pairs or a stopping rule, with every pair's products)
and the network has fewer than ``polynomial_guards.MARGIN_MIN_PAIRS`` pairs (no neuron margins), the screens
only cost: their bounds, |D(0)| / ||Z_i|| against sum_k ||R_k,j|| over all m n pairs, take about three times
the full test itself (about 90 against 35 us a step on low_signal at m = 100, docs/flow.md "Cost").

The same columns, in the same (row-major) order, with the same coefficients bit for bit: the Cauchy-Schwarz
screen keeps every pair the full test keeps (it drops only pairs with |D(0)| above its bound, which is at
least sum_k |D_k| up to a relative slack of 1e-9), and the kept pairs are the full test's plus those with
D(0) = 0 or past their surface, never sliding ones or those of a sample x_i = 0 (whose screen value
|D(0)| / ||Z_i|| is not a number).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow import jit
from fls.simulate.flow.events import PieceGuards


def past_surface(
    guards: PieceGuards, pre0: Any, norms: Any, select: Any, neurons: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``pre0``, columns) of the pairs whose guard starts the step below 0 by less than its crossing
    threshold: pre-activations ``pre0`` (k, n) of the neurons ``neurons`` (``select``: them, or a slice of
    all) with row scales ``norms`` (k,)."""
    signed = guards.side_over_x[select] * pre0
    below = (signed < 0).ravel().nonzero()[0]  # flat: a fraction of the cost of the 2-d nonzero
    rows_below, cols_below = np.divmod(below, n)
    thresholds = guards.thresholds[neurons[rows_below] * n + cols_below]
    past = signed.reshape(-1)[below] / norms[rows_below] >= -thresholds
    return rows_below[past], cols_below[past]


def every_pair_test(
    coords: Any, guards: PieceGuards, rows: Any, amp0: Any, every_pair: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, their guard polynomials (p + 1, columns)) of the pairs that can change sign in the step, from
    every pair's coefficients ``every_pair`` (p + 1, m, n) (as ``polynomial_guards._movable_pairs``); in one
    compiled call in float64 where :mod:`~simulate.flow.jit` allows (:mod:`~simulate.flow.pair_test_kernel`,
    bit for bit the same)."""
    n = coords.n
    pre0, higher = every_pair[0], every_pair[1:]
    if guards.row_map_norms is None:
        guards.row_map_norms = coords.arith.row_norms(coords.row_map.T)
    kernel = jit.kernels("pair_test_kernel") if coords.arith.name == "float64" else None
    if kernel is not None:
        norms = coords.start_scale(rows[0], amp0, pre0, slice(None))
        columns = guards.sliding_columns
        return kernel.every_pair_test(
            every_pair, guards.row_map_norms, columns, guards.side_over_x, guards.thresholds, norms
        )
    keep = np.abs(pre0) <= np.abs(higher).sum(axis=0)
    keep |= pre0 == 0
    keep &= guards.row_map_norms > 0
    keep.reshape(-1)[guards.sliding_columns] = False
    norms = coords.start_scale(rows[0], amp0, pre0, slice(None))  # (m,)
    keep[past_surface(guards, pre0, norms, slice(None), np.arange(len(pre0)), n)] = True
    columns = keep.ravel().nonzero()[0]
    r = columns // n
    factor = guards.side_over_x.reshape(-1)[columns] / norms[r]
    start = pre0.reshape(-1)[columns]
    return columns, np.concatenate([start[None], higher.reshape(len(higher), -1)[:, columns]]) * factor
