"""Modes of the piecewise-smooth flow: activation pattern, sliding set, Filippov weights mu, mode selection.

Neuron j's field is w_j' = (c/n) v_j X^T q_j with q_ji = s_i * gate_ji, and the gates are fixed on each piece:

- ``active`` pairs (<w_j, x_i> > 0): gate 1;
- inactive pairs (<w_j, x_i> < 0): gate 0;
- ``sliding`` pairs (<w_j, x_i> = 0 held): gate mu_ji in [0, 1], chosen so that the motion stays on every
  surface of the sliding set S: <w_j', x_i> = 0 for i in S. With K = X X^T this is the linear system

      K_SS z = -K_{S,A} s_A,      z_i = s_i mu_i,                                            (1)

  so z = M_j s with M_j = -K_SS^+ K_{S,:} diag(1_A) fixed on the piece (:class:`SlidingWeights`). K_SS is
  singular when sliding samples repeat or are collinear (one surface, held twice); the pseudo-inverse gives
  the minimal-norm z, which keeps the motion tangent all the same and splits a repeated sample's weight evenly.

At an event the next mode of a neuron touching surfaces T (all pairs with <w_j, x_i> = 0 there) comes from the
minimal-norm element of the Clarke subdifferential, one box-constrained least-squares problem per neuron:

      mu* = argmin_{mu in [0, 1]^T} || X^T (s . 1_A) + sum_{i in T} mu_i s_i x_i ||^2.          (2)

Its KKT conditions are exactly the Filippov one-sided rules for the pairs whose jump points into the surface
from both sides (sign(v_j) s_i < 0, "attracting"): mu_i interior -> slide (tangent motion), mu_i = 1 -> leave
to the active side, mu_i = 0 -> leave to the inactive side. Pairs whose jump points away (sign(v_j) s_i >= 0)
cannot slide stably; they cross, to the side where the one-sided field points (:func:`select_neuron_mode`),
unless they slide already: a sliding pair whose surface has turned repelling stays in (2) and keeps sliding
while its tangent weight is in [0, 1] (a Filippov solution, and the one that does not depend on the sign of
a tangent rate that is zero to roundoff; docs/flow.md, "Robustness"); at a bound of its weight both one-sided
rates point to the other bound's side, which it takes (:func:`bound_side`).
So do pairs whose jump |s_i| ||x_i||^2 is below roundoff of the rates (a sample fitted to s_i ~ 1e-30): they
cannot slide either, and in (2) their column would be zero to the solver, which then picks either bound; and
pairs whose jump is below the error that the sample factors' own precision puts on the rates (a squared loss
fitted to roundoff, :mod:`simulate.flow.roundoff`): the data do not fix their weights within [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear

from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.tangent_rates import rate_resolution, rate_scale, resolved

#: A touching pair with a hint (it left sliding through mu = 0 or 1) takes the hinted side when the
#: least-squares weight (2) is within this distance of the hinted bound (the weight is located there to
#: ~1e-14), or within the weight's resolution, whichever is larger (:func:`weight_resolution`).
HINT_TOL = 1e-9
#: Weights (2) within this distance of 0 or 1 count as on the bound (bvls solves (2) to a few roundoffs).
BOUND_TOL = 1e-13
#: A touching pair can slide only if its jump |s_i| ||x_i||^2 exceeds this fraction of the largest rate its
#: neuron's field can give it, ||x_i|| sum_k |s_k| ||x_k|| (~4500 roundoffs of that sum): below it, the sign
#: of the rate on either side is the same to the precision the rates are computed with.
JUMP_TOL = 1e-12

ACTIVE, SLIDING, INACTIVE = 1, 0, -1


@dataclass(frozen=True)
class Mode:
    """The discrete state of one piece: boolean (m, n) arrays ``active`` and ``sliding`` (never both true)."""

    active: np.ndarray
    sliding: np.ndarray

    @cached_property
    def side(self) -> np.ndarray:
        """+1 on active pairs, 0 on sliding pairs, -1 on inactive ones, shape (m, n)."""
        return np.where(self.active, ACTIVE, np.where(self.sliding, SLIDING, INACTIVE)).astype(np.int8)

    @classmethod
    def of_sides(cls, side: np.ndarray) -> Mode:
        """The mode with the sides ``side`` (m, n) of ACTIVE / SLIDING / INACTIVE (kept as its ``side``)."""
        mode = cls(side == ACTIVE, side == SLIDING)
        mode.__dict__["side"] = side
        return mode

    def update_rows(self, rows: dict[int, np.ndarray]) -> None:
        """Neuron j's sides replaced by ``rows[j]`` in place, O(n) per row: the next piece's mode, where the
        run keeps no earlier mode but the rows an event changed (docs/flow.md, "Cost")."""
        sides = self.side
        for j, side in rows.items():
            self.active[j], self.sliding[j], sides[j] = side == ACTIVE, side == SLIDING, side

    def with_rows(self, rows: dict[int, np.ndarray]) -> Mode:
        """A copy with neuron j's sides replaced by ``rows[j]`` (arrays of ACTIVE / SLIDING / INACTIVE)."""
        mode = Mode.of_sides(self.side.copy())
        mode.update_rows(rows)
        return mode


