"""The field's Jacobian as per-neuron blocks plus a coupling of low rank, and its shifted linear systems.

Every coordinate system's field couples neurons only through the network's outputs: neuron j's velocity
depends on the other neurons' states through the sample factors S, N of the k samples
(:mod:`~simulate.flow.chain`). So the Jacobian is

    J = B + U V,      B = diag(B_1, ..., B_m) (each B_j (p, p) on neuron j's p state components),
                      U = dvelocity/dSN (size, l),  V = dSN/dstate (l, size),  l = k or 2k,

with p = d + 1 (plain and log coordinates) or k + 1 (data-span). An implicit step solves (c I - J) x = b
for a real or complex shift c (Radau: c = mu / h for its three collocation roots; docs/flow.md "Cost"). A
dense LU of the size-square matrix costs (2/3) size^3 flops (4 times that in complex arithmetic); with
M = c I - B, the Woodbury identity

    (M - U V)^{-1} b = M^{-1} b + M^{-1} U C^{-1} V M^{-1} b,      C = I_l - V M^{-1} U,

needs the m inverses of M_j (m p^3), M^{-1} U (size p l), C (l^2 size) and its LU (l^3): at m = 40,
d = 21, k = 28 (a state of 880) about 2 Mflop instead of 450 (real) and 1 800 (complex). The identity is
exact; its rounding is that of the blocks' and C's solves, small where M is well conditioned (c I dominates
each neuron's own block, as at the steps an implicit method takes on these fields). Each factorization
measures its backward error on a fixed probe b, ||b - A x|| / (||A|| ||x|| + ||b||) in the max norm with
||A|| bounded by |c| + ||B|| + ||U|| ||V||, and falls back to the dense LU where that exceeds sqrt(eps),
the accuracy the simplified Newton iteration needs of its matrix (:mod:`~simulate.flow.chain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lu_factor, lu_solve

#: The largest backward error of a structured solve on the probe, relative: sqrt(eps).
BACKWARD_ERROR_BOUND = float(np.sqrt(np.finfo(np.float64).eps))
#: The smallest state whose systems are factored by structure: below it the dense LU costs less (one complex
#: factorization, one thread: 0.14 against 0.19 ms at a state of 90, 0.28 against 0.23 ms at 120, 1.3
#: against 0.35 ms at 220, 106 against 1.5 ms at 880; docs/flow.md "Cost").
STRUCTURED_MIN_SIZE = 120


def neuron_index(m: int, row: int) -> np.ndarray:
    """(m, row + 1): the state components of each neuron in a state laid out as m rows of ``row`` numbers
    (w_j, u_j or lambda_j), then one number per neuron (v_j or rho_j): its row, then its number."""
    rows = np.arange(m * row).reshape(m, row)
    return np.concatenate([rows, (m * row + np.arange(m))[:, None]], axis=1)


@dataclass
class CoupledJacobian:
    """J = B + U V (module docstring): ``blocks`` (m, p, p) the B_j in the order of ``index`` (m, p), the
    state components of neuron j; ``left`` U (size, l); ``right`` V (l, size). Acts as the dense array where
    one is asked for (``np.asarray``: scipy's BDF, tests)."""

    blocks: np.ndarray
    index: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def size(self) -> int:
        return self.left.shape[0]

    def dense(self) -> np.ndarray:
        """J as a (size, size) array: U V, plus the blocks at their neurons' components."""
        J = self.left @ self.right
        J[self.index[:, :, None], self.index[:, None, :]] += self.blocks
        return J

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        J = self.dense()
        return J if dtype is None else J.astype(dtype, copy=False)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """J x for x (size,), real or complex, from the parts: O(m p^2 + size l)."""
        y = self.left @ (self.right @ x)
        y[self.index] += np.einsum("jpq,jq->jp", self.blocks, x[self.index])
        return y

    def shifted_factor(self, shift: complex) -> StructuredFactor | DenseFactor:
        """A factorization of (shift I - J): structured (module docstring), or the dense LU below
        :data:`STRUCTURED_MIN_SIZE`, where the blocks are singular or where the structured solve misses
        :data:`BACKWARD_ERROR_BOUND` on the probe."""
        if self.size < STRUCTURED_MIN_SIZE:
            return DenseFactor(self, shift)
        try:
            factor = StructuredFactor(self, shift)
        except np.linalg.LinAlgError:  # a block M_j or the capacitance C singular
            return DenseFactor(self, shift)
        if factor.backward_error() > BACKWARD_ERROR_BOUND:
            return DenseFactor(self, shift)
        return factor


class StructuredFactor:
    """(shift I - J)^{-1} by the Woodbury identity (module docstring): the inverses of M_j = shift I - B_j,
    M^{-1} U laid out as U, and the LU of C = I - V M^{-1} U."""

    structured = True

    def __init__(self, jacobian: CoupledJacobian, shift: complex) -> None:
        self.jacobian, self.shift = jacobian, shift
        index, blocks = jacobian.index, jacobian.blocks
        p = index.shape[1]
        dtype = np.result_type(blocks, np.asarray(shift))
        shifted = np.eye(p, dtype=dtype) * shift - blocks  # M_j (m, p, p)
        self.block_inverses = np.linalg.inv(shifted)
        spread = np.empty(jacobian.left.shape, dtype=dtype)  # M^{-1} U
        spread[index] = self.block_inverses @ jacobian.left[index]
        self.spread = spread
        capacitance = np.eye(jacobian.right.shape[0], dtype=dtype) - jacobian.right @ spread
        if not np.all(np.isfinite(capacitance)):
            raise np.linalg.LinAlgError("a block of the shifted Jacobian is numerically singular")
        self.capacitance = lu_factor(capacitance, check_finite=False)
        if np.any(self.capacitance[0].diagonal() == 0):
            raise np.linalg.LinAlgError("the capacitance matrix of the shifted Jacobian is singular")

    def solve(self, b: np.ndarray) -> np.ndarray:
        """x with (shift I - J) x = b, for b (size,)."""
        index = self.jacobian.index
        x = np.empty(b.shape, dtype=self.spread.dtype)
        x[index] = np.einsum("jpq,jq->jp", self.block_inverses, b[index])
        x += self.spread @ lu_solve(self.capacitance, self.jacobian.right @ x, check_finite=False)
        return x

    def backward_error(self) -> float:
        """||b - A x|| / (||A|| ||x|| + ||b||) (max norms; ||A|| bounded from the parts) for A = shift I - J
        and a fixed probe b of alternating signs."""
        jacobian = self.jacobian
        b = np.where(np.arange(jacobian.size) % 2 == 0, 1.0, -1.0)
        x = self.solve(b)
        residual = b - (self.shift * x - jacobian.matvec(x))
        norm = (
            abs(self.shift)
            + np.abs(jacobian.blocks).sum(axis=2).max()
            + np.abs(jacobian.left).sum(axis=1).max() * np.abs(jacobian.right).sum(axis=1).max()
        )
        error = np.abs(residual).max() / (norm * np.abs(x).max() + 1.0)
        return float(error) if np.isfinite(error) else np.inf


class DenseFactor:
    """(shift I - J)^{-1} by the LU of the dense matrix (scipy's own path), where the structured one fails."""

    structured = False

    def __init__(self, jacobian: CoupledJacobian, shift: complex) -> None:
        matrix = -jacobian.dense().astype(np.result_type(np.float64, np.asarray(shift)))
        matrix[np.diag_indices_from(matrix)] += shift
        self.lu = lu_factor(matrix, overwrite_a=True)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """x with (shift I - J) x = b, for b (size,)."""
        return lu_solve(self.lu, b)
