"""Guards of a piece and the location of its first event on the dense output.

A piece stays valid while every guard is positive:

- each non-sliding pair (j, i): side_ji * cos angle(w_j, x_i) (side +1 active, -1 inactive);
- each sliding pair: mu_ji and 1 - mu_ji (the Filippov weight must stay in [0, 1]);
- the stopping rule's value, if any.

The integrator samples all guards at ``nodes + 1`` points of every step's dense output (the step's polynomial
has degree <= 7 for DOP853, so 10 sub-intervals resolve it), looks for sign changes, and also for guards that
dip between samples: a guard with a discrete local minimum whose parabola through the three samples dips well
below the middle value is minimized on the dense output, so a pair that crosses a surface and comes back
within one step is not missed. The earliest root is then located by regula falsi (Illinois) to the
arithmetic's roundoff. Pair and weight guards count as crossed only below -64 eps (noise of a guard that
starts at 0 after an event); the stopping guard at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from simulate.flow.coords import Coordinates
from simulate.flow.modes import SlidingWeights
from simulate.stopping import StopRule

PAIR, MU_LOW, MU_HIGH, STOP = 0, 1, 2, 3


class PieceGuards:
    """All guard functions of one piece, evaluated together on a batch of states, or one at a time."""

    def __init__(self, coords: Coordinates, weights: SlidingWeights, stop_rule: StopRule | None) -> None:
        self.coords, self.weights, self.stop_rule = coords, weights, stop_rule
        mode = weights.mode
        self.pair_flat = np.flatnonzero(~mode.sliding)
        self.pair_rows, self.pair_cols = np.divmod(self.pair_flat, mode.sliding.shape[1])
        self.pair_side = coords.arith.convert(mode.side[self.pair_rows, self.pair_cols].astype(np.float64))
        # side_ji / ||x_i|| on every pair (0 on sliding ones): D times this, divided by the row scale, is the guard
        self.side_over_x = coords.arith.convert(mode.side.astype(np.float64)) / coords.x_norms
        self.n_pairs, self.n_sliding = len(self.pair_rows), len(weights.pair_rows)
        self.kinds = np.concatenate(
            [np.full(self.n_pairs, PAIR), np.full(self.n_sliding, MU_LOW), np.full(self.n_sliding, MU_HIGH)]
            + [np.full(1, STOP)] * (stop_rule is not None)
        )
        self.thresholds = np.where(self.kinds == STOP, 0.0, coords.arith.guard_tol)
        self.stop_column = len(self.kinds) - 1 if stop_rule is not None else None
        self.seen_positive = np.zeros(len(self.kinds), dtype=bool)  # in an accepted step of this piece

    def observe(self, G: Any) -> None:
        """Record an accepted step's samples (for the wrong-way check of :func:`crossings`)."""
        self.seen_positive |= np.any(np.asarray(G, dtype=np.float64) > 0, axis=0)

    def stop_value(self, Y: Any) -> Any:
        """The stopping rule's value at one state (<= 0: reached)."""
        f = self.coords.output(Y[None], self.weights)
        return self.stop_rule.value(f, self.coords.y, self.coords.arith)[0]

    def evaluate(self, Ys: Any) -> Any:
        """Guard values (K, G) at states Ys (K, size), written column block by column block into one array."""
        coords = self.coords
        D, amp, _ = coords.parts(Ys)
        f = coords.output_of_parts(D, amp, self.weights)
        G = np.empty((len(Ys), len(self.kinds)), dtype=D.dtype)
        if self.n_sliding == 0:  # the pair columns are all pairs, row-major: fill them as an (m, n) block
            block = G[:, : self.n_pairs].reshape(D.shape)
            coords.divide_by_row_scale(np.multiply(D, self.side_over_x, out=block), Ys)
        else:
            guards = coords.divide_by_row_scale(D * self.side_over_x, Ys)
            G[:, : self.n_pairs] = guards.reshape(len(Ys), -1)[:, self.pair_flat]
            mu = self.weights.mu(coords.arith.sample(f, coords.y))
            G[:, self.n_pairs : self.n_pairs + self.n_sliding] = mu
            G[:, self.n_pairs + self.n_sliding : self.n_pairs + 2 * self.n_sliding] = 1 - mu
        if self.stop_rule is not None:
            G[:, -1] = self.stop_rule.value(f, coords.y, coords.arith)
        return G

    def column(self, Y: Any, col: int) -> Any:
        """The value of guard ``col`` at one state Y (size,): a pair's costs O(d), the others one output."""
        if self.kinds[col] == PAIR:
            j, i = self.pair_rows[col], self.pair_cols[col]
            return self.pair_side[col] * self.coords.cosine(Y, j, i)
        if self.kinds[col] == STOP:
            return self.stop_rule.value(self.coords.output(Y, self.weights), self.coords.y, self.coords.arith)
        k = (col - self.n_pairs) % self.n_sliding
        s = self.coords.arith.sample(self.coords.output(Y, self.weights), self.coords.y)
        mu = self.weights.mu(s)[k]
        return mu if self.kinds[col] == MU_LOW else 1 - mu

    def sliding_pair(self, column: int) -> tuple[int, int]:
        """(j, i) of a MU_LOW / MU_HIGH column."""
        k = (column - self.n_pairs) % self.n_sliding
        return int(self.weights.pair_rows[k]), int(self.weights.pair_cols[k])


