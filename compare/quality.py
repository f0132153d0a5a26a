"""Feature-learning strength against feature quality: the quality sweep, its claim and its report.

The claim (from "Feature learning is decoupled from generalization in high capacity neural networks", 2025): the
common measures of feature-learning *strength* (how far training moved the weights, the tangent kernel, its
alignment with the target, the hidden representation) do not track feature *quality* (how much the learned
features improve generalization over a kernel method), while networks beat kernel methods on staircase functions
by large factors. Definitions of the measures: :mod:`compare.quality_metrics`.

The sweep (``compare/configs/quality.toml``, plus two controls, :func:`quality_sweeps`) trains two-layer ReLU
networks over a grid of FLS = 1 / (c alpha^2) and data sizes n and, for every run, fits the kernel peers of
:mod:`simulate.kernel` on the same data: the tangent and conjugate kernels at init (empirical and infinite-width)
and after training. Each batch is run by :func:`run_quality_batch` (the runner :func:`compare.sweep.run_sweep`
calls), which

- appends a constant coordinate to every input (x -> (x, 1), a bias). Without it the staircase is out of reach:
  relu(z) = (z + |z|) / 2, so f(x) - f(-x) = c sum_j v_j <w_j, x> for a bias-free network, whose odd part is
  therefore linear; x1 x2 x3 is odd and orthogonal to every linear function on the hypercube, so neither the
  network nor any of its kernels (tangent or conjugate, at init or after) can fit it (test MSE >= 1 on S_3);
- trains the members of a batch as one ensemble (:func:`simulate.train.loop.run_members`) by full-batch GD, member
  e with the step eta_e = min(eta, 1 / lambda_max(K0_e / n)), K0_e its empirical tangent kernel at init (the
  Gauss-Newton Hessian of the squared-loss risk at init: the lazy stability limit where it binds), to the
  config's stopping rule; real targets are fitted with the loss (f - y)^2 / 2 (the compiled squared loss,
  (1 - y f)^2 / 2, is that loss only for labels in {-1, +1});
- fits every kernel with the network's loss: kernel ridgeless regression (Cholesky) for the squared loss, kernel
  gradient flow to the same target risk for the logistic loss. A ridgeless fit and a flow stopped at a risk
  level do not depend on the kernel's scale, and the init of a seed is the same up to the factor alpha at every
  alpha (:mod:`simulate.initialization`), so the init kernels are fitted once per seed.

The claim check (:func:`strength_quality_claim`) correlates each strength measure with the quality across all
runs (every FLS and data size) by Spearman's rho, with a bootstrap interval, and applies the rule of
:data:`RULE`. :func:`verify_quality` runs the sweeps, writes ``quality_report.md`` and the figures, and prints a
summary.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import eigh
from scipy.stats import rankdata

from fls.compare import claims, plots
from fls.compare.quality_metrics import (
    QUALITY_MEASURES,
    STRENGTH_MEASURES,
    prediction_error,
    quality_gains,
    strength_measures,
)
from fls.compare.runner import RunOutput, dataset_for, stop_rule
from fls.compare.sweep import run_sweep
from fls.simulate.initialization import init_params
from fls.simulate.kernel import KERNELS, kernel_logistic_regression, kernel_matrices, kernel_regression
from fls.simulate.result import RunResult
from fls.simulate.train.device import placement
from fls.simulate.train.ensemble import TwoLayerEnsemble
from fls.simulate.train.loop import MemberRecord, run_members
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.compiled import compile_field
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.validation import ParameterError, as_array

#: The packaged default quality sweep.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "quality.toml"

#: The controls run next to it, as changes to it (``None`` removes a key): the sign of S_3 as labels (the error is
#: then an error rate), and the parity x1 x2 x3 (no staircase to climb), each at the largest and the smallest FLS
#: of the main grid. Both keep the squared loss, so every kernel peer is an exact ridgeless fit: a logistic-loss
#: variant ("model": {"loss": "logistic"}) fits its kernels by kernel gradient flow to the same target risk, which
#: at n = 800 takes minutes per kernel (10^5 to 10^6 units of normalized time, and t_max for the conjugate kernel
#: at init, whose 128 features do not separate the data).
CONTROLS: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "staircase-classification": {
        "data": {"task": "classification"},
        "grid": {"model.alpha": [0.05, 2.0], "seeds": 2},
        "sweep": {"name": "quality-classification"},
    },
    "parity": {
        "data": {"model": "parity", "task": None},
        "grid": {"model.alpha": [0.05, 2.0], "seeds": 2},
        "sweep": {"name": "quality-parity"},
    },
}
MAIN_SWEEP = "staircase-regression"

#: Step cap in the lazy regime: eta_e lambda_max(K0_e / n) <= LAZY_STEP (GD on a quadratic is stable below 2).
LAZY_STEP = 1.0

#: Time limit of the kernel gradient flows (in the normalized time of simulate.kernel).
KERNEL_T_MAX = 1e6

#: Kernel fits of every run: each kernel of simulate.kernel.KERNELS at init (column err_<kernel>), and the
#: empirical ones after training (err_<name> for name -> kernel).
AFTER_FITS = {"tangent_after": "tangent", "conjugate_after": "conjugate"}

#: The claim's rule (module docstring of compare.quality and docs/quality.md).
TRACKING_RHO = 0.5
MIN_RUNS, MIN_SIZES = 12, 2
RULE = (
    f"Per strength measure s: rho = Spearman(s, quality) over all finished runs, 95 % interval from a bootstrap "
    f"over runs stratified by n; rho_n the same within each data size n. s is DECOUPLED from quality if the "
    f"interval of rho contains 0, or lies inside (-{TRACKING_RHO}, {TRACKING_RHO}), or two data sizes have "
    f"intervals of rho_n that exclude 0 on opposite sides (a sign change); s TRACKS quality if the interval of rho "
    f"lies beyond +{TRACKING_RHO} or beyond -{TRACKING_RHO} and there is no sign change; otherwise it is "
    f"undecided. The claim passes when every measure is decoupled, fails when some measure tracks, and is "
    f"inconclusive otherwise or with fewer than {MIN_RUNS} runs or {MIN_SIZES} data sizes."
)


# ---------------------------------------------------------------------------------------------------------------
# Running a batch
# ---------------------------------------------------------------------------------------------------------------


def with_bias(X: Any) -> np.ndarray:
    """x -> (x, 1): the constant coordinate that gives the bias-free network a bias (module docstring)."""
    X = as_array("X", X, ndim=2)
    return np.hstack([X, np.ones((X.shape[0], 1))])


class SquaredError:
    """The compiled two-layer network with the loss (f - y)^2 / 2 on real targets, for :class:`TwoLayerEnsemble`."""

    def __init__(self) -> None:
        self._field = compile_field("squared")

    def output(self, W: Any, v: Any, X: Any, c: Any) -> Any:
        return self._field.output(W, v, X, c)

    def field_and_output(
        self, W: Any, v: Any, X: Any, y: Any, c: Any, *, out: tuple[Any, Any]
    ) -> tuple[Any, Any, Any]:
        """-grad of the mean of (f - y)^2 / 2, and f: the compiled field with sample factor y - f."""
        return self._field.field_and_output(W, v, X, y, c, out=out, sample=lambda f, y: y - f)

    def losses(self, f: Any, y: Any) -> Any:
        return (f - y) ** 2 / 2


def are_labels(y: Any) -> bool:
    """Whether every target is -1 or +1 (then the loss is the config's and the error is an error rate)."""
    return bool(np.all(np.isin(np.asarray(y), (-1.0, 1.0))))


def train_members(
    W0: np.ndarray,
    v0: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    c: np.ndarray,
    etas: np.ndarray,
    loss: str,
    rule: Any,
    max_steps: int,
) -> list[MemberRecord]:
    """Full-batch GD of the ensemble (W0 (E, m, d), v0 (E, m)) on per-member data X (E, n, d), y (E, n).

    Labels in {-1, +1} are fitted with ``loss`` (:func:`theory.compiled.compile_field`), real targets with
    (f - y)^2 / 2 (``loss`` must then be ``squared``). Risk recorded at log-spaced steps and at the stop.
    """
    labels = are_labels(y)
    if not labels and loss != "squared":
        raise ParameterError(
            f"model.loss = {loss!r} needs labels in {{-1, +1}}; allowed for real targets: 'squared'"
        )
    where = placement("cpu", "float64")
    family = TwoLayerEnsemble(
        where.tensor(W0),
        where.tensor(v0),
        where.tensor(c),
        where.tensor(X),
        where.tensor(y),
        compile_field(loss) if labels else SquaredError(),
    )
    records, _ = run_members(
        family,
        step_sizes=where.tensor(etas),
        budgets=[max_steps] * len(etas),
        rule=rule,
        schedule=SaveSchedule.log_spaced(10),
    )
    return records


@dataclass(frozen=True)
class _Data:
    """One seed's data set, inputs with the bias coordinate, and its task."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str


def _data(run: Mapping[str, Any]) -> _Data:
    dataset = dataset_for(run)
    task = "classification" if are_labels(dataset.y) else "regression"
    return _Data(with_bias(dataset.X), dataset.y, with_bias(dataset.X_test), dataset.y_test, task)


def _fit(K: np.ndarray, K_test: np.ndarray, data: _Data, loss: str, eps: float) -> RunResult:
    """The kernel peer of a network trained with ``loss``: ridgeless regression or logistic flow to eps."""
    if loss == "squared":
        return kernel_regression(K, data.y, K_test)
    return kernel_logistic_regression(K, data.y, K_test, target_risk=eps, t_max=KERNEL_T_MAX, loss=loss)


def _fit_errors(
    fits: Mapping[str, tuple[np.ndarray, np.ndarray]], data: _Data, loss: str, eps: float
) -> dict[str, float]:
    """err_<name>, jitter_<name> and the fit's status for every kernel of ``fits``."""
    row: dict[str, float] = {}
    for name, (K, K_test) in fits.items():
        result = _fit(K, K_test, data, loss, eps)
        ok = result.status == "target_reached"
        row[f"err_{name}"] = prediction_error(result.info["f_test"], data.y_test, data.task) if ok else np.nan
        row[f"jitter_{name}"] = float(result.info.get("relative_jitter", 0.0))
        row[f"fit_{name}"] = result.status
    return row


def _init_fits(
    W0: np.ndarray, v0: np.ndarray, c: float, alpha: float, data: _Data, loss: str, eps: float
) -> dict[str, float]:
    """:func:`_fit_errors` of every kernel of simulate.kernel.KERNELS at the init (W0, v0) of scale alpha."""
    fits = {
        kernel: kernel_matrices(kernel, data.X, data.X_test, W=W0, v=v0, c=c, alpha=alpha)
        for kernel in KERNELS
    }
    return _fit_errors(fits, data, loss, eps)


def _step_size(K0: np.ndarray, eta: float) -> float:
    """min(eta, LAZY_STEP / lambda_max(K0 / n)) for the tangent kernel K0 on the n training points."""
    top = float(eigh(K0, eigvals_only=True, subset_by_index=[len(K0) - 1, len(K0) - 1])[0])
    return min(eta, LAZY_STEP * len(K0) / top) if top > 0 else eta


def run_quality_batch(runs: Sequence[Mapping[str, Any]]) -> list[RunOutput]:
    """Train and measure one batch of the quality sweep (runs that differ only in alpha, c and seed).

    Each row: the run's status, message, t_stop, steps, eta, final_risk; test errors ``err_network`` and
    ``err_<kernel>`` for the init kernels (tangent, conjugate, tangent_closed, conjugate_closed) and the
    after-kernels (tangent_after, conjugate_after), each fit's relative jitter and status; the strength measures
    of :mod:`compare.quality_metrics` (the gains are formed from the errors when a table is read,
    :func:`finished_runs`); ``task`` and the training and batch wall times. Arrays: ``t`` and
    ``risk``. Runs without a result (not_reached, diverged) keep NaN in the measured columns.
    """
    start = time.perf_counter()
    runs = [dict(run) for run in runs]
    first = runs[0]
    loss, eps = first["model.loss"], float(first["stop.eps"])
    datasets: dict[int, _Data] = {}
    init_rows: dict[int, dict[str, float]] = {}
    W0s, v0s, K0s, etas = [], [], [], []
    for run in runs:
        seed, alpha, c = int(run["seed"]), float(run["model.alpha"]), float(run["model.c"])
        if seed not in datasets:
            datasets[seed] = _data(run)
        data = datasets[seed]
        W0, v0 = init_params(
            int(run["model.width"]), data.X.shape[1], alpha=alpha, scheme=run["model.init"], seed=seed
        )
        if seed not in init_rows:
            init_rows[seed] = _init_fits(W0, v0, c, alpha, data, loss, eps)
        K0 = empirical_tangent_kernel(W0, v0, data.X, data.X, c=c)
        W0s.append(W0)
        v0s.append(v0)
        K0s.append(K0)
        etas.append(_step_size(K0, float(run["train.eta"])))
    members = [datasets[int(run["seed"])] for run in runs]
    c = np.array([float(run["model.c"]) for run in runs])
    train_start = time.perf_counter()
    records = train_members(
        np.stack(W0s),
        np.stack(v0s),
        np.stack([d.X for d in members]),
        np.stack([d.y for d in members]),
        c=c,
        etas=np.array(etas),
        loss=loss,
        rule=stop_rule(first["stop.rule"], eps),
        max_steps=int(first["train.max_steps"]),
    )
    train_seconds = time.perf_counter() - train_start
    outputs = []
    for e, (run, record, data) in enumerate(zip(runs, records, members, strict=True)):
        row: dict[str, Any] = {
            "status": record.status,
            "message": record.message,
            "engine": run["train.engine"],
            "task": data.task,
            "steps": record.steps,
            "eta": etas[e],
            "t_stop": record.steps * etas[e],
            "final_risk": float(record.history["risk"][-1]),
            "bias_coordinate": True,
            **init_rows[int(run["seed"])],
        }
        if record.status == "target_reached":
            row.update(_measure(W0s[e], v0s[e], K0s[e], record, data, c[e], loss, eps))
        outputs.append(
            RunOutput(row, {"t": record.history["step"] * etas[e], "risk": record.history["risk"]})
        )
    for output in outputs:
        output.row.update({"train_seconds": train_seconds, "batch_seconds": time.perf_counter() - start})
    return outputs


def _measure(
    W0: np.ndarray,
    v0: np.ndarray,
    K0: np.ndarray,
    record: MemberRecord,
    data: _Data,
    c: float,
    loss: str,
    eps: float,
) -> dict[str, Any]:
    """Test errors of the network and of its after-kernels, and the strength measures, of one trained run."""
    W, v = record.final["W"], record.final["v"]
    fits = {
        name: kernel_matrices(kernel, data.X, data.X_test, W=W, v=v, c=c)
        for name, kernel in AFTER_FITS.items()
    }
    row: dict[str, Any] = _fit_errors(fits, data, loss, eps)
    f_test = compile_field("squared").output(W, v, data.X_test, c)
    row["err_network"] = prediction_error(f_test, data.y_test, data.task)
    row.update(strength_measures(W0, v0, W, v, data.X, data.y, c=c, K0=K0, K=fits["tangent_after"][0]))
    return row


def _with_gains(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the quality gains of :func:`compare.quality_metrics.quality_gains` as columns."""
    errors = {
        name: table.get(f"err_{name}", pd.Series(np.nan, index=table.index))
        for name in ("network", "tangent", "tangent_after", "conjugate", "conjugate_after")
    }
    gains = [
        quality_gains({name: float(column.iloc[i]) for name, column in errors.items()})
        for i in range(len(table))
    ]
    return table.assign(**{name: [g[name] for g in gains] for name in QUALITY_MEASURES})


# ---------------------------------------------------------------------------------------------------------------
# The claim
# ---------------------------------------------------------------------------------------------------------------


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of x and y (shape (..., N)): the Pearson correlation of the ranks
    (average ranks for ties); NaN for a row with a constant side."""
    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    norms = np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (rx * ry).sum(-1) / np.where(norms > 0, norms, 1.0), np.nan)


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of one strength measure with the quality: over all runs and within each data size."""

    measure: str
    rho: float
    interval: tuple[float, float]
    by_size: dict[int, tuple[float, tuple[float, float]]]
    state: str

    def describe(self) -> str:
        sizes = "; ".join(
            f"n={n}: {r:+.2f} [{lo:+.2f}, {hi:+.2f}]" for n, (r, (lo, hi)) in self.by_size.items()
        )
        lo, hi = self.interval
        return f"{self.rho:+.2f} [{lo:+.2f}, {hi:+.2f}]; {sizes} -> {self.state}"


def tracking_state(interval: tuple[float, float], by_size: Sequence[tuple[float, float]]) -> str:
    """``decoupled``, ``tracks`` or ``undecided`` by the rule of :data:`RULE` (intervals of rho and of each rho_n)."""
    lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    sign_change = any(low > 0 for low, _ in by_size) and any(high < 0 for _, high in by_size)
    if lo <= 0 <= hi or (-TRACKING_RHO < lo and hi < TRACKING_RHO) or sign_change:
        return "decoupled"
    if lo > TRACKING_RHO or hi < -TRACKING_RHO:
        return "tracks"
    return "undecided"


def correlations(runs: pd.DataFrame, quality: str, context: claims.ClaimContext) -> list[Correlation]:
    """Spearman's rho of every strength measure with ``quality`` over ``runs`` (finite values), with intervals
    from :data:`compare.claims.N_BOOT` resamples of the runs within each data size (seeded by context.seed)."""
    sizes = sorted(int(n) for n in runs["data.n"].unique())
    strata = [np.flatnonzero(runs["data.n"].to_numpy() == n) for n in sizes]
    draws = [
        rows[claims.resample_indices(len(rows), n_boot=context.n_boot, seed=context.seed + j)]
        for j, rows in enumerate(strata)
    ]
    pooled = np.concatenate(draws, axis=1)
    q = runs[quality].to_numpy(dtype=float)
    out = []
    for measure in STRENGTH_MEASURES:
        s = runs[measure].to_numpy(dtype=float)
        rho = float(spearman_rows(s, q))
        interval = claims.interval(spearman_rows(s[pooled], q[pooled]), claims.LEVEL)
        by_size = {
            n: (float(spearman_rows(s[rows], q[rows])), claims.interval(spearman_rows(s[draw], q[draw])))
            for n, rows, draw in zip(sizes, strata, draws, strict=True)
        }
        state = tracking_state(interval, [bounds for _, bounds in by_size.values()])
        out.append(Correlation(measure, rho, interval, by_size, state))
    return out


def finished_runs(table: pd.DataFrame, quality: str = "gain_tangent") -> pd.DataFrame:
    """Runs that reached their target, with the gains, and finite strength measures and ``quality``."""
    runs = _with_gains(table[table["status"] == "target_reached"])
    columns = [*STRENGTH_MEASURES, quality]
    if any(column not in runs for column in columns):  # no run was measured
        return runs.iloc[0:0]
    return runs[np.isfinite(runs[columns].to_numpy(dtype=float)).all(axis=1)]


def strength_quality_claim(
    table: pd.DataFrame, context: claims.ClaimContext | None = None, *, quality: str = "gain_tangent"
) -> claims.ClaimResult:
    """(q) Feature-learning strength does not track feature quality, by the rule of :data:`RULE`.

    ``quality`` is a column of :data:`compare.quality_metrics.QUALITY_MEASURES` (default: the gain of the tangent
    after-kernel over the tangent kernel at init). The statistic is the rho of the measure with the largest |rho|;
    the evidence lists every measure's rho, its interval, its rho_n per data size and its state, and the same
    correlations with the network's own gain. The figure plots every strength measure against the quality.
    """
    context = claims.ClaimContext() if context is None else context
    title = "feature-learning strength does not track feature quality"
    statistic = f"Spearman rho(strength, {quality}), the measure with the largest |rho|"
    runs = finished_runs(table, quality)
    sizes = runs["data.n"].nunique() if len(runs) else 0
    if len(runs) < MIN_RUNS or sizes < MIN_SIZES:
        return claims.ClaimResult(
            "q",
            title,
            "inconclusive",
            f"{len(runs)} finished runs over {sizes} data sizes; "
            f"at least {MIN_RUNS} and {MIN_SIZES} are needed",
            statistic,
            float("nan"),
            (float("nan"), float("nan")),
            {"rule": RULE},
        )
    found = correlations(runs, quality, context)
    states = [c.state for c in found]
    if all(s == "decoupled" for s in states):
        verdict, reason = "pass", "every strength measure is decoupled from the quality"
    elif "tracks" in states:
        verdict = "fail"
        reason = "tracks quality: " + ", ".join(c.measure for c in found if c.state == "tracks")
    else:
        verdict = "inconclusive"
        reason = "undecided: " + ", ".join(c.measure for c in found if c.state == "undecided")
    strongest = max(found, key=lambda c: abs(c.rho) if np.isfinite(c.rho) else -1.0)
    evidence: dict[str, Any] = {
        "rule": RULE,
        "quality": quality,
        "runs": len(runs),
        "data sizes": sorted(int(n) for n in runs["data.n"].unique()),
    }
    evidence.update({f"rho({c.measure})": c.describe() for c in found})
    if quality != "gain_network":
        network = finished_runs(table, "gain_network")
        if len(network) >= MIN_RUNS:
            evidence.update(
                {
                    f"rho({c.measure}, gain_network)": c.describe()
                    for c in correlations(network, "gain_network", context)
                }
            )
    path = context.figure("quality_strength.png")
    figure = strength_quality_figure(runs, found, quality, path)[0] if path is not None else None
    return claims.ClaimResult(
        "q", title, verdict, reason, statistic, strongest.rho, strongest.interval, evidence, figure
    )


# ---------------------------------------------------------------------------------------------------------------
# Learning curves and figures
# ---------------------------------------------------------------------------------------------------------------

#: Test errors in a learning curve, with their labels.
CURVE_ERRORS = {
    "err_network": "network",
    "err_tangent": "tangent kernel at init",
    "err_tangent_closed": "tangent kernel at init (infinite width)",
    "err_conjugate": "conjugate kernel at init",
    "err_conjugate_closed": "conjugate kernel at init (infinite width)",
    "err_tangent_after": "tangent after-kernel",
    "err_conjugate_after": "conjugate after-kernel",
}
INIT_ERRORS = ("err_tangent", "err_tangent_closed", "err_conjugate", "err_conjugate_closed")


def learning_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Mean test errors, strength and quality over seeds per (n, alpha) of the finished runs, with the network's
    advantage

        ratio = min over init kernels of the mean error / mean network error

    (the best kernel at init against the network); ``runs`` counts the finished runs of each cell."""
    runs = _with_gains(table[table["status"] == "target_reached"])
    columns = [c for c in (*CURVE_ERRORS, "weight_change", "kernel_change", "gain_tangent") if c in runs]
    if runs.empty:
        return pd.DataFrame(columns=["data.n", "model.alpha", *columns, "runs", "fls", "ratio"])
    curves = runs.groupby(["data.n", "model.alpha"])[columns].mean()
    curves["runs"] = runs.groupby(["data.n", "model.alpha"]).size()
    curves["fls"] = runs.groupby(["data.n", "model.alpha"])["fls"].first()
    curves["ratio"] = curves[[c for c in INIT_ERRORS if c in curves]].min(axis=1) / curves["err_network"]
    return curves.reset_index()


def strength_quality_figure(
    runs: pd.DataFrame, found: Sequence[Correlation], quality: str, out_path: str | Path
) -> list[Path]:
    """Every strength measure against the quality, one panel each, colour = data size, size = FLS."""
    figure, axes = plots.plt.subplots(1, len(found), figsize=(4.0 * len(found), 3.6), sharey=True)
    sizes = sorted(runs["data.n"].unique())
    for ax, correlation in zip(np.atleast_1d(axes), found, strict=True):
        for i, n in enumerate(sizes):
            cell = runs[runs["data.n"] == n]
            ax.scatter(
                cell[correlation.measure],
                cell[quality],
                s=12 + 10 * np.log10(cell["fls"] / runs["fls"].min()),
                color=f"C{i}",
                alpha=0.8,
                label=f"n = {n}",
            )
        if correlation.measure in ("weight_change", "kernel_change"):
            ax.set_xscale("log")
        lo, hi = correlation.interval
        ax.set_title(f"rho = {correlation.rho:+.2f} [{lo:+.2f}, {hi:+.2f}]\n{correlation.state}", fontsize=9)
        ax.set_xlabel(correlation.measure.replace("_", " "))
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    np.atleast_1d(axes)[0].set_ylabel(f"{quality.replace('_', ' ')} (error at init / after)")
    np.atleast_1d(axes)[0].legend(fontsize=8, title="marker size ~ log FLS", title_fontsize=7)
    return plots.save(figure, out_path)


def learning_curve_figure(curves: Mapping[str, pd.DataFrame], out_path: str | Path) -> list[Path]:
    """Test error against n per task: the network at the largest and the smallest FLS, the kernels at init, and
    the after-kernels at the largest FLS."""
    figure, axes = plots.plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.8))
    for ax, (name, table) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        rich, lazy = table["fls"].max(), table["fls"].min()
        for colour, (column, label) in enumerate(CURVE_ERRORS.items()):
            if column not in table:
                continue
            at = table[table["fls"] == rich]
            style = "-" if column in ("err_network", "err_tangent_after", "err_conjugate_after") else "--"
            suffix = f" (FLS {rich:.3g})" if style == "-" else ""
            ax.plot(
                at["data.n"], at[column], style, marker="o", ms=3, color=f"C{colour}", label=label + suffix
            )
        at = table[table["fls"] == lazy]
        ax.plot(
            at["data.n"],
            at["err_network"],
            ":",
            marker="s",
            ms=3,
            color="C0",
            label=f"network (FLS {lazy:.3g})",
        )
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel="test error", title=name)
    np.atleast_1d(axes)[0].legend(fontsize=6)
    return plots.save(figure, out_path)


