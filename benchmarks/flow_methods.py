"""The method switches of the flow engine, each against the same run without it (docs/flow.md, "Choosing a
method and tolerances").

1. The order test ("Accuracy-bound runs"): RK23 at rtol 1e-11 (atol 1e-14, plain coordinates) on the stall data
   (n = 20 on the unit sphere in d = 3, logistic loss, random_sign init, seed 0), m = 10 at alpha = 1 to
   t = 20 and m = 4 at alpha = 0.5 to t = 50, with ``high_order_method="DOP853"`` (the default) and with
   ``None``.
2. The stiffness test's implicit trial ("Stiff problems"): DOP853 at rtol 1e-11 on the stored exponential-loss
   problem ``tests/simulate/data/rk23_tight.npz`` (weights ~150, n = 8, d = 1, m = 10, data-span coordinates,
   no event), with ``stiff_method="Radau"`` (the default) and with ``None``.

For each pair: field evaluations, CPU seconds, the switches taken, and each run's largest state error against
DOP853 at 100 times tighter tolerances (rtol at least 1e-14, plain coordinates), in units of that reference's
rtol |theta|max + atol; then the ratios alone / switched. One BLAS thread, each run timed once.

    python benchmarks/flow_methods.py
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.problems import stall_problem
from fls.simulate.initialization import init_params

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import Problem, run, state_of


def stall_case(m: int, alpha: float, t_max: float) -> Problem:
    """RK23 at rtol 1e-11 in plain coordinates on the stall data with m neurons at init scale alpha."""
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(m, X.shape[1], alpha=alpha, scheme="random_sign", seed=0)
    return Problem(W, v, X, y, "logistic", None, t_max, rtol=1e-11, atol=1e-14, method="RK23", coords="plain")


def timed(problem: Problem, **options):
    """(result, CPU seconds) of the problem's run with ``options``."""
    start = time.process_time()
    result = run(problem, **options)
    return result, time.process_time() - start


def switches(result) -> str:
    """The run's switches as 'from->to (reason) at t', or '-' for none."""
    taken = result.info["method_switches"]
    return ", ".join(f"{s['from']}->{s['to']} ({s['reason']}) at {s['t']:.3g}" for s in taken) or "-"


def compare(name: str, problem: Problem, option: str, value: str) -> None:
    """Print the run with ``option=value`` (the default) and with ``option=None``, and their ratios."""
    reference = run(problem, reference=True)
    exact = state_of(reference)
    unit = max(problem.rtol / 100, 1e-14) * np.abs(exact).max() + problem.atol / 100
    rows = []
    for label, setting in ((f"{option}={value}", value), (f"{option}=None", None)):
        result, cpu = timed(problem, **{option: setting})
        err = np.abs(state_of(result) - exact).max() / unit
        rows.append((result.rhs_evals, cpu))
        print(
            f"  {label:<26} {result.status:>14} {result.rhs_evals:>8d} evals {cpu:>7.2f} s CPU "
            f"error {err:>8.3g} x ref. unit   switches: {switches(result)}"
        )
    (evals_on, cpu_on), (evals_off, cpu_off) = rows
    print(
        f"  {name}: alone / switched = {evals_off / evals_on:.1f}x evaluations, {cpu_off / cpu_on:.1f}x CPU\n"
    )


def main() -> None:
    integrate_flow(*stall_problem(1.0), t_max=0.1)  # compile the field once, outside the timings
    print("1. order test: RK23 at rtol 1e-11, atol 1e-14, plain coordinates, stall data, random_sign init")
    for m, alpha, t_max in ((10, 1.0, 20.0), (4, 0.5, 50.0)):
        print(f" m = {m}, alpha = {alpha:g}, t = 0 .. {t_max:g}")
        compare(f"m = {m}", stall_case(m, alpha, t_max), "high_order_method", "DOP853")
    print("2. implicit trial: DOP853 at rtol 1e-11 on the stored exponential-loss problem rk23_tight")
    problem = replace(stored_problem("rk23_tight"), method="DOP853")
    print(f" atol {problem.atol:g}, {problem.coords} coordinates, t = 0 .. {problem.t_max:g}")
    compare("rk23_tight", problem, "stiff_method", "Radau")


if __name__ == "__main__":
    main()
