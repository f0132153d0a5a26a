"""The exact follower of the small-initialization directional flow (docs/design.md section 2), used by
:func:`theory.smallinit.extreme_vectors` to find where a neuron's direction comes to rest.

A balanced neuron's direction u follows u' = s (I - u u^T) g(u) (c only rescales time), with g(u) =
(1/(2n)) sum_i q_i 1[<u, x_i> > 0] x_i piecewise constant on activation regions (q_i the pulls of
:func:`theory.smallinit.pulled_data`; y_i for the logistic loss). Between activation events the motion is along
a great circle towards the projected g, in closed form; at an event the next mode is the Filippov one, with the
minimal-norm sliding selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear


def span_basis(M: np.ndarray) -> np.ndarray:
    """Orthonormal basis (d, r) of the row span of M (SVD: dependent rows are fine); (d, 0) for no rows."""
    if M.shape[0] == 0:
        return np.zeros((M.shape[1], 0))
    left, singular, _ = np.linalg.svd(M.T, full_matrices=False)
    return left[:, singular > singular[0] * 1e-12 * max(M.shape)]


@dataclass(frozen=True)
class Rest:
    """Where one start's flow ends: kind 'point' (an extreme vector), 'dead' (g = 0 there) or 'unresolved'."""

    kind: str
    direction: np.ndarray | None = None
    value: float = 0.0
    active: tuple[int, ...] = ()
    sliding: tuple[int, ...] = ()
    residual: float = 0.0


class DirectionFlow:
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
        basis = span_basis(self.X[T])
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

    def run(self, u: np.ndarray, max_events: int) -> Rest:
        """Follow the flow from the unit vector u until it rests, or until ``max_events`` mode changes."""
        side = np.where(self.X @ u > 0, 1, -1)
        for _ in range(max_events + 1):
            S = np.flatnonzero(side == 0)
            basis = span_basis(self.X[S])
            g = self._g(side)
            tangent = self.sign * (g - basis @ (basis.T @ g))
            length = np.linalg.norm(tangent)
            if length <= self.tol * self.scale:
                return Rest("dead")
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
                return self._rest_at(target, side, basis) if cos0 > 0 else Rest("unresolved")
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
        return Rest("unresolved")

    def _rest_at(self, u: np.ndarray, side: np.ndarray, basis: np.ndarray) -> Rest:
        S = np.flatnonzero(side == 0)
        r, _ = self._sliding_residual(side, S, basis)
        g = self._g(side)
        residual = float(np.linalg.norm(r)) if S.size else float(np.linalg.norm(g - (u @ g) * u))
        if residual > self.tol * self.scale:
            return Rest("unresolved", residual=residual)
        active = tuple(np.flatnonzero(side > 0).tolist())
        return Rest("point", u, float(u @ g), active, tuple(S.tolist()), residual)
