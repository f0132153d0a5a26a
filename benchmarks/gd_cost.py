"""What the flow benchmarks share: best-of-three timing (wall and CPU), the relative error of a state, and the cost
of plain GD (fixed-step Euler on the field) at a given accuracy, from its measured first-order error constant.

CPU time (``time.process_time``, the process's user and system time) is printed beside wall time: on a shared
machine another process's load stretches wall time far more than CPU time, so CPU ratios are the steadier figure
(docs/flow.md "Cost"). The benchmarks pin one BLAS thread, so CPU time is the time of one core.

Used by ``benchmarks/flow.py`` (low_signal at three alphas) and ``benchmarks/flow_width.py`` (three widths).
"""

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from fls.simulate.flow.baselines import BaselineRun, euler
from fls.simulate.result import RunResult

#: A run that takes under this many seconds is timed three times and its fastest time kept.
REPEAT_BELOW = 10.0


@dataclass
class Timed:
    """The run with the least wall time of a few repeats, and the least CPU time of those repeats (seconds)."""

    result: RunResult | BaselineRun
    cpu_time: float


def fastest(run: Callable[[], RunResult | BaselineRun]) -> Timed:
    """run(), repeated twice more when it takes under REPEAT_BELOW seconds: the result with the least wall time
    and the least CPU time over the repeats (at a fraction of a second one timing is at the mercy of the
    machine's noise)."""
    results, cpu_times = [], []
    while not results or (len(results) < 3 and results[0].wall_time < REPEAT_BELOW):
        started = time.process_time()
        results.append(run())
        cpu_times.append(time.process_time() - started)
    return Timed(min(results, key=lambda r: r.wall_time), min(cpu_times))


def state(run: RunResult | BaselineRun) -> np.ndarray:
    """The parameters (W, v) of a run's final state, flattened."""
    return np.concatenate([run.W.ravel(), run.v])


def error(run: RunResult | BaselineRun, exact: np.ndarray) -> float:
    """max |theta - theta*| / max |theta*|: the relative error of a run's final parameters."""
    return float(np.max(np.abs(state(run) - exact)) / np.max(np.abs(exact)))


@dataclass
class EulerCost:
    """GD's cost at the accuracy asked for: steps, wall and CPU time (measured, or extrapolated from the measured
    cost per step), the error reached, and the order measured from successive halvings of the step."""

    steps: int
    wall_time: float
    cpu_time: float
    error: float
    measured: bool
    order: float


def euler_cost(
    W, v, X, y, T: float, exact: np.ndarray, accuracy: float, max_steps: int, max_probe: int
) -> EulerCost:
    """Euler's (GD's) cost to reach ``accuracy`` relative at time T: runs of 2000, 4000, ... steps until the error
    halves with the step twice in a row (first order) or a run would exceed ``max_probe`` steps; its constant
    C = error / eta gives the step eta* = accuracy / C. Euler is run there when that takes at most ``max_steps``
    steps, else its cost is extrapolated from the measured cost per step."""
    k, errors, runs = 2000, [], []
    while True:
        started = time.process_time()
        runs.append(euler(W, v, X, y, eta=T / k, t=T))
        probe_cpu = time.process_time() - started
        errors.append(error(runs[-1], exact))
        ratios = [a / b for a, b in itertools.pairwise(errors)]
        if (len(ratios) >= 2 and all(1.8 < r < 2.2 for r in ratios[-2:])) or 2 * k > max_probe:
            break
        k *= 2
    steps = max(1, math.ceil(errors[-1] * k / accuracy))
    order = math.log2(ratios[-1]) if ratios else float("nan")
    if steps <= max_steps:
        timed = fastest(partial(euler, W, v, X, y, eta=T / steps, t=T))
        return EulerCost(
            steps, timed.result.wall_time, timed.cpu_time, error(timed.result, exact), True, order
        )
    per_step = runs[-1].wall_time / runs[-1].rhs_evals
    return EulerCost(steps, steps * per_step, steps * probe_cpu / runs[-1].rhs_evals, accuracy, False, order)
