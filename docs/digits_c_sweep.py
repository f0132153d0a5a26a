"""Peak test accuracy against the output multiplier c on scikit-learn's digits: makes docs/figures/digits_c_sweep.png.

    python docs/digits_c_sweep.py                       # about a minute on one CPU thread
    python docs/digits_c_sweep.py --out /tmp/sweep.png --tasks multiclass

Setting: a bias-free two-layer ReLU MLP (64 -> 128 -> outputs) with torch's default initialization, f = c h, not
centered (so at large c the random initial function c h0 stays in the predictor: the over-fitting side of
docs/design.md section 2), trained by full-batch GD at step eta / c (:func:`simulate.train.train_deep`) until zero
training error (budget 4000 steps), on the first ``n_train`` = 300 images of the fixed digits training split;
test accuracy on the full held-out set (360 images), recorded every 10 steps. Base step eta = 1 for c <= 1 and
1 / c above: by the equivalence, multiplier c at step eta / c is init scale sqrt(c) at step eta, whose tangent
kernel grows like c, so the stable step shrinks like 1 / c. Four seeds per c; the figure shows their mean and
standard deviation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from fls.simulate.realdata import load_digits
from fls.simulate.train import Architecture, SaveSchedule, configure_threads, train_deep

C_VALUES = 10.0 ** np.array([-6, -5, -4, -3, -2, -1, 0, 0.5, 1, 1.5, 2])
SEEDS = (0, 1, 2, 3)
N_TRAIN = 300
ARCHITECTURE = Architecture("mlp", (128,), bias=False)
FIGURE = Path(__file__).parent / "figures" / "digits_c_sweep.png"


def sweep(
    task: str, *, c_values=C_VALUES, seeds=SEEDS, n_train: int = N_TRAIN, max_steps: int = 4000
) -> dict:
    """Train one ensemble over (c, seed); return per-c arrays of peak and final test accuracy (rows: seeds)."""
    full = load_digits(task)
    data = SimpleNamespace(
        X=full.X[:n_train], y=full.y[:n_train], X_test=full.X_test, y_test=full.y_test, params=full.params
    )
    c = np.repeat(c_values, len(seeds))
    runs = train_deep(
        data,
        architecture=ARCHITECTURE,
        c=c,
        eta=1.0 / np.maximum(1.0, c),
        seeds=np.tile(seeds, len(c_values)),
        max_steps=max_steps,
        save=SaveSchedule.every(10),
    )
    shape = (len(c_values), len(seeds))
    return {
        "c": np.asarray(c_values),
        "peak": np.array([r.info["peak_test_accuracy"] for r in runs]).reshape(shape),
        "final": np.array([r.info["final_test_accuracy"] for r in runs]).reshape(shape),
        "reached": np.array([r.status == "target_reached" for r in runs]).reshape(shape),
        "steps": np.array([r.info["steps"] for r in runs]).reshape(shape),
    }


def draw(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8), squeeze=False)
    for ax, (task, res) in zip(axes[0], results.items(), strict=True):
        for key, style in (("peak", "o-"), ("final", "s--")):
            mean, sd = res[key].mean(1), res[key].std(1)
            ax.errorbar(res["c"], mean, yerr=sd, fmt=style, capsize=3, label=f"{key} test accuracy")
        unreached = ~res["reached"].all(1)
        if unreached.any():
            ax.plot(
                res["c"][unreached],
                res["peak"].mean(1)[unreached],
                "x",
                color="k",
                ms=10,
                label="some seeds missed zero train error",
            )
        ax.set_xscale("log")
        ax.set_xlabel("output multiplier c  (FLS ~ 1 / c)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"digits, {task}, n_train = {N_TRAIN}, {len(SEEDS)} seeds")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=FIGURE)
    parser.add_argument("--tasks", nargs="+", default=["multiclass"], choices=["multiclass", "binary"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    configure_threads(args.threads)
    results = {}
    for task in args.tasks:
        start = time.perf_counter()
        results[task] = res = sweep(task)
        print(f"{task}: {time.perf_counter() - start:.1f} s")
        for i, c in enumerate(res["c"]):
            print(
                f"  c = {c:8.0e}  peak {res['peak'][i].mean():.4f} +- {res['peak'][i].std():.4f}  "
                f"final {res['final'][i].mean():.4f}  steps {res['steps'][i].tolist()}"
            )
    draw(results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
