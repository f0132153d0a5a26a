"""The compiled vector field against a torch autograd gradient and against the machine's matmul roofline.

    python benchmarks/vector_field.py [--n 200 --d 100 --m 1000 --repeats 100 --threads 1]

Prints, from one run on this machine (float64, CPU, the same number of BLAS and torch threads everywhere): the
time of one field evaluation by the compiled numpy code (returning new arrays, and writing into ``out=``), by the
compiled torch code and by torch autograd on the same network (forward and backward); the ratio autograd /
compiled; and the field's cost in matmul-equivalents (its time divided by the time of a plain (m, d) x (d, n)
numpy matmul into a preallocated output, the best case of that product) with the achieved GFLOP/s of both; and,
for reference, torch's own matmul of the same shapes (a faster BLAS on some machines) with the torch field's cost
against it.
The field needs two (m, n, d) products (W X^T and the gated sum over samples), so 2 matmul-equivalents is the
floor; the target is at most 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable


def _threads_from_argv(default: int = 1) -> int:
    """The --threads value, read before numpy is imported: OpenBLAS fixes its thread count at import."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
    return default


THREADS = _threads_from_argv()
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(THREADS)

import numpy as np  # after the thread count is fixed
import torch

from fls.theory.compiled import compile_field


def best_times(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Minimum wall time of each candidate over ``repeats`` rounds, after one warm-up call each.

    The candidates take turns within every round, so a slow spell of the machine hits all of them alike and the
    ratios stay fair.
    """
    for fn in candidates.values():
        fn()
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--threads", type=int, default=THREADS, help="BLAS and torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n, d, m = args.n, args.d, args.m
    W = rng.normal(size=(m, d)) / np.sqrt(d)
    v = rng.normal(size=m) / np.sqrt(m)
    X = rng.normal(size=(n, d)) / np.sqrt(d)
    y = rng.choice([-1.0, 1.0], size=n)
    field = compile_field("logistic")
    Wt, vt, Xt, yt = (torch.tensor(a) for a in (W, v, X, y))

    def autograd() -> object:
        Wg = Wt.clone().requires_grad_(True)
        vg = vt.clone().requires_grad_(True)
        field.risk(Wg, vg, Xt, yt, 1.0).backward()
        return Wg.grad, vg.grad

    dW_out, dv_out = np.empty_like(W), np.empty_like(v)
    product, Xt_view = np.empty((m, n)), X.T
    product_t, Xt_t_view = torch.empty(m, n, dtype=torch.float64), Xt.T
    times = best_times(
        {
            "plain numpy matmul (m,d)x(d,n)": lambda: np.matmul(W, Xt_view, out=product),
            "plain torch matmul (m,d)x(d,n)": lambda: torch.matmul(Wt, Xt_t_view, out=product_t),
            "compiled field, numpy": lambda: field.field(W, v, X, y, 1.0),
            "compiled field, numpy, out=": lambda: field.field(W, v, X, y, 1.0, out=(dW_out, dv_out)),
            "compiled field, torch": lambda: field.field(Wt, vt, Xt, yt, 1.0),
            "torch autograd gradient": autograd,
        },
        args.repeats,
    )
    t_matmul, t_numpy, t_torch, t_autograd = (
        times[name]
        for name in (
            "plain numpy matmul (m,d)x(d,n)",
            "compiled field, numpy",
            "compiled field, torch",
            "torch autograd gradient",
        )
    )
    flops_matmul = 2.0 * m * n * d
    flops_field = 2 * flops_matmul  # W X^T and (gates * s) @ X; elementwise work is O(m n)
    print(
        f"shapes: n={n} d={d} m={m}, float64, CPU, BLAS and torch threads={torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'':34s}{'time (ms)':>12s}{'GFLOP/s':>10s}{'matmul-equiv':>14s}")
    for name, t in times.items():
        flops = flops_matmul if name.startswith("plain") else flops_field
        print(f"{name:34s}{1e3 * t:12.3f}{flops / t / 1e9:10.2f}{t / t_matmul:14.2f}")
    print(
        f"autograd / compiled (numpy): {t_autograd / t_numpy:.2f}x;  autograd / compiled (torch): "
        f"{t_autograd / t_torch:.2f}x"
    )
    t_matmul_torch = times["plain torch matmul (m,d)x(d,n)"]
    print(
        f"field cost: numpy {t_numpy / t_matmul:.2f}, torch {t_torch / t_matmul:.2f} numpy-matmul-equivalents "
        f"(target <= 3); against torch's own matmul, the torch field is {t_torch / t_matmul_torch:.2f}"
    )


if __name__ == "__main__":
    main()
