"""A neuron at its origin where it stays and cannot leave: frozen there, the flow goes on without it.

At w_j = 0 with 0 in the convex hull of the neuron's sector fields and phi(u) > 0 in every sampled direction
(:func:`~simulate.flow.origin.origin_contact`) the Filippov solution is unique: w_j = 0 from then on and v_j
constant (v_j' = (c / n) sum_i s_i relu(<w_j, x_i>) = 0). The neuron adds 0 to every output, so the rest of
the flow is the flow of the network without it. A run whose events repeat at such an origin
(:class:`~simulate.flow.hybrid.FlowOutcome` ``stay``) ends there, and a new run of the other neurons starts
from its state at that time, in the same coordinates with the method in use (:func:`continue_past_stays`);
the results are stitched: the frozen neuron's row is w_j = 0 exactly and v_j its value at the stay (its
|w_j| there is within 64 roundoffs of the largest weight: the outputs change by that much), saved states,
counts and event logs follow on, and the dense output reads the run in force at t. The sliding pairs of the
other neurons are selected again at the new run's start: they count (and are logged) as entries at the stay's
time. The invariant drift is bounded by the sum of the runs' drifts.

The stay is unique only while phi(u) > 0 in every direction: as the other neurons move, the sample factors
change and a descent direction can open. The later runs watch it with their stopping rule,
:class:`StayWatch`: the run's own rule and, for each frozen neuron, its leave gap

    g_j = 128 eps - max_u v_j sum_i w_i s_i relu(<u, x_i>) / (|v_j| sum_i w_i |s_i| ||x_i||),

over the sampled directions u of :func:`~simulate.flow.origin.directions` (w_i s_i the weighted sample
factors), a continuous function of the outputs located like a target, to the engine's event precision
(docs/flow.md, "A neuron at its origin"). Where a gap reaches 0 the neuron may stay or leave: the run ends
``failed`` naming that time and the neuron. The gap is the test of ``origin_contact`` in the samples' terms,
so the watch misses a descent narrower than the directions' spacing as that test does (it then errs
towards staying frozen).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.origin import EPS, ORIGIN_ROUNDOFFS, directions
from fls.simulate.result import RunResult
from fls.simulate.stopping import Evaluation, StopRule

if TYPE_CHECKING:  # torch only for the discrete engines' face: importing the flow engine does not load it
    import torch

#: The event log's kind of a neuron frozen at its origin (its ``sample`` is -1).
STAY = "stay_at_origin"
#: A gap's roundoffs: twice the test's at an origin, so that where the watch ends a run, the descent is beyond
#: the roundoff that test allows (:data:`~simulate.flow.origin.ORIGIN_ROUNDOFFS`), by a time of order
#: 64 eps / (d(-phi)/dt) after it reached it; and where that test found no descent, the gap starts >= 0 (its
#: terms over merged samples, |S_g| + |N_g|, are at most twice the samples' own).
WATCH_ROUNDOFFS = 2.0 * ORIGIN_ROUNDOFFS
#: The counts of a result's ``info`` that add up over the stitched runs.
COUNTS = ("sliding_exits", "events", "pieces", "jac_evals")


@dataclass(frozen=True, eq=False)
class StayWatch(StopRule):
    """The stopping rule of a run that leaves out frozen neurons: ``rule`` (None: none) and their leave
    gaps (module docstring), second layers ``v`` (k,), names ``labels`` (k,), on the samples ``X`` (n, d)."""

    rule: StopRule | None
    v: np.ndarray
    labels: np.ndarray
    X: np.ndarray
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "ramps", np.maximum(directions(self.X.shape[1]) @ self.X.T, 0.0))  # (D, n)
        object.__setattr__(self, "x_norms", np.linalg.norm(self.X, axis=1))

    def gaps(self, s: np.ndarray) -> np.ndarray:
        """The leave gaps (..., k) at the weighted sample factors s (..., n)."""
        along = s @ self.ramps.T  # (..., D): sum_i w_i s_i relu(<u, x_i>)
        v = self.v
        descent = np.where(v > 0, v * along.max(-1)[..., None], v * along.min(-1)[..., None])
        terms = np.abs(v) * (np.abs(s) @ self.x_norms)[..., None]
        return WATCH_ROUNDOFFS * EPS - descent / np.where(terms > 0, terms, 1.0)

    def value(self, f: Any, y: Any, arithmetic: Arithmetic) -> Any:
        gap = self.gaps(arithmetic.to_float(arithmetic.sample(f, y))).min(-1)
        return gap if self.rule is None else np.minimum(self.rule.value(f, y, arithmetic), gap)

    def lower_bound(
        self, f_low: np.ndarray, f_high: np.ndarray, y: np.ndarray, arithmetic: Arithmetic
    ) -> float:
        """The rule's bound and each gap's: every loss is convex, so w_i s_i lies between its values at the
        interval's ends; the descent is at most its largest over them and the terms at least their least."""
        ends = arithmetic.sample(np.stack([f_low, f_high]), y)
        low, high = ends.min(0), ends.max(0)
        v = self.v
        descent = np.where(v > 0, v * (self.ramps @ high).max(), -v * (self.ramps @ -low).max())
        least = np.where((low <= 0) & (high >= 0), 0.0, np.minimum(np.abs(low), np.abs(high)))
        terms = np.abs(v) * float(least @ self.x_norms)
        inside = (descent <= 0) | (terms > 0)
        gaps = np.where(
            inside,
            WATCH_ROUNDOFFS * EPS - np.maximum(descent, 0.0) / np.where(terms > 0, terms, 1.0),
            -np.inf,
        )
        gap = float(gaps.min())
        return gap if self.rule is None else min(self.rule.lower_bound(f_low, f_high, y, arithmetic), gap)

    def reached(self, evaluation: Evaluation) -> torch.Tensor:
        """The discrete face: the run's own rule's (the discrete engines freeze no neuron)."""
        if self.rule is None:
            import torch  # here only: importing the flow engine does not load torch

            return torch.zeros_like(evaluation.risk, dtype=torch.bool)
        return self.rule.reached(evaluation)

    def describe(self) -> str:
        return "no target" if self.rule is None else self.rule.describe()


