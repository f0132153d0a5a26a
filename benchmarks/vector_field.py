"""The compiled vector field against a torch autograd gradient and against the machine's matmul roofline.

    python benchmarks/vector_field.py [--n 200 --d 100 --m 1000 --repeats 50]

Prints, from one run on this machine (float64, CPU, one torch thread): the time of one field evaluation by the
compiled numpy code, by the compiled torch code and by torch autograd on the same network; the ratio autograd /
compiled; and the field's cost in matmul-equivalents (its time divided by the time of a plain (m, d) x (d, n)
numpy matmul) with the achieved GFLOP/s of both. The field needs two (m, n, d) products (W X^T and the gated
sum over samples), so 2 matmul-equivalents is the floor; the target is at most 3.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from theory.compiled import compile_field


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Minimum wall time of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
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

    t_numpy = best_time(lambda: field.field(W, v, X, y, 1.0), args.repeats)
    t_torch = best_time(lambda: field.field(Wt, vt, Xt, yt, 1.0), args.repeats)
    t_autograd = best_time(autograd, args.repeats)
    t_matmul = best_time(lambda: W @ X.T, args.repeats)
    flops_matmul = 2.0 * m * n * d
    flops_field = 2 * flops_matmul  # W X^T and (gates * s) @ X; elementwise work is O(m n)
    print(f"shapes: n={n} d={d} m={m}, float64, CPU, torch threads={torch.get_num_threads()}")
    print(f"{'':28s}{'time (ms)':>12s}{'GFLOP/s':>10s}{'matmul-equiv':>14s}")
    for name, t in (
        ("plain numpy matmul (m,d)x(d,n)", t_matmul),
        ("compiled field, numpy", t_numpy),
        ("compiled field, torch", t_torch),
        ("torch autograd gradient", t_autograd),
    ):
        flops = flops_matmul if name.startswith("plain") else flops_field
        print(f"{name:28s}{1e3 * t:12.3f}{flops / t / 1e9:10.2f}{t / t_matmul:14.2f}")
    print(
        f"autograd / compiled (numpy): {t_autograd / t_numpy:.2f}x;  autograd / compiled (torch): "
        f"{t_autograd / t_torch:.2f}x"
    )
    print(f"field cost: {t_numpy / t_matmul:.2f} matmul-equivalents (target <= 3)")


if __name__ == "__main__":
    main()
