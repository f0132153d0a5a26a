"""What the theory predicts for the runs of a sweep, computed from the same data, initializations and stop rule.

Three limits of DESIGN.md section 2, each turned into numbers a run can be compared with:

- small alpha (strong feature learning): every balanced neuron first follows the directional flow to an extreme
  vector (:func:`theory.smallinit.extreme_vectors`), positive neurons to the one reached from the class sum x+,
  negative ones to the one reached from x-. Neurons with one direction act as a single neuron whose squared norm
  is their sum, so the network reduces to the two-neuron model
  f(x) = c a^2 relu(<u+, x>) - c b^2 relu(<u-, x>), a = b = alpha sqrt(m / 2) at the start (about m / 2 neurons of
  each sign, ||w_j(0)|| ~ alpha), trained by the same engine and stop rule: its test error is the small-alpha
  prediction (:func:`reduced_model_error`), its cosines cos(u+, x+), cos(u+, s) the predicted alignment. The
  small-norm phase ends at the escape time of :func:`theory.smallinit.escape_time` with rate lambda+ and the
  positive group's norm alpha sqrt(m / 2) (:func:`predicted_escape_time`).
- large alpha (lazy): kernel gradient flow of the logistic loss with the infinite-width tangent kernel K0
  (:func:`theory.lazy.tangent_kernel`), started from the network's own initial function f0 (zero for the
  antisymmetric init, a random function for random_sign), stopped at the same target risk (:func:`lazy_limit`).
- boundaries in the (FLS, second axis) plane (:func:`boundaries`): alignment completes before escape when the
  escape time exceeds the time the tanh law needs to reach Psi = :data:`ALIGNED_PSI`; with psi0 = 0 that is
  arcosh(1 / (sqrt(c) alpha sqrt(m/2))) >= artanh(ALIGNED_PSI), i.e. FLS >= (m / 2) / (1 - ALIGNED_PSI^2) (the
  rate lambda+ cancels). The initial function is of order one, and over-fitting through f0 sets in, when its
  standard deviation on the training points reaches 1 (:func:`theory.lazy.initial_function_covariance`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from compare import metrics
from simulate.data import Dataset
from theory.lazy import initial_function_covariance, kernel_gradient_flow, tangent_kernel
from theory.smallinit import alignment_rates, class_sums, escape_time, extreme_vectors
from theory.validation import check_in_range, check_positive

#: Psi at which a neuron counts as aligned (the boundary "alignment completes before escape").
ALIGNED_PSI = 0.9

#: Standard deviation of f0 on the training points at the over-fitting boundary.
F0_SCALE = 1.0


@dataclass(frozen=True)
class LazyLimit:
    """The lazy-limit prediction for one run: the kernel flow's outcome and the test error it implies."""

    status: str
    message: str
    t_stop: float
    t: np.ndarray
    risk: np.ndarray
    final_risk: float
    test_error: float
    test_error_se: float


def lazy_limit(
    dataset: Dataset,
    W0: np.ndarray,
    v0: np.ndarray,
    *,
    alpha: float,
    c: float,
    eps: float,
    t_max: float,
    loss: str = "logistic",
) -> LazyLimit:
    """Kernel gradient flow with K0 (width m = len(v0), scale alpha, multiplier c) from f0 = the network at
    (W0, v0), stopped at training risk eps; f_test = f0_test + K0(test, train) a(tau) (theory.lazy)."""
    width = len(v0)
    K = tangent_kernel(dataset.X, dataset.X, alpha=alpha, width=width, c=c)
    K_test = tangent_kernel(dataset.X_test, dataset.X, alpha=alpha, width=width, c=c)
    flow = kernel_gradient_flow(
        K, dataset.y, K_test_train=K_test,
        f0_train=metrics.network_outputs(W0, v0, dataset.X, c),
        f0_test=metrics.network_outputs(W0, v0, dataset.X_test, c),
        target_risk=eps, t_max=t_max, loss=loss,
    )
    error, se = metrics.error_rate(flow.f_test, dataset.y_test) if flow.reached else (np.nan, np.nan)
    return LazyLimit(flow.status, flow.message, flow.t_stop, flow.t, flow.risk, float(flow.risk[-1]), error, se)


