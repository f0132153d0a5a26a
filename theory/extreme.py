"""Extreme vectors: the attracting stationary points of the small-initialization directional flow
(docs/design.md section 2, "Small-initialization limit"; the flow itself is :mod:`theory.smallinit`).

A balanced neuron's direction u follows u' = c sign(v) (I - u u^T) g(u) with g piecewise constant on activation
regions, so between activation events the motion is along a great circle towards the projected g, and at an
event the next mode is the Filippov one. :func:`extreme_vectors` follows that flow exactly from many starts and
reports where it rests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from fls.theory.smallinit import pulled_data, unit_rows
from fls.theory.validation import check_in_range, check_int
from scipy.optimize import lsq_linear


@dataclass(frozen=True)
class ExtremeVector:
    """One attracting stationary point of the directional flow of one sign.

    Attributes:
        direction: the unit vector u*, shape (d,).
        sign: +1 (a positive neuron, climbs H) or -1 (a negative neuron, descends H).
        value: H(u*) = sign * ||P_S g_A|| (A the active points, S the sliding ones, P_S the projector onto the
            orthogonal complement of their span).
        basin: fraction of the starts of this sign that converged here.
        count: number of those starts.
        active: indices i with <u*, x_i> > 0.
        sliding: indices i with <u*, x_i> = 0 on which the flow slides (empty for a point inside a region).
        residual: the Filippov stationarity residual min over mu in [0, 1]^S of
            ||(I - u u^T)(g_A + sum_{i in S} mu_i y_i x_i / (2n))|| (0 up to rounding).
    """

    direction: np.ndarray
    sign: int
    value: float
    basin: float
    count: int
    active: tuple[int, ...]
    sliding: tuple[int, ...]
    residual: float


@dataclass(frozen=True)
class ExtremeVectorSearch:
    """Result of :func:`extreme_vectors`.

    Attributes:
        vectors: the extreme vectors, positive sign first, each sign by decreasing basin.
        n_starts: starts per sign.
        dead: per sign, the fraction of starts that ended with g = 0 (inactive on every point, or a sliding
            face where P_S g_A = 0): the stationary set H = 0, not an isolated point.
        unresolved: per sign, the number of starts not settled within ``max_events`` mode changes, or stopped
            on an unstable equilibrium (0 in a converged search).
        tol: the stationarity tolerance every returned vector meets (relative to the scale G of g).
    """

    vectors: tuple[ExtremeVector, ...]
    n_starts: int
    dead: dict[int, float]
    unresolved: dict[int, int]
    tol: float

    def of_sign(self, sign: int) -> tuple[ExtremeVector, ...]:
        """The extreme vectors of positive (+1) or negative (-1) neurons."""
        return tuple(e for e in self.vectors if e.sign == sign)


def _span_basis(M: np.ndarray) -> np.ndarray:
    """Orthonormal basis (d, r) of the row span of M (SVD: dependent rows are fine); (d, 0) for no rows."""
    if M.shape[0] == 0:
        return np.zeros((M.shape[1], 0))
    left, singular, _ = np.linalg.svd(M.T, full_matrices=False)
    return left[:, singular > singular[0] * 1e-12 * max(M.shape)]


@dataclass(frozen=True)
class _Rest:
    """Where one start's flow ends: kind 'point' (an extreme vector), 'dead' (g = 0 there) or 'unresolved'."""

    kind: str
    direction: np.ndarray | None = None
    value: float = 0.0
    active: tuple[int, ...] = ()
    sliding: tuple[int, ...] = ()
    residual: float = 0.0


