"""The 20-point stall problem (docs/design.md section 4): the hybrid flow engine against plain ODE solvers.

n = 20 points uniform on the unit sphere in d = 3, y = sign(x_1), m = 20 neurons, random_sign init, mean
logistic loss, target risk 1e-2. For alpha in {1e-3, 0.1, 1} the engine's crossings, sliding entries, RHS
evaluations and wall time; then scipy's DOP853, Radau and LSODA on the unswitched field at rtol 1e-10, capped
at 1e5 evaluations or 60 s each, and how far they got.

    python benchmarks/stall.py
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.baselines import plain_ode_flow
from fls.simulate.flow.problems import stall_problem

ALPHAS = (1e-3, 0.1, 1.0)
TARGET = 1e-2
PLAIN_METHODS = ("DOP853", "Radau", "LSODA")
CAP_EVALS, CAP_SECONDS = 100_000, 60.0


def main() -> None:
    integrate_flow(*stall_problem(1.0), t_max=0.1)  # compile the field once, outside the timings
    print(f"stall problem: n = 20, d = 3, m = 20, random_sign init, logistic loss, target risk {TARGET:g}\n")
    print("engine (DOP853 pieces, rtol 1e-10, atol 1e-12)")
    print(
        f"{'alpha':>7} {'coords':>6} {'status':>15} {'t_stop':>9} {'crossings':>9} {'slide in':>8} "
        f"{'slide out':>9} {'RHS evals':>9} {'wall s':>7}"
    )
    for alpha in ALPHAS:
        r = integrate_flow(*stall_problem(alpha), target_risk=TARGET, t_max=1e4, rtol=1e-10, atol=1e-12)
        print(
            f"{alpha:>7g} {r.info['coords']:>6} {r.status:>15} {r.t_stop:>9.3f} {r.switches:>9d} "
            f"{r.sliding_entries:>8d} {r.info['sliding_exits']:>9d} {r.rhs_evals:>9d} {r.wall_time:>7.2f}"
        )
    print(
        f"\nplain solve_ivp on the unswitched field (rtol 1e-10, atol 1e-12; cap {CAP_EVALS} evals / "
        f"{CAP_SECONDS:g} s)"
    )
    print(f"{'alpha':>7} {'method':>7} {'status':>15} {'t reached':>9} {'RHS evals':>9} {'wall s':>7}")
    for alpha in ALPHAS:
        for method in PLAIN_METHODS:
            p = plain_ode_flow(
                *stall_problem(alpha),
                target_risk=TARGET,
                t_max=1e4,
                method=method,
                rtol=1e-10,
                atol=1e-12,
                max_evals=CAP_EVALS,
                max_seconds=CAP_SECONDS,
            )
            print(f"{alpha:>7g} {method:>7} {p.status:>15} {p.t:>9.3f} {p.rhs_evals:>9d} {p.wall_time:>7.2f}")


if __name__ == "__main__":
    main()
