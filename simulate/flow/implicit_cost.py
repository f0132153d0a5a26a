"""The work of an implicit method's step in field-evaluation equivalents, from operation counts: what the
stiffness test's trial (:mod:`simulate.flow.stiffness`) compares with the explicit method's evaluations.

A Radau or BDF step does far more than evaluate the field: it forms the Jacobian (the engine's analytic one,
:mod:`simulate.flow.chain`), LU-factorizes the iteration matrices (Radau: one real and one complex N x N
matrix each time its step changes) and solves with them at every Newton iteration. On a state of a few
hundred numbers those dominate (N = 532: one real LU took as long as 140 field evaluations, one complex LU
430, the Jacobian 17). The trial therefore counts them and prices each by its floating-point operations
against a field evaluation's, and counts for every accepted step of either method the engine's own work
besides its evaluations, STEP_WORK (docs/flow.md, "Choosing a method"):

    LU of an N x N matrix: CALL_FLOPS + (2/3) N^3,  a solve with it: CALL_FLOPS + 2 N^2 per right-hand side
    (the operations 4 times as many if complex), field: FIELD_CALL_FLOPS + 4 k N,
    analytic Jacobian: JACOBIAN_CALL_FLOPS + JACOBIAN_FLOPS_PER_ENTRY k N^2,

for a state of N numbers and k distinct samples. From
:data:`~simulate.flow.coupled_jacobian.STRUCTURED_MIN_SIZE` numbers on, the switched pieces (and the trial,
with the same solver class) factor Radau's systems through the Jacobian's structure, m blocks of p
components and a coupling of rank l (:mod:`simulate.flow.coupled_jacobian`); those factorizations and solves
are priced by their own operations,

    factorization: STRUCTURED_FACTOR_CALLS CALL_FLOPS + 2 m p^3 + 2 m p^2 l + 2 l^2 N + (2/3) l^3,
    solve: STRUCTURED_SOLVE_CALLS CALL_FLOPS + 2 m p^2 + 4 N l + 2 l^2,
    analytic Jacobian in parts: JACOBIAN_CALL_FLOPS + JACOBIAN_FLOPS_PER_ENTRY k (m p^2 + 2 N l),

(measured on states of 480 to 880 numbers, ``benchmarks/implicit_prices.py``: a structured factorization 6
to 51 field evaluations' time, a solve 1.3 to 2.2, the Jacobian in parts 6 to 14, where a dense LU took 110
to 630), and a factorization that
falls back to the dense LU is priced as one. The field's own arithmetic (two products of the k samples
with the state) is small against its fixed cost, the few dozen numpy calls of one evaluation: about 20 us,
the time of 6e5 operations of a dense LU on one core (measured: 13 to 35 us per evaluation for N = 20 to 918,
LU at 17 to 35 Gflop/s for N = 144 to 918; an LU or a solve of a small system takes 8 to 13 us, half an
evaluation, its CALL_FLOPS). The Jacobian's constants are fitted to the same measurements (4 to 220 field
evaluations' time for N = 20 to 918), to within a factor 2, and the LU and solves' prices are within a
factor 3 of their times (complex solves run at a third of the real ones' rate); the dense Jacobian costs
less than one dense LU wherever N > 100, so its price matters little there (in parts the two are
comparable, and both are priced within a factor 2.2 of their times). The counts are exact and the prices fixed, so the trial's
finding, and with it whether a run switches (which changes its results), is the same on every machine and
under any load; a timing would not be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fls.simulate.flow.coupled_jacobian import STRUCTURED_MIN_SIZE, CoupledJacobian, StructuredFactor

#: One field evaluation's fixed cost (its numpy calls), in floating-point operations of a dense LU.
FIELD_CALL_FLOPS = 6e5
#: The fixed cost of one LU factorization or one solve with it (scipy's checks around LAPACK's call).
CALL_FLOPS = 3e5
#: The analytic Jacobian's fixed cost: about four field evaluations' calls.
JACOBIAN_CALL_FLOPS = 4 * FIELD_CALL_FLOPS
#: Its operations per entry of the N x N Jacobian and per distinct sample (the products through the gates).
JACOBIAN_FLOPS_PER_ENTRY = 8.0
#: The engine's own work per accepted step of any method, in field-evaluation equivalents: the guards sampled
#: on the step's dense output, the event and stiffness bookkeeping (measured, CPU time per step beyond its
#: evaluations: 10 for RK23 on states of 532 and 864 numbers, 26 for DOP853 with its denser guard samples).
STEP_WORK = 10.0
#: A complex operation's cost in real ones (a product of two complex numbers: four real products).
COMPLEX_FACTOR = 4.0
#: The numpy and scipy calls of a structured factorization (its blocks' inverses, the capacitance matrix and
#: its LU, the probe's solve), in units of CALL_FLOPS (fitted: 12 to 18 for states of 480 to 880 numbers).
STRUCTURED_FACTOR_CALLS = 16
#: The calls of a structured solve, in units of CALL_FLOPS.
STRUCTURED_SOLVE_CALLS = 3


@dataclass(frozen=True)
class OperationPrices:
    """What one field evaluation and one analytic Jacobian cost, in floating-point operations, for a state
    of ``size`` numbers and ``samples`` distinct samples (module docstring)."""

    samples: int
    size: int
    #: (m, p, l) where the Jacobian comes in parts and the systems are factored by them, else None.
    structure: tuple[int, int, int] | None = None

    @property
    def field(self) -> float:
        """One field evaluation: FIELD_CALL_FLOPS + 4 k N."""
        return FIELD_CALL_FLOPS + 4.0 * self.samples * self.size

    @property
    def jacobian(self) -> float:
        """One analytic Jacobian: JACOBIAN_CALL_FLOPS + JACOBIAN_FLOPS_PER_ENTRY k N^2, or k (m p^2 + 2 N l)
        per entry's price in parts (module docstring)."""
        if self.structure is None:
            return JACOBIAN_CALL_FLOPS + JACOBIAN_FLOPS_PER_ENTRY * self.samples * self.size**2
        m, p, rank = self.structure
        entries = m * p * p + 2 * self.size * rank
        return JACOBIAN_CALL_FLOPS + JACOBIAN_FLOPS_PER_ENTRY * self.samples * entries

    def evaluations(self, flops: float) -> float:
        """``flops`` operations in field-evaluation equivalents."""
        return flops / self.field