class _DirectionalFlow:
    """Exact, event-driven integration of the directional flow of one sign (a hybrid system with sliding).

    A mode is (A, S): the points A with <u, x_i> > 0 and the points S whose surfaces <u, x_i> = 0 the neuron
    slides on (u is kept exactly orthogonal to x_S). In a mode the flow is u' = c s (P_S - u u^T) g_A, the
    Riemannian gradient of the linear function s <u, P_S g_A> on the great sub-sphere orthogonal to x_S, so u
    runs along the great circle towards e = s P_S g_A / ||P_S g_A|| (the clock, set by c ||P_S g_A||, is
    irrelevant here). Every <u, x_i> is a sinusoid of the arc length on that circle, so the first surface
    crossing is found in closed form. No crossing before e: the flow converges to e, an exact stationary
    point. At a crossing the next mode is the Filippov one: a surface of the neuron's own class (s y_i > 0) is
    always crossed (the field has the same normal sign on both sides); for the other surfaces together the
    velocity is the minimal-norm element of the Filippov set, s (I - u u^T)(g_A + sum_{i in T} mu_i y_i x_i /
    (2n)) with mu in [0, 1]^T (a box-constrained least-squares problem); surfaces it leaves are assigned the
    side it moves to, the others stay in S. The sliding weights mu depend only on (A, S), not on u, so a
    sliding mode ends only at a crossing.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, sign: int, *, tol: float) -> None:
        self.X, self.y, self.sign, self.tol = X, y, sign, tol
        self.n = X.shape[0]
        self.norms = np.linalg.norm(X, axis=1)
        self.scale = float((np.abs(y) * self.norms).mean()) / 2  # G >= ||g(u)|| for every u

    def _g(self, side: np.ndarray) -> np.ndarray:
        return self.y[side > 0] @ self.X[side > 0] / (2 * self.n)

    def _sliding_residual(
        self, side: np.ndarray, T: np.ndarray, basis: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(r, normal): r = min over mu in [0,1]^T of (I - P_T) g_A + X_T^T (mu y_T) / (2n), normal = (I -
        P_T) g_A.

        ``basis`` spans x_T. The unconstrained least-squares mu is used when it lies in the box, else BVLS.
        """
        g = self._g(side)
        normal = basis @ (basis.T @ g)
        if T.size == 0:
            return normal, normal
        A = self.X[T].T * (self.y[T] / (2 * self.n))
        mu, *_ = np.linalg.lstsq(A, -normal, rcond=None)
        if np.all((mu >= 0) & (mu <= 1)):
            return A @ mu + normal, normal
        return lsq_linear(A, -normal, bounds=(0.0, 1.0), method="bvls").fun, normal

    def _choose_mode(self, u: np.ndarray, side: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Next (u, side) after the surfaces ``hit`` are reached (side: +1 active, -1 inactive, 0 sliding)."""
        own_class = hit[self.sign * self.y[hit] > 0]
        side[own_class] = -side[own_class]
        T = np.union1d(np.flatnonzero(side == 0), hit[self.sign * self.y[hit] < 0])
        basis = _span_basis(self.X[T])
        u = u - basis @ (basis.T @ u)
        u /= np.linalg.norm(u)
        side[T] = -1  # excluded from g_A while the Filippov selection is made
        r, normal = self._sliding_residual(side, T, basis)
        g = self._g(side)
        velocity = self.sign * (r + g - normal - (u @ g) * u)
        push = self.X[T] @ velocity
        threshold = 1e-10 * (np.linalg.norm(velocity) + self.scale) * self.norms[T]
        side[T] = np.where(push > threshold, 1, np.where(push < -threshold, -1, 0))
        return u, side

    def run(self, u: np.ndarray, max_events: int) -> _Rest:
        """Follow the flow from the unit vector u until it rests, or until ``max_events`` mode changes."""
        side = np.where(self.X @ u > 0, 1, -1)
        for _ in range(max_events + 1):
            S = np.flatnonzero(side == 0)
            basis = _span_basis(self.X[S])
            g = self._g(side)
            tangent = self.sign * (g - basis @ (basis.T @ g))
            length = np.linalg.norm(tangent)
            if length <= self.tol * self.scale:
                return _Rest("dead")
            target = tangent / length
            if self.X.shape[1] - basis.shape[1] == 1:
                return self._rest_at(
                    u, side, basis
                )  # a one-dimensional face: the neuron is pinned at u = +-target
            cos0 = float(np.clip(u @ target, -1.0, 1.0))
            ortho = target - cos0 * u
            ortho -= basis @ (basis.T @ ortho)  # stay on the face despite rounding
            if np.linalg.norm(ortho) <= 1e-12:
                # u = e is the rest point; u = -e is an unstable equilibrium, reached only by a non-generic
                # start
                return self._rest_at(target, side, basis) if cos0 > 0 else _Rest("unresolved")
            ortho /= np.linalg.norm(ortho)
            arc_to_target = np.arccos(cos0)
            # z_i(phi) = side_i <u(phi), x_i> = z0 cos phi + z1 sin phi along u(phi) = cos phi u + sin phi
            # ortho.
            moving = side != 0
            z0 = np.maximum(side * (self.X @ u), 0.0)
            z1 = side * (self.X @ ortho)
            arc = np.where(moving & ((z0 > 0) | (z1 < 0)), np.arctan2(z0, -z1), np.inf)
            first = arc.min()
            if first >= arc_to_target:
                return self._rest_at(target, side, basis)
            hit = np.flatnonzero(arc <= first + 1e-12)
            u = np.cos(first) * u + np.sin(first) * ortho
            u, side = self._choose_mode(u, side, hit)
        return _Rest("unresolved")

    def _rest_at(self, u: np.ndarray, side: np.ndarray, basis: np.ndarray) -> _Rest:
        S = np.flatnonzero(side == 0)
        r, _ = self._sliding_residual(side, S, basis)
        g = self._g(side)
        residual = float(np.linalg.norm(r)) if S.size else float(np.linalg.norm(g - (u @ g) * u))
        if residual > self.tol * self.scale:
            return _Rest("unresolved", residual=residual)
        active = tuple(np.flatnonzero(side > 0).tolist())
        return _Rest("point", u, float(u @ g), active, tuple(S.tolist()), residual)


def extreme_vectors(
    X: Any,
    y: Any,
    *,
    n_starts: int = 256,
    seed: int = 0,
    starts: Any = None,
    tol: float = 1e-10,
    max_events: int | None = None,
    loss: str = "logistic",
    sample_weight: Any = None,
    bias: bool = False,
) -> ExtremeVectorSearch:
    """All attracting stationary points of the directional flow, for positive and for negative neurons.

    The flow is followed exactly (see :class:`_DirectionalFlow`: closed-form great-circle pieces between
    activation events, Filippov sliding with the minimal-norm selection) from ``n_starts`` directions uniform
    on the sphere (``np.random.default_rng(seed)``) or from the rows of ``starts``, for sign +1 (climbing H)
    and sign -1 (descending H). Each end point u* = s P_S g_A / ||P_S g_A|| is exact up to rounding; it is
    accepted when its Filippov stationarity residual is <= ``tol`` * G, G = mean |q_i| ||x_i|| / 2 (residuals
    measured here: ~1e-17). End points are deduplicated by their mode (A, S). The stationary points do not
    depend on c (c only rescales time). Starts that end where g = 0 count in ``dead``; starts needing more
    than ``max_events`` (default 20 n + 100) mode changes count in ``unresolved`` and are never silently
    dropped. ``loss``, ``sample_weight``, ``bias``: the model (:func:`theory.smallinit.pulled_data`: labels
    read as the pulls q_i, inputs as (x_i, 1) with biases, directions of (w_j, b_j)).
    """
    X, y = pulled_data(X, y, loss=loss, sample_weight=sample_weight, bias=bias)
    d = X.shape[1]
    tol = check_in_range("tol", tol, 0.0, 1e-3, closed="right")
    max_events = 20 * X.shape[0] + 100 if max_events is None else check_int("max_events", max_events)
    if starts is None:
        n_starts = check_int("n_starts", n_starts, minimum=1)
        starts = np.random.default_rng(check_int("seed", seed, minimum=0)).standard_normal((n_starts, d))
    U0 = unit_rows(starts, d, name="starts")
    total = U0.shape[0]
    vectors: list[ExtremeVector] = []
    dead: dict[int, float] = {}
    unresolved: dict[int, int] = {}
    for sign in (1, -1):
        flow = _DirectionalFlow(X, y, sign, tol=tol)
        rests = [flow.run(u, max_events) for u in U0]
        dead[sign] = sum(r.kind == "dead" for r in rests) / total
        unresolved[sign] = sum(r.kind == "unresolved" for r in rests)
        groups: dict[tuple, list[_Rest]] = {}
        for rest in rests:
            if rest.kind == "point":
                groups.setdefault((rest.active, rest.sliding), []).append(rest)
        found = [
            ExtremeVector(
                direction=members[0].direction,
                sign=sign,
                value=members[0].value,
                basin=len(members) / total,
                count=len(members),
                active=key[0],
                sliding=key[1],
                residual=max(m.residual for m in members),
            )
            for key, members in groups.items()
        ]
        vectors.extend(sorted(found, key=lambda e: -e.count))
    return ExtremeVectorSearch(
        vectors=tuple(vectors), n_starts=total, dead=dead, unresolved=unresolved, tol=tol
    )