def illinois(
    g: Callable[[Any], Any], a: Any, b: Any, ga: Any, gb: Any, xtol: float, max_iter: int = 200
) -> Any:
    """A root of g in [a, b] (ga > 0 >= gb or the reverse) by the Illinois variant of regula falsi.

    Works in any arithmetic (float or mpmath); stops when the bracket is narrower than ``xtol`` or g = 0, and
    returns the end of the final bracket on the side where g has not crossed (g(a) side), so the located state
    is never past the surface by more than the bracket width.
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


def crossings(G: Any, guards: PieceGuards) -> tuple[np.ndarray, np.ndarray]:
    """(crossed, wrong_way), both (K - 1, columns) over the sample intervals of one step.

    crossed: the guard goes from > 0 to <= -threshold. wrong_way: a guard that has not been positive yet in
    this piece (it started on its surface, at an event) goes to <= -threshold: the piece's mode was wrong for
    it.
    """
    Gf = np.asarray(G, dtype=np.float64)
    thresholds = guards.thresholds
    below = Gf[1:] <= -thresholds
    positive = Gf > 0
    wrong_way = np.zeros_like(below)
    unseen = np.flatnonzero(~guards.seen_positive & ~positive[0] & (thresholds > 0))
    if len(unseen):
        seen = np.logical_or.accumulate(positive[:, unseen], axis=0)
        wrong_way[:, unseen] = ~seen[:-1] & below[:, unseen]
    return positive[:-1] & below, wrong_way


class StepGuards:
    """The guards along one step: their values ``G`` at the sample times ``ts``, and any guard at any time.

    ``state_at(t)`` is the step's dense output. When the dense output is a polynomial in t of degree < len(ts)
    (every scipy solver's is: degree 7 for DOP853, 4 for RK45, 3 for Radau, <= 5 for BDF), pass the sampled
    states ``Ys``: a pair's pre-activation <w_j(t), x_i> is then that same polynomial, recovered exactly from
    its samples by barycentric interpolation, so locating an activation event costs no further dense
    evaluations.
    """

    def __init__(
        self, guards: PieceGuards, ts: Any, G: Any, state_at: Callable[[Any], Any], Ys: Any = None
    ) -> None:
        self.guards, self.ts, self.G, self.state_at, self.Ys = guards, ts, G, state_at, Ys
        self._last: tuple[Any, Any] | None = None
        if Ys is not None:
            K = len(ts) - 1
            self.bary_list = [(-1.0) ** k * math.comb(K, k) for k in range(K + 1)]
            self.ts_list = [float(t) for t in ts]
            self.pair_samples: dict[int, tuple[list[float], float]] = {}

    def has_polynomial(self, col: int) -> bool:
        return self.Ys is not None and self.guards.kinds[col] == PAIR

    def _pair_polynomial(self, col: int, t: float) -> float:
        """Pair guard ``col`` at time t from its samples, by the barycentric formula (plain floats: this runs
        inside the root finder, about ten times per event)."""
        if col not in self.pair_samples:
            g = self.guards
            j, i = g.pair_rows[col], g.pair_cols[col]
            d = g.coords.d
            rows = self.Ys[:, j * d : (j + 1) * d]
            scale = float(np.linalg.norm(rows[0]) * g.coords.x_norms[i])
            values = float(g.pair_side[col]) * (rows @ g.coords.X[i]) / scale
            self.pair_samples[col] = (values.tolist(), scale)
        values, _ = self.pair_samples[col]
        numerator = denominator = 0.0
        for node, weight, value in zip(self.ts_list, self.bary_list, values, strict=True):
            gap = t - node
            if gap == 0:
                return value
            numerator += weight / gap * value
            denominator += weight / gap
        return numerator / denominator

    def column(self, t: Any, col: int) -> Any:
        """Guard ``col`` at time t in the step."""
        if self.has_polynomial(col):
            return self._pair_polynomial(col, float(t))
        return self.guards.column(self.state(t), col)

    def state(self, t: Any) -> Any:
        """The state at time t in the step (the last one asked for is kept: the event's state is asked twice)."""
        if self._last is None or self._last[0] != t:
            self._last = (t, self.state_at(t))
        return self._last[1]

    def all(self, t: Any) -> np.ndarray:
        """All guards at time t (float64)."""
        return np.asarray(self.guards.evaluate(self.state(t)[None])[0], dtype=np.float64)


def first_event(
    step: StepGuards, xtol: float, refine_dips: bool = True
) -> tuple[Any, int, np.ndarray] | None:
    """(time, column, all guards there) of the earliest guard crossing in the step, or None.

    Crossings are located to ``xtol`` (absolute time). Root finding is spent only where it decides the answer:
    the bracket whose linear-interpolation estimate is earliest is located first, then only guards already
    crossed at that time (one evaluation of all guards there) are located, inside [their bracket start, time].
    """
    guards, ts, G = step.guards, step.ts, step.G
    thresholds = guards.thresholds
    Gf = np.asarray(G, dtype=np.float64)
    crossed, wrong_way = crossings(Gf, guards)
    if np.any(wrong_way):  # a guard that left its surface the wrong way: an event at the last sample before
        k = int(np.flatnonzero(wrong_way.any(axis=1))[0])
        if not crossed[:k].any():
            return ts[k], int(np.flatnonzero(wrong_way[k])[0]), Gf[k]
        crossed[k:] = False
    brackets = {}  # column -> (a, b, guard at a, guard at b) with the guard > 0 at a and crossed at b
    ks, cols = np.nonzero(crossed)
    for k, col in zip(ks.tolist(), cols.tolist()):
        brackets.setdefault(col, (ts[k], ts[k + 1], G[k, col], G[k + 1, col]))
    if refine_dips:
        tf = np.asarray(ts, dtype=np.float64)
        last = int(ks.min()) if len(ks) else len(ts) - 1
        for k, col in _dip_candidates(tf, Gf, last):
            if col in brackets:
                continue
            found = minimize_scalar(
                lambda t, col=col: float(step.column(t, col)),
                bounds=(tf[k - 1], tf[k + 1]),
                method="bounded",
                options={"xatol": xtol},
            )
            if found.fun <= -thresholds[col]:
                brackets[col] = (ts[k - 1], found.x, G[k - 1, col], found.fun)
    if not brackets:
        return None

    def locate(col: int, a: Any, b: Any, ga: Any, gb: Any) -> Any:
        def value(t: Any) -> Any:
            return step.column(t, col)

        if step.has_polynomial(col):  # the interpolant's own end values, for a consistent regula falsi
            ga, gb = value(a), value(b)
        return illinois(value, a, b, ga, gb, xtol)

    estimates = {}  # column -> the linear-interpolation estimate of its crossing time in its bracket
    for c, (a, b, ga, gb) in brackets.items():
        a, b, ga, gb = float(a), float(b), float(ga), float(gb)
        estimates[c] = a + (b - a) * ga / (ga - gb)
    estimate = estimates.__getitem__

    col = min(brackets, key=estimate)
    best = (locate(col, *brackets[col]), col)
    done = {col}
    while True:
        at_best = step.all(best[0])
        earlier = [
            c
            for c in brackets
            if c not in done and at_best[c] <= -thresholds[c] and float(brackets[c][0]) < float(best[0])
        ]
        if not earlier:
            return best[0], best[1], at_best
        col = min(earlier, key=estimate)
        done.add(col)
        a, _, ga, _ = brackets[col]
        best = (locate(col, a, best[0], ga, step.column(best[0], col)), col)
