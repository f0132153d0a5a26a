"""The one way out of a neuron's origin in d = 2, found exactly from the surfaces' rays.

At w_j = 0 the other neurons fix the outputs, so the neuron's field depends on its direction u only,
w_j' = (c / n) v_j h(u) with h(u) = sum_g (N_g + 1[<u, x_g> > 0] S_g) x_g (:mod:`simulate.flow.origin`). In
d = 2 the surfaces <w, x_g> = 0 are lines through the origin: their 2k rays cut the circle into sectors, on
each of which the field is a constant F_s = v_j h(u_s). A Filippov solution leaves the origin

(a) into a sector's interior along F_s, where F_s points into that sector (its radial part |F_s| > 0), or
(b) along a ray where the fields of both adjacent sectors point towards it (it attracts from both sides:
    Filippov sliding) and the sliding combination lambda F_- + (1 - lambda) F_+, with no part across the ray,
    has a positive radial part;

and it may stay where 0 is in the convex hull of the sector fields. Every sector and ray is visited, so the
exits are exact (no sampled directions): where the neuron cannot stay and there is exactly one exit, the flow
is unique and leaves there. Why only then: the event selection walks the sectors one event at a time and can
cycle at such an origin (docs/flow.md, "A neuron at its origin"); this rule is applied only where the run
would otherwise end ``failed`` there (:class:`~simulate.flow.hybrid.HybridFlow`), so every other run is
unchanged. Precision: a part of a field across a ray or along it within 64 roundoffs of the field's terms
counts as 0, and such a tie is no exit of either kind but makes the leave not unique (the run ends as
before); rays closer than 1e-12 radians are one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.modes import ACTIVE, INACTIVE, SLIDING, SlidingWeights
from fls.simulate.flow.origin import EPS, HULL_RESIDUAL, ORIGIN_ROUNDOFFS, OriginContact

#: Rays closer than this (radians) are one (antiparallel samples share their surface).
SAME_RAY = 1e-12


@dataclass(frozen=True)
class Exit:
    """A way out of the origin: the unit ``direction`` (2,) it leaves along and the representatives
    ``sliding`` whose surface it slides on (empty for a sector's interior)."""

    direction: np.ndarray
    sliding: np.ndarray

    def sides(self, X: np.ndarray) -> np.ndarray:
        """The neuron's mode row (k,) on the way out: sliding on the ray's surfaces, elsewhere the side of
        the direction."""
        row = np.where(X @ self.direction > 0, ACTIVE, INACTIVE).astype(np.int8)
        row[self.sliding] = SLIDING
        return row


def rays(X: np.ndarray) -> np.ndarray:
    """The angles in [0, 2 pi) of the 2k rays of the surfaces of X (k, 2), sorted, with coinciding ones once."""
    normal = np.arctan2(X[:, 1], X[:, 0])
    angles = np.sort(np.mod(np.r_[normal + np.pi / 2, normal - np.pi / 2], 2 * np.pi))
    keep = np.r_[True, np.diff(angles) > SAME_RAY]
    angles = angles[keep]
    if len(angles) > 1 and angles[0] + 2 * np.pi - angles[-1] <= SAME_RAY:
        angles = angles[:-1]
    return angles


def unit(angle: float) -> np.ndarray:
    """The unit vector (cos angle, sin angle)."""
    return np.array([np.cos(angle), np.sin(angle)])


def unique_exit(v_j: float, X: np.ndarray, S: np.ndarray, N: np.ndarray | None) -> Exit | None:
    """The one way out of w_j = 0 (module docstring) for a neuron with second layer ``v_j`` and the
    representatives X (k, 2) with jumps S (k,) and offsets N (k,) (None: zero); None where it may stay,
    where no or several exits are there, or where a tie makes it unclear."""
    offset = np.zeros_like(S) if N is None else N
    angles = rays(X)
    ends = np.r_[angles, angles[0] + 2 * np.pi]
    middles = (ends[:-1] + ends[1:]) / 2  # sector s lies between ray s and ray s + 1
    U = np.stack([np.cos(middles), np.sin(middles)], axis=1)
    fields = v_j * (offset + (U @ X.T > 0) * S) @ X  # (sectors, 2), without c / n
    size = float(np.abs(fields).max()) if len(fields) else 0.0
    if size == 0.0:
        return None
    _, residual = nnls(np.vstack([fields.T / size, np.ones(len(fields))]), np.r_[0.0, 0.0, 1.0])
    if residual <= HULL_RESIDUAL:
        return None  # it may stay
    tie = ORIGIN_ROUNDOFFS * EPS * abs(v_j) * float((np.abs(S) + np.abs(offset)) @ np.linalg.norm(X, axis=1))
    exits: list[Exit] = []
    for s, F in enumerate(fields):
        low, high = unit(ends[s]), unit(ends[s + 1])
        across_low, across_high = cross(low, F), cross(F, high)  # > 0: F on the sector's side of each ray
        if min(abs(across_low), abs(across_high)) <= tie and np.linalg.norm(F) > tie:
            return None
        if across_low > 0 and across_high > 0:
            exits.append(Exit(F / np.linalg.norm(F), np.zeros(0, dtype=np.int64)))
    for r, angle in enumerate(angles):
        u = unit(angle)
        before, after = fields[r - 1], fields[r]  # the sectors below and above ray r
        b_before, b_after = cross(u, before), cross(u, after)  # the parts across the ray, to higher angles
        if b_before > tie and b_after < -tie:
            weight = -b_after / (b_before - b_after)
            radial = weight * float(before @ u) + (1 - weight) * float(after @ u)
            if abs(radial) <= tie:
                return None
            if radial > 0:
                on_ray = np.flatnonzero(np.abs(X @ u) <= SAME_RAY * np.linalg.norm(X, axis=1) * 4)
                exits.append(Exit(u, on_ray))
    return exits[0] if len(exits) == 1 else None


def cross(a: np.ndarray, b: np.ndarray) -> float:
    """The 2-d cross product a x b: > 0 where b lies counterclockwise of a."""
    return float(a[0] * b[1] - a[1] * b[0])


def leave_origin(
    coords: Coordinates, weights: SlidingWeights, Y: Any, j: int, contact: OriginContact | None
) -> tuple[Any, np.ndarray] | None:
    """Neuron j on its one way out of its origin at the state Y under the piece's ``weights``, where its
    events repeat (``contact``: :func:`~simulate.flow.origin.contact_at`): the state with w_j = 0 exactly
    (projected onto every surface) and the neuron's mode row there (:meth:`Exit.sides`). None where the rule
    does not apply: not at its origin, it may stay, not d = 2, the leave not unique (:func:`unique_exit`),
    or coordinates that do not hold w_j = 0 (log coordinates: w_j = exp(rho_j) u_j / ||u_j||)."""
    if contact is None or contact.stays or coords.d != 2:
        return None
    arith = coords.arith
    v = arith.to_float(coords.network(Y)[1])
    S, N = coords.sample_factors(coords.output(Y, weights))
    X = arith.to_float(coords.X)
    way = unique_exit(float(v[j]), X, arith.to_float(S), None if N is None else arith.to_float(N))
    if way is None:
        return None
    Y = Y.copy()
    coords.project(Y, j, np.arange(len(X)))
    with np.errstate(invalid="ignore", divide="ignore"):
        W = arith.to_float(coords.network(Y)[0])
    if not (np.isfinite(W).all() and not W[j].any()):
        return None  # coordinates without w_j = 0 (a direction and its log-norm)
    return Y, way.sides(X)