def neuron_rows(neurons: list[int] | tuple[int, ...]) -> slice | list[int]:
    """An index of the rows ``neurons`` of a per-neuron array (m, ...) that keeps the neuron axis: a slice for
    one neuron (the common event: its rows read as a view and written without an index array), else the list
    (one fancy index for all of them, not a loop over them; docs/flow.md, "Cost")."""
    if len(neurons) == 1:
        j = int(neurons[0])
        return slice(j, j + 1)
    return list(neurons)


class SlidingWeights:
    """The weighted gates q of one piece as a linear map of the sample factors, by equation (1).

    q_ji = s_i on active pairs, 0 on inactive ones and z_i on sliding ones, plus the offset N_i on every
    non-sliding pair when merged samples include opposite ones (:mod:`simulate.flow.samples`; the sliding z
    then solves (1) with the offsets on the right-hand side, a second linear map). Built once per piece in
    the piece's arithmetic (the Gram matrix and the solves are exact to its precision). ``cache`` (a dict
    kept across pieces) reuses a neuron's maps while its sliding set and active pairs are unchanged: an
    event changes the mode of the touched neurons only. ``previous``: the weights of the piece before, whose
    mode differs from ``mode`` in the rows ``changed`` only; its arrays are taken over and updated in those
    rows in place, O(changed n) (it is not used again), and its whole map serves when no changed neuron
    slides, before or after; else only the changed neurons' rows of the map are looked up again
    (:attr:`neuron_maps`, docs/flow.md "Cost").
    """

    def __init__(
        self,
        mode: Mode,
        gram: Any,
        arithmetic: Arithmetic,
        cache: dict | None = None,
        previous: SlidingWeights | None = None,
        changed: list[int] | tuple[int, ...] = (),
    ) -> None:
        self.mode = mode
        if previous is None:
            self.active = arithmetic.convert(mode.active.astype(np.float64))
            self.unslid = arithmetic.convert((~mode.sliding).astype(np.float64))
        else:  # the previous piece's arrays, taken over and updated in the changed rows (it is done with)
            self.active, self.unslid = previous.active, previous.unslid
            rows = neuron_rows(changed)
            slid_before = bool((self.unslid[rows] == 0).any())
            self.active[rows] = arithmetic.convert(mode.active[rows].astype(np.float64))
            self.unslid[rows] = arithmetic.convert((~mode.sliding[rows]).astype(np.float64))
            self.neuron_maps = previous.neuron_maps
            if not slid_before and not mode.sliding[rows].any():
                self.pair_rows, self.pair_cols = previous.pair_rows, previous.pair_cols
                self.pair_flat = previous.pair_flat
                self.map, self.offset_map = previous.map, previous.offset_map
                return
        self.pair_rows, self.pair_cols = np.nonzero(mode.sliding)  # row-major: neuron by neuron
        self.pair_flat = self.pair_rows * mode.sliding.shape[1] + self.pair_cols  # into a flattened (m, n) array
        n = gram.shape[0]
        cache = {} if cache is None else cache
        if previous is None:  # every sliding neuron's rows of the map (its sliding pairs'), by neuron
            self.neuron_maps: dict[int, Any] = {}
            renewed = np.unique(self.pair_rows).tolist()
        else:  # the piece before's, but for the changed neurons: no key per sliding neuron and piece
            renewed = [int(j) for j in changed]
        for j in renewed:
            self.neuron_maps.pop(j, None)
            if not mode.sliding[j].any():
                continue
            key = (j, mode.sliding[j].tobytes(), mode.active[j].tobytes())
            if key not in cache:
                S = mode.sliding[j].nonzero()[0]
                right = np.concatenate([gram[S, :] * self.active[j], gram[S, :] * self.unslid[j]], axis=1)
                cache[key] = -arithmetic.lstsq(gram[np.ix_(S, S)], right)
            self.neuron_maps[j] = cache[key]
        maps = [self.neuron_maps[j] for j in sorted(self.neuron_maps)]  # np.unique(pair_rows)'s order
        # One matrix for all sliding pairs: z = s @ map^T + N @ offset_map^T, ordered as (pair_rows, pair_cols).
        both = np.concatenate(maps, axis=0) if maps else arithmetic.convert(np.zeros((0, 2 * n)))
        self.map, self.offset_map = both[:, :n], both[:, n:]

    def weighted_gates(self, s: Any, offset: Any = None, out: Any = None) -> Any:
        """q (..., m, n): s_i on active pairs, z_i on sliding ones, else 0, plus the offset N_i (..., n) on
        non-sliding pairs when given; s of shape (..., n). ``out``: an array to write q into (a caller's
        buffer that is done with: no fresh (m, n) array)."""
        q = np.multiply(self.active, s[..., None, :], out=out)
        if offset is not None:
            q += self.unslid * offset[..., None, :]
        if len(self.pair_rows) and q.ndim == 2 and q.flags.c_contiguous:  # one state: by flat index, cheaper
            q.reshape(-1)[self.pair_flat] = self._sliding(s, offset)
        elif len(self.pair_rows):
            q[..., self.pair_rows, self.pair_cols] = self._sliding(s, offset)
        return q

    def neuron_gates(self, s: Any, offset: Any, neurons: list[int]) -> Any:
        """The rows ``neurons`` of :meth:`weighted_gates` (len(neurons), n) for one s (n,), in O(len(neurons) n)
        plus the sliding pairs of those neurons (an event's neurons, not the whole network)."""
        q = self.active[neurons] * s
        if offset is not None:
            q += self.unslid[neurons] * offset
        if not len(self.pair_rows):  # no sliding pair in the network (the common case)
            return q
        # one neuron (the common event): a comparison, not np.isin's sort
        in_neurons = self.pair_rows == neurons[0] if len(neurons) == 1 else np.isin(self.pair_rows, neurons)
        pairs = in_neurons.nonzero()[0]
        if len(pairs):
            z = s @ self.map[pairs].T
            if offset is not None:
                z = z + offset @ self.offset_map[pairs].T
            row_of = {j: r for r, j in enumerate(neurons)}
            q[[row_of[j] for j in self.pair_rows[pairs].tolist()], self.pair_cols[pairs]] = z
        return q

    def _sliding(self, s: Any, offset: Any) -> Any:
        z = s @ self.map.T
        return z if offset is None else z + offset @ self.offset_map.T

    def mu(self, s: Any, offset: Any = None) -> Any:
        """The sliding weights mu (..., number of sliding pairs), ordered as ``pair_rows, pair_cols``: z = N +
        mu s on a sliding pair."""
        return self.mu_times_jump(s, offset) / s[..., self.pair_cols]

    def mu_times_jump(self, s: Any, offset: Any = None) -> Any:
        """mu s_i = z - N_i of the sliding pairs (..., number of sliding pairs): a linear map of s and N, finite
        where the jump s_i passes through 0 and mu has its pole (the weight guards' numerator,
        :meth:`~simulate.flow.events.PieceGuards.weight_guards`)."""
        z = self._sliding(s, offset)
        return z if offset is None else z - offset[..., self.pair_cols]


