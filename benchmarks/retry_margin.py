"""The margin of the retry check's limit: Simpson's comparison q on every accepted explicit step of smooth runs.

The engine's RK23 / RK45 steps at risk are compared with Simpson's rule on their own dense output and rejected
when q exceeds ``retry_check.SIMPSON_LIMIT`` tolerances (docs/flow.md, "A transient between the stages"). The
limit must sit above what q is on steps the embedded estimate rightly passes. This forms q on *every* step that
the error estimate accepts (not only those at risk; the check itself still rejects only where it would), on

- ``benchmarks/flow.py``'s RK23 / RK45 rows: low_signal, m = 100, random_sign, alpha 1e-4 / 0.3 / 3, to about
  their stop times (T from a DOP853 run at rtol 1e-13), rtol 1e-6 / 1e-7, atol rtol * 1e-2;
- the stall window at m = 100 (t <= 70, RK23 at rtol 1e-7, atol 1e-10, log coordinates);
- the RK23 / RK45 runs of the stored stress problems (``tests/simulate/data``),

and prints, per group, the accepted steps and the largest q, and apart the stored problems whose q exceeds the
limit somewhere (the transients the check is for).

    python benchmarks/retry_margin.py
"""

import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package
import tests.simulate.test_flow_grazing as stored
from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow, smooth
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.retry_check import SIMPSON_LIMIT, RetryCheck
from fls.simulate.initialization import init_params
from tests.simulate.test_flow_stress import run

FLOW_ROWS = ((1e-4, 154.7556), (0.3, 47.6744), (3.0, 1.6690))
EXPLICIT_CONFIGS = (("RK45", 1e-7), ("RK23", 1e-6))


#: q of each step the error estimate accepted, since the last :func:`measured` began.
SEEN: list[float] = []


class MeasuredCheck(RetryCheck):
    """The engine's retry check that also forms q on every step the error estimate accepts."""

    def shrink(self, *step: Any) -> float:
        """:meth:`RetryCheck.shrink` of the step (fun, t, h, y, y_new, workspace), after recording its q."""
        fun, _, h, y, y_new, (K, coefficients, (_, scale)) = step
        SEEN.append(self.comparison(fun, y, y_new, K, coefficients, h, scale))
        return super().shrink(*step)


def measured(run_once: Callable[[], Any]) -> np.ndarray:
    """q of every accepted step of the run that ``run_once()`` makes."""
    SEEN.clear()
    run_once()
    return np.array(SEEN)


def report(name: str, qs: np.ndarray) -> None:
    """One line: the group's accepted steps and their largest q."""
    print(f"{name:<40} {len(qs):>7d} steps   largest q {qs.max() if len(qs) else float('nan'):7.2f}")


def main() -> None:
    smooth.RetryCheck = MeasuredCheck  # the engine's explicit pieces build this check
    print(f"Simpson's comparison q in tolerances on accepted steps (the limit: {SIMPSON_LIMIT:g})\n")
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    every = []
    for alpha, T in FLOW_ROWS:
        W, v = init_params(100, 100, alpha=alpha, scheme="random_sign", seed=0)
        for method, rtol in EXPLICIT_CONFIGS:
            qs = measured(
                partial(integrate_flow, W, v, data.X, data.y, t_max=T, rtol=rtol, atol=rtol * 1e-2, method=method,
                        save_at=[T])
            )  # fmt: skip
            report(f"flow.py alpha {alpha:g}, {method} {rtol:g}", qs)
            every.append(qs)
    _, _, Xs, ys = stall_problem(1.0)
    W, v = init_params(100, 3, alpha=1e-4, scheme="random_sign", seed=0)
    qs = measured(
        partial(integrate_flow, W, v, Xs, ys, target_risk=0.05, t_max=70.0, method="RK23", rtol=1e-7, atol=1e-10,
                save_at=[70.0])
    )  # fmt: skip
    report("stall, m = 100, t <= 70", qs)
    every.append(qs)
    stored_qs, beyond = [], []
    stored.DATA = Path(__file__).resolve().parents[1] / "tests/simulate/data"
    for path in sorted(stored.DATA.glob("*.npz")):
        try:
            problem = stored.stored_problem(path.stem)
        except KeyError:  # not a stress problem
            continue
        if problem.method not in ("RK23", "RK45"):
            continue
        qs = measured(partial(run, problem))
        if len(qs) and qs.max() > SIMPSON_LIMIT:
            beyond.append(f"{path.stem} (largest q {qs.max():.0f})")
        else:
            stored_qs.append(qs)
    report(f"stored problems' RK runs within the limit ({len(stored_qs)})", np.concatenate(stored_qs))
    print(f"  beyond it (the transients the check is for): {', '.join(beyond) or 'none'}")
    smooth_steps = np.concatenate(every)
    print(f"\nbenchmark rows and stall window: {len(smooth_steps)} steps, largest q {smooth_steps.max():.2f}")


if __name__ == "__main__":
    main()
