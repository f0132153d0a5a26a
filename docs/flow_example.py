"""One gradient-flow run with the hybrid engine: risk, alignment psi_j and neuron norms over time.

Orthogonally separable Gaussian mixture (preset ``separable``: n = 20, d = 50), m = 10 neurons, random_sign
init at alpha = 1e-4, logistic loss, stopped at risk 0.05. psi_j is the cosine of neuron j with the class sum
of its sign (x+ for v_j > 0, x- for v_j < 0); the dashed curve is the closed-form tanh law of theory.smallinit
for the first positive neuron, from the moment it is active on exactly the positive points. Writes
docs/figures/flow_example.png.

    python docs/flow_example.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.initialization import init_params
from fls.theory.smallinit import alignment_rates, class_sums, tanh_alignment

OUTPUT = Path(__file__).parent / "figures" / "flow_example.png"


def main() -> None:
    data = make_data("gaussian_mixture", preset="separable", seed=0, n_test=10)
    X, y = data.X, data.y
    W, v = init_params(10, X.shape[1], alpha=1e-4, scheme="random_sign", seed=1)
    grid = np.linspace(0.0, 100.0, 1001)  # times after the stop are not saved; the stop time is
    result = integrate_flow(W, v, X, y, target_risk=0.05, t_max=100.0, save_at=grid)
    print(
        f"{result.status}: {result.message}; {result.switches} crossings, {result.sliding_entries} sliding "
        f"entries, {result.rhs_evals} RHS evaluations, {result.wall_time:.2f} s ({result.engine})"
    )

    x_plus, x_minus = class_sums(X, y)
    targets = np.where(v[:, None] > 0, x_plus / np.linalg.norm(x_plus), x_minus / np.linalg.norm(x_minus))
    norms = np.linalg.norm(result.W_t, axis=2)
    psi = np.einsum("tjd,jd->tj", result.W_t / norms[..., None], targets)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].semilogy(result.t, result.risk)
    axes[0].axhline(0.05, color="grey", lw=0.8, ls=":")
    axes[0].set(title="training risk", xlabel="t")
    for j in range(len(v)):
        style = {"color": "tab:red" if v[j] > 0 else "tab:blue", "lw": 1}
        axes[1].plot(result.t, psi[:, j], **style)
        axes[2].semilogy(result.t, norms[:, j], **style)
    j = int(np.flatnonzero(v > 0)[0])
    pattern = np.all((result.W_t[:, j] @ X.T > 0) == (y > 0), axis=1)
    if pattern.any():
        k0 = int(np.argmax(pattern))
        rate, _ = alignment_rates(X, y)
        law_t = result.t[k0:]
        axes[1].plot(
            law_t,
            tanh_alignment(law_t, rate=rate, psi0=psi[k0, j], t0=result.t[k0]),
            "k--",
            lw=1,
            label="tanh law",
        )
        axes[1].legend(loc="lower right")
    axes[1].set(title="alignment psi_j (red: v_j > 0, blue: v_j < 0)", xlabel="t")
    axes[2].set(title="neuron norms ||w_j||", xlabel="t")
    fig.tight_layout()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=120)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
