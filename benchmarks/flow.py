"""The flow engine on the low_signal Gaussian mixture against fixed-step Euler (plain GD) and plain solve_ivp.

low_signal: n = 40, d = 100, kappa = 2, sigma = 1; m = 100 neurons, random_sign init, target risk 0.05. For each
alpha in {1e-4, 0.3, 3}:

1. a tight engine run (rtol 1e-13) to the target gives the stop time T and the reference state theta(T);
2. the engine at working tolerance (the loosest of rtol 1e-8, 1e-10 that reaches 1e-6) runs to T: its error;
3. Euler (GD) to T: its first-order constant C = error / eta from two coarse steps, the step eta* = 1e-6 / C that
   reaches 1e-6, and its cost there — run when it takes at most EULER_MAX_STEPS steps, else extrapolated from the
   measured cost per step (marked 'extrap.');
4. scipy DOP853 on the unswitched field at the engine's tolerance, capped at 20x the engine's evaluations.

The table gives the ratios Euler / engine of RHS evaluations and wall time, and the accuracy each method reaches.

    python benchmarks/flow.py
"""

import math
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

import numpy as np

from simulate.data import make_data
from simulate.flow import integrate_flow
from simulate.flow.baselines import euler, plain_ode_flow
from simulate.initialization import init_params

ALPHAS = (1e-4, 0.3, 3.0)
TARGET = 0.05
ACCURACY = 1e-6
EULER_MAX_STEPS = 200_000


def state(run) -> np.ndarray:
    return np.concatenate([run.W.ravel(), run.v])


def relative_error(run, exact: np.ndarray) -> float:
    return float(np.max(np.abs(state(run) - exact)) / np.max(np.abs(exact)))


def main() -> None:
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    X, y = data.X, data.y
    integrate_flow(
        *init_params(100, 100, alpha=1.0, scheme="random_sign", seed=0), X, y, t_max=0.01
    )  # compile
    rows = []
    for alpha in ALPHAS:
        W, v = init_params(100, 100, alpha=alpha, scheme="random_sign", seed=0)
        tight = integrate_flow(W, v, X, y, target_risk=TARGET, t_max=1e5, rtol=1e-13, atol=1e-15)
        T, exact = tight.t_stop, state(tight)
        for rtol in (1e-8, 1e-10):
            engine = integrate_flow(W, v, X, y, t_max=T, rtol=rtol, atol=rtol * 1e-2)
            engine_error = relative_error(engine, exact)
            if engine_error <= ACCURACY:
                break
        coarse = [euler(W, v, X, y, eta=T / k, t=T) for k in (1000, 2000)]
        coarse_errors = [relative_error(run, exact) for run in coarse]
        constant = coarse_errors[1] / (T / 2000)
        order = math.log2(coarse_errors[0] / coarse_errors[1])
        steps = math.ceil(T * constant / ACCURACY)
        if steps <= EULER_MAX_STEPS:
            gd = euler(W, v, X, y, eta=T / steps, t=T)
            gd_error, gd_wall, mark = relative_error(gd, exact), gd.wall_time, ""
        else:
            gd_error, gd_wall, mark = ACCURACY, steps * coarse[1].wall_time / coarse[1].rhs_evals, " extrap."
        plain = plain_ode_flow(
            W,
            v,
            X,
            y,
            t_max=T,
            rtol=rtol,
            atol=rtol * 1e-2,
            max_evals=20 * engine.rhs_evals,
            max_seconds=600.0,
        )
        plain_result = (
            f"error {relative_error(plain, exact):.1e}"
            if plain.status != "stalled"
            else f"stalled at t = {plain.t:.3g}"
        )
        rows.append(
            (
                alpha,
                T,
                tight,
                engine,
                rtol,
                engine_error,
                order,
                steps,
                gd_error,
                gd_wall,
                mark,
                plain,
                plain_result,
            )
        )
        print(f"alpha = {alpha:g} done", flush=True)

    print(
        f"\nlow_signal (n = 40, d = 100, m = 100), target risk {TARGET:g}: T = tau_eps of a tight engine run "
        f"(rtol 1e-13); accuracy = relative max error of theta(T)"
    )
    print(
        f"{'alpha':>6} {'T':>8} {'crossings':>9} {'slide in':>8} | {'engine rtol':>11} {'evals':>7} {'wall s':>7} "
        f"{'error':>8} | {'GD order':>8} {'GD steps':>10} {'wall s':>13} {'error':>8} | {'evals x':>8} "
        f"{'wall x':>7} | plain DOP853 (same rtol)"
    )
    for (
        alpha,
        T,
        tight,
        engine,
        rtol,
        engine_error,
        order,
        steps,
        gd_error,
        gd_wall,
        mark,
        plain,
        plain_result,
    ) in rows:
        print(
            f"{alpha:>6g} {T:>8.2f} {tight.switches:>9d} {tight.sliding_entries:>8d} | {rtol:>11.0e} "
            f"{engine.rhs_evals:>7d} {engine.wall_time:>7.1f} {engine_error:>8.1e} | {order:>8.2f} {steps:>10d} "
            f"{gd_wall:>7.1f}{mark:<6} {gd_error:>8.1e} | {steps / engine.rhs_evals:>8.0f} "
            f"{gd_wall / engine.wall_time:>7.0f} | {plain_result}, {plain.rhs_evals} evals, {plain.wall_time:.0f} s"
        )


if __name__ == "__main__":
    main()
