"""Execute one batch of a sweep: draw the data, initialize, train with the engine the run names, measure.

A batch is a list of runs (flat dicts of dotted keys, :mod:`compare.config`) that share every key except
``model.alpha``, ``model.c`` and ``seed``; the discrete engines then train all of them as one ensemble
(:func:`simulate.train.ensemble.train_ensemble`), each member on the data set of its own seed. A batch whose runs
differ in other keys is split into such groups first. :func:`execute_batch` never raises for a bad run: a run that
fails, diverges or misses its target comes back with that status (:data:`simulate.result.STATUSES`) and a message.

Step policies (``train.step_policy``, :data:`STEP_POLICIES`):

- ``sharpness``: member e takes steps eta_e = train.eta / S_e, where S_e bounds the spectral radius of the
  Hessian of the training risk at the member's current parameters (:func:`sharpness_bound`). On a quadratic, GD
  is stable iff eta |lambda| < 2 for every Hessian eigenvalue lambda, so train.eta < 2 keeps each step locally
  stable, and train.eta << 1 keeps GD close to gradient flow. The bound is small while the network is small
  (S ~ c ||g(u)|| ~ lambda+ at small alpha: large steps through the long escape phase, which lasts
  ~ log(1/alpha) / lambda+) and grows like m c^2 alpha^2 in the lazy regime (small, stable steps at large alpha).
- ``constant``: eta_e = train.eta for every member at every step.

Stages: the step sizes are re-chosen after 2, 4 and 8 steps and then every :data:`STAGE_STEPS` steps (the
sharpness changes fastest when the network leaves the small-norm phase, within a few steps of eta ~ 1 / lambda+).
A stage is one call of the ensemble engine; the run's stop rule is checked at every step of every stage, so the
stopping step is exact. Gradient-flow time adds up stage by stage (t = sum of k_s eta_s). SGD draws each stage's
minibatches from the stream seeded by (run seed, stage index). At every stage end the runner records the
alignment observables of :func:`compare.metrics.alignment_observables` (the ``obs_*`` trajectories: Psi, cos to
the Bayes direction, the parameter norm).

Measured on the low_signal mixture (n = 40, m = 100, random_sign, 16 alphas from 1e-4 to 10, 6 seeds, stop at
R <= 0.05), against train.eta = 0.05: train.eta = 0.1 changes the mean test error by at most 0.0006 for
alpha <= 4.6 and by 0.0036 at alpha = 10 (the Monte-Carlo error of one run is 0.005), and the stopping times by
at most 1.5 %; train.eta = 0.2 by 0.002 and 0.016. Runs take 198, 100 and 52 steps on average. A constant step
stable at alpha = 10 (eta ~ 0.05) would need ~4000 steps to cross the escape phase at alpha = 1e-4 (t ~ 200).
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fls.compare import metrics, predictions
from fls.compare.config import STOP_RULES
from fls.compare.sweep import ENSEMBLE_KEYS
from fls.simulate.data import Dataset, make_data
from fls.simulate.flow.coords import sample_slope
from fls.simulate.initialization import init_params
from fls.simulate.result import RunResult
from fls.simulate.stopping import ZERO_TRAIN_ERROR, PositiveClassLoss, StopRule, TargetRisk, TrainAccuracy
from fls.simulate.train.ensemble import train_ensemble
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.compiled import compile_field
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.validation import ParameterError, check_choice, check_positive

#: Step-size policies a config may name in ``train.step_policy`` (the first is the default).
STEP_POLICIES = ("sharpness", "constant")

#: Steps per stage: the step sizes are re-chosen this often.
STAGE_STEPS = 16

#: The training risk is recorded every this many steps (and at every stage end).
RECORD_EVERY = 4

#: Train accuracy of the ``accuracy`` stop rule (docs/design.md section 2: train accuracy >= 99 %).
ACCURACY_LEVEL = 0.99


@dataclass
class RunOutput:
    """What a run leaves in the store: one table row of scalars and named 1-D trajectories."""

    row: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def stop_rule(rule: str, eps: float) -> StopRule:
    """The engine's stop rule for a config's ``stop.rule`` and ``stop.eps`` (docs/design.md section 2)."""
    rule = check_choice("stop.rule", rule, STOP_RULES)
    eps = check_positive("stop.eps", eps)
    if rule == "risk":
        return TargetRisk(eps)
    if rule == "positive_risk":
        return PositiveClassLoss(eps)
    if rule == "accuracy":
        return TrainAccuracy(ACCURACY_LEVEL)
    return ZERO_TRAIN_ERROR


def sharpness_bound(W: Any, v: Any, X: Any, y: Any, c: float, *, loss: str = "logistic") -> float:
    """An upper bound S on the spectral radius of the Hessian of the training risk of one network.

    With u_i = y_i f(x_i) and J the Jacobian of the training outputs,

        Hess R = (1/n) J^T diag(l''(u)) J  +  (1/n) sum_i l'(u_i) y_i Hess f(x_i).

    The first (Gauss-Newton) part has the nonzero spectrum of (1/n) D^{1/2} G D^{1/2}, G = J J^T the empirical
    tangent kernel on the training points (:func:`theory.lazy.empirical_tangent_kernel`), D = diag(l''), so by
    Gershgorin its top eigenvalue is at most max_i sum_k sqrt(l''_i l''_k) |G_ik| / n. Hess f(x_i) only couples
    w_j with v_j (relu'' = 0 almost everywhere): the second part is block diagonal with blocks
    [[0, c g_j], [c g_j^T, 0]], g_j = (1/n) sum_i l'(u_i) y_i 1[<w_j, x_i> > 0] x_i, of eigenvalues +-c ||g_j||.
    By Weyl's inequality S = (Gershgorin bound) + c max_j ||g_j|| >= |lambda| for every Hessian eigenvalue.
    """
    W, v, X, y = (np.asarray(a, dtype=np.float64) for a in (W, v, X, y))
    field_ = compile_field(loss)
    n = X.shape[0]
    f = field_.output(W, v, X, c)
    curvature = np.abs(sample_slope(loss)(f, y))  # ds/df = -l''(u) y^2 = -l''(u)
    root = np.sqrt(curvature)
    gram = empirical_tangent_kernel(W, v, X, X, c=c)
    gauss_newton = float(np.max((root[:, None] * np.abs(gram) * root[None, :]).sum(axis=1))) / n
    g = ((W @ X.T > 0) * field_.sample_factor(f, y)) @ X / n  # s_i = -l'(u_i) y_i: the same g_j up to sign
    return gauss_newton + c * float(np.max(np.linalg.norm(g, axis=1)))


def step_sizes(policy: str, eta: float, W: Any, v: Any, X: Any, y: Any, c: Any, *, loss: str) -> np.ndarray:
    """Per-member step sizes of a stage under ``policy`` for an ensemble W (E, m, d), v (E, m), X (E, n, d),
    y (E, n), c (E,) (module docstring); a zero or non-finite bound (no active unit) falls back to ``eta``."""
    policy = check_choice("train.step_policy", policy, STEP_POLICIES)
    eta = check_positive("train.eta", eta)
    size = np.shape(W)[0]
    if policy == "constant":
        return np.full(size, eta)
    bound = np.array([_bound_or_nan(W[e], v[e], X[e], y[e], float(c[e]), loss) for e in range(size)])
    usable = np.isfinite(bound) & (bound > 0)
    return np.where(usable, eta / np.where(usable, bound, 1.0), eta)


def _bound_or_nan(W: np.ndarray, v: np.ndarray, X: np.ndarray, y: np.ndarray, c: float, loss: str) -> float:
    """:func:`sharpness_bound`, or NaN for a network whose outputs are no longer finite (it diverges next step)."""
    try:
        return sharpness_bound(W, v, X, y, c, loss=loss)
    except ParameterError:
        return float("nan")


@dataclass
class _Member:
    """Progress of one ensemble member across stages."""

    W: np.ndarray
    v: np.ndarray
    t: list[np.ndarray]
    risk: list[np.ndarray]
    observations: list[dict[str, float]]
    steps: int = 0
    time: float = 0.0
    wall: float = 0.0
    etas: list[float] = field(default_factory=list)
    engine: str = "train-gd"
    result: RunResult | None = None


def train_staged(
    W0: np.ndarray,
    v0: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    c: np.ndarray,
    eta: float,
    policy: str,
    rule: StopRule,
    loss: str,
    max_steps: int,
    t_max: float,
    batch_size: int | None,
    seeds: Sequence[int],
    observe: Callable[[int, np.ndarray, np.ndarray], dict[str, float]] | None = None,
) -> tuple[list[RunResult], list[list[dict[str, float]]]]:
    """Train an ensemble (W0 (E, m, d), v0 (E, m), X (E, n, d), y (E, n), c (E,)) in stages of the step policy.

    Returns one :class:`RunResult` per member (t and risk over all stages, t_stop the gradient-flow time at the
    stop, rhs_evals the gradient evaluations, invariant_drift measured against the initialization) and, per
    member, the observations ``observe(e, W, v)`` taken at the start and at every stage end (each with key "t").
    A member ends with ``target_reached`` when its rule holds, ``not_reached`` when it runs out of max_steps or
    t_max first, ``diverged`` when its loss becomes NaN or inf; an exception inside the engine ends the members of
    that stage with ``failed``.
    """
    size = W0.shape[0]
    members = [_Member(W0[e].copy(), v0[e].copy(), [np.zeros(1)], [], []) for e in range(size)]
    field_ = compile_field(loss)
    for e, member in enumerate(members):
        member.risk.append(np.array([field_.risk(W0[e], v0[e], X[e], y[e], c[e])]))
        if observe is not None:
            member.observations.append({"t": 0.0, **observe(e, member.W, member.v)})
    running = list(range(size))
    stage = 0
    while running:
        rows = np.array(running)
        W = np.stack([members[e].W for e in rows])
        v = np.stack([members[e].v for e in rows])
        try:
            etas = step_sizes(policy, eta, W, v, X[rows], y[rows], c[rows], loss=loss)
            budgets = [
                _stage_budget(members[e], eta_e, max_steps, t_max, stage)
                for e, eta_e in zip(rows, etas, strict=True)
            ]
            spent = [e for e, budget in zip(rows, budgets, strict=True) if budget == 0]
            for e in spent:
                members[e].result = _final(
                    members[e],
                    W0[e],
                    v0[e],
                    "not_reached",
                    f"{rule!r} did not hold within max_steps = {max_steps} or t_max = {t_max:g}",
                )
            keep = np.array([budget > 0 for budget in budgets])
            rows, etas, budgets = rows[keep], etas[keep], [b for b in budgets if b > 0]
            if len(rows) == 0:
                break
            results = train_ensemble(
                W[keep],
                v[keep],
                X[rows],
                y[rows],
                eta=etas,
                max_steps=budgets,
                c=c[rows],
                stop=rule,
                batch_size=batch_size,
                seeds=[int(seeds[e]) * 100_003 + stage for e in rows],
                loss=loss,
                save=SaveSchedule.every(RECORD_EVERY),
            )
        except Exception as exc:  # noqa: BLE001 - an engine failure ends these members with a status
            message = f"engine failed at stage {stage}: {type(exc).__name__}: {exc}"
            for e in rows:
                members[e].result = _final(members[e], W0[e], v0[e], "failed", message)
            break
        still = []
        for e, eta_e, result in zip(rows, etas, results, strict=True):
            member = members[e]
            steps = int(result.info["steps"])
            member.t.append(member.time + result.t[1:])
            member.risk.append(result.risk[1:])
            member.steps += steps
            member.time += steps * eta_e
            member.wall += result.wall_time
            member.etas.append(float(eta_e))
            member.engine = f"{result.engine} ({policy} steps)"
            member.W, member.v = result.W, result.v
            if observe is not None and result.status != "diverged":
                member.observations.append({"t": member.time, **observe(int(e), member.W, member.v)})
            if result.status == "target_reached":
                member.result = _final(
                    member,
                    W0[e],
                    v0[e],
                    "target_reached",
                    f"{rule!r} held at t = {member.time:.6g} after {member.steps} steps",
                )
            elif result.status == "diverged":
                member.result = _final(
                    member,
                    W0[e],
                    v0[e],
                    "diverged",
                    f"the training loss became NaN or inf at step {member.steps} (t = {member.time:.6g})",
                )
            else:
                still.append(int(e))
        running = still
        stage += 1
    return [m.result for m in members], [m.observations for m in members]


def _stage_budget(member: _Member, eta: float, max_steps: int, t_max: float, stage: int) -> int:
    """Steps of stage ``stage``: min(2^(stage + 1), STAGE_STEPS) (short first stages resolve the alignment
    phase in the observations), or fewer where max_steps or t_max comes first (0: budget spent)."""
    by_time = int(np.floor((t_max - member.time) / eta * (1 + 1e-12)))
    return max(0, min(STAGE_STEPS, 2 ** (stage + 1), max_steps - member.steps, by_time))


def _invariant(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v_j^2 - ||w_j||^2 per neuron (conserved by gradient flow, docs/design.md section 2)."""
    return v**2 - (W**2).sum(-1)


