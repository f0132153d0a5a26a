"""Execute one batch of a sweep (docs/design.md section 5, "The layers"): draw the data, initialize, train
with the engine the run names, measure.

A batch is a list of runs (flat dicts of dotted keys, :mod:`compare.config`) that share every key except
``model.alpha``, ``model.c`` and ``seed``; the discrete engines then train all of them as one ensemble
(:func:`simulate.train.ensemble.train_ensemble`), each member on the data set of its own seed. A batch whose
runs differ in other keys is split into such groups first. :func:`execute_batch` never raises for a bad run: a
run that fails, diverges or misses its target comes back with that status (:data:`simulate.result.STATUSES`)
and a message.

Each discrete batch is trained in stages (:func:`compare.staged.train_staged`, where the step policies and
their measurements are described); the kernel engine is the lazy limit of :func:`compare.limits.lazy_limit`.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fls.compare import metrics
from fls.compare.inputs import dataset_for, initial_state, stop_rule, training_settings
from fls.compare.limits import lazy_limit, lazy_test_error
from fls.compare.staged import train_staged
from fls.compare.vocabulary import (
    ALPHA_KEY,
    BATCH_SIZE_KEY,
    C_KEY,
    ENGINE_KEY,
    EPS_KEY,
    INIT_KEY,
    LOSS_KEY,
    METHOD_KEY,
    RTOL_KEY,
    STOP_RULE_KEY,
    T_MAX_KEY,
    group_key,
)
from fls.simulate.data import Dataset
from fls.simulate.flow import SWEEP_ATOL_PER_RTOL, integrate_flow
from fls.simulate.result import RunResult
from fls.theory.validation import ParameterError

#: The array name of a run's final parameters (kept only when asked, :func:`execute_batch`).
PARAMETERS = "theta"


def final_parameters(W: np.ndarray, v: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The final state as one vector (W row by row, then v, then b when the network has biases): what the
    parameter distance between two runs of one initialization is measured on."""
    parts = [np.ravel(W), np.ravel(v)] + ([] if b is None else [np.ravel(b)])
    return np.concatenate(parts).astype(np.float64)


