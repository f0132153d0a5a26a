"""Deep ensembles: images per second for E members trained together against a loop of E separate modules, and the
fraction of this machine's measured matrix-product and convolution rates that the training reaches.

    python benchmarks/deep.py                 # E = 8 members, 40 SGD steps of 64 images (3x16x16), float32
    python benchmarks/deep.py --quick         # 8 steps
    python benchmarks/deep.py --threads 2 --dtype float64 --device cuda --members 16

For each architecture (MLP, small CNN, VGG-style stack, small ResNet; docs/train.md "Architectures"):

1. the batched ensemble (:func:`simulate.train.deep.train_deep`: parameters stacked, ``vmap`` over
   ``functional_call``, data on the device) against a Python loop over E ``torch.nn.Module`` trainings with
   ``torch.optim.SGD``, same architecture, same number of steps and minibatch size; printed as training images per
   second (E x steps x batch / seconds) and their ratio; the batched time includes what ``train_deep`` adds to
   the steps (building the members, the full training and test sets evaluated at step 0 and at the last step),
   and the column "steps only" removes it: E x steps x batch / (seconds at ``steps`` - seconds at 0 steps);
2. the arithmetic the batched run did per second, 3 x (forward multiply-adds x 2) per image (forward pass, and the
   two products of the backward pass), counted from the layer shapes by forward hooks, against the rate of a plain
   square matrix product and of a 3x3 convolution of the networks' own size, both measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

import numpy as np
import torch

from fls.simulate.train.architectures import Architecture
from fls.simulate.train.deep import train_deep
from fls.simulate.train.device import configure_threads, placement
from fls.simulate.train.schedule import SaveSchedule

INPUT_SHAPE, CLASSES, N_TRAIN, N_TEST, BATCH = (3, 16, 16), 10, 512, 64, 64
ARCHITECTURES = {
    "mlp 768-256-10": Architecture("mlp", (256,)),
    "cnn 16-32": Architecture("cnn", (16, 32)),
    "vgg 16x2-32x2": Architecture("vgg", (16, 32), depth=2),
    "resnet 16-32": Architecture("resnet", (16, 32)),
}


def synthetic_images(seed: int = 0) -> SimpleNamespace:
    """Random images in [0, 1] with random labels: throughput does not depend on what the pixels show."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(INPUT_SHAPE))
    return SimpleNamespace(
        X=rng.random((N_TRAIN, size)),
        y=rng.integers(0, CLASSES, N_TRAIN).astype(np.float64),
        X_test=rng.random((N_TEST, size)),
        y_test=rng.integers(0, CLASSES, N_TEST).astype(np.float64),
        params={"input_shape": INPUT_SHAPE},
    )


def forward_flops(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Floating-point operations of one forward pass per image: 2 x multiply-adds of every conv and linear layer."""
    total = [0.0]

    def count(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.Linear):
            total[0] += 2.0 * module.in_features * output.numel()
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
            total[0] += 2.0 * per_output * output.numel()

    handles = [m.register_forward_hook(count) for m in net.modules()]
    with torch.no_grad():
        net(x)
    for handle in handles:
        handle.remove()
    return total[0] / x.shape[0]


def batched_seconds(
    data: SimpleNamespace, architecture: Architecture, members: int, steps: int, where
) -> float:
    start = time.perf_counter()
    train_deep(
        data,
        architecture=architecture,
        c=np.logspace(-1, 1, members),
        eta=0.05,
        seeds=list(range(members)),
        batch_size=BATCH,
        stop=None,
        max_steps=steps,
        save=SaveSchedule.at([]),
        device=where.device,
        dtype=where.dtype,
    )
    return time.perf_counter() - start


def loop_seconds(data: SimpleNamespace, architecture: Architecture, members: int, steps: int, where) -> float:
    """The baseline: one module and one optimizer per member, trained one after another on the same batches."""
    X, y = where.tensor(data.X), where.index(data.y)
    start = time.perf_counter()
    for seed, c in enumerate(np.logspace(-1, 1, members)):
        net = architecture.build(INPUT_SHAPE, CLASSES, seed=seed, alpha=1.0).to(where.device, where.dtype)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05 / c)
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(N_TRAIN, generator=generator)
        for k in range(steps):
            rows = order[(k * BATCH) % N_TRAIN :][:BATCH].to(where.device)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(c * net(X[rows]), y[rows]).backward()
            optimizer.step()
    if where.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def best_rate(fn, flops: float, repeats: int = 3) -> float:
    """GFLOP/s of ``fn`` (which does ``flops`` operations), best of ``repeats`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def ceilings(where, members: int) -> dict[str, float]:
    """The machine's rates in this dtype: a 1024^3 matrix product and a 3x3 convolution 32 -> 32 channels on
    (members x batch) images of 8x8, the size of the networks' second stage."""
    a = torch.randn(1024, 1024, device=where.device, dtype=where.dtype)
    images = torch.randn(members * BATCH, 32, 8, 8, device=where.device, dtype=where.dtype)
    kernel = torch.randn(32, 32, 3, 3, device=where.device, dtype=where.dtype)

    def synced(fn):
        def run() -> None:
            fn()
            if where.device.type == "cuda":
                torch.cuda.synchronize()

        return run

    conv_flops = 2.0 * images.shape[0] * 32 * 8 * 8 * 32 * 9
    return {
        "matmul 1024^3": best_rate(synced(lambda: a @ a), 2.0 * 1024**3),
        "conv 3x3 32->32 at 8x8": best_rate(
            synced(lambda: torch.nn.functional.conv2d(images, kernel, padding=1)), conv_flops
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="8 steps instead of 40")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: FLS_TORCH_THREADS or 1)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    where = placement(args.device, args.dtype)
    steps, members = (8 if args.quick else 40), args.members
    data = synthetic_images()
    print(
        f"torch {torch.__version__}, {threads} thread(s), load average {os.getloadavg()[0]:.2f}, {where.device}, "
        f"{args.dtype}; E = {members} members, {steps} SGD steps of {BATCH} images {INPUT_SHAPE}"
    )
    rates = ceilings(where, members)
    peak = max(rates.values())
    for name, rate in rates.items():
        print(f"  measured {name:24s}: {rate:8.1f} GFLOP/s")
    images = members * steps * BATCH
    header = ("batched img/s", "steps only", "loop img/s", "ratio", "GFLOP/s", "of peak")
    print(f"\n  {'architecture':16s} " + " ".join(f"{h:>13s}" for h in header))
    for name, architecture in ARCHITECTURES.items():
        probe = architecture.build(INPUT_SHAPE, CLASSES, seed=0, alpha=1.0)
        flops = 3.0 * forward_flops(probe, torch.from_numpy(data.X[:BATCH]))
        setup = batched_seconds(data, architecture, members, 0, where)
        batched = batched_seconds(data, architecture, members, steps, where)
        loop = loop_seconds(data, architecture, members, steps, where)
        achieved = images * flops / batched / 1e9
        columns = (images / batched, images / (batched - setup), images / loop)
        print(
            f"  {name:16s} "
            + " ".join(f"{value:13.0f}" for value in columns)
            + f" {loop / batched:12.2f}x {achieved:13.2f} {achieved / peak:13.1%}"
        )


if __name__ == "__main__":
    main()