# ---------------------------------------------------------------------------------------------------------------
# The sweeps, the report and verify
# ---------------------------------------------------------------------------------------------------------------


def quality_sweeps() -> dict[str, dict[str, Any]]:
    """The default sweeps as config tables: the main one (``compare/configs/quality.toml``) and its controls."""
    base = tomllib.loads(DEFAULT_CONFIG.read_text())
    sweeps = {MAIN_SWEEP: base}
    for name, changes in CONTROLS.items():
        config = copy.deepcopy(base)
        for table, values in changes.items():
            for key, value in values.items():
                if value is None:
                    config[table].pop(key, None)
                else:
                    config[table][key] = value
        sweeps[name] = config
    return sweeps


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def headline_ratio(curves: pd.DataFrame) -> pd.DataFrame:
    """Per n, the network at the largest FLS against the best kernel at init (:func:`learning_curves`)."""
    rich = curves[curves["fls"] == curves["fls"].max()]
    return rich[["data.n", "fls", "err_network", *[c for c in INIT_ERRORS if c in rich], "ratio", "runs"]]


def pooled_with_control(
    tables: Mapping[str, pd.DataFrame], context: claims.ClaimContext
) -> list[Correlation]:
    """The correlations of the main sweep pooled with the parity control (informational, not the verdict): the
    parity runs move as much as the staircase runs at the same FLS but gain little, which a strength measure
    cannot tell apart."""
    pooled = finished_runs(pd.concat([tables[MAIN_SWEEP], tables["parity"]], ignore_index=True))
    return correlations(pooled, "gain_tangent", context) if len(pooled) >= MIN_RUNS else []


