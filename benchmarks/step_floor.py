"""The floor of an event's cost at a width window's state: the passes any RK23 (or RK12) step and event restart make.

At the start state of ``benchmarks/flow_width.py``'s window (the problem's balanced ``random_sign`` init at
alpha = 1e-3 / sqrt(m), in log or data-span coordinates, its first mode), each item is timed alone (CPU, best
of three) and printed in milliseconds and in units of one field evaluation:

- the field evaluations of an RK23 step that ends in an event (three: its first stage is the restart's; with
  ``--method RK12`` one, the Heun–Euler pair forming no f(y_new) on such a step), and the step's passes over
  the state in the engine's own forms (``rk_step.explicit_step``): the stage inputs (two; RK12 one), the new
  state, the error norm, the step's tolerance, the dense output's coefficients, the copy of the last stage to
  the next step's first (RK23), and the state at the event; with the compiled kernels on and
  from ``rk_step.FUSED_MIN_SIZE`` components the engine's compiled forms (the stage sums and the tolerance
  in one pass each, from ``rk_step.FUSED_NORM_MIN_SIZE`` the error norm and the coefficients in one),
  numpy's otherwise (``FLS_NUMBA=0``);
- the event: every sample's output there (the selection and the field's finiteness read them) and the
  restart's evaluation from those outputs.

Their sum is a floor for an event that takes one step, with nothing for the step's guards, locating the
event, its selection and projection, or the Python between them; docs/flow.md "Width" compares it with the
target of ``flow_width.py``, 5 field evaluations + 1 ms per event.

    python benchmarks/step_floor.py [--problem stall|low_signal] [--width M] [--coords log|span]
        [--method RK23|RK12]
"""

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as flow_width.py: one BLAS thread

import numpy as np
from flow_width import problem_data
from implicit_prices import cpu_seconds

from fls.simulate.flow import jit
from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.rk_step import FUSED_MIN_SIZE, FUSED_NORM_MIN_SIZE
from fls.simulate.flow.smooth import ExplicitPieces
from fls.simulate.initialization import init_params

RTOL, ATOL = 1e-7, 1e-10  # flow_width.py's engine tolerances
STEP = 1e-6  # a step size for the stage coefficients (the passes' cost does not depend on it)


def floor_items(
    problem: str, m: int, coordinates: str = "log", method: str = "RK23"
) -> tuple[dict[str, float], str, int]:
    """(CPU milliseconds of each item of the floor (the module's docstring) at the window's start state in
    ``coordinates`` ("log" or "span") for ``method``'s step, which forms the step's passes took: "compiled" or
    "numpy", the field evaluations of a step that an event ends, the restart's not counted)."""
    X, y = problem_data(problem)
    W, v = init_params(m, X.shape[1], alpha=1e-3 / np.sqrt(m), scheme="random_sign", seed=0)
    coords = make_coordinates(coordinates, W, v, X, y, 1.0, float_arithmetic("logistic"), implicit=False)
    Y = coords.pack(W, v)
    mode = Mode(coords.cosines(Y) > 0, np.zeros((m, coords.n), dtype=bool))
    weights = SlidingWeights(mode, coords.X @ coords.X.T, coords.arith)
    pair = ExplicitPieces(method, RTOL, ATOL)  # its tableau as the engine steps it (RK12's without f(y_new))
    A, B, E, P = STEP * pair.A, STEP * pair.B, STEP * pair.E, STEP * pair.P.T
    stages, read, degree = pair.stages, len(pair.E), pair.P.shape[1]
    K, C = np.empty((4, Y.size)), np.empty((degree + 1, Y.size))
    work, scale = np.empty(Y.size), np.empty(Y.size)
    for row in K:
        coords.rhs(Y, weights, out=row)
    coords.state_tolerance(Y, RTOL, ATOL, scale)
    outputs = coords.output(Y, weights)
    at_event = 0.5 ** np.arange(degree + 1)[None]

    kernel = jit.kernels("rk_step_kernel") if Y.size >= FUSED_MIN_SIZE else None

    def stage_inputs() -> None:
        for s in range(1, stages):
            if kernel is not None:
                kernel.combine(tuple(A[s, :s]), K, Y, work)
            elif s == 1:
                np.add(np.multiply(K[0], A[1, 0], out=work), Y, out=work)
            else:
                np.add(np.matmul(A[s, :s], K[:s], out=work), Y, out=work)

    def new_state() -> None:
        if kernel is not None:
            kernel.combine(tuple(B), K, Y, np.empty_like(Y))
            return
        y_new = B @ K[:stages]
        y_new += Y

    def error_norm() -> None:
        ratio = np.divide(np.matmul(E, K[:read], out=work), scale, out=work)
        np.sqrt(ratio @ ratio / ratio.size)

    def coefficients() -> None:
        C[0] = Y
        np.matmul(P, K[:read], out=C[1:])

    def error_and_coefficients() -> None:
        interpolant = tuple(tuple(row) for row in P)
        kernel.error_and_coefficients(tuple(E), interpolant, K, Y, Y, False, RTOL, ATOL, scale, C)

    works = {
        "field evaluation": lambda: coords.rhs(Y, weights, out=K[1]),
        f"stage inputs ({stages - 1})": stage_inputs,
        "new state": new_state,
        "step tolerance": lambda: coords.state_tolerance(Y, RTOL, ATOL, scale),
    }
    if kernel is None or Y.size < FUSED_NORM_MIN_SIZE:
        works.update({"error norm": error_norm, "dense coefficients": coefficients})
    else:
        works["error, coefficients (fused)"] = error_and_coefficients
    if read > stages:  # a pair that forms f(y_new) on every step
        works["last stage to first"] = lambda: np.copyto(K[0], K[3])
    works.update(
        {
            "state at the event": lambda: at_event @ C,
            "outputs at the event": lambda: coords.output(Y, weights),
            "restart from the outputs": lambda: coords.rhs(Y, weights, outputs, out=K[1]),
        }
    )
    repeats = max(3, int(2e5 // m))
    forms = "numpy" if kernel is None else "compiled"
    items = {name: 1e3 * cpu_seconds(work, repeats) for name, work in works.items()}
    return items, forms, read - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="stall", choices=["stall", "low_signal"])
    parser.add_argument("--width", type=int, default=20000)
    parser.add_argument("--coords", default="log", choices=["log", "span"])
    parser.add_argument("--method", default="RK23", choices=["RK23", "RK12"])
    args = parser.parse_args()
    items, forms, evaluations = floor_items(args.problem, args.width, args.coords, args.method)
    field = items["field evaluation"]
    print(
        f"{args.problem}, m = {args.width}, {args.coords} coordinates, {args.method} (the step's {forms} forms): "
        f"one field evaluation {field:.3f} ms of CPU"
    )
    for name, cost in items.items():
        print(f"  {name:30s} {cost:9.3f} ms  {cost / field:5.2f} evaluations")
    floor = (evaluations - 1) * field + sum(items.values())  # the step's evaluations, one of them listed
    print(
        f"  floor per event: {floor:.2f} ms = {floor / field:.2f} evaluations; "
        f"target 5 evaluations + 1 ms = {5 * field + 1:.2f} ms"
    )


if __name__ == "__main__":
    main()