@dataclass
class RunOutput:
    """What a run leaves in the store: one table row of scalars and named 1-D trajectories."""

    row: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def execute_batch(runs: Sequence[Mapping[str, Any]], *, keep_parameters: bool = False) -> list[RunOutput]:
    """Train and measure every run of ``runs``; one :class:`RunOutput` per run, in order; never raises for a
    run. With ``keep_parameters`` the arrays also hold the final parameters ``theta`` (W, v and b flattened,
    :func:`final_parameters`), for the certification's parameter distance (:mod:`compare.certify`).

    Each row holds the run's keys, ``status``, ``message``, ``engine``, ``t_stop``, ``steps``, the metrics of
    :func:`compare.metrics.run_metrics` (NaN where a run has no usable final state) and the batch's
    ``batch_id``, ``batch_runs``, ``batch_seconds`` and ``batch_cpu_seconds`` (wall and CPU time of the whole
    call: they differ when other processes share the cores); the arrays hold ``t`` and
    ``risk`` (the training risk over time) and the ``obs_*`` alignment trajectories.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    outputs: list[RunOutput | None] = [None] * len(runs)
    groups: dict[tuple, list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(group_key(run), []).append(index)
    for indices in groups.values():
        group = [dict(runs[i]) for i in indices]
        try:
            done = _execute_group(group, keep_parameters)
        except Exception as exc:  # noqa: BLE001 - a broken group is recorded, never raised
            message = f"{type(exc).__name__}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].name})"
            done = [_failed(run, message) for run in group]
        for i, output in zip(indices, done, strict=True):
            outputs[i] = output
    batch = {
        "batch_id": hashlib.sha256("".join(str(r.get("run_id")) for r in runs).encode()).hexdigest()[:12],
        "batch_runs": len(runs),
        "batch_seconds": time.perf_counter() - start,
        "batch_cpu_seconds": time.process_time() - cpu_start,
    }
    for output in outputs:
        output.row.update(batch)
    return [o for o in outputs if o is not None]


def _failed(run: Mapping[str, Any], message: str) -> RunOutput:
    return RunOutput({**run, "status": "failed", "message": message, **metrics.empty_metrics()})


def _task(dataset: Dataset) -> str:
    """The run's task column: ``regression`` for real targets, else ``classification`` (the claims that need
    labels skip regression runs, compare.registry)."""
    return "regression" if metrics.is_regression(dataset) else "classification"


def _execute_group(group: list[dict[str, Any]], keep_parameters: bool) -> list[RunOutput]:
    """Runs that differ only in alpha, c and seed: prepare each, train them together, measure each."""
    prepared: list[tuple[int, Dataset, np.ndarray, np.ndarray, np.ndarray | None]] = []
    outputs: list[RunOutput | None] = [None] * len(group)
    datasets: dict[int, Dataset] = {}
    for index, run in enumerate(group):
        try:
            seed = int(run["seed"])
            if seed not in datasets:
                datasets[seed] = dataset_for(run)
            prepared.append((index, datasets[seed], *initial_state(run)))
        except (ParameterError, KeyError, TypeError, ValueError) as exc:
            outputs[index] = _failed(run, f"invalid run: {exc}")
    if prepared:
        engine = group[0][ENGINE_KEY]
        trainer = _ENGINES.get(engine)
        if trainer is None:
            raise ParameterError(
                f"train.engine = {engine!r} is not supported; allowed: {', '.join(_ENGINES)}"
            )
        for index, output in trainer([group[i] for i, *_ in prepared], prepared):
            if not keep_parameters:
                output.arrays.pop(PARAMETERS, None)
            outputs[index] = output
    return [o for o in outputs if o is not None]


def _train_discrete(runs: list[dict[str, Any]], prepared: list[tuple]) -> list[tuple[int, RunOutput]]:
    """The gd and sgd engines: the whole group as one staged ensemble (one group shares model.bias and the
    data model, hence whether there are biases and sample weights)."""
    first = runs[0]
    datasets = [p[1] for p in prepared]
    W0 = np.stack([p[2] for p in prepared])
    v0 = np.stack([p[3] for p in prepared])
    b0 = None if prepared[0][4] is None else np.stack([p[4] for p in prepared])
    weighted = datasets[0].sample_weight is not None
    c = np.array([float(run[C_KEY]) for run in runs])
    references = [metrics.AlignmentReference.of(ds) for ds in datasets]
    results, observations = train_staged(
        W0,
        v0,
        np.stack([ds.X for ds in datasets]),
        np.stack([ds.y for ds in datasets]),
        c=c,
        **training_settings(first),
        batch_size=int(first[BATCH_SIZE_KEY]) if first[ENGINE_KEY] == "sgd" else None,
        seeds=[int(run["seed"]) for run in runs],
        observe=lambda e, W, v: metrics.alignment_observables(W, v, references[e]),
        b0=b0,
        sample_weight=np.stack([ds.sample_weight for ds in datasets]) if weighted else None,
    )
    out = []
    for (index, dataset, W0_e, v0_e, b0_e), run, result, observed in zip(
        prepared, runs, results, observations, strict=True
    ):
        out.append((index, _measured(run, dataset, (W0_e, v0_e, b0_e), result, observed)))
    return out


def _train_kernel(runs: list[dict[str, Any]], prepared: list[tuple]) -> list[tuple[int, RunOutput]]:
    """The lazy-limit engine: kernel gradient flow of the run's loss with K0 (with hidden biases when the run has
    them) plus the network's initial function."""
    out = []
    for (index, dataset, W0, v0, b0), run in zip(prepared, runs, strict=True):
        try:
            lazy = lazy_limit(
                dataset,
                W0,
                v0,
                alpha=float(run[ALPHA_KEY]),
                c=float(run[C_KEY]),
                eps=float(run[EPS_KEY]),
                t_max=float(run[T_MAX_KEY]),
                scheme=run[INIT_KEY],
                loss=run[LOSS_KEY],
                sample_weight=dataset.sample_weight,
                b0=b0,
            )
            row = {
                **run,
                **metrics.empty_metrics(),
                "status": lazy.status,
                "message": lazy.message,
                "engine": lazy.engine,
                "t_stop": lazy.t_stop,
                "final_risk": float(lazy.risk[-1]),
                "task": _task(dataset),
            }
            if metrics.is_regression(dataset):
                row["test_mse"], row["test_mse_se"] = (
                    metrics.squared_error(lazy.f_test, dataset.y_test) if lazy.ok else (np.nan, np.nan)
                )
            else:
                row["test_error"], row["test_error_se"] = lazy_test_error(lazy, dataset)
            out.append((index, RunOutput(row, {"t": lazy.t, "risk": lazy.risk})))
        except Exception as exc:  # noqa: BLE001
            out.append((index, _failed(run, f"kernel engine: {type(exc).__name__}: {exc}")))
    return out


