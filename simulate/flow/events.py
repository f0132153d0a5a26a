"""Guards of a piece and the location of its first event on the dense output.

A piece stays valid while every guard is positive:

- each non-sliding pair (j, i): side_ji * cos angle(w_j, x_i) (side +1 active, -1 inactive); the guard columns
  hold all m n pairs row-major, a sliding pair's column the constant 1;
- each sliding pair: mu_ji and 1 - mu_ji (the Filippov weight must stay in [0, 1]), formed without mu's pole
  (:meth:`PieceGuards.weight_guards`);
- the stopping rule's value, if any.

The integrator samples the guards at ``nodes + 1`` points of every step's dense output (the step's polynomial
has degree <= 7 for DOP853, so 10 sub-intervals resolve it): all of them from the sampled states
(:class:`StepGuards`), or, for the explicit pairs in plain, data-span and log coordinates, only those that
can change sign in the step, from the dense output's coefficients (:mod:`simulate.flow.polynomial_guards`). It
looks for sign changes, and also for guards that dip between samples: a guard whose parabola through three
samples dips well below the lowest of them, inside the step or at either end (:mod:`simulate.flow.dips`), is
minimized on the dense output, so a pair that crosses a surface and comes back within one step is not missed. The earliest root is then
located to the arithmetic's roundoff (regula falsi, Illinois; Newton on a polynomial step's pair guards). Pair and weight guards count as crossed only below -64 eps (noise of a guard that
starts at 0 after an event); the stopping guard at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from fls.simulate.flow import jit
from fls.simulate.flow.brackets import crossed_brackets
from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.dips import dip_candidates
from fls.simulate.flow.modes import SlidingWeights, neuron_rows
from fls.simulate.stopping import StopRule

PAIR, MU_LOW, MU_HIGH, STOP = 0, 1, 2, 3


class PieceGuards:
    """All guard functions of one piece, evaluated together on a batch of states, or one at a time.

    ``previous``: the guards of the piece before, whose mode differs in the neurons ``changed`` only (their
    per-pair arrays are taken over and those rows updated in place, O(changed n); it is not used again).
    ``start_outputs``: every sample's output (1, n) at ``start`` under this mode, when known (else formed
    here where the sliding weights' guards need them). ``start_jumps``: () -> the jump factors S (n,) at
    ``start``, from the piece's first field evaluation (:mod:`~simulate.flow.start_jumps`), when the outputs
    are not known: the weight guards' units then come from it, on first use, with no output evaluation.
    """

    def __init__(
        self,
        coords: Coordinates,
        weights: SlidingWeights,
        stop_rule: StopRule | None,
        previous: PieceGuards | None = None,
        changed: list[int] | tuple[int, ...] = (),
        start: Any = None,
        start_outputs: Any = None,
        start_jumps: Callable[[], Any] | None = None,
    ) -> None:
        self.coords, self.weights, self.stop_rule = coords, weights, stop_rule
        mode = weights.mode
        self.n = mode.sliding.shape[1]
        # Columns: all m * n pairs row-major (a sliding pair's column holds the constant 1: no guard), then
        # mu and 1 - mu of the sliding pairs, then the stopping rule's value.
        self.n_pairs, self.n_sliding = mode.sliding.size, len(weights.pair_rows)
        # the piece's start state and its outputs (the stopping value there needs them too; given when the
        # event before carried them, :mod:`~simulate.flow.carried_outputs`), and each sliding pair's jump
        # squared there, the unit of its weight guards (:meth:`weight_guards`)
        self.start, self.start_outputs, self._weight_units = start, start_outputs, 1.0
        self._start_jumps = start_jumps
        if self.n_sliding and start is not None:
            if start_outputs is not None or start_jumps is None:
                if start_outputs is None:
                    self.start_outputs = coords.output(start[None], weights)
                jumps = coords.sample_factors(self.start_outputs)[0][0, weights.pair_cols]
                self._weight_units = np.where(jumps != 0, jumps * jumps, 1.0)
            else:
                self._weight_units = None  # from ``start_jumps`` on first use (:attr:`weight_units`)
        self.sliding_columns = weights.pair_flat  # pair_rows * n + pair_cols, kept across pieces by the weights
        # side_ji / ||x_i|| on every pair (0 on sliding ones): D times this, divided by the row scale, is the guard
        if previous is None:
            self.side_over_x = coords.arith.convert(mode.side.astype(np.float64)) / coords.x_norms
        else:
            # taken over, updated in the changed rows (the previous guards are done with)
            self.side_over_x = previous.side_over_x
            rows = neuron_rows(changed)
            self.side_over_x[rows] = coords.arith.convert(mode.side[rows].astype(np.float64)) / coords.x_norms
        size = self.n_pairs + 2 * self.n_sliding + (stop_rule is not None)
        self.stop_column = size - 1 if stop_rule is not None else None
        if previous is not None and len(previous.roundoff_thresholds) == size:
            self.roundoff_thresholds = previous.roundoff_thresholds  # never written after construction
        else:
            self.roundoff_thresholds = np.full(size, coords.arith.guard_tol)
            if stop_rule is not None:
                self.roundoff_thresholds[-1] = 0.0
        self.thresholds = self.roundoff_thresholds  # per column; grazing columns' are widened (:meth:`graze`)
        # pair columns that start on their surface after a grazing contact: a dip below it at the start of
        # the piece that comes back within the step is the integration's noise, not an exit
        self.grazing: set[int] = set()
        # per neuron, the distance to its nearest surface, kept from step to step and from piece to piece
        # (``polynomial_guards.NeuronMargins``): the changed neurons' are forgotten
        self.margins = None if previous is None else previous.margins
        if self.margins is not None:
            self.margins.forget(list(changed))
        # ||Z_i|| of the coordinates' row map, for the polynomial guards' screen (a constant of the run: formed
        # once, not at every step)
        self.row_map_norms = None if previous is None else previous.row_map_norms

    @property
    def weight_units(self) -> Any:
        """Each sliding pair's jump squared at the piece's start (1 where it is 0): its weight guards' unit."""
        if self._weight_units is None:
            jumps = self._start_jumps()[self.weights.pair_cols]
            self._weight_units = np.where(jumps != 0, jumps * jumps, 1.0)
        return self._weight_units

    def graze(self, depths: dict[int, float]) -> None:
        """Columns whose contact with their surface is below the integration's resolution: each counts as
        crossed only below -depth (the guard's change under a state error the tolerances allow), and a dip
        of it that comes back within the step is not an event."""
        self.grazing.update(depths)
        self.thresholds = self.roundoff_thresholds.copy()
        for col, depth in depths.items():
            self.thresholds[col] = max(self.thresholds[col], depth)

    def kind(self, col: int) -> int:
        """PAIR, MU_LOW, MU_HIGH or STOP: what column ``col`` guards."""
        if col < self.n_pairs:
            return PAIR
        if col < self.n_pairs + 2 * self.n_sliding:
            return MU_LOW if col < self.n_pairs + self.n_sliding else MU_HIGH
        return STOP

    def pair(self, col: int) -> tuple[int, int]:
        """(j, i) of a PAIR column."""
        j, i = divmod(int(col), self.n)
        return j, i

    def stop_value(self, Y: Any) -> Any:
        """The stopping rule's value at one state (<= 0: reached); at the piece's start the outputs are kept for
        the output screen (:mod:`~simulate.flow.output_screen`)."""
        if Y is self.start and self.start_outputs is None:
            self.start_outputs = self.coords.output(Y[None], self.weights)
        f = self.start_outputs if Y is self.start else self.coords.output(Y[None], self.weights)
        return self.stop_rule.value(f, self.coords.y, self.coords.arith)[0]

    def evaluate(self, Ys: Any, one_scale: bool = False) -> Any:
        """Guard values (K, G) at states Ys (K, size), written column block by column block into one array.

        With ``one_scale`` the pair columns are divided by the row scale of the first state Ys[0] instead of
        each state's own: side_ji <w_j, x_i> / (||w_j(t_a)|| ||x_i||), which has the cosine's sign, is the
        step's polynomial in t that the root finder interpolates, and saves a pass over the samples.
        """
        coords = self.coords
        D, amp, _ = coords.parts(Ys)
        G = np.empty((len(Ys), len(self.thresholds)), dtype=D.dtype)
        block = G[:, : self.n_pairs].reshape(D.shape)  # the pair columns, filled as an (m, n) block per state
        if one_scale:
            np.multiply(D, coords.divide_by_row_scale(self.side_over_x.copy(), Ys[0]), out=block)
        else:
            coords.divide_by_row_scale(np.multiply(D, self.side_over_x, out=block), Ys)
        if self.needs_output:
            f = coords.output_of_parts(D, amp, self.weights, overwrite=True)  # D is done with
            G[:, self.n_pairs :] = self.output_guards(f)
            G[:, self.sliding_columns] = 1.0
        return G

    @property
    def needs_output(self) -> bool:
        """Whether some guard depends on the network output (a sliding weight or the stopping rule)."""
        return bool(self.n_sliding) or self.stop_rule is not None

    def output_guards(self, f: Any) -> Any:
        """The guards after the pair columns, from the outputs f (K, n): mu, 1 - mu and the stopping value."""
        coords, S = self.coords, self.n_sliding
        out = np.empty((len(f), len(self.thresholds) - self.n_pairs), dtype=f.dtype)
        if S:
            out[:, :S], out[:, S : 2 * S] = self.weight_guards(*coords.sample_factors(f))
        if self.stop_rule is not None:
            out[:, -1] = self.stop_rule.value(f, coords.y, coords.arith)
        return out

    def column(self, Y: Any, col: int) -> Any:
        """The value of guard ``col`` at one state Y (size,): a pair's costs O(d), the others one output."""
        kind = self.kind(col)
        if kind == PAIR:
            j, i = self.pair(col)
            return int(self.weights.mode.side[j, i]) * self.coords.cosine(Y, j, i)
        if kind == STOP:
            return self.stop_rule.value(self.coords.output(Y, self.weights), self.coords.y, self.coords.arith)
        k = (col - self.n_pairs) % self.n_sliding
        low, high = self.weight_guards(*self.coords.sample_factors(self.coords.output(Y, self.weights)))
        return low[k] if kind == MU_LOW else high[k]

    def weight_guards(self, s: Any, offset: Any = None) -> tuple[Any, Any]:
        """The guards of the sliding weights at sample factors s (..., n): mu (s_i / s_i(t_0))^2 and
        (1 - mu) (s_i / s_i(t_0))^2 (..., number of sliding pairs), t_0 the piece's start.

        They have the signs of mu and 1 - mu and equal them at t_0, but are formed as (z - N_i) s_i and
        (s_i - z + N_i) s_i, products of the state's smooth functions: mu = (z - N_i) / s_i has a pole where
        the jump s_i passes through 0 (merged samples with opposite labels, s = tanh(f / 2) under the
        logistic loss), and a weight that reaches 1 just before the pole has 1 - mu plunge to -inf and come
        back from +inf within one sample interval, both samples positive: the exit was missed and located at
        the pole, 1e-3 later. Without the pole the dip between the samples is a smooth one the dip search
        finds (docs/flow.md, "Robustness"). Every guard of a weight (sampled, polynomial steps, located
        events, grazing depths) is formed here; in one compiled call where :mod:`~simulate.flow.jit` allows
        (:mod:`~simulate.flow.weight_guards_kernel`: the same numbers).
        """
        u, units = self.weights.mu_times_jump(s, offset), self.weight_units
        kernel = jit.kernels("weight_guards_kernel") if s.ndim == 2 and isinstance(units, np.ndarray) else None
        if kernel is not None and s.dtype == units.dtype == np.float64:  # one compiled call, the same numbers
            return kernel.weight_guards(u, s, self.weights.pair_cols, units)
        jump = s[..., self.weights.pair_cols]
        return u * jump / units, (jump - u) * jump / units

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