class PricedJacobian(Protocol):
    """y -> a field's Jacobian at y, with the :class:`OperationPrices` of that field and Jacobian."""

    prices: OperationPrices

    def __call__(self, y: np.ndarray) -> np.ndarray: ...


class AnalyticJacobian:
    """y -> the analytic Jacobian of one piece's field (``coords.jacobian`` under the mode's ``weights``),
    each call counted in ``counts.jac_evals``, with its :attr:`prices` for the stiffness test's trial."""

    def __init__(self, coords: Any, weights: Any, loss: str, counts: Any) -> None:
        self.coords, self.weights, self.loss, self.counts = coords, weights, loss, counts

    @property
    def prices(self) -> OperationPrices:
        """The prices of the field and of this Jacobian on the coordinates' state (in parts from
        :data:`~simulate.flow.coupled_jacobian.STRUCTURED_MIN_SIZE` numbers on)."""
        coords = self.coords
        size, samples = int(coords.size), int(coords.n)
        if size < STRUCTURED_MIN_SIZE:
            return OperationPrices(samples, size)
        rank = 2 * samples if coords.samples.opposite else samples
        return OperationPrices(samples, size, (int(coords.m), size // int(coords.m), rank))

    def __call__(self, Y: np.ndarray) -> CoupledJacobian:
        """The Jacobian in parts (:class:`~simulate.flow.coupled_jacobian.CoupledJacobian`): Radau factors its
        systems by them, BDF reads it as the dense array."""
        self.counts.jac_evals += 1
        return self.coords.coupled_jacobian(Y, self.weights, self.loss)


def factorization_flops(matrix: Any, factor: Any = None) -> float:
    """The operations of factoring an iteration matrix: for a square array, its LU, CALL_FLOPS + (2/3) N^3,
    the latter times COMPLEX_FACTOR if it is complex; for Radau's unformed shift I - J in parts
    (:class:`~simulate.flow.coupled_radau.ShiftedJacobian`), those of the ``factor`` it got, structured
    (module docstring) or the dense LU where the structured one fell back."""
    if isinstance(matrix, np.ndarray):
        return _dense_factorization_flops(matrix.shape[0], np.iscomplexobj(matrix))
    jacobian, is_complex = matrix.jacobian, np.iscomplexobj(np.asarray(matrix.shift))
    if not isinstance(factor, StructuredFactor):
        return _dense_factorization_flops(jacobian.size, is_complex)
    m, p = jacobian.blocks.shape[:2]
    rank, size = jacobian.right.shape
    flops = 2.0 * m * p**3 + 2.0 * m * p * p * rank + 2.0 * rank * rank * size + 2.0 / 3.0 * rank**3
    return STRUCTURED_FACTOR_CALLS * CALL_FLOPS + (flops * COMPLEX_FACTOR if is_complex else flops)


def _dense_factorization_flops(size: int, is_complex: bool) -> float:
    flops = 2.0 / 3.0 * size**3
    return CALL_FLOPS + (flops * COMPLEX_FACTOR if is_complex else flops)


def solve_flops(rhs: np.ndarray, factor: Any = None) -> float:
    """The operations of a solve for the right-hand sides ``rhs`` (N, or N x columns): with an LU of an N x N
    matrix CALL_FLOPS + 2 N^2 per column, with a structured ``factor`` STRUCTURED_SOLVE_CALLS CALL_FLOPS +
    2 m p^2 + 4 N l + 2 l^2 (module docstring); the operations times COMPLEX_FACTOR if complex."""
    columns = 1 if rhs.ndim == 1 else rhs.shape[1]
    size, calls = rhs.shape[0], 1
    flops = 2.0 * size**2 * columns
    if isinstance(factor, StructuredFactor):
        m, p = factor.jacobian.blocks.shape[:2]
        rank = factor.jacobian.right.shape[0]
        flops, calls = (2.0 * m * p * p + 4.0 * size * rank + 2.0 * rank * rank) * columns, STRUCTURED_SOLVE_CALLS
    return calls * CALL_FLOPS + (flops * COMPLEX_FACTOR if np.iscomplexobj(rhs) else flops)


class LinearAlgebraCount:
    """Counts the operations of an implicit scipy solver's LU factorizations and solves (Radau, BDF: their
    ``lu`` and ``solve_lu``, which every factorization and Newton iteration goes through): their numbers
    and their operations, :attr:`flops`."""

    def __init__(self, solver: Any) -> None:
        self.flops, self.factorizations, self.solves = 0.0, 0, 0
        lu, solve = solver.lu, solver.solve_lu

        def counted_lu(matrix: Any) -> Any:
            factors = lu(matrix)
            self.flops += factorization_flops(matrix, factors)
            self.factorizations += 1
            return factors

        def counted_solve(factors: Any, rhs: np.ndarray) -> np.ndarray:
            self.flops += solve_flops(rhs, factors)
            self.solves += 1
            return solve(factors, rhs)

        solver.lu, solver.solve_lu = counted_lu, counted_solve
