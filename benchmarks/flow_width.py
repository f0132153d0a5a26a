"""Cost of the exact flow against width: events, ms per event and per field evaluation, and GD at equal accuracy.

Two problems, each at m in {100, 1000, 20000} neurons with the balanced ``random_sign`` init at scale
alpha = 1e-3 / sqrt(m) (log coordinates, docs/flow.md "Coordinates") and target risk 0.05:

- stall: the 20 points of ``fls.simulate.flow.problems.stall_problem`` (uniform on the unit sphere in d = 3,
  labels sign(x_1));
- low_signal: the Gaussian mixture preset (n = 40, d = 100).

For each: a tight engine run (DOP853, rtol 1e-11, or ``--reference METHOD RTOL``) gives the time T (the stop
time by default; ``--t-max`` ends it earlier: a window of the run, for the widest networks) and the state
theta*(T); the engine runs to T at
ENGINE_METHOD (or ``--method``) at ENGINE_RTOL (log coordinates, or those of ``--coords``) with the same target risk, so that a window
pays at every step what a run to the target pays (its stopping guard; the stop is not reached inside a window,
and a full run stops at its own stop time, within its tolerance of T); GD (fixed-step Euler) reaches the same
accuracy, 1e-6 relative in the parameters at T, at the cost of ``gd_cost.euler_cost`` (extrapolated from its
measured cost per step beyond EULER_MAX_STEPS steps). Printed per m: events, field evaluations per event, ms per
event (wall time, and CPU time of the same run: on a shared machine the CPU time is the steadier figure), ms per
field evaluation (the engine's own field in the run's coordinates and first mode, timed alone), the
per-event target 5 x eval + 1 ms, the engine's error, GD's steps, ms per step and wall time, and GD's wall time
and CPU time over the engine's.

At m = 20000 a run to the target takes about 2e5 events (their number grows like m), hours on a small machine:
a window (``--t-max 0.02`` on stall, ``--t-max 0.0005`` on low_signal) gives the per-event figures in minutes,
and docs/flow.md "Cost" estimates the full run from them and GD's cost per step. The per-event figures there
compare two engines on one window: each engine in fresh processes, alternated, CPU time of the run, the
field timed alone in the same process (docs/flow.md "Width").

    python benchmarks/flow_width.py [--widths 100 1000 20000] [--problems stall low_signal] [--t-max T ...]
        [--reference METHOD RTOL] [--coords auto|log|span|plain] [--method RK12|RK23|RK45]
        [--engine-only | --no-gd]
"""

import argparse
import gc
import os
import time
from functools import partial

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

import numpy as np
from gd_cost import error, euler_cost, fastest, state

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.problems import stall_problem
from fls.simulate.initialization import init_params

TARGET = 0.05
ACCURACY = 1e-6
ENGINE_METHOD, ENGINE_RTOL = "RK23", 1e-7
REFERENCE_METHOD, REFERENCE_RTOL = "DOP853", 1e-11
EULER_MAX_STEPS = 100_000
EULER_MAX_PROBE = 32_000
FIELD_REPEATS = 50


def problem_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of the named problem."""
    if name == "stall":
        _, _, X, y = stall_problem(1.0)
        return X, y
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    return data.X, data.y


def field_cost(W: np.ndarray, v: np.ndarray, X: np.ndarray, y: np.ndarray, coords: str) -> float:
    """Seconds per evaluation of the engine's field (the coordinates the run uses, its first mode)."""
    coords = make_coordinates(coords, W, v, X, y, 1.0, float_arithmetic("logistic"), implicit=False)
    Y = coords.pack(W, v)
    cos = coords.cosines(Y)
    mode = Mode(cos > 0, np.zeros_like(cos, dtype=bool))
    weights = SlidingWeights(mode, coords.X @ coords.X.T, coords.arith)
    coords.rhs(Y, weights)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(FIELD_REPEATS):
            coords.rhs(Y, weights)
        best = min(best, (time.perf_counter() - started) / FIELD_REPEATS)
    return best


def measure(
    name: str,
    m: int,
    t_max: float,
    reference: tuple[str, float] | None,
    coords: str,
    method: str = ENGINE_METHOD,
    gd: bool = True,
) -> dict:
    """The figures of one problem at one width; ``reference`` None: the engine's alone, to ``t_max`` (no tight
    run, error or GD); ``gd`` False: no GD."""
    X, y = problem_data(name)
    W, v = init_params(m, X.shape[1], alpha=1e-3 / np.sqrt(m), scheme="random_sign", seed=0)
    gc.collect()
    if reference is None:
        return engine_figures(name, m, W, v, X, y, t_max, coords, method)
    tight = integrate_flow(
        W, v, X, y, target_risk=TARGET, t_max=t_max, method=reference[0], rtol=reference[1],
        atol=reference[1] * 1e-3, save_at=[t_max],
    )  # fmt: skip
    T, exact = tight.t_stop, state(tight)
    del tight
    figures = engine_figures(name, m, W, v, X, y, T, coords, method)
    figures["error"] = error(figures.pop("run"), exact)
    if gd:
        figures["gd"] = euler_cost(W, v, X, y, T, exact, ACCURACY, EULER_MAX_STEPS, EULER_MAX_PROBE)
    return figures