def _hump(step: StepGuards, col: int, a: Any, b: Any, xtol: float) -> tuple[Any, Any] | None:
    """(time, value) of the positive maximum of guard ``col`` on [a, b], or None when it is nowhere positive.

    A guard that starts on its surface and is below it at the next sample either left the wrong way (the
    piece's mode is wrong for it) or rose and came back within one sample interval: a pair that crosses onto
    the inactive side with a small rate and is turned back at once (it then enters sliding). The second is a
    genuine event inside [a, b], bracketed by the hump's top and b; reporting it at a would repeat the same
    event forever.
    """
    found = minimize_scalar(
        lambda t: -float(step.column(t, col)),
        bounds=(float(a), float(b)),
        method="bounded",
        options={"xatol": xtol},
    )
    if not -found.fun > 0:
        return None
    return found.x, -found.fun


def crossings(G: Any, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(columns, crossed, wrong_way) over the sample intervals of one step.

    columns: the guards that are <= -threshold at some sample after the first (the only ones that can have
    crossed); crossed and wrong_way are (K - 1, len(columns)). crossed: the guard is <= -threshold at the
    interval's end and was > 0 at its start or at an earlier sample of the step (the samples between in
    (-threshold, 0]: a grazing column's threshold is its depth, and a guard on its way below it passes there;
    counting only intervals from > 0 to <= -threshold missed it, the next step started below 0 and a weight
    stayed sliding far past its bound; docs/flow.md, "Robustness"). wrong_way: a guard that starts the step at or below 0 goes to <= -threshold before it is
    positive: it started on its surface at an event and the piece's mode was wrong for it, or it drifted
    through 0 in earlier steps too short to take it below -threshold in one (an event at the step's start,
    where it is within the touching tolerance; or the stop guard, whose threshold is 0, at or below 0 at every
    sample of a step that the exact state at its start put above 0: the target is met there to roundoff).
    ``thresholds`` are per column of G. One compiled call where :mod:`~simulate.flow.jit` allows (the same).
    """
    Gf = np.asarray(G, dtype=np.float64)
    if (kernel := jit.kernels("crossings_kernel")) is not None:
        return kernel.crossings(Gf, thresholds)
    columns = (Gf[1:].min(axis=0) <= -thresholds).nonzero()[0]
    sub, thresholds = Gf[:, columns], thresholds[columns]
    below = sub[1:] <= -thresholds
    positive = sub > 0
    seen = np.logical_or.accumulate(positive, axis=0)[:-1]  # > 0 at some sample up to the interval's start
    return columns, seen & below, ~seen & below


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
        self.thresholds = guards.thresholds  # the crossing thresholds of G's columns (here every guard, in order)
        self._last: tuple[Any, Any] | None = None
        if Ys is not None:
            K = len(ts) - 1
            self.bary_list = [(-1.0) ** k * math.comb(K, k) for k in range(K + 1)]
            self.ts_list = [float(t) for t in ts]
            self.pair_samples: dict[int, list[float]] = {}

    #: The piece's guard index of each of G's columns, or None when G holds every guard (in order).
    value_columns: np.ndarray | None = None

    def event(self, t: Any, col: int, values: np.ndarray) -> tuple[Any, int, np.ndarray]:
        """(t, the piece's guard index, the guards of :attr:`value_columns` at t) from G's column and values
        there."""
        return t, col, values

    def outputs_at(self, t: Any) -> Any:
        """Every sample's network output at time t when the guards computed it there, else None."""
        return None

    def piece_column(self, col: int) -> int:
        """The piece's guard index of G's column ``col``."""
        return col

    def has_polynomial(self, col: int) -> bool:
        return self.Ys is not None and self.guards.kind(col) == PAIR

    def root(self, col: int, a: Any, b: Any, ga: Any, gb: Any, xtol: float) -> Any:
        """Column ``col``'s crossing in [a, b] (ga > 0 >= gb) to ``xtol``, on the side not crossed (Illinois).

        A pair's interpolant can put a guard that the sampled G has at +1e-17 at or below 0 at a (the two
        round differently): it has crossed at a, not anywhere later. Regula falsi on a bracket without a sign
        change would walk to b and report a pair that left its surface the wrong way one sample interval late
        (RK45, m = 1: 0.018 time units on the wrong side; docs/flow.md, "Robustness").
        """

        def value(t: Any) -> Any:
            return self.column(t, col)

        if self.has_polynomial(col):  # the interpolant's own end values, for a consistent regula falsi
            ga, gb = value(a), value(b)
            if not ga > 0:
                return a
        return illinois(value, a, b, ga, gb, xtol)

    def _pair_polynomial(self, col: int, t: float) -> float:
        """Pair guard ``col`` at time t from its samples, by the barycentric formula (plain floats: this runs
        inside the root finder, about ten times per event)."""
        if col not in self.pair_samples:
            g = self.guards
            j, i = g.pair(col)
            pre, scale = g.coords.pair_preactivations(self.Ys, j, i)
            self.pair_samples[col] = (float(g.weights.mode.side[j, i]) * pre / float(scale)).tolist()
        values = self.pair_samples[col]
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

    def values(self, t: Any) -> np.ndarray:
        """The guards of G's columns at time t (float64)."""
        return np.asarray(self.guards.evaluate(self.state(t)[None])[0], dtype=np.float64)


def _estimate(a: Any, b: Any, ga: Any, gb: Any) -> float:
    """The linear-interpolation estimate of a guard's crossing time in its bracket [a, b] (ga > 0 >= gb)."""
    a, b, ga, gb = float(a), float(b), float(ga), float(gb)
    return a + (b - a) * ga / (ga - gb)


def first_event(
    step: StepGuards, xtol: float, refine_dips: bool = True
) -> tuple[Any, int, np.ndarray] | None:
    """(time, guard index, all the piece's guards there) of the earliest guard crossing in the step, or None.

    Works on the step's sampled columns G (all guards, or those that can change sign in the step) and maps
    the result back with ``step.event``. Crossings are located to ``xtol`` (absolute time). Root finding is
    spent only where it decides the answer: the bracket whose linear-interpolation estimate is earliest is
    located first, then only guards already crossed at that time (one evaluation of all guards there) are
    located, inside [their bracket start, time].
    """
    ts, G = step.ts, step.G
    thresholds = step.thresholds
    Gf = np.asarray(G, dtype=np.float64)
    columns, crossed, wrong_way = crossings(Gf, thresholds)
    brackets = {}  # column -> (a, b, guard at a, guard at b) with the guard > 0 at a and crossed at b
    # A dip within a grazing contact's depth that comes back is no event (one that starts beyond it has
    # crossed), and it hides no other guard's crossing in the step (docs/flow.md, "Repeated and collinear").
    wrong = wrong_way.any(axis=0).nonzero()[0].tolist() if wrong_way.any() else []  # the common step: none
    for w in wrong:
        col, k = columns[w], int(wrong_way[:, w].argmax())
        grazing = step.piece_column(col) in step.guards.grazing and Gf[0, col] > -thresholds[col]
        if grazing and np.any(Gf[k + 1 :, col] > 0):
            wrong_way[:, w], crossed[k:, w] = False, False
    if wrong and wrong_way.any():  # a guard that starts on its surface is below it at the next sample
        k = int(wrong_way.any(axis=1).nonzero()[0][0])
        if not crossed[:k].any():
            for col in columns[np.flatnonzero(wrong_way[k])].tolist():
                hump = _hump(step, col, ts[k], ts[k + 1], xtol)
                if hump is None:  # it left the wrong way: an event at the last sample before
                    return step.event(ts[k], col, Gf[k])
                brackets[col] = (hump[0], ts[k + 1], hump[1], G[k + 1, col])
        crossed[k + 1 :] = False  # another guard's crossing inside interval k may come before the hump's
    tf = np.asarray(ts, dtype=np.float64)
    # each crossed column's first crossed interval, where it was last > 0 before it, and its crossing's estimate
    crossed_columns, ks, begins, crossed_estimates = crossed_brackets(Gf, tf, columns, crossed)
    times = list(ts)  # in the arithmetic's own type, as G's entries
    crossed_list, firsts = crossed_columns.tolist(), ks.tolist()
    brackets.update(
        zip(
            crossed_list,
            zip(
                [times[k] for k in begins.tolist()],
                [times[k + 1] for k in firsts],
                G[begins, crossed_columns],
                G[ks + 1, crossed_columns],
            ),
        )
    )
    if refine_dips:
        crossed_by = min(firsts) + 1 if firsts else len(ts) - 1
        for a, b, col in dip_candidates(tf, Gf, crossed_by):
            if col in brackets:
                continue
            found = minimize_scalar(
                lambda t, col=col: float(step.column(t, col)),
                bounds=(tf[a], tf[b]),
                method="bounded",
                options={"xatol": xtol},
            )
            if found.fun <= -thresholds[col]:
                brackets[col] = (ts[a], found.x, G[a, col], found.fun)
    if not brackets:
        return None
    if len(brackets) == 1:  # one crossing (the common case): no other guard can cross before it, no estimates
        ((col, bracket),) = brackets.items()
        t_event = step.root(col, *bracket, xtol)
        return step.event(t_event, col, step.values(t_event))

    # the crossed columns' estimates (the same operations as _estimate's, on all of them at once), then the
    # humps' and dips'
    estimates = dict(zip(crossed_list, crossed_estimates.tolist()))
    estimates.update({c: _estimate(*bracket) for c, bracket in brackets.items() if c not in estimates})
    estimate = estimates.__getitem__  # column -> the linear-interpolation estimate of its crossing time
    keys = np.array(list(brackets), dtype=np.int64)  # the bracketed columns, in order, and where they start
    starts = np.array([float(bracket[0]) for bracket in brackets.values()])

    col = min(brackets, key=estimate)
    best = (step.root(col, *brackets[col], xtol), col)
    done = {col}
    while True:
        at_best = step.values(best[0])
        crossed_there = (at_best[keys] <= -thresholds[keys]) & (starts < float(best[0]))
        earlier = [c for c in keys[crossed_there].tolist() if c not in done]
        if not earlier:
            return step.event(best[0], best[1], at_best)
        col = min(earlier, key=estimate)
        done.add(col)
        a, _, ga, _ = brackets[col]
        best = (step.root(col, a, best[0], ga, step.column(best[0], col), xtol), col)
