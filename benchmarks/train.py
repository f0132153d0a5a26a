"""Batched ensemble training against a Python loop of single-model trainings; prints ratios and GFLOP/s.

    python benchmarks/train.py            # the stated size: E = 64, n = 200, d = 100, m = 256, 2000 GD steps
    python benchmarks/train.py --quick    # the same problem for 200 steps (and 50 for section 1b)
    python benchmarks/train.py --threads 2

Sections:
1. two-layer ensemble (``train_ensemble``, full-batch GD, float64) against 64 separate ``torch.nn.Module``
   trainings with ``torch.optim.SGD``, same data, same initializations, same step count: throughput ratio;
   (1b) the same for small members (n = 40, d = 100, m = 100), where per-operation costs dominate the loop;
2. the ensemble's achieved GFLOP/s (4 E n m d + 4 E n m flops per step: the two big matrix products of the forward
   and backward passes and the two matrix-vector products of the output layer) against the machine's plain float64
   matrix-product rate, measured in the same run on a square product and on the engine's own product shape, and
   the ceiling this puts on the throughput ratio of section 1: the loop's time divided by the time the same
   arithmetic takes at the plain matrix-product rate (no implementation doing these products can beat it);
3. the gradient path: autograd through the compiled network against the compiled field, which also returns the
   outputs the risk needs (the engine uses the faster one).

Deep ensembles have their own benchmark, ``benchmarks/deep.py``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from fls.simulate.data import make_data
from fls.simulate.train.device import configure_threads
from fls.simulate.train.ensemble import init_ensemble, train_ensemble
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.compiled import compile_field

E, N, D, M, STEPS, ETA = 64, 200, 100, 256, 2000, 0.1
SMALL_STEPS = 500


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def module_loop(W0: np.ndarray, v0: np.ndarray, X: np.ndarray, y: np.ndarray, steps: int) -> list[np.ndarray]:
    """The baseline: one ordinary two-layer module and optimizer per member, trained one after another."""
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    finals = []
    for W, v in zip(W0, v0, strict=True):
        hidden = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            hidden.weight.copy_(torch.from_numpy(W))
        out = torch.nn.Parameter(torch.from_numpy(v.copy()))
        optimizer = torch.optim.SGD([hidden.weight, out], lr=ETA)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.soft_margin_loss(torch.relu(hidden(Xt)) @ out, yt).backward()
            optimizer.step()
        finals.append(hidden.weight.detach().numpy().copy())
    return finals


def matmul_rate(shape_a: tuple[int, int], shape_b: tuple[int, int], repeats: int) -> float:
    """GFLOP/s of a float64 matrix product of the given shapes (best of ``repeats``)."""
    a, b = torch.randn(*shape_a, dtype=torch.float64), torch.randn(*shape_b, dtype=torch.float64)
    a @ b
    best = min(timed(torch.matmul, a, b)[0] for _ in range(repeats))
    return 2 * shape_a[0] * shape_a[1] * shape_b[1] / best / 1e9


def gradient_paths(
    W0: np.ndarray, v0: np.ndarray, X: np.ndarray, y: np.ndarray, repeats: int
) -> dict[str, float]:
    """Seconds per ensemble gradient evaluation with its risk: autograd against the compiled field."""
    field = compile_field("logistic")
    W, v = torch.from_numpy(W0), torch.from_numpy(v0)
    Xt, yt, c = torch.from_numpy(X), torch.from_numpy(y), torch.ones(len(W0), dtype=torch.float64)

    def autograd() -> None:
        Wg, vg = W.clone().requires_grad_(True), v.clone().requires_grad_(True)
        losses = field.losses(field.output(Wg, vg, Xt, c), yt)
        torch.autograd.grad(losses.mean(-1).sum(), (Wg, vg))

    out = (torch.empty_like(W), torch.empty_like(v))

    def compiled() -> None:
        *_, f = field.field_and_output(W, v, Xt, yt, c, out=out)
        field.losses(f, yt).mean(-1)

    candidates = {"autograd": autograd, "compiled field + risk": compiled}
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):  # alternate, so that a slow spell of the machine hits both alike
        for name, fn in candidates.items():
            best[name] = min(best[name], timed(fn)[0])
    return best


def ensemble_against_loop(
    n: int, d: int, m: int, steps: int
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time the batched ensemble and the module loop on one problem; print both and their ratio."""
    data = make_data("gaussian_mixture", n=n, d=d, seed=0, n_test=10)
    W0, v0 = init_ensemble(m, d, alphas=np.logspace(-1, 0.5, E).tolist(), seeds=list(range(E)))
    batched_time, results = timed(
        train_ensemble, W0, v0, data.X, data.y, eta=ETA, max_steps=steps, save=SaveSchedule.every(100)
    )
    loop_time, finals = timed(module_loop, W0, v0, data.X, data.y, steps)
    agree = max(np.abs(r.W - w).max() for r, w in zip(results, finals, strict=True))
    print(
        f"   batched ensemble : {batched_time:8.2f} s  ({batched_time / steps * 1e3:.2f} ms per ensemble step)"
    )
    print(
        f"   loop of modules  : {loop_time:8.2f} s  ({loop_time / steps * 1e3:.2f} ms per step of all members)"
    )
    print(f"   throughput ratio : {loop_time / batched_time:8.2f}x   (max |W difference| {agree:.1e})")
    return batched_time, loop_time, W0, v0, data.X, data.y


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{STEPS // 10} steps instead of {STEPS}")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: FLS_TORCH_THREADS or 1)"
    )
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    steps, small_steps = (STEPS // 10, SMALL_STEPS // 10) if args.quick else (STEPS, SMALL_STEPS)
    print(f"torch {torch.__version__}, {threads} thread(s), load average {os.getloadavg()[0]:.2f}, float64")

    print(f"\n1. two-layer ensemble, E={E} n={N} d={D} m={M}, {steps} full-batch GD steps")
    batched_time, loop_time, W0, v0, X, y = ensemble_against_loop(N, D, M, steps)
    print(f"\n1b. small members (the low_signal preset size), E={E} n=40 d=100 m=100, {small_steps} steps")
    ensemble_against_loop(40, 100, 100, small_steps)

    flops = (4 * E * N * M * D + 4 * E * N * M) * steps
    square = matmul_rate((2048, 2048), (2048, 2048), 3)
    engine_shape = matmul_rate((E * M, D), (D, N), 5)
    print("\n2. arithmetic rate")
    print(f"   ensemble achieved  : {flops / batched_time / 1e9:7.1f} GFLOP/s")
    print(
        f"   plain matmul 2048^3: {square:7.1f} GFLOP/s   ({E * M}x{D} @ {D}x{N}: {engine_shape:.1f} GFLOP/s)"
    )
    print(f"   ensemble / matmul  : {flops / batched_time / 1e9 / square:7.2f}")
    ceiling = loop_time / (flops / max(square, engine_shape) / 1e9)
    print(f"   ceiling on the section-1 ratio at the plain matmul rate: {ceiling:.1f}x")

    paths = gradient_paths(W0, v0, X, y, 5)
    print("\n3. one ensemble gradient with its risk")
    for name, seconds in paths.items():
        print(f"   {name:22s}: {seconds * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
