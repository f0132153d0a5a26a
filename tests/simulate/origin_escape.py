"""An independent certificate that the flow is not unique where a neuron reaches the origin of its first layer.

A neuron j whose first layer slides along one surface towards w_j = 0 reaches it in finite time (its radial
speed there does not shrink with |w_j|). At w_j = 0 the network does not depend on w_j to first order, and
near it the field of w_j is degree-0 homogeneous,

    w_j' = (c / n) v_j h(u),    h(u) = sum_i s_i 1[<u, x_i> > 0] x_i,    u = w_j / |w_j|,

constant on each sector of directions cut out by the samples' surfaces, and it is -grad of the piecewise
linear phi(w) = -(c / n) v_j sum_i s_i relu(<w, x_i>). Two Filippov solutions then leave the instant:

- *stays*: w_j = 0 on, when 0 is in the convex hull of the sector fields (the Filippov set at the origin);
- *leaves*: when phi(u) < 0 for some direction u, a solution leaves the origin with |w_j(t)| growing
  linearly (phi decreases along Filippov solutions at the rate |w'|^2, phi is degree-1 homogeneous and
  has no critical point where it is negative, so the solutions from eps u, rescaled by 1 / eps, leave at a
  speed bounded below; their limit as eps -> 0 starts at the origin).

Both hold for ``neuron_at_the_origin`` (docs/flow.md "Limits"), so a run that ends ``failed`` there is right
to. A run may also *pass through* such an origin and go on along one of the solutions
(:func:`first_passage`): runs at different tolerances may then leave it different ways. The certificate
samples directions: a sampled sector field is a true one and a sampled descent direction is a true one, so
each test errs only towards 'not certified'. It uses the network's own formulas
(``fls.theory``), not the engine's modes, guards or selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from fls.theory import compile_field

#: Directions sampled on the unit sphere of the first layer.
DIRECTIONS = 4000
#: A first-layer row within this many roundoffs of the largest weight is at the origin.
ORIGIN_ROUNDOFFS = 64.0
#: A run that passes through an origin has its neuron within this many of its own tolerances,
#: atol + rtol max |theta|, of w_j = 0 (docs/flow.md "A neuron at its origin").
PASSAGE_TOLERANCES = 4.0
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class OriginContact:
    """What the certificate found for one neuron: its |w_j| against the radius within which it is at its
    origin (the weights' roundoff, or a run's precision), whether staying at the origin is a Filippov
    solution, and the largest sampled -phi(u) against its roundoff."""

    norm: float
    radius: float
    stays: bool
    descent: float
    descent_roundoff: float

    @property
    def at_origin(self) -> bool:
        return self.norm <= self.radius

    @property
    def leaves(self) -> bool:
        return self.descent > self.descent_roundoff

    @property
    def not_unique(self) -> bool:
        return self.at_origin and self.stays and self.leaves


def origin_contact(
    w: np.ndarray, v_j: float, X: np.ndarray, s: np.ndarray, scale: float, radius: float | None = None
) -> OriginContact:
    """The certificate for a neuron with first layer ``w`` (d,) and second ``v_j``, where the sample factors
    are ``s`` (n,) (s_i = -dl/df at the network's outputs) and the largest weight is ``scale`` (c = 1); the
    neuron is at its origin within ``radius`` (default: ``ORIGIN_ROUNDOFFS`` roundoffs of ``scale``)."""
    n, d = X.shape
    U = np.random.default_rng(0).standard_normal((DIRECTIONS, d))
    U /= np.linalg.norm(U, axis=1)[:, None]
    pre = U @ X.T
    fields = v_j * ((pre > 0) * s) @ X / n  # (K, d): one sector field per direction
    hull = linprog(
        np.zeros(DIRECTIONS),
        A_eq=np.vstack([fields.T, np.ones(DIRECTIONS)]),
        b_eq=np.r_[np.zeros(d), 1.0],
        bounds=(0, None),
        method="highs",
    )
    descent = v_j * (np.maximum(pre, 0.0) * s).sum(axis=1) / n  # -phi(u)
    x_norms = np.linalg.norm(X, axis=1)
    return OriginContact(
        norm=float(np.linalg.norm(w)),
        radius=ORIGIN_ROUNDOFFS * EPS * scale if radius is None else radius,
        stays=hull.status == 0,
        descent=float(descent.max()),
        descent_roundoff=ORIGIN_ROUNDOFFS * EPS * abs(v_j) * float(np.abs(s) @ x_norms) / n,
    )


def failed_neuron(message: str) -> int:
    """The neuron a ``failed`` run's message names ("... (neuron j, sample i) ...", or "(neuron j)" where a
    frozen neuron may leave its origin)."""
    found = re.search(r"\(neuron (\d+)(?:, sample \d+)?\)", message)
    assert found is not None, f"a failed run names no neuron: {message}"
    return int(found.group(1))


def weight_scale(W0: np.ndarray, v0: np.ndarray, result) -> float:
    """The largest weight at the start and at the end of a run: the roundoff of the weights is eps times it."""
    return float(max(np.abs(W0).max(), np.abs(v0).max(), np.abs(result.W).max(), np.abs(result.v).max()))


def failed_at_the_origin(
    W0: np.ndarray, v0: np.ndarray, X: np.ndarray, y: np.ndarray, loss: str, result
) -> OriginContact:
    """The certificate at the final state of a ``failed`` run (plain weights ``result.W``, ``result.v``) for
    the neuron its message names; ``W0``, ``v0`` set the weights' scale."""
    j = failed_neuron(result.message)
    network = compile_field(loss)
    s = network.sample_factor(network.output(result.W, result.v, X), y)
    return origin_contact(result.W[j], float(result.v[j]), X, s, weight_scale(W0, v0, result))