def write_quality_report(
    out_dir: Path,
    result: claims.ClaimResult,
    tables: Mapping[str, pd.DataFrame],
    curves: Mapping[str, pd.DataFrame],
    pooled: Sequence[Correlation],
    figures: Sequence[Path],
    seconds: float,
) -> Path:
    """``out_dir/quality_report.md``: the verdict and its rule, the correlations (and those pooled with the parity
    control), the learning curves, the network-to-kernel ratios and the figures (linked relative to it)."""
    lines = [
        "# Feature-learning strength against feature quality",
        "",
        f"**Claim (q): {result.title}: {result.verdict}** ({result.reason}).",
        "",
        f"Rule: {RULE}",
        "",
        (
            f"Statistic: {result.statistic} = {result.value:+.3f}, 95 % interval "
            f"[{result.interval[0]:+.3f}, {result.interval[1]:+.3f}]."
        ),
        "",
        "| evidence | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in result.evidence.items() if key != "rule"],
        "",
        "Pooled with the parity control (not part of the verdict; the same rule applied to both tasks' runs):",
        "",
        "| measure | rho [95 %]; per n -> state |",
        "|---|---|",
        *[f"| {c.measure} | {c.describe()} |" for c in pooled],
        "",
    ]
    for name, table in tables.items():
        counts = ", ".join(f"{status}: {count}" for status, count in table["status"].value_counts().items())
        lines += [
            f"## {name}",
            "",
            f"Runs: {counts}.",
            "",
            (
                "Network at the largest FLS against the best kernel "
                "at init (ratio = best init-kernel error / network error; errors are test MSE for regression and "
                "error rates for labels):"
            ),
            "",
            _markdown_table(headline_ratio(curves[name])),
            "",
            "All cells (means over seeds):",
            "",
            _markdown_table(curves[name]),
            "",
        ]
    lines += [
        "## Figures",
        "",
        *[f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in figures],
        "",
        f"Wall time: {seconds:.1f} s.",
        "",
    ]
    path = out_dir / "quality_report.md"
    path.write_text("\n".join(lines))
    return path


