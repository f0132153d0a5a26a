"""Timings of the sweep machinery on real runs (compare.runner.execute_batch): prints ratios.

1. Parallel efficiency of the local process pool, 2 workers against 1, on a 16-run sweep:
       efficiency = T(1 worker) / (2 * T(2 workers))            (1.0 = perfect; target >= 0.8)
   End to end, each wall time includes starting the pool's workers and each worker's first run, which pays
   one-time costs (the symbolic derivation of the field, cached per process); the fork server the workers are
   copied from is started once, before the timings. The steady-state efficiency removes them with a second,
   2-run sweep: (T1(16) - T1(2)) / (2 (T2(16) - T2(2))), where T_w(2) is one warm-up run per worker for w = 2
   and two runs for w = 1. A control maps the same runs over a plain ProcessPoolExecutor: on
   a machine shared with other work its efficiency shows what the CPUs allow, whatever the sweep machinery.
2. Per-run overhead of the store: the same runs as a bare loop ``for batch: runner(batch)`` and as
   ``run_sweep(..., workers=0)`` (config check, batching, Parquet writes, progress), both in this process with
   warm caches, alternated; overhead = (T_sweep - T_bare) / T_bare (target <= 0.05). As the runs themselves
   vary by a few per cent from one loop to the next, also the direct measure: the time run_sweep spends outside
   the runner over the time inside it; and the store's writes alone (write_batch of the same outputs). On two
   clocks: wall time, and this process's CPU time, which other load on the machine inflates less.

The runs: the low_signal Gaussian mixture (n = 40, d = 100), width 100, alpha = 0.01, gd with the runner's
default step policy at train.eta = 0.015 (a small step, for runs of a few hundred steps) until the training risk
is <= 0.05, one run per batch (sweep.batch_size = 1), 16 seeds; each takes about 0.5-0.7 s on one CPU thread.
This process and every worker compute on one thread (OpenMP, OpenBLAS, MKL, torch).

    python benchmarks/sweep.py [--runs 16] [--repeats 3] [--only pool|store]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from fls.compare.vocabulary import THREAD_VARIABLES  # imports no numerical library

# This process runs the in-process contenders: one thread, as each pool worker has (set before numpy loads).
os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))

from fls.compare.config import expand_runs, load_config
from fls.compare.runner import execute_batch
from fls.compare.store import create_store
from fls.compare.sweep import execute, make_batches, run_sweep
from fls.simulate.train.device import configure_threads


def config(runs: int) -> dict:
    return {
        "data": {"preset": "low_signal", "n_test": 2000},
        "model": {"width": 100},
        "train": {"eta": 0.015, "max_steps": 20000},
        "stop": {"rule": "risk", "eps": 0.05},
        "grid": {"model.alpha": [0.01], "seeds": runs},
        "sweep": {"name": "bench", "batch_size": 1},
    }


def timed_sweep(runs: int, workers: int, root: Path) -> float:
    store = Path(tempfile.mkdtemp(dir=root))
    start = time.perf_counter()
    table = run_sweep(config(runs), store, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    assert len(table) == runs and set(table["status"]) == {"target_reached"}, table["status"].value_counts()
    return elapsed


def timed_bare_pool(runs: int, workers: int) -> float:
    """The control: the same runs mapped over a plain ProcessPoolExecutor (one torch thread per worker), with
    no config check, batching, store or progress."""
    resolved = load_config(config(runs))
    batches = make_batches(expand_runs(resolved), resolved["sweep"]["batch_size"])
    start = time.perf_counter()
    with ProcessPoolExecutor(
        workers, mp_context=get_context("forkserver"), initializer=configure_threads
    ) as pool:
        list(pool.map(execute_batch, batches))
    return time.perf_counter() - start


def parallel_efficiency(runs: int, repeats: int, root: Path) -> None:
    timed_sweep(1, 1, root)  # starts the fork server (once per driver process) outside the timings
    samples: dict[tuple[str, int, int], list[float]] = {}
    for _ in range(repeats):  # interleaved, so that a change in the machine's load hits every contender
        for workers in (1, 2):
            for size in (runs, 2):
                samples.setdefault(("sweep", workers, size), []).append(timed_sweep(size, workers, root))
            samples.setdefault(("plain", workers, runs), []).append(timed_bare_pool(runs, workers))
    wall = {key: statistics.median(values) for key, values in samples.items()}
    sweep = {(w, n): wall["sweep", w, n] for w in (1, 2) for n in (runs, 2)}
    end_to_end = sweep[1, runs] / (2 * sweep[2, runs])
    steady = (sweep[1, runs] - sweep[1, 2]) / (2 * (sweep[2, runs] - sweep[2, 2]))
    plain = wall["plain", 1, runs] / (2 * wall["plain", 2, runs])
    print(
        f"medians of {repeats}; pool, {runs} runs: 1 worker {sweep[1, runs]:.2f} s, 2 workers {sweep[2, runs]:.2f} s"
    )
    print(
        f"pool, 2 runs (start-up and first run per worker): 1 worker {sweep[1, 2]:.2f} s, 2 workers {sweep[2, 2]:.2f} s"
    )
    print(f"parallel efficiency, 2 workers vs 1: end to end {end_to_end:.1%}, steady state {steady:.1%}")
    print(
        f"control, a plain ProcessPoolExecutor on the same runs: 1 worker {wall['plain', 1, runs]:.2f} s, "
        f"2 workers {wall['plain', 2, runs]:.2f} s, efficiency {plain:.1%}; the sweep's end-to-end efficiency is "
        f"{end_to_end / plain:.2f} times the control's"
    )


def clocks(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) spent in ``action()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def store_overhead(runs: int, repeats: int, root: Path) -> None:
    resolved = load_config(config(runs))
    batches = make_batches(expand_runs(resolved), resolved["sweep"]["batch_size"])
    execute_batch(batches[0])  # warm the per-process caches for both contenders
    inside: list[tuple[float, float]] = []

    def timed_runner(batch: list[dict]) -> list:
        wall, cpu = time.perf_counter(), time.process_time()
        outputs = execute_batch(batch)
        inside.append((time.perf_counter() - wall, time.process_time() - cpu))
        return outputs

    bare, swept, machinery = [], [], []
    for _ in range(repeats):
        bare.append(clocks(lambda: [execute_batch(batch) for batch in batches]))
        inside.clear()
        total = clocks(
            lambda: run_sweep(
                resolved, tempfile.mkdtemp(dir=root), workers=0, runner=timed_runner, progress=False
            )
        )
        swept.append(total)
        in_runner = [sum(clock) for clock in zip(*inside)]
        machinery.append([(t - r) / r for t, r in zip(total, in_runner)])
    outcomes = [execute(execute_batch, batch) for batch in batches]
    store = create_store(Path(tempfile.mkdtemp(dir=root)), resolved)
    writes = clocks(lambda: [store.write_batch([r for r, _ in out], [a for _, a in out]) for out in outcomes])
    for index, clock in enumerate(("wall", "CPU")):
        t_bare = statistics.median(t[index] for t in bare)
        t_swept = statistics.median(t[index] for t in swept)
        direct = statistics.median(m[index] for m in machinery)
        print(
            f"{clock} time, {runs} runs, medians of {repeats}: bare loop {t_bare:.2f} s, run_sweep {t_swept:.2f} s "
            f"({(t_swept - t_bare) / t_bare:+.1%}); run_sweep outside the runner: {direct:+.1%} of the time "
            f"inside it; store writes alone {writes[index] / runs * 1e3:.1f} ms per run = {writes[index] / t_bare:.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", choices=("pool", "store"), default=None, help="Run one of the two measurements."
    )
    args = parser.parse_args()
    configure_threads(1)
    print(f"CPUs usable: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as root:
        if args.only in (None, "pool"):
            parallel_efficiency(args.runs, args.repeats, Path(root))
        if args.only in (None, "store"):
            store_overhead(args.runs, args.repeats, Path(root))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