def min_norm_weights(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin over mu in [0, 1]^k of ||b + A mu||: equation (2), by bounded-variable least squares (exact)."""
    if A.shape[1] == 0:
        return np.zeros(0)
    if A.shape[1] == 1:  # one surface (the common case): the clipped one-dimensional minimizer
        a = A[:, 0]
        return np.array([min(max(-float(a @ b) / float(a @ a), 0.0), 1.0)])
    if A.shape[1] == 2:  # two surfaces (the next most common): in closed form unless nearly collinear
        weights = _two_weights(A, b)
        if weights is not None:
            return weights
    weights = lsq_linear(A, -b, bounds=(0.0, 1.0), method="bvls").x
    return np.clip(weights, 0.0, 1.0)  # bvls may overshoot a bound by ~eps


#: :func:`_two_weights` solves (2) in closed form when sin^2 of the angle between the two columns exceeds this
#: (the 2 x 2 Gram matrix's condition number is then below ~4e4, so the weights are exact to ~1e-11); nearer
#: collinear columns (repeated or collinear samples) go to bvls.
TWO_WEIGHTS_MIN_SIN2 = 1e-4


def _two_weights(A: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """argmin over mu in [0, 1]^2 of ||b + A mu|| for two columns that are not nearly collinear, else None.

    With G = A^T A and r = -A^T b the objective is mu^T G mu / 2 - r^T mu plus a constant, strictly convex
    when det G > 0, so its minimizer is unique: the stationary point G mu = r (Cramer's rule) when it lies in
    the box, else the best of the four edges' minimizers (one weight at 0 or 1, the other the clipped
    one-dimensional minimizer there). Python floats: a few dozen operations, where bvls costs about a
    millisecond of Python (docs/flow.md, "Cost").
    """
    a0, a1 = A[:, 0], A[:, 1]
    g00, g01, g11 = float(a0 @ a0), float(a0 @ a1), float(a1 @ a1)
    det = g00 * g11 - g01 * g01
    if not det > TWO_WEIGHTS_MIN_SIN2 * g00 * g11:
        return None
    r0, r1 = -float(a0 @ b), -float(a1 @ b)
    mu0, mu1 = (r0 * g11 - r1 * g01) / det, (r1 * g00 - r0 * g01) / det
    if 0.0 <= mu0 <= 1.0 and 0.0 <= mu1 <= 1.0:
        return np.array([mu0, mu1])
    best, best_value = None, np.inf
    for edge in (0.0, 1.0):
        for weights in (
            (edge, min(max((r1 - g01 * edge) / g11, 0.0), 1.0)),
            (min(max((r0 - g01 * edge) / g00, 0.0), 1.0), edge),
        ):
            w0, w1 = weights
            value = (g00 * w0 * w0 + 2.0 * g01 * w0 * w1 + g11 * w1 * w1) / 2.0 - r0 * w0 - r1 * w1
            if value < best_value:
                best, best_value = weights, value
    return np.array(best)


def select_neuron_mode(
    X: np.ndarray,
    s: np.ndarray,
    sign_v: float,
    side: np.ndarray,
    touching: np.ndarray,
    prefer: np.ndarray,
    hints: dict[int, int] | None = None,
    offset: np.ndarray | None = None,
    stuck: dict[int, int] | None = None,
    norms: np.ndarray | None = None,
    factor_errors: np.ndarray | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """The sides (ACTIVE / SLIDING / INACTIVE, shape (n,)) of one neuron after an event, by equation (2).

    Args:
        X: samples (n, d); s: sample factors at the event (n,); sign_v: sign of v_j (0 when v_j = 0).
        side: the neuron's current sides; entries in ``touching`` are replaced, the others kept.
        touching: indices of the samples whose surface the neuron is on (it has been projected onto them).
        prefer: for each sample, the side a non-attracting pair starts from; it keeps it while both
            one-sided fields point away from the surface (then either side is a Filippov solution; the caller
            passes the side the pair was moving to, so it keeps its direction).
        hints: sample -> the bound of mu through which its pair left sliding at this event, named by the
            side an attracting pair takes there (INACTIVE: mu = 0, ACTIVE: mu = 1); ties at the bound go to
            that bound, whose side is :func:`bound_side`'s (the other one on a surface that has turned
            repelling).
        offset: the offsets N (n,) of merged opposite samples (:mod:`simulate.flow.samples`): a pair with gate
            g contributes (N_i + g s_i) x_i; None when there are none.
        stuck: sample -> the side its pair left the wrong way at once, at an earlier event of the same
            instant: its rate on that side is zero to roundoff (a tangency) and the next order takes it
            across. It does not get that side again at this instant: an attracting pair slides (its rate on
            the side it would leave points into the surface after all), any other pair takes the other side.
        norms: the samples' norms ||x_i|| (n,), sqrt(einsum("ij,ij->i", X, X)), when the caller keeps them
            (an event loop selects for many events on the same X); computed here otherwise.
        factor_errors: the absolute precision e of s + N per sample (n,), or None (exact factors;
            :func:`~simulate.flow.roundoff.float_factors`).
        scale: the event's :func:`~simulate.flow.tangent_rates.rate_scale` from s, offset, norms and
            factor_errors, when the caller has it (an event computes it once for all its neurons); computed
            here otherwise. Pair i's rates are known to its resolution delta_i = ||x_i|| scale
            (:mod:`simulate.flow.tangent_rates`, equation (1)): a rate below it has no sign, the pair can slide
            only where its jump exceeds it (beyond it the data do not fix its weight within [0, 1]), and its
            weight is known to delta_i / jump_i (:func:`weight_resolution`).

    The rate of <w_j, x_i> is proportional to r_i = sign_v <h, x_i>, h = X^T q_j. Attracting pairs
    (sign_v s_i < 0) and pairs that slide already get their weights from (2); each other pair crosses to the
    side its one-sided field points to (r_i with gate 0 > 0 -> active, r_i with gate 1 < 0 -> inactive),
    which moves h, so the two are iterated to a consistent choice (at most |T| + 1 rounds; one round unless
    non-attracting pairs share the event).
    """
    hints = hints or {}
    new = side.astype(np.int8)  # a copy
    touching = np.asarray(touching, dtype=int)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X)) if norms is None else norms
    norms_at = norms[touching]
    jumps = np.abs(s[touching]) * norms_at**2
    # a pair that slides stays in (2) while its jump is resolved, even where its surface has turned repelling
    # (sign_v s_i >= 0): holding it there is a Filippov solution, and the side it would otherwise start from,
    # the sign of its tangent rate (zero to roundoff), is noise that two runs at different tolerances resolve
    # differently
    held = (sign_v * s[touching] < 0) | (side[touching] == SLIDING)
    jump_scale = np.abs(s) @ norms
    scale = rate_scale(s, offset, norms, factor_errors) if scale is None else scale
    resolutions = rate_resolution(norms_at, scale)  # below it a rate has no sign (tangent_rates)
    pull = held & (jumps > JUMP_TOL * norms_at * jump_scale + resolutions)
    unpulled = ~pull
    attracting, others = touching[pull], touching[unpulled]
    new[others] = prefer[others]
    A = X[attracting].T * s[attracting]
    mu = np.zeros(0)
    rate_floors = resolutions[unpulled]
    for _ in range(len(touching) + 1):
        gates = (new == ACTIVE).astype(np.float64)
        gates[attracting] = 0.0
        base = X.T @ (s * gates if offset is None else s * gates + offset)
        if len(attracting):
            mu = min_norm_weights(A, base)
            h = base + A @ mu
        else:
            h = base
        changed = False
        for i, rate_floor in zip(others, rate_floors, strict=True):
            jump = sign_v * s[i] * (X[i] @ X[i])  # the rate's jump from gate 0 to gate 1
            rate_inactive = sign_v * (h @ X[i]) - (new[i] == ACTIVE) * jump
            rate_inactive, rate_active = resolved((rate_inactive, rate_inactive + jump), rate_floor)
            choice = ACTIVE if rate_inactive > 0 else INACTIVE if rate_active < 0 else new[i]
            changed |= bool(choice != new[i])
            new[i] = choice
        if not changed:
            break
    resolution = weight_resolution(jumps[pull], norms[attracting], scale)
    repelling = sign_v * s[attracting] > 0
    nears = np.maximum(HINT_TOL, resolution)
    # as Python numbers (the same values): a loop over numpy scalars costs a few microseconds per pair
    numbers = (attracting.tolist(), mu.tolist(), nears.tolist(), repelling.tolist())
    for i, weight, near, repels in zip(*numbers, strict=True):
        hint = hints.get(i)
        if hint is not None and abs(weight - (1.0 if hint == ACTIVE else 0.0)) <= near:
            new[i] = bound_side(hint == ACTIVE, repels)
        elif weight >= 1.0 - BOUND_TOL:
            new[i] = bound_side(True, repels)
        elif weight <= BOUND_TOL:
            new[i] = bound_side(False, repels)
        else:
            new[i] = SLIDING
    for i, left in (stuck or {}).items():
        if new[i] == left != SLIDING:
            new[i] = SLIDING if i in attracting else -left
    return new


def bound_side(upper: bool, repelling: bool) -> int:
    """The side a pair takes where its Filippov weight (2) is at a bound: ``upper`` (mu = 1) or mu = 0.

    Pair i's rate is r(g) = r_0 + g J with gate g and jump J = sign(v_j) s_i ||x_i||^2. At mu = 0 the KKT
    condition of (2) is s_i <h, x_i> >= 0, i.e. J r_0 >= 0 (the rate at gate 0 has the jump's sign); at mu = 1,
    J r(1) <= 0. On an attracting surface (J < 0) both one-sided rates then point to the side of the bound
    (mu = 0: inactive, mu = 1: active); on a surface that has turned repelling under a sliding pair (J > 0:
    merged opposite samples, a jump through 0) both point to the other side, which the pair must take: at
    mu = 0 its rate on the inactive side points into the active one (docs/flow.md, "Robustness").
    """
    return (INACTIVE if upper else ACTIVE) if repelling else (ACTIVE if upper else INACTIVE)


def weight_resolution(jumps: np.ndarray, norms: np.ndarray, scale: float) -> np.ndarray:
    """How precisely the data fix the Filippov weights of pairs with jumps |s_i| ||x_i||^2 and norms ||x_i||.

    A weight is a tangent rate divided by its jump, mu_i = -r_i / (s_i ||x_i||^2), and the rate is known to its
    resolution delta_i = ||x_i|| ``scale`` (``scale``: the event's
    :func:`~simulate.flow.tangent_rates.rate_scale`, its terms' roundoff and the sample factors' own
    precision): the weight is known to delta_i / jump_i, which for a small jump (a sample nearly fitted,
    s_i ~ 1e-10) exceeds any fixed tolerance. The piece's weights (1) and the selection's (2) then agree only
    to this: a weight that the piece saw leave through a bound can be (2)'s interior solution by this much,
    and without the hinted side the pair would slide on and leave through the same bound at once, event after
    event (docs/flow.md, "Robustness").
    """
    return rate_resolution(norms, scale) / jumps


def project_onto_surfaces(direction: Any, X_T: Any, arithmetic: Arithmetic) -> Any:
    """The orthogonal projection of ``direction`` (d,) onto {w : <w, x_i> = 0 for the rows x_i of X_T}.

    Puts a neuron back exactly on every surface it touches at an event (w - X_T^+ X_T w, the least-squares form:
    touched samples may repeat or be collinear), so the next piece starts with each of those pre-activations
    at 0 to roundoff, never on the wrong side.
    """
    if len(X_T) == 0:
        return direction
    if len(X_T) == 1:  # one surface (the common case): w - x <x, w> / ||x||^2
        x = X_T[0]
        return direction - x * ((x @ direction) / (x @ x))
    return direction - arithmetic.lstsq(X_T, X_T @ direction)