def engine_figures(
    name: str, m: int, W: np.ndarray, v: np.ndarray, X: np.ndarray, y: np.ndarray, T: float, coords: str, method: str
) -> dict:
    """The engine's run to T (the fastest CPU of three) and its field's cost: events, evaluations, times."""
    timed = fastest(
        partial(
            integrate_flow, W, v, X, y, target_risk=TARGET, t_max=T, method=method, rtol=ENGINE_RTOL,
            atol=ENGINE_RTOL * 1e-3, save_at=[T], coords=coords,
        )
    )  # fmt: skip
    run = timed.result
    events = run.info["events"]
    per_eval = field_cost(W, v, X, y, coords)
    return {
        "problem": name,
        "m": m,
        "T": T,
        "status": run.status,
        "events": events,
        "evals": run.rhs_evals,
        "wall": run.wall_time,
        "ms_event": 1e3 * run.wall_time / max(events, 1),
        "cpu": timed.cpu_time,
        "cpu_event": 1e3 * timed.cpu_time / max(events, 1),
        "ms_eval": 1e3 * per_eval,
        "run": run,
        "error": float("nan"),
        "gd": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[100, 1000, 20000])
    parser.add_argument("--problems", nargs="+", default=["stall", "low_signal"])
    parser.add_argument(
        "--t-max",
        type=float,
        nargs="+",
        default=[1e4],
        help="end of the window, one value for all widths or one per width (default: to the target)",
    )
    parser.add_argument(
        "--reference",
        nargs=2,
        default=[REFERENCE_METHOD, str(REFERENCE_RTOL)],
        metavar=("METHOD", "RTOL"),
        help="the tight run's method and rtol (default DOP853 1e-11; RK45 1e-10 is faster on long event-dense runs)",
    )
    parser.add_argument(
        "--coords",
        default="auto",
        choices=["auto", "log", "span", "plain"],
        help="the engine run's coordinates (default auto: log coordinates at these small inits)",
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="the engine's figures alone, to --t-max (no tight run, error or GD: for alternated timings)",
    )
    parser.add_argument("--no-gd", action="store_true", help="the engine and its error, without GD's cost")
    parser.add_argument(
        "--method",
        default=ENGINE_METHOD,
        choices=["RK12", "RK23", "RK45"],
        help=f"the engine run's method (default {ENGINE_METHOD}; RK12 for event-dense windows)",
    )
    args = parser.parse_args()
    reference = None if args.engine_only else (args.reference[0], float(args.reference[1]))
    windows = args.t_max * len(args.widths) if len(args.t_max) == 1 else args.t_max
    if len(windows) != len(args.widths):
        parser.error("--t-max takes one value or one per width")
    integrate_flow(
        *init_params(10, 3, alpha=1.0, scheme="random_sign", seed=0), *problem_data("stall"), t_max=0.01
    )
    against = "no reference" if reference is None else f"{reference[0]} rtol {reference[1]:g}"
    print(
        f"engine {args.method} rtol {ENGINE_RTOL:g} ({args.coords} coordinates); accuracy = max |theta - theta*| / "
        f"max |theta*| at T against {against}; GD at {ACCURACY:g}\n"
    )
    header = (
        f"{'problem':>10} {'m':>6} {'T':>8} | {'events':>7} {'evals/ev':>8} {'ms/event':>9} {'CPU ms/ev':>9} {'ms/eval':>8} "
        f"{'5 eval+1':>8} | {'error':>7} | {'GD steps':>9} {'ms/step':>7} {'GD s':>8} {'flow s':>7} {'GD/flow':>7} {'CPU x':>6}"
    )
    print(header, flush=True)
    for name in args.problems:
        for m, window in zip(args.widths, windows, strict=True):
            r = measure(name, m, window, reference, args.coords, args.method, not args.no_gd)
            gd = r["gd"]
            line = (
                f"{name:>10} {m:>6d} {r['T']:>8.3f} | {r['events']:>7d} {r['evals'] / max(r['events'], 1):>8.2f} "
                f"{r['ms_event']:>9.3f} {r['cpu_event']:>9.3f} {r['ms_eval']:>8.3f} {5 * r['ms_eval'] + 1:>8.2f} | "
                f"{r['error']:>7.1e} | "
            )
            if gd is None:
                print(line, flush=True)
                continue
            print(
                line
                + f"{gd.steps:>9d} {1e3 * gd.wall_time / gd.steps:>7.3f} {gd.wall_time:>7.1f}{' ' if gd.measured else '*'} {r['wall']:>7.2f} "
                f"{gd.wall_time / r['wall']:>7.1f} {gd.cpu_time / r['cpu']:>6.1f}",
                flush=True,
            )
    print(
        "* GD extrapolated from its measured cost per step; T < the stop time: a window of the run (--t-max)"
    )


if __name__ == "__main__":
    main()