def arrival_at_the_origin(result, j: int, radius: float, samples: int = 16) -> float:
    """The first time the run's dense output has neuron j within ``radius`` of w_j = 0 (a grid of
    ``samples`` times on [0, t_stop], then bisection to 1e-9 relative; each reading replays the run from a
    checkpoint): where the flow stops being unique, the last instant at which two runs of it must agree."""
    times = np.linspace(0.0, result.t_stop, samples + 1)
    norms = np.array([np.linalg.norm(result.dense(t)[0][j]) for t in times])
    first = int(np.argmax(norms <= radius))
    if first == 0:
        return float(times[0]) if norms[0] <= radius else float(result.t_stop)
    low, high = float(times[first - 1]), float(times[first])
    while high - low > 1e-9 * max(1.0, high):
        middle = 0.5 * (low + high)
        there = np.linalg.norm(result.dense(middle)[0][j]) <= radius
        low, high = (low, middle) if there else (middle, high)
    return high


def passage_radius(result, W: np.ndarray, v: np.ndarray) -> float:
    """How close to w_j = 0 a run's neuron at state (W, v) must be to be at its origin to the precision the
    run was given: ``PASSAGE_TOLERANCES`` x (atol + rtol max |theta|), the run's error per step. Within it the
    run cannot tell on which side of the origin's surfaces the neuron is, so it may leave along any of them."""
    scale = max(float(np.abs(W).max()), float(np.abs(v).max()))
    return PASSAGE_TOLERANCES * (result.info["atol"] + result.info["rtol"] * scale)


def bursts(result) -> list[tuple[float, int]]:
    """The (t, j) of a run's event log (``record_events=True``) where neuron j has two or more events at one
    instant, in time order: every surface of a neuron passes through w_j = 0, so a passage through it meets
    them at once."""
    log = result.info["event_log"]
    instants, counts = np.unique(np.stack([log["t"], log["neuron"]]), axis=1, return_counts=True)
    return [(float(t), int(j)) for t, j in instants[:, counts >= 2].T]


def first_passage(result, X: np.ndarray, y: np.ndarray, loss: str) -> float:
    """The first time a run passes through the origin of a neuron where the flow is not unique: a burst of the
    neuron's events (:func:`bursts`) with |w_j| within :func:`passage_radius` and the certificate's two
    solutions at that state; infinity where there is none."""
    network = compile_field(loss)
    for t, j in bursts(result):
        W, v = result.dense(t)
        radius = passage_radius(result, W, v)
        if np.linalg.norm(W[j]) > radius:
            continue
        s = network.sample_factor(network.output(W, v, X), y)
        if origin_contact(W[j], float(v[j]), X, s, 0.0, radius=radius).not_unique:
            return t
    return float("inf")
