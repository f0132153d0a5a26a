"""The runner of the quality family: train a batch of two-layer networks and fit their kernel peers
(docs/design.md section 5, "The layers"; the family: docs/quality.md).

The sweeps (``compare/configs/quality.toml``, its axes and controls: :mod:`compare.quality_config`) train
two-layer ReLU networks over grids of FLS = 1 / (c alpha^2), widths and data sizes n and, for every run, fit
the kernel peers of
:mod:`simulate.kernel` on the same data: the tangent and conjugate kernels at init (empirical and
infinite-width) and after training. Each batch is run by :func:`run_quality_batch` (the runner
:func:`compare.sweep.run_sweep` calls), which

- appends a constant coordinate to every input (x -> (x, 1), a bias). Without it the staircase is out of
  reach: relu(z) = (z + |z|) / 2, so f(x) - f(-x) = c sum_j v_j <w_j, x> for a bias-free network, whose odd
  part is therefore linear; x1 x2 x3 is odd and orthogonal to every linear function on the hypercube, so
  neither the network nor any of its kernels (tangent or conjugate, at init or after) can fit it (test MSE >=
  1 on S_3);
- trains the members of a batch as one ensemble (:func:`simulate.train.loop.run_members`) by full-batch GD,
  member e with the step eta_e = min(eta, 1 / lambda_max(K0_e / n)), K0_e its empirical tangent kernel at init
  (the Gauss-Newton Hessian of the squared-loss risk at init: the lazy stability limit where it binds), to the
  config's stopping rule, in the run's ``train.dtype`` (float64 unless the sweep says float32); real targets are fitted with the compiled squared loss (f - y)^2 / 2
  (:mod:`theory.losses`);
- fits every kernel with the network's loss: kernel ridgeless regression (Cholesky) for the squared loss,
  kernel gradient flow to the same target risk for the logistic loss. A ridgeless fit and a flow stopped at a
  risk level do not depend on the kernel's scale, and the init of a seed is the same up to the factor alpha at
  every alpha (:mod:`simulate.initialization`), so the init kernels are fitted once per seed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import eigh

from fls.compare.inputs import dataset_for, stop_rule
from fls.compare.quality_config import DTYPE_KEY, PRECISIONS
from fls.compare.quality_metrics import prediction_error, strength_measures
from fls.compare.runner import RunOutput
from fls.compare.vocabulary import (
    ALPHA_KEY,
    C_KEY,
    ENGINE_KEY,
    EPS_KEY,
    ETA_KEY,
    INIT_KEY,
    LOSS_KEY,
    MAX_STEPS_KEY,
    STOP_RULE_KEY,
    WIDTH_KEY,
)
from fls.simulate.initialization import init_params
from fls.simulate.kernel import KERNELS, kernel_logistic_regression, kernel_matrices, kernel_regression
from fls.simulate.result import RunResult
from fls.simulate.train.device import placement
from fls.simulate.train.ensemble import TwoLayerEnsemble
from fls.simulate.train.loop import MemberRecord, run_members
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.compiled import compile_field
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.losses import TARGET_KINDS, is_binary
from fls.theory.validation import ParameterError, as_array

#: Step cap in the lazy regime: eta_e lambda_max(K0_e / n) <= LAZY_STEP (GD on a quadratic is stable below 2).
LAZY_STEP = 1.0


#: Time limit of the kernel gradient flows (in the normalized time of simulate.kernel).
KERNEL_T_MAX = 1e6


#: Kernel fits of every run: each kernel of simulate.kernel.KERNELS at init (column err_<kernel>), and the
#: empirical ones after training (err_<name> for name -> kernel).
AFTER_FITS = {"tangent_after": "tangent", "conjugate_after": "conjugate"}


def with_bias(X: Any) -> np.ndarray:
    """x -> (x, 1): the constant coordinate that gives the bias-free network a bias (module docstring)."""
    X = as_array("X", X, ndim=2)
    return np.hstack([X, np.ones((X.shape[0], 1))])


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
    dtype: str = "float64",
) -> list[MemberRecord]:
    """Full-batch GD of the ensemble (W0 (E, m, d), v0 (E, m)) on per-member data X (E, n, d), y (E, n), in
    ``dtype`` (float64 or float32; the final W, v are returned in float64).

    Fitted with ``loss`` (:func:`theory.compiled.compile_field`): labels in {-1, +1} with any loss, real
    targets with ``squared``, (f - y)^2 / 2. Risk recorded at log-spaced steps and at the stop.
    """
    if not is_binary(y) and TARGET_KINDS[loss] != "real":
        raise ParameterError(
            f"model.loss = {loss!r} needs labels in {{-1, +1}}; allowed for real targets: 'squared'"
        )
    where = placement("cpu", dtype)
    family = TwoLayerEnsemble(
        where.tensor(W0),
        where.tensor(v0),
        where.tensor(c),
        where.tensor(X),
        where.tensor(y),
        compile_field(loss),
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
    task = "classification" if is_binary(dataset.y) else "regression"
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
        row[f"err_{name}"] = prediction_error(result.f_test, data.y_test, data.task) if ok else np.nan
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
    after-kernels (tangent_after, conjugate_after), each fit's relative jitter and status; the strength
    measures of :mod:`compare.quality_metrics` (the gains are formed from the errors when a table is read,
    :func:`finished_runs`); ``task``, the batch's ``batch_id`` (its first run's id) and ``batch_runs``, the
    training and batch wall times and the batch's CPU time (the cost of a sweep without the load of other
    processes), which `fls report` summarizes as it does the fls runner's. Arrays: ``t`` and
    ``risk``. Runs without a result (not_reached, diverged) keep NaN in the measured columns.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    runs = [dict(run) for run in runs]
    first = runs[0]
    loss, eps = first[LOSS_KEY], float(first[EPS_KEY])
    datasets: dict[int, _Data] = {}
    init_rows: dict[int, dict[str, float]] = {}
    W0s, v0s, K0s, etas = [], [], [], []
    for run in runs:
        seed, alpha, c = int(run["seed"]), float(run[ALPHA_KEY]), float(run[C_KEY])
        if seed not in datasets:
            datasets[seed] = _data(run)
        data = datasets[seed]
        W0, v0 = init_params(
            int(run[WIDTH_KEY]), data.X.shape[1], alpha=alpha, scheme=run[INIT_KEY], seed=seed
        )
        if seed not in init_rows:
            init_rows[seed] = _init_fits(W0, v0, c, alpha, data, loss, eps)
        K0 = empirical_tangent_kernel(W0, v0, data.X, data.X, c=c)
        W0s.append(W0)
        v0s.append(v0)
        K0s.append(K0)
        etas.append(_step_size(K0, float(run[ETA_KEY])))
    members = [datasets[int(run["seed"])] for run in runs]
    c = np.array([float(run[C_KEY]) for run in runs])
    train_start = time.perf_counter()
    records = train_members(
        np.stack(W0s),
        np.stack(v0s),
        np.stack([d.X for d in members]),
        np.stack([d.y for d in members]),
        c=c,
        etas=np.array(etas),
        loss=loss,
        rule=stop_rule(first[STOP_RULE_KEY], eps),
        max_steps=int(first[MAX_STEPS_KEY]),
        dtype=first.get(DTYPE_KEY, PRECISIONS[0]),
    )
    train_seconds = time.perf_counter() - train_start
    outputs = []
    for e, (run, record, data) in enumerate(zip(runs, records, members, strict=True)):
        row: dict[str, Any] = {
            "status": record.status,
            "message": record.message,
            "engine": run[ENGINE_KEY],
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
    timings = {
        "batch_id": str(first["run_id"]),  # a run is in one batch, so its first run names it
        "batch_runs": len(runs),
        "train_seconds": train_seconds,
        "batch_seconds": time.perf_counter() - start,
        "batch_cpu_seconds": time.process_time() - cpu_start,
    }
    for output in outputs:
        output.row.update(timings)
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
