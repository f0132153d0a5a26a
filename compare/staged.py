"""Staged training of an ensemble by the discrete engine, with per-member step sizes re-chosen between stages
(docs/design.md section 5, "The layers"; the engine of section 4).

Step policies (``train.step_policy``, :data:`STEP_POLICIES`):

- ``sharpness``: member e takes steps eta_e = train.eta / S_e, where S_e bounds the spectral radius of the
  Hessian of the training risk at the member's current parameters (:func:`sharpness_bound`). On a quadratic,
  GD is stable iff eta |lambda| < 2 for every Hessian eigenvalue lambda, so train.eta < 2 keeps each step
  locally stable, and train.eta << 1 keeps GD close to gradient flow. The bound is small while the network is
  small (S ~ c ||g(u)|| ~ lambda+ at small alpha: large steps through the long escape phase, which lasts
  ~ log(1/alpha) / lambda+) and grows like m c^2 alpha^2 in the lazy regime (small, stable steps at large
  alpha).
- ``constant``: eta_e = train.eta for every member at every step.

Stages: the step sizes are re-chosen after 2, 4 and 8 steps and then every :data:`STAGE_STEPS` steps (the
sharpness changes fastest when the network leaves the small-norm phase, within a few steps of eta ~ 1 /
lambda+). A stage is one call of the ensemble engine; the run's stop rule is checked at every step of every
stage, so the stopping step is exact. Gradient-flow time adds up stage by stage (t = sum of k_s eta_s). SGD
draws each stage's minibatches from the stream seeded by (run seed, stage index). The runner records the
training risk and the alignment observables of :func:`compare.metrics.alignment_observables` (the ``obs_*``
trajectories: Psi, cos to the Bayes direction, the parameter norm) at every step (:data:`RECORD_EVERY`), from
the parameters the engine saves there: at small alpha a sharpness step is long (on the separable preset about a third of
1 / lambda+), so the alignment phase spans only a few steps, and the stage ends alone would give two or three
points of it (measured on the default sweep's batches: every step costs about 20 % more time than every
fourth).

Measured on the low_signal mixture (n = 40, m = 100, random_sign, 16 alphas from 1e-4 to 10, 6 seeds, stop at
R <= 0.05), against train.eta = 0.05: train.eta = 0.1 changes the mean test error by at most 0.0006 for
alpha <= 4.6 and by 0.0036 at alpha = 10 (the Monte-Carlo error of one run is 0.005), and the stopping times
by at most 1.5 %; train.eta = 0.2 by 0.002 and 0.016. Runs take 198, 100 and 52 steps on average. A constant
step stable at alpha = 10 (eta ~ 0.05) would need ~4000 steps to cross the escape phase at alpha = 1e-4 (t ~
200).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fls.compare.vocabulary import ETA_KEY, STEP_POLICIES, STEP_POLICY_KEY
from fls.simulate.result import RunResult
from fls.simulate.stopping import StopRule
from fls.simulate.train.ensemble import train_ensemble
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.augment import augment_inputs, augment_weights, split_weights
from fls.theory.compiled import compile_field
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.losses import as_sample_weight
from fls.theory.validation import ParameterError, check_choice, check_positive

#: Steps per stage: the step sizes are re-chosen this often.
STAGE_STEPS = 16


#: The training risk and the alignment observables are recorded every this many steps (and at every stage end).
RECORD_EVERY = 1


def sharpness_bound(
    W: Any, v: Any, X: Any, y: Any, c: float, *, loss: str = "logistic", sample_weight: Any = None
) -> float:
    """An upper bound S on the spectral radius of the Hessian of the training risk of one network.

    With the normalized sample weights w_i (mean 1; all 1 without ``sample_weight``, :mod:`theory.losses`),
    l(f_i) = l(f(x_i), y_i) and J the Jacobian of the training outputs,

        Hess R = (1/n) J^T diag(w_i l''(f_i)) J  +  (1/n) sum_i w_i l'(f_i) Hess f(x_i).

    The first (Gauss-Newton) part has the nonzero spectrum of (1/n) D^{1/2} G D^{1/2}, G = J J^T the empirical
    tangent kernel on the training points (:func:`theory.lazy.empirical_tangent_kernel`), D = diag(w_i l''),
    so by Gershgorin its top eigenvalue is at most max_i sum_k sqrt(D_i D_k) |G_ik| / n. Hess f(x_i) only
    couples w_j with v_j (relu'' = 0 almost everywhere): the second part is block diagonal with blocks
    [[0, c g_j], [c g_j^T, 0]], g_j = (1/n) sum_i w_i l'(f_i) 1[<w_j, x_i> > 0] x_i, of eigenvalues +-c
    ||g_j||. By Weyl's inequality S = (Gershgorin bound) + c max_j ||g_j|| >= |lambda| for every Hessian
    eigenvalue. A network with hidden biases is passed as the bias-free one on augmented inputs
    (:mod:`theory.augment`), whose Hessian it is.
    """
    W, v, X, y = (np.asarray(a, dtype=np.float64) for a in (W, v, X, y))
    field_ = compile_field(loss)
    n = X.shape[0]
    weights = as_sample_weight(sample_weight, n)
    f = field_.output(W, v, X, c)
    curvature = np.abs(field_.sample_slope(f, y, weights))  # w_i |d s / df| = w_i l''(f_i, y_i)
    root = np.sqrt(curvature)
    gram = empirical_tangent_kernel(W, v, X, X, c=c)
    gauss_newton = float(np.max((root[:, None] * np.abs(gram) * root[None, :]).sum(axis=1))) / n
    g = (
        ((W @ X.T > 0) * field_.sample_factor(f, y, weights)) @ X / n
    )  # w_i s_i, s_i = -l'(f_i): g_j up to sign
    return gauss_newton + c * float(np.max(np.linalg.norm(g, axis=1)))


def step_sizes(
    policy: str,
    eta: float,
    W: Any,
    v: Any,
    X: Any,
    y: Any,
    c: Any,
    *,
    loss: str,
    sample_weight: Any = None,
) -> np.ndarray:
    """Per-member step sizes of a stage under ``policy`` for an ensemble W (E, m, d), v (E, m), X (E, n, d),
    y (E, n), c (E,), sample weights (E, n) or None (module docstring); a zero or non-finite bound (no active
    unit) falls back to ``eta``."""
    policy = check_choice(STEP_POLICY_KEY, policy, STEP_POLICIES)
    eta = check_positive(ETA_KEY, eta)
    size = np.shape(W)[0]
    if policy == "constant":
        return np.full(size, eta)
    weights = [None] * size if sample_weight is None else sample_weight
    bound = np.array(
        [_bound_or_nan(W[e], v[e], X[e], y[e], float(c[e]), loss, weights[e]) for e in range(size)]
    )
    usable = np.isfinite(bound) & (bound > 0)
    return np.where(usable, eta / np.where(usable, bound, 1.0), eta)


def _bound_or_nan(
    W: np.ndarray, v: np.ndarray, X: np.ndarray, y: np.ndarray, c: float, loss: str, weights: Any
) -> float:
    """:func:`sharpness_bound`, or NaN for a network whose outputs are no longer finite (it diverges next
    step)."""
    try:
        return sharpness_bound(W, v, X, y, c, loss=loss, sample_weight=weights)
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
    b0: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[list[RunResult], list[list[dict[str, float]]]]:
    """Train an ensemble (W0 (E, m, d), v0 (E, m), X (E, n, d), y (E, n), c (E,)) in stages of the step
    policy.

    Returns one :class:`RunResult` per member (t and risk over all stages, t_stop the gradient-flow time at
    the stop, rhs_evals the gradient evaluations, invariant_drift measured against the initialization) and,
    per member, the observations ``observe(e, W, v)`` taken at the start and at every recorded step (every
    RECORD_EVERY steps and every stage end; each with key "t"). A member ends with ``target_reached`` when its
    rule holds, ``not_reached`` when it runs out of max_steps or t_max first, ``diverged`` when its loss
    becomes NaN or inf; an exception inside the engine ends the members of that stage with ``failed``.

    Hidden biases b0 (E, m) are trained as the bias-free network on augmented inputs (:mod:`theory.augment`):
    the results carry ``b``, ``observe`` receives the bias-free part of W, and the invariant drift is that of
    v_j^2 - ||w_j||^2 - b_j^2. Sample weights (E, n), or None, weigh the risk, the field, the stop rule and the
    sharpness bound (:mod:`theory.losses`).
    """
    if b0 is not None:
        W0, X = augment_weights(W0, b0), augment_inputs(X)
        watch = observe
        observe = None if watch is None else (lambda e, W, v: watch(e, split_weights(W)[0], v))
    weights = (
        None if sample_weight is None else np.stack([as_sample_weight(w, X.shape[1]) for w in sample_weight])
    )
    size = W0.shape[0]
    members = [_Member(W0[e].copy(), v0[e].copy(), [np.zeros(1)], [], []) for e in range(size)]
    field_ = compile_field(loss)
    for e, member in enumerate(members):
        member.risk.append(
            np.array([field_.risk(W0[e], v0[e], X[e], y[e], c[e], None if weights is None else weights[e])])
        )
        if observe is not None:
            member.observations.append({"t": 0.0, **observe(e, member.W, member.v)})
    running = list(range(size))
    stage = 0
    while running:
        rows = np.array(running)
        W = np.stack([members[e].W for e in rows])
        v = np.stack([members[e].v for e in rows])
        try:
            stage_weights = None if weights is None else weights[rows]
            etas = step_sizes(
                policy, eta, W, v, X[rows], y[rows], c[rows], loss=loss, sample_weight=stage_weights
            )
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
            stage_weights = None if weights is None else weights[rows]
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
                save=SaveSchedule.every(RECORD_EVERY, states=observe is not None),
                sample_weight=stage_weights,
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
            if observe is not None and result.status != "diverged":
                member.observations += [
                    {"t": member.time + t_k, **observe(int(e), W_k, v_k)}
                    for t_k, W_k, v_k in zip(result.t[1:], result.W_t[1:], result.v_t[1:], strict=True)
                ]
            member.time += steps * eta_e
            member.wall += result.wall_time
            member.etas.append(float(eta_e))
            member.engine = f"{result.engine} ({policy} steps)"
            member.W, member.v = result.W, result.v
            endings = {
                "target_reached": f"{rule!r} held at t = {member.time:.6g} after {member.steps} steps",
                "diverged": f"the training loss became NaN or inf at step {member.steps} (t = {member.time:.6g})",
            }
            if result.status in endings:
                member.result = _final(member, W0[e], v0[e], result.status, endings[result.status])
            else:
                still.append(int(e))
        running = still
        stage += 1
    results = [m.result for m in members]
    if b0 is not None:
        results = [_with_biases(result) for result in results]
    return results, [m.observations for m in members]


def _with_biases(result: RunResult) -> RunResult:
    """A result of the augmented problem as the network with hidden biases: rows (w_j, b_j) split into W, b."""
    W, b = split_weights(result.W)
    return dataclasses.replace(result, W=W, b=b)


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