def _final(member: _Member, W0: np.ndarray, v0: np.ndarray, status: str, message: str) -> RunResult:
    with np.errstate(invalid="ignore", over="ignore"):  # a diverged member's drift is inf or NaN
        drift = np.abs(_invariant(member.W, member.v) - _invariant(W0, v0))
    etas = np.array(member.etas) if member.etas else np.array([np.nan])
    return RunResult(
        status=status,
        message=message,
        engine=member.engine,
        t_stop=member.time,
        W=member.W,
        v=member.v,
        t=np.concatenate(member.t),
        risk=np.concatenate(member.risk),
        rhs_evals=member.steps,
        invariant_drift=float(np.nanmax(drift, initial=0.0)) if np.all(np.isfinite(drift)) else float("inf"),
        wall_time=member.wall,
        info={
            "steps": member.steps,
            "stages": len(member.etas),
            "eta_min": float(np.min(etas)),
            "eta_max": float(np.max(etas)),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------------


def data_params(run: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`simulate.data.make_data` for a run (every ``data.*`` key but the model)."""
    return {key[5:]: value for key, value in run.items() if key.startswith("data.") and key != "data.model"}


def dataset_for(run: Mapping[str, Any]) -> Dataset:
    """The run's data set: model ``data.model`` with its parameters, drawn from the run's seed."""
    return make_data(run["data.model"], seed=int(run["seed"]), **data_params(run))


def initial_parameters(run: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The run's initialization (W0, v0) (:func:`simulate.initialization.init_params`)."""
    return init_params(
        int(run["model.width"]),
        int(run["data.d"]),
        alpha=float(run["model.alpha"]),
        scheme=run["model.init"],
        seed=int(run["seed"]),
    )


def _group_key(run: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in run.items() if k not in ENSEMBLE_KEYS))


def execute_batch(runs: Sequence[Mapping[str, Any]]) -> list[RunOutput]:
    """Train and measure every run of ``runs``; one :class:`RunOutput` per run, in order; never raises for a run.

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
        groups.setdefault(_group_key(run), []).append(index)
    for indices in groups.values():
        group = [dict(runs[i]) for i in indices]
        try:
            done = _execute_group(group)
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


def _execute_group(group: list[dict[str, Any]]) -> list[RunOutput]:
    """Runs that differ only in alpha, c and seed: prepare each, train them together, measure each."""
    prepared: list[tuple[int, Dataset, np.ndarray, np.ndarray]] = []
    outputs: list[RunOutput | None] = [None] * len(group)
    datasets: dict[int, Dataset] = {}
    for index, run in enumerate(group):
        try:
            seed = int(run["seed"])
            if seed not in datasets:
                datasets[seed] = dataset_for(run)
            W0, v0 = initial_parameters(run)
            prepared.append((index, datasets[seed], W0, v0))
        except (ParameterError, KeyError, TypeError, ValueError) as exc:
            outputs[index] = _failed(run, f"invalid run: {exc}")
    if prepared:
        engine = group[0]["train.engine"]
        trainer = _ENGINES.get(engine)
        if trainer is None:
            raise ParameterError(
                f"train.engine = {engine!r} is not supported; allowed: {', '.join(_ENGINES)}"
            )
        for index, output in trainer([group[i] for i, *_ in prepared], prepared):
            outputs[index] = output
    return [o for o in outputs if o is not None]


def _train_discrete(runs: list[dict[str, Any]], prepared: list[tuple]) -> list[tuple[int, RunOutput]]:
    """The gd and sgd engines: the whole group as one staged ensemble."""
    first = runs[0]
    datasets = [p[1] for p in prepared]
    W0 = np.stack([p[2] for p in prepared])
    v0 = np.stack([p[3] for p in prepared])
    c = np.array([float(run["model.c"]) for run in runs])
    references = [metrics.AlignmentReference.of(ds) for ds in datasets]
    results, observations = train_staged(
        W0,
        v0,
        np.stack([ds.X for ds in datasets]),
        np.stack([ds.y for ds in datasets]),
        c=c,
        eta=float(first["train.eta"]),
        policy=first["train.step_policy"],
        rule=stop_rule(first["stop.rule"], float(first["stop.eps"])),
        loss=first["model.loss"],
        max_steps=int(first["train.max_steps"]),
        t_max=float(first["train.t_max"]),
        batch_size=int(first["train.batch_size"]) if first["train.engine"] == "sgd" else None,
        seeds=[int(run["seed"]) for run in runs],
        observe=lambda e, W, v: metrics.alignment_observables(W, v, references[e]),
    )
    out = []
    for (index, dataset, W0_e, v0_e), run, result, observed in zip(
        prepared, runs, results, observations, strict=True
    ):
        out.append((index, _measured(run, dataset, W0_e, v0_e, result, observed)))
    return out


def _train_kernel(runs: list[dict[str, Any]], prepared: list[tuple]) -> list[tuple[int, RunOutput]]:
    """The lazy-limit engine: logistic kernel gradient flow with K0 plus the network's initial function."""
    out = []
    for (index, dataset, W0, v0), run in zip(prepared, runs, strict=True):
        try:
            lazy = predictions.lazy_limit(
                dataset,
                W0,
                v0,
                alpha=float(run["model.alpha"]),
                c=float(run["model.c"]),
                eps=float(run["stop.eps"]),
                t_max=float(run["train.t_max"]),
                loss=run["model.loss"],
            )
            row = {
                **run,
                **metrics.empty_metrics(),
                "status": lazy.status,
                "message": lazy.message,
                "engine": "kernel",
                "t_stop": lazy.t_stop,
                "test_error": lazy.test_error,
                "test_error_se": lazy.test_error_se,
                "final_risk": lazy.final_risk,
            }
            out.append((index, RunOutput(row, {"t": lazy.t, "risk": lazy.risk})))
        except Exception as exc:  # noqa: BLE001
            out.append((index, _failed(run, f"kernel engine: {type(exc).__name__}: {exc}")))
    return out


def _train_flow(runs: list[dict[str, Any]], prepared: list[tuple]) -> list[tuple[int, RunOutput]]:
    """The high-precision flow engine, one run at a time (it has no ensemble axis)."""
    from fls.simulate import flow

    out = []
    for (index, dataset, W0, v0), run in zip(prepared, runs, strict=True):
        try:
            result = flow.integrate_flow(
                W0,
                v0,
                dataset.X,
                dataset.y,
                c=float(run["model.c"]),
                loss=run["model.loss"],
                stop_rule=stop_rule(run["stop.rule"], float(run["stop.eps"])),
                t_max=float(run["train.t_max"]),
                rtol=float(run["train.rtol"]),
                atol=float(run["train.rtol"]) * 1e-3,
            )
        except Exception as exc:  # noqa: BLE001
            out.append((index, _failed(run, f"flow engine: {type(exc).__name__}: {exc}")))
            continue
        reference = metrics.AlignmentReference.of(dataset)
        observed = [{"t": 0.0, **metrics.alignment_observables(W0, v0, reference)}]
        out.append((index, _measured(run, dataset, W0, v0, result, observed)))
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
    W0: np.ndarray,
    v0: np.ndarray,
    result: RunResult,
    observed: list[dict[str, float]],
) -> RunOutput:
    """A trained run's row (metrics of its final state when it has one) and trajectories."""
    start = time.perf_counter()
    row: dict[str, Any] = {
        **run,
        **metrics.empty_metrics(),
        **result.summary(),
        "steps": result.rhs_evals,
        "stages": result.info.get("stages", 0),
        "eta_min": result.info.get("eta_min", np.nan),
        "eta_max": result.info.get("eta_max", np.nan),
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
                    c=float(run["model.c"]),
                    t=result.t,
                    risk=result.risk,
                    eps=float(run["stop.eps"]),
                )
            )
        except Exception as exc:  # noqa: BLE001 - a metric that cannot be computed fails the run, with its reason
            row["status"], row["message"] = "failed", f"metrics: {type(exc).__name__}: {exc}"
    arrays = {"t": np.asarray(result.t, dtype=np.float64), "risk": np.asarray(result.risk, dtype=np.float64)}
    for key in observed[0] if observed else {}:
        arrays[f"obs_{key}"] = np.array([o[key] for o in observed], dtype=np.float64)
    if "obs_Psi" in arrays:
        row["psi_at_escape"] = metrics.value_at(arrays["obs_t"], arrays["obs_Psi"], row["escape_time"])
    row["metrics_time"] = time.perf_counter() - start
    return RunOutput(row, arrays)
