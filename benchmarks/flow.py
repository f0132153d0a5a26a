"""The flow engine on the low_signal mixture against fixed-step Euler (plain GD) and plain solve_ivp.

low_signal: n = 40, d = 100, kappa = 2, sigma = 1; m = 100 neurons, random_sign init, target risk 0.05. For
each alpha in {1e-4, 0.3, 3}:

1. a tight engine run (DOP853, rtol 1e-13) to the target gives the stop time T and the state theta*(T);
2. the engine runs to T in a few configurations (method, rtol); the fastest that reaches 1e-6 relative
   accuracy is compared (every configuration is printed); like Euler, it records only the final state
   (``save_at=[T]``; the invariant drift is still tracked at every step);
3. Euler (GD) to T with k = 2000, 4000, ... steps until its error halves with the step twice in a row (first
   order); its constant C = error / eta gives the step eta* = 1e-6 / C; Euler is run there when that takes at
   most EULER_MAX_STEPS steps, else its cost is extrapolated from the measured cost per step ('extrap.');
4. scipy DOP853 on the unswitched field at rtol 1e-8, capped at PLAIN_MAX_SECONDS.

Printed: ratios Euler / engine of RHS evaluations, of wall time and of CPU time, and the accuracy each method
reaches. A run that takes under ten seconds (engine or Euler, ``gd_cost.REPEAT_BELOW``) is timed three times and
its fastest wall and CPU times kept: at a fraction of a second one timing is at the mercy of the machine's noise.
On a shared machine the wall-time ratios still swing with the load (by up to 2x between runs); the CPU ratios
swing far less. docs/flow.md "Cost" records them, with the engine before and after a change alternated in fresh
processes.

    python benchmarks/flow.py
"""

import gc
import os
from functools import partial

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

from dataclasses import dataclass

from gd_cost import error, euler_cost, fastest, state

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.flow.baselines import plain_ode_flow
from fls.simulate.initialization import init_params

ALPHAS = (1e-4, 0.3, 3.0)
TARGET = 0.05
ACCURACY = 1e-6
ENGINE_CONFIGS = (("DOP853", 1e-8), ("RK45", 1e-7), ("RK23", 1e-6))
EULER_MAX_STEPS = 200_000
EULER_MAX_PROBE = 128_000
PLAIN_MAX_SECONDS = 120.0


@dataclass
class EngineTiming:
    method: str
    rtol: float
    rhs_evals: int
    wall_time: float
    cpu_time: float
    error: float


def main() -> None:
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    X, y = data.X, data.y
    integrate_flow(
        *init_params(100, 100, alpha=1.0, scheme="random_sign", seed=0), X, y, t_max=0.01
    )  # compile
    print(
        f"low_signal (n = 40, d = 100, m = 100), target risk {TARGET:g}; accuracy = max |theta - theta*| / "
        "max |theta*| at T = tau_eps of a tight engine run (rtol 1e-13)\n"
    )
    summary = []
    for alpha in ALPHAS:
        gc.collect()  # the previous section's garbage is not this section's cost
        W, v = init_params(100, 100, alpha=alpha, scheme="random_sign", seed=0)
        tight = integrate_flow(W, v, X, y, target_risk=TARGET, t_max=1e5, rtol=1e-13, atol=1e-15)
        T, exact = tight.t_stop, state(tight)
        print(
            f"alpha = {alpha:g}: T = {T:.4f}, {tight.switches} crossings, {tight.sliding_entries} sliding "
            f"entries, {tight.info['sliding_exits']} exits, {tight.info['events']} events ({tight.engine})"
        )
        del tight  # keep numbers only: a result holds its dense-output checkpoints
        runs = []
        for method, rtol in ENGINE_CONFIGS:
            timed = fastest(
                partial(
                    integrate_flow,
                    W,
                    v,
                    X,
                    y,
                    t_max=T,
                    rtol=rtol,
                    atol=rtol * 1e-2,
                    method=method,
                    save_at=[T],
                )
            )
            run = timed.result
            runs.append(
                EngineTiming(method, rtol, run.rhs_evals, run.wall_time, timed.cpu_time, error(run, exact))
            )
            del run, timed
            print(
                f"  engine {method:>6} rtol {rtol:.0e}: {runs[-1].rhs_evals:>7d} RHS evals, "
                f"{runs[-1].wall_time:7.2f} s wall, {runs[-1].cpu_time:7.2f} s CPU, error {runs[-1].error:.1e}"
            )
        accurate = [r for r in runs if r.error <= ACCURACY] or runs
        best = min(accurate, key=lambda r: r.wall_time)
        gd = euler_cost(W, v, X, y, T, exact, ACCURACY, EULER_MAX_STEPS, EULER_MAX_PROBE)
        print(
            f"  Euler (GD): order {gd.order:.2f}, {gd.steps} steps for {ACCURACY:g}, {gd.wall_time:.1f} s wall, "
            f"{gd.cpu_time:.1f} s CPU{'' if gd.measured else ' (extrapolated)'}, error {gd.error:.1e}"
        )
        plain = plain_ode_flow(
            W, v, X, y, t_max=T, rtol=1e-8, atol=1e-10, max_evals=10**8, max_seconds=PLAIN_MAX_SECONDS
        )
        plain_text = (
            f"error {error(plain, exact):.1e}"
            if plain.status != "stalled"
            else f"stalled at t = {plain.t:.3g} of {T:.3g}"
        )
        print(
            f"  plain DOP853 rtol 1e-8: {plain_text}, {plain.rhs_evals} RHS evals, {plain.wall_time:.0f} s\n",
            flush=True,
        )
        summary.append((alpha, best, gd, plain_text))

    print(
        f"{'alpha':>6} | {'engine':>14} {'evals':>7} {'wall s':>7} {'error':>8} | {'Euler steps':>11} "
        f"{'wall s':>8} | {'evals x':>7} {'wall x':>6} {'CPU x':>6} | plain DOP853 at rtol 1e-8"
    )
    for alpha, run, gd, plain_text in summary:
        print(
            f"{alpha:>6g} | {run.method:>6} {run.rtol:>7.0e} {run.rhs_evals:>7d} {run.wall_time:>7.2f} "
            f"{run.error:>8.1e} | {gd.steps:>11d} {gd.wall_time:>7.1f}{' ' if gd.measured else '*'} | "
            f"{gd.steps / run.rhs_evals:>7.0f} {gd.wall_time / run.wall_time:>6.1f} "
            f"{gd.cpu_time / run.cpu_time:>6.1f} | {plain_text}"
        )
    print("* extrapolated from the measured cost per Euler step (wall and CPU)")


if __name__ == "__main__":
    main()