@dataclass(frozen=True)
class SmallAlphaLimit:
    """The extreme vectors the two classes' neurons reach from the class sums, and what they imply.

    Attributes:
        u_plus, u_minus: unit extreme vectors of the positive and negative neurons (NaN when the flow from the
            class sum ends on a dead face or does not settle).
        psi: cos(u+, x+), the predicted Psi at small alpha.
        cos_bayes: cos(u+, s) with s the Bayes direction (NaN without one).
        lambda_plus: c ||x+|| / (2n), the alignment rate of the positive class.
    """

    u_plus: np.ndarray
    u_minus: np.ndarray
    psi: float
    cos_bayes: float
    lambda_plus: float


def small_alpha_limit(dataset: Dataset, *, c: float = 1.0) -> SmallAlphaLimit:
    """Directional flow (exact, event-driven) from x+ for a positive neuron and from x- for a negative one."""
    x_plus, x_minus = class_sums(dataset.X, dataset.y)
    ends = []
    for start, sign in ((x_plus, 1), (x_minus, -1)):
        found = extreme_vectors(dataset.X, dataset.y, starts=start[None, :]).of_sign(sign)
        ends.append(found[0].direction if found else np.full(dataset.d, np.nan))
    u_plus, u_minus = ends
    bayes = dataset.bayes_direction
    return SmallAlphaLimit(
        u_plus=u_plus,
        u_minus=u_minus,
        psi=metrics.cosine(u_plus, x_plus),
        cos_bayes=metrics.cosine(u_plus, bayes) if bayes is not None else float("nan"),
        lambda_plus=alignment_rates(dataset.X, dataset.y, c=c)[0],
    )


