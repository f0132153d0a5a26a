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

from typing import Any

import numpy as np

from fls.simulate.flow.coupled_jacobian import CoupledJacobian, neuron_index
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


def amplitude_jacobian(
    coords: Any,
    weights: SlidingWeights,
    Y: np.ndarray,
    D: np.ndarray,
    inputs: np.ndarray,
    outputs: np.ndarray | None,
) -> CoupledJacobian:
    """The Jacobian of the field of coordinates whose per-neuron numbers are the output weights v (plain and
    data-span), as neurons' blocks plus the coupling (:mod:`~simulate.flow.coupled_jacobian`): rows r_j with
    dD_ji/dr_j = Z_i (Z = ``inputs`` (k, row): X, or K in span coordinates) and r_j' = (c/n) v_j Y^T q_j
    (Y = ``outputs`` (k, row): X, or None for the identity).

    dF_i/dr_j = c v_j A_ji Z_i and dF_i/dv_j = c A_ji D_ji (L alike with A = 1). With dq_j = Q_j dSN, r = c/n
    and B_j = [(A . D)_j, D_j] (D_j only with opposite samples, whose offsets N reach v' through relu(-u) =
    relu(u) - u):
    d r_j'/dtheta = r [v_j Y^T Q_j dSN + e_{v_j} Y^T q_j],
    d v_j'/dtheta = r [B_j dSN + e_{r_j}^T Z^T ((A . S)_j + N)].
    """
    m, k, row = coords.m, coords.n, inputs.shape[1]
    v = Y[m * row :]
    A, opposite, c = weights.active, coords.samples.opposite, coords.c
    f = coords.samples.outputs(c * (v @ (A * D)), c * (v @ D) if opposite else None)
    S, N = coords.sample_factors(f)

    def outputs_derivative(gates: np.ndarray) -> np.ndarray:  # dF (gates: the mode's A) or dL (gates 1)
        scaled = c * v[:, None] * gates  # (m, k)
        return np.concatenate(
            [(scaled.T[:, :, None] * inputs[:, None, :]).reshape(k, m * row), c * (gates * D).T], 1
        )

    dL = outputs_derivative(np.ones((m, k))) if opposite else None
    dSN = factor_derivatives(
        coords.samples, coords.arith.sample_slope(f, coords.y), outputs_derivative(A), dL
    )
    Q = gate_map(weights, k, opposite)
    q = weights.weighted_gates(S, N)
    if outputs is not None:
        Q, q = np.einsum("jil,id->jdl", Q, outputs), q @ outputs
    left = np.concatenate(
        [
            ((coords.rate * v)[:, None, None] * Q).reshape(m * row, -1),
            coords.rate * (np.concatenate([A * D, D], axis=1) if opposite else A * D),
        ]
    )
    kept = A * S if N is None else A * S + N
    # (r_j, v_j): beyond the outputs, r_j' is linear in v_j and v_j' in r_j
    blocks = np.zeros((m, row + 1, row + 1))
    blocks[:, :row, row] = coords.rate * q
    blocks[:, row, :row] = coords.rate * kept @ inputs
    return CoupledJacobian(blocks, neuron_index(m, row), left, dSN)
