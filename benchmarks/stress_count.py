"""Count the slow tier of the flow stress suite: examples run, failures by cause, time per example.

``pytest -m slow tests/simulate/test_flow_stress.py`` stops at the first failure and shrinks it; this runs the
same draws (``problems()`` of the full ranges) and the same ``check``, but records every example and goes on,
so a run reports how many of its examples pass (docs/flow.md, "Limits"). Each example is stopped after
``--limit`` seconds (counted as a failure, "over LIMIT s"). One JSON line per example goes to ``--out``
(ok, seconds, method, coordinates, n, d, m, rtol, and the reason of a failure); each failing problem is saved
as drawn to ``--failures`` in the form ``tests/simulate/test_flow_grazing.stored_problem`` reads, so it can
become a regression test.

    python benchmarks/stress_count.py --seed 9003 --examples 1500 [--limit 120] [--out stress.jsonl]
        [--failures stress_failures/]
"""

import argparse
import hashlib
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only add contention

import numpy as np
from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package
from tests.simulate.test_flow_stress import Problem, check, problems


class OverLimit(Exception):
    """An example ran past ``--limit`` seconds."""


def save_problem(problem: Problem, folder: Path) -> Path:
    """The problem as drawn, as an .npz named by its content (the arrays and options of ``Problem``)."""
    arrays = {
        "W": problem.W,
        "v": problem.v,
        "X": problem.X,
        "y": problem.y,
        "loss": problem.loss,
        "target_risk": np.nan if problem.target_risk is None else problem.target_risk,
        "t_max": problem.t_max,
        "rtol": problem.rtol,
        "atol": problem.atol,
        "method": problem.method,
        "coords": problem.coords,
    }
    digest = hashlib.sha1(b"".join(np.asarray(a).tobytes() for a in arrays.values())).hexdigest()[:10]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.npz"
    np.savez(path, **arrays)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True, help="hypothesis seed")
    parser.add_argument("--examples", type=int, default=3000, help="examples to run (default 3000)")
    parser.add_argument("--limit", type=int, default=120, help="seconds per example before it counts as failed")
    parser.add_argument("--out", type=Path, default=Path("stress.jsonl"), help="one JSON line per example")
    parser.add_argument("--failures", type=Path, default=Path("stress_failures"), help="folder for failing problems")
    args = parser.parse_args()
    if args.examples < 1 or args.limit < 1:
        parser.error("--examples and --limit must be at least 1")

    def over_limit(*_):
        raise OverLimit(f"over {args.limit} s")

    signal.signal(signal.SIGALRM, over_limit)
    records = []
    with args.out.open("a", buffering=1) as out:

        @seed(args.seed)
        @settings(
            max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(problems())
        def each(problem: Problem) -> None:
            start = time.perf_counter()
            signal.alarm(args.limit)
            try:
                check(problem)
                why = ""
            except Exception as error:  # noqa: BLE001 (any failure of the engine is recorded; the run goes on)
                why = f"{type(error).__name__}: {str(error)[:300]} | {save_problem(problem, args.failures)}"
            finally:
                signal.alarm(0)
            record = {
                "ok": not why,
                "s": round(time.perf_counter() - start, 3),
                "method": problem.method,
                "coords": problem.coords,
                "n": len(problem.y),
                "d": problem.X.shape[1],
                "m": len(problem.v),
                "rtol": problem.rtol,
                "why": why,
            }
            records.append(record)
            out.write(json.dumps(record) + "\n")

        each()
    seconds = [r["s"] for r in records]
    failed = [r for r in records if not r["ok"]]
    print(
        f"{len(records)} examples, {len(records) - len(failed)} passed, {len(failed)} failed; "
        f"median {statistics.median(seconds):.3f} s, longest {max(seconds):.1f} s, {sum(seconds) / 60:.1f} min in all"
    )
    for record in failed:
        print(f"  {record['method']} {record['coords']} n={record['n']} d={record['d']} m={record['m']}: {record['why']}")


if __name__ == "__main__":
    main()