def reduced_network(limit: SmallAlphaLimit, *, alpha: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, v) of the two-neuron model: rows a u+ and b u-, v = (a, -b), a = b = alpha sqrt(width / 2)."""
    scale = check_positive("alpha", alpha) * np.sqrt(width / 2)
    return scale * np.stack([limit.u_plus, limit.u_minus]), scale * np.array([1.0, -1.0])


def reduced_model_error(
    datasets: Sequence[Dataset],
    limits: Sequence[SmallAlphaLimit],
    run: Mapping[str, Any],
) -> np.ndarray:
    """Test error of each data set's two-neuron model, trained as one ensemble with the training settings of
    ``run`` (a run dict: model.alpha, model.width, model.c, train.*, stop.*); NaN where the model has no extreme
    vector or does not reach its target."""
    from compare.runner import STAGE_STEPS, stop_rule, train_staged

    usable = [i for i, limit in enumerate(limits) if np.all(np.isfinite(limit.u_plus))
              and np.all(np.isfinite(limit.u_minus))]
    errors = np.full(len(datasets), np.nan)
    if not usable:
        return errors
    alpha, width, c = float(run["model.alpha"]), int(run["model.width"]), float(run["model.c"])
    pairs = [reduced_network(limits[i], alpha=alpha, width=width) for i in usable]
    results, _ = train_staged(
        np.stack([W for W, _ in pairs]), np.stack([v for _, v in pairs]),
        np.stack([datasets[i].X for i in usable]), np.stack([datasets[i].y for i in usable]),
        c=np.full(len(usable), c), eta=float(run["train.eta"]), policy=run["train.step_policy"],
        rule=stop_rule(run["stop.rule"], float(run["stop.eps"])), loss=run["model.loss"],
        max_steps=max(int(run["train.max_steps"]), STAGE_STEPS), t_max=float(run["train.t_max"]),
        batch_size=None, seeds=[0] * len(usable),
    )
    for i, result in zip(usable, results, strict=True):
        if result.ok:
            scores = metrics.network_outputs(result.W, result.v, datasets[i].X_test, c)
            errors[i] = metrics.error_rate(scores, datasets[i].y_test)[0]
    return errors


def predicted_escape_time(lambda_plus: float, *, alpha: float, width: int, c: float = 1.0) -> float:
    """End of the small-norm phase for the positive group (norm alpha sqrt(m/2), psi0 = 0); NaN when the group
    starts already escaped (sqrt(c) alpha sqrt(m/2) >= 1)."""
    norm0 = check_positive("alpha", alpha) * np.sqrt(width / 2)
    if np.sqrt(c) * norm0 >= 1.0:
        return float("nan")
    return escape_time(rate=lambda_plus, psi0=0.0, norm0=norm0, c=c)


def alignment_boundary_fls(width: int, *, aligned_psi: float = ALIGNED_PSI) -> float:
    """FLS above which the tanh law reaches Psi = aligned_psi before the escape time (module docstring)."""
    aligned_psi = check_in_range("aligned_psi", aligned_psi, 0.0, 1.0, closed="neither")
    return (width / 2) / (1.0 - aligned_psi**2)


def f0_boundary_fls(X: np.ndarray, *, width: int, scale: float = F0_SCALE) -> float:
    """FLS below which the initial function's standard deviation on the rows of X exceeds ``scale``.

    Var f0(x) is proportional to c^2 alpha^4 = 1 / FLS^2 (theory.lazy.initial_function_covariance), so with V1 the
    mean variance at FLS = 1 the boundary is FLS = sqrt(V1) / scale.
    """
    variance = np.diag(initial_function_covariance(X, X, alpha=1.0, width=width, c=1.0)).mean()
    return float(np.sqrt(variance) / check_positive("scale", scale))


def boundaries(dataset: Dataset, *, width: int) -> dict[str, float]:
    """The predicted regime boundaries, as FLS values, for one data set and width (module docstring)."""
    return {"alignment": alignment_boundary_fls(width), "f0": f0_boundary_fls(dataset.X, width=width)}


#: Columns :func:`add_predictions` writes.
PREDICTION_COLUMNS = ("lambda_plus", "pred_escape_time", "pred_Psi", "pred_cos_bayes", "pred_small_alpha_error",
                      "pred_lazy_error", "pred_lazy_error_se")


def add_predictions(table: pd.DataFrame, *, lazy_top: int = 3) -> pd.DataFrame:
    """The run table with the predictions of this module for each run of the discrete engines.

    Per (cell, seed), a cell being the runs that share every key but alpha, c and the seed: lambda+ and the
    escape time of each run; the extreme-vector cosines; the reduced model's test error, trained at the cell's
    smallest alpha (``pred_small_alpha_error``, the same for every alpha of the seed); and the lazy limit at the
    cell's ``lazy_top`` largest alphas (``pred_lazy_error``, NaN elsewhere: the kernel flow at small alpha
    needs times ~ 1 / alpha^2 and predicts nothing there).
    """
    from compare.runner import MEMBER_KEYS, dataset_for, initial_parameters

    out = table.copy()
    for column in PREDICTION_COLUMNS:
        out[column] = np.nan
    runs = out[out["train.engine"].isin(("gd", "sgd", "flow"))] if "train.engine" in out else out.iloc[:0]
    keys = [k for k in runs.columns if "." in k and k not in MEMBER_KEYS]
    for _, cell in runs.groupby(keys, dropna=False, sort=False):
        alphas = np.sort(cell["model.alpha"].unique())
        smallest = cell[cell["model.alpha"] == alphas[0]]
        seeds = sorted(cell["seed"].unique())
        datasets = {seed: dataset_for(cell[cell["seed"] == seed].iloc[0].to_dict()) for seed in seeds}
        limits = {seed: small_alpha_limit(datasets[seed], c=float(cell["model.c"].iloc[0])) for seed in seeds}
        reduced_run = smallest.iloc[0].to_dict()
        reduced = reduced_model_error([datasets[s] for s in seeds], [limits[s] for s in seeds], reduced_run)
        for seed, error in zip(seeds, reduced, strict=True):
            rows = cell.index[cell["seed"] == seed]
            limit = limits[seed]
            out.loc[rows, "lambda_plus"] = limit.lambda_plus
            out.loc[rows, "pred_Psi"] = limit.psi
            out.loc[rows, "pred_cos_bayes"] = limit.cos_bayes
            out.loc[rows, "pred_small_alpha_error"] = error
            for row in rows:
                out.loc[row, "pred_escape_time"] = predicted_escape_time(
                    limit.lambda_plus, alpha=float(out.loc[row, "model.alpha"]),
                    width=int(out.loc[row, "model.width"]), c=float(out.loc[row, "model.c"]))
        for row in cell.index[cell["model.alpha"].isin(alphas[-lazy_top:])]:
            run = out.loc[row].to_dict()
            W0, v0 = initial_parameters(run)
            lazy = lazy_limit(datasets[run["seed"]], W0, v0, alpha=float(run["model.alpha"]),
                              c=float(run["model.c"]), eps=float(run["stop.eps"]), t_max=float(run["train.t_max"]),
                              loss=run["model.loss"])
            out.loc[row, "pred_lazy_error"] = lazy.test_error
            out.loc[row, "pred_lazy_error_se"] = lazy.test_error_se
    return out
