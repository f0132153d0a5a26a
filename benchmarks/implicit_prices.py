"""The stiffness trial's prices of an implicit step's linear algebra against its measured CPU time.

The trial (docs/flow.md, "Choosing a method") prices the analytic Jacobian, Radau's factorizations of
shift I - J and their solves in field-evaluation equivalents from operation counts
(``fls.simulate.flow.implicit_cost``). This measures each on the states of two stored slow-tier problems (a
state of 880 numbers in plain and data-span coordinates, one of 532 in plain coordinates), in units of one
field evaluation timed in the same process (CPU time, best of three), and prints it beside its price: the
Jacobian in parts, a structured factorization with a real and with a complex shift, a structured solve, and
the dense LU the structure replaces.

    python benchmarks/implicit_prices.py
"""

import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

import numpy as np

from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coupled_jacobian import DenseFactor, StructuredFactor
from fls.simulate.flow.coupled_radau import IDENTITY
from fls.simulate.flow.implicit_cost import AnalyticJacobian, factorization_flops, solve_flops
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.piece_field import EventCounts

DATA = Path(__file__).resolve().parents[1] / "tests" / "simulate" / "data"
CASES = (
    ("stiff_log_radau_restarts", "plain"),
    ("stiff_log_radau_restarts", "span"),
    ("stiff_trial_analytic_jacobian", "plain"),
)
REAL_SHIFT, COMPLEX_SHIFT = 1e3, 1e3 + 5e2j  # shifts that dominate the blocks, as at an implicit step


def cpu_seconds(call, repeats: int) -> float:
    """The least CPU time per call of ``call`` over three rounds of ``repeats`` calls."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeats):
            call()
        best = min(best, (time.process_time() - started) / repeats)
    return best


def measured_and_priced(name: str, coords_name: str) -> tuple[int, dict[str, tuple[float, float]]]:
    """(the state's size, for each operation its CPU time and its price, both in field evaluations) on the
    stored problem ``name``'s initial state in the coordinates ``coords_name``."""
    arrays = np.load(DATA / f"{name}.npz")
    W, v, X, y, loss = arrays["W"], arrays["v"], arrays["X"], arrays["y"], str(arrays["loss"])
    coords = make_coordinates(coords_name, W, v, X, y, 1.0, float_arithmetic(loss), implicit=True)
    Y = coords.pack(W, v)
    cosines = coords.cosines(Y)
    weights = SlidingWeights(
        Mode(cosines > 0, np.zeros_like(cosines, dtype=bool)), coords.X @ coords.X.T, coords.arith
    )
    jac = AnalyticJacobian(coords, weights, loss, EventCounts())
    J, prices = jac(Y), jac.prices
    field = cpu_seconds(lambda: coords.rhs(Y, weights), 50)
    b = np.ones(J.size, dtype=complex)
    real_factor, complex_factor = StructuredFactor(J, REAL_SHIFT), StructuredFactor(J, COMPLEX_SHIFT)
    rows = {
        "Jacobian": (cpu_seconds(lambda: jac(Y), 20), prices.jacobian),
        "LU real": (
            cpu_seconds(lambda: StructuredFactor(J, REAL_SHIFT), 10),
            factorization_flops(REAL_SHIFT * IDENTITY - J, real_factor),
        ),
        "LU complex": (
            cpu_seconds(lambda: StructuredFactor(J, COMPLEX_SHIFT), 10),
            factorization_flops(COMPLEX_SHIFT * IDENTITY - J, complex_factor),
        ),
        "solve": (cpu_seconds(lambda: complex_factor.solve(b), 50), solve_flops(b, complex_factor)),
        "dense LU real": (
            cpu_seconds(lambda: DenseFactor(J, REAL_SHIFT), 3),
            factorization_flops(np.empty((J.size, J.size))),
        ),
    }
    return J.size, {
        what: (seconds / field, prices.evaluations(flops)) for what, (seconds, flops) in rows.items()
    }


def main() -> None:
    print(f"{'problem':>30} {'coords':>6} {'N':>4} | measured / priced, in field evaluations")
    for name, coords_name in CASES:
        size, rows = measured_and_priced(name, coords_name)
        cells = "  ".join(
            f"{what} {measured:.1f} / {priced:.1f}" for what, (measured, priced) in rows.items()
        )
        print(f"{name:>30} {coords_name:>6} {size:>4} | {cells}", flush=True)


if __name__ == "__main__":
    main()
