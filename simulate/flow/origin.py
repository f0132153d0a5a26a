"""A neuron whose first layer reached its origin, w_j = 0, where the flow may stay or leave.

A neuron that slides on one surface towards w_j = 0 reaches it in finite time: near the origin its field
depends on the direction u = w_j / |w_j| only (the sample factors change by O(|w_j|)),

    w_j' = (c / n) v_j h(u),   h(u) = sum_g (N_g + 1[<u, x_g> > 0] S_g) x_g

(groups g of merged samples with jump S_g and offset N_g, :mod:`simulate.flow.samples`), constant on each
sector that the surfaces cut out, and -grad of phi(w) = -(c / n) v_j sum_g (S_g relu(<w, x_g>) + N_g <w, x_g>).
Every surface of the neuron passes through the origin, so events repeat there, one surface after another.
Two Filippov solutions leave the instant when

- 0 is in the convex hull of the sector fields h(u): w_j may stay at 0 (the Filippov set there holds 0);
- phi(u) < 0 for some direction u: w_j may leave, |w_j| growing linearly (phi decreases along a Filippov
  solution at the rate |w_j'|^2 and has no critical point where it is negative).

With both, the flow is not unique, and a run that repeats events there ends ``failed`` saying so
(:func:`origin_contact`, :func:`repeated_events_message`; docs/flow.md, "Robustness", "A neuron at its origin");
where the neuron stays and cannot leave (:attr:`OriginContact.unique_stay`), it is frozen there and the flow
goes on without it (:mod:`simulate.flow.freeze`). Both are tested on
sampled directions: a sampled sector field is a true one and a sampled descent a true one, so the test errs
only towards not claiming non-uniqueness. Precision: |w_j| within 64 roundoffs of the largest weight is at
the origin; a descent must exceed 64 roundoffs of its terms; the hull is tested by non-negative least
squares to 1e-12 of the fields' size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.modes import SlidingWeights

#: |w_j| within this many roundoffs of the largest weight is at the origin; a descent must exceed this many
#: roundoffs of its terms.
ORIGIN_ROUNDOFFS = 64.0
#: Directions sampled on the unit sphere of the first layer.
DIRECTIONS = 1024
#: A residual of the hull's least-squares problem below this fraction of the fields' size is 0.
HULL_RESIDUAL = 1e-12
EPS = float(np.finfo(np.float64).eps)


def at_origin(w: np.ndarray, scale: float) -> bool:
    """Whether the first-layer row w (d,) is zero to the roundoff of weights of size ``scale``."""
    return bool(np.linalg.norm(w) <= ORIGIN_ROUNDOFFS * EPS * scale)


@dataclass(frozen=True)
class OriginContact:
    """The two answers at a neuron's origin (module docstring): ``stays``, 0 is in the convex hull of its
    sampled sector fields; ``leaves``, phi(u) < 0 beyond roundoff in some sampled direction u. The flow there
    is unique where exactly one holds, and not unique where both do."""

    stays: bool
    leaves: bool

    @property
    def not_unique(self) -> bool:
        """Whether both Filippov solutions, staying at w_j = 0 and leaving it, are there."""
        return self.stays and self.leaves

    @property
    def unique_stay(self) -> bool:
        """Whether staying at w_j = 0 is the one Filippov solution: the neuron is frozen there."""
        return self.stays and not self.leaves


def directions(d: int) -> np.ndarray:
    """The sampled unit directions (:data:`DIRECTIONS`, d) of a first layer in d dimensions, fixed: the test
    at a neuron's arrival and the watch over its stay (:mod:`simulate.flow.freeze`) sample the same ones."""
    U = np.random.default_rng(0).standard_normal((DIRECTIONS, d))
    return U / np.linalg.norm(U, axis=1)[:, None]


def origin_contact(v_j: float, X: np.ndarray, S: np.ndarray, N: np.ndarray | None) -> OriginContact:
    """Whether a neuron with second layer ``v_j`` at w_j = 0 may stay and whether it may leave (module
    docstring), for the representatives X (k, d) with jumps S (k,) and offsets N (k,) (None: zero). A neuron
    with no field at all (every sector field 0) stays and cannot leave."""
    offset = np.zeros_like(S) if N is None else N
    d = X.shape[1]
    pre = directions(d) @ X.T  # (K, k)
    fields = v_j * (offset + (pre > 0) * S) @ X  # (K, d), the sector fields without c / n
    size = float(np.abs(fields).max())
    if size == 0.0:
        return OriginContact(stays=True, leaves=False)
    system = np.vstack([fields.T / size, np.ones(DIRECTIONS)])
    _, residual = nnls(system, np.r_[np.zeros(d), 1.0])
    descent = v_j * (np.maximum(pre, 0.0) * S + pre * offset).sum(axis=1)  # -phi(u) without c / n
    terms = abs(v_j) * float((np.abs(S) + np.abs(offset)) @ np.linalg.norm(X, axis=1))
    return OriginContact(
        stays=bool(residual <= HULL_RESIDUAL), leaves=bool(descent.max() > ORIGIN_ROUNDOFFS * EPS * terms)
    )


def contact_at(coords: Coordinates, weights: SlidingWeights, Y: Any, j: int) -> OriginContact | None:
    """The two answers for neuron j at state Y (under the piece's ``weights``), or None where it is not at
    its origin (|w_j| above 64 roundoffs of the largest weight)."""
    arith = coords.arith
    W, v = (arith.to_float(part) for part in coords.network(Y))
    if not at_origin(W[j], max(float(np.abs(W).max()), float(np.abs(v).max()))):
        return None
    S, N = coords.sample_factors(coords.output(Y, weights))
    X = arith.to_float(coords.X)
    return origin_contact(float(v[j]), X, arith.to_float(S), None if N is None else arith.to_float(N))


def repeated_events_message(contact: OriginContact | None, instant: int, t: Any, j: int, i: int) -> str:
    """The message of a run that ends ``failed`` after ``instant`` events at time t without progress, the
    last one of neuron j and sample i, with ``contact`` the answers at neuron j's origin (None where it is
    not at its origin, :func:`contact_at`): where it may stay or leave, it says the flow is not unique there;
    elsewhere it says only what repeated."""
    where = f"{instant} events in a row without progress at t = {float(t):.10g} (neuron {j}, sample {i})"
    if contact is None:
        return f"{where}: the selection finds no mode that holds there"
    if contact.not_unique:
        return f"{where}: neuron {j} reached w = 0, where it may stay or leave: the flow is not unique there"
    if contact.stays:
        return f"{where}: neuron {j} reached w = 0, where it stays"
    return f"{where}: neuron {j} reached w = 0"