def verify_quality(out_dir: str | os.PathLike[str], *, workers: int | None = None) -> Path:
    """Run the default quality sweeps into ``out_dir/store-<name>`` (resuming stopped ones), check the claim,
    write ``out_dir/quality_report.md`` and ``out_dir/figures/``, print a summary and return the report's path."""
    from fls.compare.verify import BLAS_THREAD_VARIABLES  # here: compare.verify may dispatch to this module

    start = time.perf_counter()
    out_dir = Path(out_dir)
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    tables = {
        name: run_sweep(
            config, out_dir / f"store-{name}", workers=workers, runner=run_quality_batch, progress=False
        )
        for name, config in quality_sweeps().items()
    }
    context = claims.ClaimContext(figure_dir=out_dir / "figures")
    result = strength_quality_claim(tables[MAIN_SWEEP], context)
    curves = {name: learning_curves(table) for name, table in tables.items()}
    figures = [p for p in [result.figure] if p is not None]
    figures += learning_curve_figure(curves, out_dir / "figures" / "quality_learning_curves.png")[:1]
    pooled = pooled_with_control(tables, context)
    seconds = time.perf_counter() - start
    path = write_quality_report(out_dir, result, tables, curves, pooled, figures, seconds)
    print(f"(q) {result.title}: {result.verdict} ({result.reason})")
    for key, value in result.evidence.items():
        if key.startswith("rho(") and "gain_network" not in key:
            print(f"  {key}: {value}")
    for correlation in pooled:
        print(f"  pooled with parity, rho({correlation.measure}): {correlation.describe()}")
    for name, table in curves.items():
        ratios = ", ".join(
            f"n={int(r['data.n'])}: {r['ratio']:.3g}" for _, r in headline_ratio(table).iterrows()
        )
        print(f"  {name}: best init kernel / network error at the largest FLS: {ratios}")
    print(f"wall time {seconds:.1f} s; report: {path}")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m fls.compare.quality OUT_DIR [--workers N]``: :func:`verify_quality`."""
    parser = argparse.ArgumentParser(prog="python -m fls.compare.quality", description=verify_quality.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    from fls.simulate.train.device import configure_threads

    configure_threads()
    verify_quality(args.out_dir, workers=args.workers)


if __name__ == "__main__":
    main()
