"""The common links of the analytic field Jacobians: outputs -> sample factors -> weighted gates.

Every coordinate system's field is h_j = X^T q_j (or q_j itself, span coordinates) times a per-neuron factor,
with q = weighted_gates(S, N) linear in the representatives' jump factors S and offsets N
(:mod:`simulate.flow.samples`, :mod:`simulate.flow.modes`). With the outputs f = F positive + (F - L) negative
of every sample (F, L: the representatives' outputs with and without the mode's gates) and s_i = s(f_i),

    dS/dtheta = (positive + negative) diag(s'(f)) df/dtheta,     dN/dtheta = -negative diag(s'(f)) df/dtheta,
    df/dtheta = positive^T dF/dtheta + negative^T (dF/dtheta - dL/dtheta),

(positive = the identity and negative = 0 when no samples were merged), and dq_j/dtheta = Q_j dSN/dtheta with
Q_j the columns of the linear map (S, N) -> q_j (:func:`gate_map`). The coordinate systems supply dF and dL
(docs/flow.md, "How it works"); everything is float64 (Newton's iteration of an implicit method needs the
Jacobian to about sqrt(eps), and these forms are exact to a few roundoffs of the field's size).
"""

from __future__ import annotations

import numpy as np

from fls.simulate.flow.modes import SlidingWeights
from fls.simulate.flow.samples import SampleGroups


def factor_derivatives(
    samples: SampleGroups, slope: np.ndarray, dF: np.ndarray, dL: np.ndarray | None
) -> np.ndarray:
    """dSN/dtheta (k or 2k, size): the derivatives of the jump factors S, then (with opposite samples) of the
    offsets N, from ``slope`` = s'(f) of every sample (n_samples,) and the representatives' dF, dL (k, size)
    (dL only with opposite samples)."""
    if not samples.merged:
        return slope[:, None] * dF
    df = samples.positive.T @ dF
    if samples.opposite:
        df += samples.negative.T @ (dF - dL)
    ds = slope[:, None] * df
    dP = samples.positive @ ds
    if not samples.opposite:
        return dP
    minus_dN = samples.negative @ ds
    return np.concatenate([dP + minus_dN, -minus_dN])


def gate_map(weights: SlidingWeights, k: int, opposite: bool) -> np.ndarray:
    """Q (m, k, k or 2k) with q_j = Q_j [S; N]: the mode's weighted gates (active pairs, sliding pairs' z from
    the sliding map (1), offsets on unslid pairs) as one linear map of the jump factors and the offsets."""
    unit = np.eye(k)
    columns = [weights.weighted_gates(unit, np.zeros((k, k)) if opposite else None)]
    if opposite:
        columns.append(weights.weighted_gates(np.zeros((k, k)), unit))
    return np.concatenate([np.moveaxis(q, 0, -1) for q in columns], axis=-1)
