"""The guards along one step, computed from the step's polynomial dense output instead of sampled states.

An explicit Runge–Kutta step from t_a with size h has the dense output y(t_a + theta h) = sum_k C_k theta^k,
k = 0 .. p (p = 3 for RK23, 4 for RK45; C_0 = y(t_a)). In plain and data-span coordinates (pre-activations
and output amplitudes affine in the state) every guard of the piece follows from the coefficients C without
forming a single intermediate state:

- the pair guards g_ji(theta) = side_ji <w_j(theta), x_i> / (||w_j(t_a)|| ||x_i||) are polynomials of degree
  p whose coefficients come from the rows' (``Coordinates.row_polynomials``); at theta = 0 this is exactly
  cos angle(w_j, x_i), and it has the cosine's sign throughout;
- the output f_i(theta) = c sum_j v_j(theta) 1[j,i active] <w_j(theta), x_i> is a polynomial of degree 2p
  (a product of two polynomials of degree p), so the sliding weights mu and the stopping value follow at any
  theta from n numbers per power. In log coordinates (:mod:`simulate.flow.logcoords`) the pre-activations
  <u_j, x_i> of the unnormalized directions are still polynomials of degree p, but the amplitude
  sign_j exp(2 rho_j) / ||u_j|| is not: it is evaluated at each sample time (O(m d), no product with X) and
  the output is f_i = c sum_j 1[j,i active] <amp_j(theta) u_j(theta), x_i>, summed over the neurons before
  the product with X (one (n, m) by (m, K d) matrix product for all K sample times, no (m, n) array).

A pair guard can change sign within the step only if |g_ji(0)| <= sum_{k>=1} |g_ji,k| (its polynomial's
largest possible excursion on [0, 1]), or if it starts below 0 by less than its crossing threshold; the others keep
their sign and stay off their surfaces, so they are not sampled at all (an event does not report them).
g(0) is formed only for the neurons whose distance to their nearest surface, kept from step to step (:class:`NeuronMargins`), may be covered by their motion since, and the
higher coefficients only for the pairs of those that pass a Cauchy-Schwarz screen (:func:`_movable_pairs`), so
a step's pair guards cost O(p m row) plus the neurons near a surface instead of p + 1 products of the field.
The remaining candidates are
scaled and evaluated at the sample times, and a crossing is located by safeguarded Newton on p + 1 numbers.
Exactness: the coefficients are exact products of the dense output's, so the guards agree with the
sampled-state guards of :class:`simulate.flow.events.StepGuards` to rounding (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from fls.simulate.flow import jit
from fls.simulate.flow.events import PieceGuards, StepGuards, illinois
from fls.simulate.flow.output_screen import bound_norms, output_guards_stay_off, screens
from fls.simulate.flow.pair_test import every_pair_test, past_surface


@cache
def _product_powers(powers: int) -> np.ndarray:
    """The (2 powers - 1, powers^2) 0/1 matrix that sums the products a_a b_b of two polynomials' coefficients
    (flattened b-major) into the coefficients of the product polynomial (power a + b)."""
    a, b = np.meshgrid(np.arange(powers), np.arange(powers))
    return (np.arange(2 * powers - 1)[:, None] == (a + b).reshape(-1)).astype(np.float64)


def _vandermonde(fractions: np.ndarray, powers: int) -> np.ndarray:
    """fractions[k] ** p, p < powers (kept per distinct fractions: a piece integrator always passes the same)."""
    key = (fractions.tobytes(), powers)
    if key not in _VANDERMONDE:
        _VANDERMONDE[key] = fractions[:, None] ** np.arange(powers)
    return _VANDERMONDE[key]


_VANDERMONDE: dict[tuple[bytes, int], np.ndarray] = {}


def _horner(coefficients: list[float], theta: float) -> tuple[float, float]:
    """(value, derivative) at theta of the polynomial with ``coefficients``, highest power first."""
    value = slope = 0.0
    for coefficient in coefficients:
        slope = slope * theta + value
        value = value * theta + coefficient
    return value, slope


def newton_root(coefficients: list[float], lo: float, hi: float, tol: float) -> tuple[bool, float]:
    """(crossed at lo, theta): the crossing in [lo, hi] of the polynomial with ``coefficients`` (highest power
    first; > 0 at lo, <= 0 at hi) to ``tol``, on the side not crossed.

    Safeguarded Newton (Horner's rule for the value and the derivative; bisection when a step leaves the
    bracket), then the bracket is closed to tol around the converged point; theta is the bracket's lower end,
    or a point where the polynomial is exactly 0. Where the polynomial is not > 0 at lo (crossed there already
    by its roundoff, see ``StepGuards.root``), the first entry is True.
    """
    g_lo, g_hi = _horner(coefficients, lo)[0], _horner(coefficients, hi)[0]
    if not g_lo > 0:
        return True, lo
    theta = lo + (hi - lo) * g_lo / (g_lo - g_hi) if g_lo != g_hi else (lo + hi) / 2
    for _ in range(100):
        if hi - lo <= tol:
            break
        g, slope = _horner(coefficients, theta)
        if g == 0:
            return False, theta
        if g > 0:
            lo = theta
        else:
            hi = theta
        newton = theta - g / slope if slope != 0 else lo - 1.0
        if not lo < newton < hi:
            newton = (lo + hi) / 2
        if abs(newton - theta) <= tol / 4:  # converged: close the bracket around the point
            left, right = max(lo, newton - tol / 4), min(hi, newton + tol / 4)
            if _horner(coefficients, left)[0] > 0:
                lo = left
            if _horner(coefficients, right)[0] <= 0:
                hi = right
            theta = (lo + hi) / 2
        else:
            theta = newton
    return False, lo


#: Relative slack of the screen of :func:`_movable_pairs` (the bound ||R_k,j|| ||Z_i|| is rounded, as is the
#: exact reach it bounds): far above roundoff, far below any margin that matters for the cost.
SCREEN_SLACK = 1e-9
#: Pairs (m n) from which the step guards keep :class:`NeuronMargins`: their bookkeeping costs about a dozen
#: numpy calls per step (~0.1 ms), what five passes over some 20 000 pairs cost; below, every neuron's D(0)
#: is formed (measured: at m = 100 on low_signal the margins cost 0.3 ms per step more than they saved).
MARGIN_MIN_PAIRS = 20_000


class NeuronMargins:
    """Per neuron, how far its row is from its nearest non-sliding surface, kept from step to step so that a
    step forms D(0) only for the neurons that may reach a surface (docs/flow.md, "Cost").

    ``margin[j]`` = min_i |D_ji| / ||Z_i|| over the neuron's non-sliding pairs at the step where it was last
    formed, and ``moved[j]`` bounds ||R_j(now) - R_j(then)|| by the sum of the steps' excursion bounds
    sum_k ||R_k,j|| since (each step's whole [0, 1], which covers a step cut short at an event). Since
    |D_ji(now)| >= |D_ji(then)| - moved_j ||Z_i||, a neuron with margin_j > moved_j + (this step's excursion)
    has no pair that the full test |D_ji(0)| <= sum_k |D_k,ji| keeps. Valid while each step starts within the
    step before it (a piece's next step, or the next piece at an event of the last one): another start (a
    run's first step, steps the margins did not see) forgets every margin, and so does an event for the
    neurons it projects or whose sliding set it changes (:meth:`forget`, from ``PieceGuards``).
    """

    def __init__(self, m: int) -> None:
        self.margin = np.full(m, -np.inf)
        self.moved = np.zeros(m)
        self.window: tuple[float, float] | None = None  # the last step seen, [t_a, t_a + h]

    def forget(self, neurons: Any) -> None:
        """Rows that moved other than along a step (an event's projection) or whose sliding set changed."""
        self.margin[neurons] = -np.inf

    def stale(self, movement: np.ndarray, t_a: float) -> np.ndarray:
        """The neurons (sorted) that may reach a surface in the step from t_a with excursion bounds
        ``movement`` (m,)."""
        if self.window is None or not self.window[0] <= t_a <= self.window[1]:
            self.margin[:] = -np.inf
        return np.flatnonzero((self.moved + movement) * (1 + SCREEN_SLACK) >= self.margin)

    def advance(self, neurons: np.ndarray, margins: np.ndarray, movement: np.ndarray, t_a: float, h: float):
        """The step from t_a of size h is taken: ``neurons`` were measured at its start (their ``margins``),
        every neuron moves by at most ``movement``."""
        self.margin[neurons] = margins
        self.moved[neurons] = 0.0
        self.moved += movement
        self.window = (t_a, t_a + h)


def _movable_pairs(
    coords: Any,
    guards: PieceGuards,
    rows: Any,
    row_sizes: np.ndarray | None,
    amp0: Any,
    t_a: float,
    h: float,
    every_pair: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, their guard polynomials (p + 1, columns)) of the non-sliding pairs that can change sign in
    the step: |D_ji(0)| <= sum_{k >= 1} |D_k,ji|, their polynomial's largest excursion on [0, 1]; and those
    whose guard starts the step below 0 by less than its crossing threshold (an event's projection left
    them past their surface by roundoff), which :func:`~simulate.flow.events.crossings` reports once
    they reach the threshold however slowly they drift (docs/flow.md, "Robustness", "Drift past a surface").

    The neurons whose margins (:class:`NeuronMargins`, from :data:`MARGIN_MIN_PAIRS` pairs) exceed their
    excursion bound cannot have such a pair and are skipped (O(p m row) for the bounds, O(m) for the test);
    D(0) is formed for the others only, their
    pairs are screened by Cauchy-Schwarz, |D_k,ji| = |<R_k,j, Z_i>| <= ||R_k,j|| ||Z_i||, and only the pairs
    that pass get their p coefficients (O(p row) each). The columns kept are exactly those of the full test
    (the screens only drop pairs the full test drops). ``every_pair``: the coefficients D_k of every pair
    (p + 1, m, n) when the caller has formed them anyway (for the output guards): D(0) and the candidates'
    higher coefficients are then read from them, not formed a second time (docs/flow.md, "Cost"), and below
    :data:`MARGIN_MIN_PAIRS` pairs the full test runs on them without the screens
    (:func:`~simulate.flow.pair_test.every_pair_test`: the same columns and coefficients).
    ``row_sizes``: ||R_k,j|| (p + 1, m), :func:`~simulate.flow.output_screen.bound_norms` of ``rows``, when
    the caller has formed them (the sliding weights' screen reads them too).
    """
    n = coords.n
    if every_pair is not None and coords.m * n < MARGIN_MIN_PAIRS:  # the screens would cost more than they skip
        return every_pair_test(coords, guards, rows, amp0, every_pair)
    if row_sizes is None:
        row_sizes = bound_norms(rows)
    movement = row_sizes[1:].sum(axis=0) * (1 + SCREEN_SLACK)  # (m,)
    margins = len(movement) * n >= MARGIN_MIN_PAIRS
    if margins and guards.margins is None:
        guards.margins = NeuronMargins(len(movement))
    neurons = guards.margins.stale(movement, t_a) if margins else np.arange(len(movement))
    select = slice(None) if len(neurons) == len(movement) else neurons  # all of them: views, not copies
    Z = coords.row_map
    if every_pair is None:
        pre0 = coords.start_preactivations(rows[0], select)  # (k, n)
    else:
        pre0 = every_pair[0][select]
    if guards.row_map_norms is None:
        guards.row_map_norms = coords.arith.row_norms(Z.T)
    reach = np.abs(pre0) / guards.row_map_norms
    if isinstance(select, slice):  # every neuron: the sliding pairs' flat columns, kept by the piece's guards
        reach.reshape(-1)[guards.sliding_columns] = np.inf
    else:
        reach[guards.weights.mode.sliding[select]] = np.inf
    norms = coords.start_scale(rows[0], amp0, pre0, select)  # (k,)
    # a pair past its surface by less than its crossing threshold (an event's projection left it there by
    # roundoff) can drift on through it in steps that each move it less than it is past: always sampled, and
    # its neuron's margin is 0 (measured at every step)
    reach[past_surface(guards, pre0, norms, select, neurons, n)] = 0.0
    if margins:
        guards.margins.advance(neurons, reach.min(axis=1, initial=np.inf), movement, t_a, h)
    r, i = np.divmod((reach <= movement[select][:, None]).ravel().nonzero()[0], n)  # flat: cheaper than 2-d nonzero
    j = neurons[r]
    if every_pair is None:
        higher = np.einsum("kcr,rc->kc", rows[1:, j], Z[:, i])  # (p, columns)
    else:
        higher = every_pair[1:, j, i]
    start = pre0[r, i]
    keep = (np.abs(start) <= np.abs(higher).sum(axis=0)) | (reach[r, i] == 0)  # reach 0: D(0) = 0 or past
    r, i, j = r[keep], i[keep], j[keep]
    columns = j * n + i
    factor = guards.side_over_x.reshape(-1)[columns] / norms[r]
    return columns, np.concatenate([start[keep][None], higher[:, keep]]) * factor


def _sum_neurons_first(powers: int, samples: int, d: int) -> bool:
    """Whether the outputs along a log-coordinate step are cheaper summed over the neurons first (K d flops per
    pair and step, :meth:`~simulate.flow.logcoords.LogCoordinates.step_outputs`) than from the active pairs'
    coefficients ((p + 1) (d + K) per pair: forming them, then K products): for small d (the stall data, d = 3)
    the first, for d >= 10 (low_signal, d = 100) the second."""
    return samples * d < powers * (d + samples)


class PolynomialStepGuards(StepGuards):
    """The guards of ``guards`` along one step with power-basis dense output ``coefficients`` (p + 1, size).

    What :func:`simulate.flow.events.first_event` needs, as in :class:`~simulate.flow.events.StepGuards`, but
    G's columns are only the guards that can change sign (the movable pairs, then every guard after the pair
    columns: mu, 1 - mu, the stopping value), all computed from the coefficients; ``event`` maps a column of
    G back to the piece's guard index.
    """

    def __init__(
        self,
        guards: PieceGuards,
        t_a: float,
        h: float,
        fractions: np.ndarray,
        coefficients: np.ndarray,
        state_at: Callable[[Any], Any],
    ) -> None:
        coords = guards.coords
        n = coords.n
        powers = len(coefficients)
        self.t_a, self.h, self.guards = t_a, h, guards
        self._reversed: dict[int, list[float]] = {}  # a located column's coefficients, highest power first

        rows, amp, amp0 = coords.row_blocks(coefficients)
        # ||R_k,j||, for the pairs' screen and the weights' where the weights' applies (docs/flow.md "Cost")
        row_sizes = bound_norms(rows) if screens(coords) else None
        # the output guards (none in a step where no output guard can reach its surface: :mod:`output_screen`)
        needs_output = guards.needs_output and not output_guards_stay_off(guards, coefficients, t_a, h, row_sizes)
        # the output guards need every pair's coefficients when amp is a polynomial, or when d is large
        every_pair = needs_output and (
            amp is not None or not _sum_neurons_first(powers, len(fractions), coords.d)
        )
        pre = None  # every pair's coefficients (p + 1, m, n), when formed: the movable pairs read theirs from it
        if every_pair:
            pre = coords.all_coefficients(rows, coords.start_preactivations(rows[0], slice(None)))
        self.candidates, self.pair_coefficients = _movable_pairs(coords, guards, rows, row_sizes, amp0, t_a, h, pre)
        self.n_candidates = len(self.candidates)

        self.output_coefficients = self.coefficients = self.active_pre = None
        if (
            needs_output and amp is not None
        ):  # f(theta) = c sum_{a, b} theta^(a + b) amp_a @ (active . pre_b)
            products = amp @ (guards.weights.active * pre)  # (b, a, n) = amp_a @ (...)_b
            F = coords.c * (_product_powers(powers) @ products.reshape(-1, n))
            self.output_coefficients = coords.samples.outputs(F)  # every sample's (linear in F)
        elif needs_output:  # an amplitude that is no polynomial (log coordinates): per sample time
            self.coefficients = coefficients
            if every_pair:  # f from the pairs' coefficients
                self.active_pre = guards.weights.active * pre

        vandermonde = _vandermonde(fractions, 2 * powers - 1)
        outputs = len(guards.thresholds) - guards.n_pairs if needs_output else 0  # the columns after the pairs
        G = np.empty((len(fractions), self.n_candidates + outputs))
        G[:, : self.n_candidates] = vandermonde[:, :powers] @ self.pair_coefficients
        if self.output_coefficients is not None:
            G[:, self.n_candidates :] = guards.output_guards(vandermonde @ self.output_coefficients)
        elif self.coefficients is not None:
            G[:, self.n_candidates :] = guards.output_guards(self._outputs_along(fractions))
        ts = t_a + h * fractions
        ts[-1] = t_a + h
        super().__init__(guards, ts, G, state_at)
        # the piece's guard index of each column of G
        self.columns = np.concatenate([self.candidates, np.arange(guards.n_pairs, guards.n_pairs + outputs)])
        self.thresholds = guards.thresholds[self.columns]
        # an event reports G's columns only: a pair that cannot change sign in the step is on no surface (no
        # array of all m n pairs per event, docs/flow.md "Cost")
        self.value_columns = self.columns
        self._known_outputs: tuple[float, np.ndarray] | None = None  # (theta, every sample's output there)

    def event(self, t: Any, col: int, values: np.ndarray) -> tuple[Any, int, np.ndarray]:
        """(t, the piece's guard index, G's columns at t)."""
        return t, int(self.columns[col]), values

    def outputs_at(self, t: Any) -> np.ndarray | None:
        """Every sample's network output at time t when the output guards were last evaluated there (the event's
        time, by :meth:`values`), else None."""
        known = self._known_outputs
        return known[1] if known is not None and known[0] == self._theta(t) else None

    def piece_column(self, col: int) -> int:
        return int(self.columns[col])

    def has_polynomial(self, col: int) -> bool:
        return col < self.n_candidates

    def root(self, col: int, a: float, b: float, ga: float, gb: float, xtol: float) -> float:
        """Column ``col``'s crossing in [a, b] (ga > 0 >= gb) to ``xtol``, on the side not crossed.

        A movable pair's guard is a polynomial of degree p in theta: safeguarded Newton (:func:`newton_root`),
        in one compiled call where :mod:`~simulate.flow.jit` allows (:mod:`~simulate.flow.root_kernel`: the
        same floating-point operations, so the same root bit for bit). The output columns go to regula falsi
        (:func:`illinois`).
        """
        if col >= self.n_candidates:
            return illinois(lambda t: self.column(t, col), a, b, ga, gb, xtol)
        lo, hi, tol = self._theta(a), self._theta(b), xtol / self.h
        if (kernel := jit.kernels("root_kernel")) is not None:
            crossed_at_a, theta = kernel.newton_root(self.pair_coefficients, col, lo, hi, tol)
        else:
            crossed_at_a, theta = newton_root(self._highest_first(col), lo, hi, tol)
        return a if crossed_at_a else self.t_a + theta * self.h

    def _highest_first(self, col: int) -> list[float]:
        """A movable pair's coefficients, highest power first (kept: a located column is evaluated often)."""
        coefficients = self._reversed.get(col)
        if coefficients is None:
            coefficients = self._reversed[col] = self.pair_coefficients[::-1, col].tolist()
        return coefficients

    def _theta(self, t: Any) -> float:
        return (float(t) - self.t_a) / self.h

    def _outputs_along(self, thetas: np.ndarray) -> np.ndarray:
        """Every sample's output (K, n) at ``thetas`` when the amplitude is no polynomial (log coordinates): from
        the amplitudes (K, m) and the active pairs' coefficients, f = c sum_k theta^k amp(theta) @ (active .
        pre_k), O(K p m n) in one product; or, without those coefficients, summed over the neurons first
        (:meth:`~simulate.flow.logcoords.LogCoordinates.step_outputs`)."""
        coords = self.guards.coords
        if self.active_pre is None:
            return coords.samples.outputs(
                coords.step_outputs(self.coefficients, thetas, self.guards.weights.active)
            )
        amplitudes = coords.step_amplitudes(self.coefficients, thetas)  # (K, m)
        by_power = amplitudes @ self.active_pre  # (p + 1, K, n)
        powers = thetas[:, None] ** np.arange(len(self.active_pre))  # (K, p + 1)
        return coords.samples.outputs(coords.c * np.einsum("pkn,kp->kn", by_power, powers))

    def _outputs(self, theta: float) -> np.ndarray:
        """The guards after the movable pairs at theta (mu, 1 - mu, stopping value)."""
        if self.output_coefficients is not None:
            f = (theta ** np.arange(len(self.output_coefficients))) @ self.output_coefficients
        elif self.coefficients is not None:
            f = self._outputs_along(np.array([theta]))[0]
        else:
            return np.empty(0)
        self._known_outputs = (theta, f)
        return self.guards.output_guards(f[None])[0]

    def column(self, t: Any, col: int) -> float:
        """Column ``col`` of G at time t in the step (a pair's by Horner's rule on its p + 1 coefficients)."""
        theta = self._theta(t)
        if col >= self.n_candidates:
            return float(self._outputs(theta)[col - self.n_candidates])
        return _horner(self._highest_first(col), theta)[0]

    def values(self, t: Any) -> np.ndarray:
        """G's columns at time t."""
        theta = self._theta(t)
        pairs = (theta ** np.arange(len(self.pair_coefficients))) @ self.pair_coefficients
        return np.concatenate([pairs, self._outputs(theta)])