@dataclass
class Stays:
    """The neurons frozen so far: ``times`` and ``labels`` in order, ``v`` label -> second layer."""

    times: list[float]
    labels: list[int]
    v: dict[int, float]

    def watch(self, rule: StopRule | None, X: np.ndarray) -> StayWatch:
        labels = np.array(sorted(self.v))
        return StayWatch(rule, np.array([self.v[j] for j in labels]), labels, X)

    def whole(
        self, W: np.ndarray, v: np.ndarray, active: np.ndarray, m: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The whole network's (W, v) (..., m, d), (..., m) from those of the ``active`` rows (frozen: w = 0)."""
        W_all = np.zeros((*W.shape[:-2], m, W.shape[-1]))
        v_all = np.zeros((*v.shape[:-1], m))
        W_all[..., active, :], v_all[..., active] = W, v
        for j, value in self.v.items():
            v_all[..., j] = value
        return W_all, v_all


@dataclass(frozen=True)
class RunData:
    """What the watch and the stitching need of the run: samples X (n, d) float, targets y, output
    multiplier c, the arithmetic of the sample factors and the time limit."""

    X: np.ndarray
    y: np.ndarray
    c: float
    arithmetic: Arithmetic
    t_max: float

    def outputs(self, W: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The network's outputs f (n,) at (W, v)."""
        return self.c * np.maximum(self.X @ W.T, 0.0) @ v


def continue_past_stays(
    segment: Callable[..., tuple[RunResult, int | None]],
    first: RunResult,
    stay: int,
    rule: StopRule | None,
    problem: RunData,
) -> RunResult:
    """The run ``first`` (ended at the unique stay of neuron ``stay``) continued without the frozen neurons
    (module docstring): ``segment(W, v, t0=, method=, rule=, coords=, labels=)`` runs the flow of the rows
    given, ``rule`` is the run's own stopping rule."""
    m = first.W.shape[0]
    stays, active, result = Stays([], [], {}), np.arange(m), first
    parts = [(first, active, Stays([], [], {}))]
    while stay is not None:
        j, t = int(active[stay]), result.t_stop
        stays.times.append(t)
        stays.labels.append(j)
        stays.v[j] = float(result.v[stay])
        keep = np.delete(np.arange(len(active)), stay)
        active, watch = active[keep], stays.watch(rule, problem.X)
        frozen = Stays(list(stays.times), list(stays.labels), dict(stays.v))
        if not len(active):  # nothing moves any more: the outputs are 0 from t on
            parts.append((still(result, watch, problem), active, frozen))
            break
        switch = result.info["method_switch"]
        method = result.info["method"] if switch is None else switch["to"]
        result, stay = segment(
            result.W[keep], result.v[keep], t0=t, method=method, rule=watch, coords=result.info["coords"],
            labels=active,
        )  # fmt: skip
        parts.append((result, active, frozen))
    status, message = ending(parts[-1][0], stays, rule, watch, problem)
    return stitch(parts, stays, m, rule, status, message)


def still(result: RunResult, watch: StayWatch, problem: RunData) -> RunResult:
    """The part of a run after ``result`` froze its last neuron: nothing moves up to t_max (the outputs are 0,
    so the sample factors are constant and ``watch`` holds), and only t_max is saved."""
    d = result.W.shape[1]
    W, v = np.zeros((0, d)), np.zeros(0)
    risk = float(problem.arithmetic.losses(np.zeros(len(problem.y)), problem.y).mean())
    return RunResult(
        status="not_reached", message=f"{watch.describe()} not reached by t_max = {problem.t_max:g}",
        engine=result.engine,
        t_stop=problem.t_max, W=W, v=v, t=np.array([problem.t_max]), risk=np.array([risk]),
        W_t=np.zeros((1, 0, d)) if result.W_t is not None else None,
        v_t=np.zeros((1, 0)) if result.v_t is not None else None, dense=lambda _: (W, v),
        info={**{key: 0 for key in COUNTS}, "method_switch": None, "method_switches": [], "event_log": None},
    )  # fmt: skip


def ending(
    last: RunResult, stays: Stays, rule: StopRule | None, watch: StayWatch, problem: RunData
) -> tuple[str, str]:
    """The status and message of the stitched run from its last part's: a watch that ended it is a frozen
    neuron that may leave (``failed``, naming the time and the neuron); without a rule of its own, a run
    that did not reach the watch's target reached t_max."""
    status, message = last.status, last.message
    if status == "target_reached":
        arithmetic = problem.arithmetic
        f = problem.outputs(last.W, last.v)
        gaps = watch.gaps(arithmetic.to_float(arithmetic.sample(f, problem.y)))
        if rule is None or gaps.min() < float(rule.value(f[None], problem.y, arithmetic)[0]):
            j, t = int(watch.labels[int(gaps.argmin())]), last.t_stop
            since = stays.times[stays.labels.index(j)]
            return "failed", (
                f"at t = {t:.10g} (neuron {j}) the neuron that stays at its origin w = 0 from t = {since:.10g} "
                f"may leave it: the flow is not unique there"
            )
    if rule is None and status == "not_reached":
        status, message = "t_max", f"reached t_max = {problem.t_max:g}" + "".join(message.partition(";")[1:])
    return status, message


def stitch(
    parts: list[tuple[RunResult, np.ndarray, Stays]], stays: Stays, m: int, rule: StopRule | None, status: str,
    message: str,
) -> RunResult:
    """One result from the runs ``parts`` [(result, its rows' neurons, the neurons frozen before it)], in
    time order (module docstring)."""
    last, active, _ = parts[-1]
    W, v = stays.whole(last.W, last.v, active, m)
    keep = [np.ones(len(parts[0][0].t), dtype=bool)]
    for (before, _, _), (part, _, _) in pairwise(parts):  # a later run starts at its predecessor's stop
        keep.append(part.t != before.t[-1] if len(before.t) else np.ones(len(part.t), dtype=bool))
    saved = parts[0][0].W_t is not None
    W_t = v_t = None
    if saved:
        whole = [
            stays_part.whole(part.W_t[k], part.v_t[k], rows, m)
            for (part, rows, stays_part), k in zip(parts, keep)
        ]
        W_t, v_t = np.concatenate([each[0] for each in whole]), np.concatenate([each[1] for each in whole])
    info = dict(parts[0][0].info)
    for key in COUNTS:
        info[key] = sum(part.info[key] for part, _, _ in parts)
    switches = [each for part, _, _ in parts for each in part.info["method_switches"]]
    info["method_switches"], info["method_switch"] = switches, switches[-1] if switches else None
    for key in ("stiffness", "order"):
        info[key] = merged([part.info.get(key) for part, _, _ in parts])
    info["stop_rule"] = None if rule is None else rule.describe()
    info["stays"] = {"t": np.array(stays.times), "neuron": np.array(stays.labels, dtype=np.int64)}
    info["frozen_neurons"] = len(stays.labels)
    if info.get("event_log") is not None:
        info["event_log"] = event_log([part.info["event_log"] for part, _, _ in parts], stays)
    ends = [part.t_stop for part, _, _ in parts]
    denses = [(part.dense, rows, stays_part) for part, rows, stays_part in parts]

    def dense(t: float) -> tuple[np.ndarray, np.ndarray]:
        part_dense, rows, stays_part = denses[min(bisect.bisect_left(ends, t), len(ends) - 1)]
        return stays_part.whole(*part_dense(t), rows, m)

    notes = [part.message.partition("; ")[2] for part, _, _ in parts[:-1]]  # their method switches
    notes += [
        f"neuron {j} stays at its origin w = 0 from t = {t:.10g}" for t, j in zip(stays.times, stays.labels)
    ]
    return RunResult(
        status=status, message="; ".join([message, *filter(None, notes)]), engine=last.engine, t_stop=last.t_stop, W=W, v=v,
        t=np.concatenate([part.t[k] for (part, _, _), k in zip(parts, keep)]),
        risk=np.concatenate([part.risk[k] for (part, _, _), k in zip(parts, keep)]), W_t=W_t, v_t=v_t,
        rhs_evals=sum(part.rhs_evals for part, _, _ in parts), switches=sum(part.switches for part, _, _ in parts),
        sliding_entries=sum(part.sliding_entries for part, _, _ in parts),
        invariant_drift=sum(part.invariant_drift for part, _, _ in parts),
        dense=dense if all(part.dense is not None for part, _, _ in parts) else None, info=info,
    )  # fmt: skip


def merged(summaries: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The stiffness or order tests' summaries of the stitched runs as one: counts added, largest values
    the largest (None where no run had the tests)."""
    present = [each for each in summaries if each is not None]
    if not present:
        return None
    return {
        key: max(each[key] for each in present)
        if key.startswith("largest")
        else sum(each[key] for each in present)
        for key in present[0]
    }


def event_log(logs: list[dict[str, np.ndarray] | None], stays: Stays) -> dict[str, np.ndarray]:
    """The runs' event logs in order, with an entry of kind :data:`STAY` (sample -1) at each stay."""
    parts = [logs[0]]
    for k, (t, j) in enumerate(zip(stays.times, stays.labels, strict=True)):
        parts.append(
            {"t": np.array([t]), "neuron": np.array([j]), "sample": np.array([-1]), "kind": np.array([STAY])}
        )
        if k + 1 < len(logs) and logs[k + 1] is not None:
            parts.append(logs[k + 1])
    return {key: np.concatenate([part[key] for part in parts]) for key in logs[0]}