def _train_flow(runs: list[dict[str, Any]], prepared: list[tuple]) -> list[tuple[int, RunOutput]]:
    """The high-precision flow engine, one run at a time (it has no ensemble axis), with the run's method and
    relative tolerance (defaults: the measured sweep point of :mod:`simulate.flow.api`) and atol = rtol *
    SWEEP_ATOL_PER_RTOL."""
    out = []
    for (index, dataset, W0, v0, b0), run in zip(prepared, runs, strict=True):
        try:
            result = integrate_flow(
                W0,
                v0,
                dataset.X,
                dataset.y,
                c=float(run[C_KEY]),
                loss=run[LOSS_KEY],
                stop_rule=stop_rule(run[STOP_RULE_KEY], float(run[EPS_KEY])),
                t_max=float(run[T_MAX_KEY]),
                rtol=float(run[RTOL_KEY]),
                atol=float(run[RTOL_KEY]) * SWEEP_ATOL_PER_RTOL,
                method=run[METHOD_KEY],
                b0=b0,
                sample_weight=dataset.sample_weight,
            )
        except Exception as exc:  # noqa: BLE001
            out.append((index, _failed(run, f"flow engine: {type(exc).__name__}: {exc}")))
            continue
        reference = metrics.AlignmentReference.of(dataset)
        observed = [{"t": 0.0, **metrics.alignment_observables(W0, v0, reference)}]
        out.append((index, _measured(run, dataset, (W0, v0, b0), result, observed)))
    return out


_ENGINES: dict[str, Callable[[list[dict[str, Any]], list[tuple]], list[tuple[int, RunOutput]]]] = {
    "gd": _train_discrete,
    "sgd": _train_discrete,
    "kernel": _train_kernel,
    "flow": _train_flow,
}


def _measured(
    run: Mapping[str, Any],
    dataset: Dataset,
    initial: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    result: RunResult,
    observed: list[dict[str, float]],
) -> RunOutput:
    """A trained run's row (metrics of its final state when it has one) and trajectories; ``initial`` is
    (W0, v0, b0), b0 None for a bias-free network."""
    start = time.perf_counter()
    W0, v0, b0 = initial
    row: dict[str, Any] = {
        **run,
        **metrics.empty_metrics(),
        **result.summary(),
        "steps": result.rhs_evals,
        "stages": result.info.get("stages", 0),
        "eta_min": result.info.get("eta_min", np.nan),
        "eta_max": result.info.get("eta_max", np.nan),
        "task": _task(dataset),
    }
    if result.ok:
        try:
            row.update(
                metrics.run_metrics(
                    result.W,
                    result.v,
                    W0,
                    v0,
                    dataset,
                    c=float(run[C_KEY]),
                    t=result.t,
                    risk=result.risk,
                    eps=float(run[EPS_KEY]),
                    b=result.b,
                    b0=b0,
                )
            )
        except Exception as exc:  # noqa: BLE001 - a metric that cannot be computed fails the run, with its reason
            row["status"], row["message"] = "failed", f"metrics: {type(exc).__name__}: {exc}"
    arrays = {"t": np.asarray(result.t, dtype=np.float64), "risk": np.asarray(result.risk, dtype=np.float64)}
    if result.ok:
        arrays[PARAMETERS] = final_parameters(result.W, result.v, result.b)
    for key in observed[0] if observed else {}:
        arrays[f"obs_{key}"] = np.array([o[key] for o in observed], dtype=np.float64)
    if "obs_Psi" in arrays:
        row["psi_at_escape"] = metrics.value_at(arrays["obs_t"], arrays["obs_Psi"], row["escape_time"])
    row["metrics_time"] = time.perf_counter() - start
    return RunOutput(row, arrays)
