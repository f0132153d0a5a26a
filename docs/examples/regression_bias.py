"""Worked example: a small regression problem with hidden biases at small initialization.

    python docs/examples/regression_bias.py docs/examples/regression_bias.png

Three points in 1-d with real targets, the squared loss (f - y)^2 / 2, width 100, hidden biases, balanced
random_sign init at alpha = 1e-4 (docs/design.md section 2). Left: the training risk of the exact flow
(``integrate_flow`` with ``b0``) and of GD at two step sizes. Right: the direction of every neuron's (w_j, b_j)
over time, as the angle atan2(b_j, w_j) in a polar plot with time as the radius: the neurons leave their random
directions and gather on a few directions (the extreme vectors of the small-initialization limit) before the
norms grow and the risk drops.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fls.simulate import init_params, integrate_flow, train_ensemble

X = np.array([[-1.0], [0.2], [1.0]])
Y = np.array([0.6, -0.4, 0.8])
WIDTH, ALPHA, T_MAX = 100, 1e-4, 40.0
STEP_SIZES = (0.2, 0.05)


def main(out: str) -> None:
    W, v, b = init_params(WIDTH, 1, alpha=ALPHA, scheme="random_sign", seed=0, bias=True)
    times = np.linspace(0.0, T_MAX, 401)
    flow = integrate_flow(W, v, X, Y, loss="squared", b0=b, t_max=T_MAX, save_at=times, rtol=1e-10, atol=1e-14)
    runs = train_ensemble(np.stack([W, W]), np.stack([v, v]), X, Y, loss="squared", b0=np.stack([b, b]),
                          eta=list(STEP_SIZES), max_steps=[round(T_MAX / eta) for eta in STEP_SIZES])  # fmt: skip
    figure = plt.figure(figsize=(10, 4.2))
    left = figure.add_subplot(1, 2, 1)
    left.semilogy(flow.t, flow.risk, "k", lw=2, label="exact flow")
    for eta, run in zip(STEP_SIZES, runs, strict=True):
        left.semilogy(run.t, run.risk, "--", label=f"GD, eta = {eta:g}")
    left.set(xlabel="time t", ylabel="training risk", title="3 points, width 100, biases, alpha = 1e-4")
    left.legend()
    polar = figure.add_subplot(1, 2, 2, projection="polar")
    samples = np.linspace(0.0, T_MAX, 81)
    for j in range(WIDTH):
        angles = [np.arctan2(b_t[j], W_t[j, 0]) for W_t, _, b_t in map(flow.dense, samples)]
        polar.plot(np.unwrap(angles), samples, lw=0.6, color="C0" if v[j] > 0 else "C3", alpha=0.6)
    polar.set_title("angle of (w_j, b_j); radius = time\n(blue: v_j > 0, red: v_j < 0)", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    print(f"wrote {out}: final risk {flow.risk[-1]:.3g} (flow), status {flow.status}, {flow.switches} crossings")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/examples/regression_bias.png")
