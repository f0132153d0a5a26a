"""Guards of a piece and the location of its first event on the dense output.

A piece stays valid while every guard is positive:

- each non-sliding pair (j, i): side_ji * cos angle(w_j, x_i) (side +1 active, -1 inactive);
- each sliding pair: mu_ji and 1 - mu_ji (the Filippov weight must stay in [0, 1]);
- the stopping rule's value, if any.

The integrator samples all guards at ``nodes + 1`` points of every step's dense output (the step's polynomial
has degree <= 7 for DOP853, so 10 sub-intervals resolve it), looks for sign changes, and also for guards that dip
between samples: a guard with a discrete local minimum whose parabola through the three samples dips well below
the middle value is minimized on the dense output, so a pair that crosses a surface and comes back within one
step is not missed. The earliest root is then located by regula falsi (Illinois) to the arithmetic's roundoff.
Pair and weight guards count as crossed only below -64 eps (noise of a guard that starts at 0 after an event);
the stopping guard at 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from simulate.flow.coords import Coordinates
from simulate.flow.modes import SlidingWeights
from simulate.flow.stopping import StopRule

PAIR, MU_LOW, MU_HIGH, STOP = 0, 1, 2, 3


class PieceGuards:
    """All guard functions of one piece, evaluated together on a batch of states."""

    def __init__(self, coords: Coordinates, weights: SlidingWeights, stop_rule: StopRule | None) -> None:
        self.coords, self.weights, self.stop_rule = coords, weights, stop_rule
        mode = weights.mode
        self.pair_rows, self.pair_cols = np.nonzero(~mode.sliding)
        self.pair_side = coords.arith.convert(mode.side[self.pair_rows, self.pair_cols].astype(np.float64))
        n_pairs, n_sliding = len(self.pair_rows), len(weights.pair_rows)
        self.kinds = np.concatenate(
            [np.full(n_pairs, PAIR), np.full(n_sliding, MU_LOW), np.full(n_sliding, MU_HIGH)]
            + [np.full(1, STOP)] * (stop_rule is not None)
        )
        self.thresholds = np.where(self.kinds == STOP, 0.0, coords.arith.guard_tol)
        self.stop_column = len(self.kinds) - 1 if stop_rule is not None else None

    def evaluate(self, Ys: Any) -> Any:
        """Guard values (K, G) at states Ys (K, size)."""
        coords = self.coords
        parts = [self.pair_side * coords.cosines(Ys)[:, self.pair_rows, self.pair_cols]]
        if len(self.weights.pair_rows) or self.stop_rule is not None:
            f = coords.output(Ys, self.weights)
            if len(self.weights.pair_rows):
                mu = self.weights.mu(coords.arith.sample(f, coords.y))
                parts += [mu, 1 - mu]
            if self.stop_rule is not None:
                parts.append(self.stop_rule.value(f, coords.y, coords.arith)[:, None])
        return np.concatenate(parts, axis=1)

    def sliding_pair(self, column: int) -> tuple[int, int]:
        """(j, i) of a MU_LOW / MU_HIGH column."""
        k = (column - len(self.pair_rows)) % len(self.weights.pair_rows)
        return int(self.weights.pair_rows[k]), int(self.weights.pair_cols[k])


def illinois(g: Callable[[Any], Any], a: Any, b: Any, ga: Any, gb: Any, xtol: float, max_iter: int = 200) -> Any:
    """A root of g in [a, b] (ga > 0 >= gb or the reverse) by the Illinois variant of regula falsi.

    Works in any arithmetic (float or mpmath); stops when the bracket is narrower than ``xtol`` or g = 0, and
    returns the end of the final bracket on the side where g has not crossed (g(a) side), so the located state is
    never past the surface by more than the bracket width.
    """
    side = 0
    for _ in range(max_iter):
        if abs(b - a) <= xtol:
            break
        c = (a * gb - b * ga) / (gb - ga)
        if not (min(a, b) < c < max(a, b)):
            c = (a + b) / 2
        gc = g(c)
        if gc == 0:
            return c
        if (gc > 0) == (ga > 0):
            a, ga = c, gc
            if side == -1:
                gb = gb / 2
            side = -1
        else:
            b, gb = c, gc
            if side == 1:
                ga = ga / 2
            side = 1
    return a


def _dip_candidates(ts: np.ndarray, G: np.ndarray, last: int) -> list[tuple[int, int]]:
    """(k, column) of guards with a positive local minimum at sample k (< last) that may hide a zero."""
    mid, left, right = G[1:-1], G[:-2], G[2:]
    local = (mid > 0) & (mid <= left) & (mid <= right)
    local[last:] = False
    ks, cols = np.nonzero(local)
    if not len(ks):
        return []
    ks = ks + 1
    t0, t1, t2 = ts[ks - 1], ts[ks], ts[ks + 1]
    g0, g1, g2 = G[ks - 1, cols], G[ks, cols], G[ks + 1, cols]
    slope01, slope12 = (g1 - g0) / (t1 - t0), (g2 - g1) / (t2 - t1)
    curvature = (slope12 - slope01) / (t2 - t0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = (t0 + t1) / 2 - slope01 / (2 * curvature)
        lowest = g1 + (vertex - t1) * (slope01 + curvature * (vertex - t0))
    deep = (curvature > 0) & (lowest < 0.5 * g1)
    return sorted(zip(ks[deep].tolist(), cols[deep].tolist()))


def first_event(
    ts: Any,
    G: Any,
    thresholds: np.ndarray,
    guard_at: Callable[[Any], Any],
    xtol: float,
    refine_dips: bool = True,
) -> tuple[Any, int] | None:
    """The earliest time in [ts[0], ts[-1]] where a guard crosses its threshold, and that guard's column.

    ``G`` holds the guards at the sample times ``ts`` (a step's dense output); ``guard_at(t)`` evaluates all
    guards at one time. Crossings between samples are located to ``xtol`` (an absolute time tolerance).
    """
    Gf = np.asarray(G, dtype=np.float64)
    below = Gf[1:] <= -thresholds
    crossed = (Gf[:-1] > 0) & below
    # A guard that starts a piece at its surface (0 to roundoff) and goes the wrong way: event at once.
    wrong_way = (Gf[0] <= 0) & below[0] & (thresholds > 0)
    if np.any(wrong_way):
        return ts[0], int(np.flatnonzero(wrong_way)[0])
    brackets = []
    ks, cols = np.nonzero(crossed)
    first_k = {}
    for k, col in zip(ks.tolist(), cols.tolist()):
        first_k.setdefault(col, k)
    for col, k in first_k.items():
        brackets.append((ts[k], ts[k + 1], G[k, col], G[k + 1, col], col))
    last = min(first_k.values()) if first_k else len(ts) - 1
    if refine_dips:
        tf = np.asarray(ts, dtype=np.float64)
        for k, col in _dip_candidates(tf, Gf, last):
            def at(t: float, col: int = col) -> float:
                return float(guard_at(t)[col])
            found = minimize_scalar(at, bounds=(tf[k - 1], tf[k + 1]), method="bounded", options={"xatol": xtol})
            if found.fun <= -thresholds[col]:
                brackets.append((ts[k - 1], found.x, G[k - 1, col], guard_at(found.x)[col], col))
    if not brackets:
        return None
    best: tuple[Any, int] | None = None
    for a, b, ga, gb, col in sorted(brackets, key=lambda br: float(br[0])):
        if best is not None and a >= best[0]:
            break
        root = illinois(lambda t, col=col: guard_at(t)[col], a, b, ga, gb, xtol)
        if best is None or root < best[0]:
            best = (root, col)
    return best
