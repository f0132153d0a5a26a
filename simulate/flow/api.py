"""``integrate_flow``: the high-precision, switch-aware gradient flow of the two-layer net (docs/design.md section 4)."""

from __future__ import annotations

import bisect
import time
from functools import partial
from typing import Any

import numpy as np

from fls.simulate.flow.arithmetic import Arithmetic, float_arithmetic
from fls.simulate.flow.biased import with_bias
from fls.simulate.flow.coords import Coordinates, PlainCoordinates
from fls.simulate.flow.freeze import RunData, continue_past_stays
from fls.simulate.flow.hybrid import EventLog, FlowOutcome, HybridFlow
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.order import TARGETS
from fls.simulate.flow.recording import Recorder, SaveSchedule, run_result
from fls.simulate.flow.smooth import IMPLICIT, SOLVERS, ExplicitPieces, ScipyPieces, piece_integrator
from fls.simulate.flow.spancoords import SpanCoordinates
from fls.simulate.result import RunResult
from fls.simulate.stopping import StopRule, TargetRisk
from fls.theory.compiled import validate_network
from fls.theory.losses import LOSSES, as_sample_weight
from fls.theory.validation import ParameterError, check_choice, check_in_range, check_positive

COORDINATES = ("auto", "plain", "log", "span")
#: coords="auto" uses log-norm coordinates for a balanced init whose largest neuron norm is below this scale
#: (there the plain state is small against the absolute tolerance; the paper's small-alpha regime).
LOG_COORDS_SCALE = 0.1
#: The method, relative tolerance and atol / rtol ratio a flow sweep should pass to :func:`integrate_flow`: the
#: fastest measured configuration that meets the sweeps' accuracy, 1e-6 relative in the final state (what a
#: test error or an alignment read off the state needs several digits below). Measured on low_signal
#: (n = 40, d = 100, m = 100, random_sign, seed 0, up to the time of R = 0.05) against DOP853 at rtol 1e-12,
#: with atol = rtol * SWEEP_ATOL_PER_RTOL, relative error / wall time on the 2-core development machine:
#: alpha = 3: RK23 1e-6 9e-8 / 1.4 s, RK45 1e-7 3e-9 / 1.5 s, DOP853 1e-8 7e-11 / 3.2 s;
#: alpha = 0.215: RK23 1e-6 1.9e-7 / 16 s, RK45 1e-7 5e-8 / 26 s, DOP853 1e-8 7e-11 / 45 s.
#: docs/flow.md, "Choosing a method and tolerances".
SWEEP_METHOD = "RK23"
SWEEP_RTOL = 1e-6
SWEEP_ATOL_PER_RTOL = 1e-3

#: A neuron is balanced when |v_j^2 - ||w_j||^2| <= this times (v_j^2 + ||w_j||^2) and v_j != 0.
BALANCE_TOL = 1e-12


def is_balanced(W: np.ndarray, v: np.ndarray) -> bool:
    """Whether every neuron has v_j = +-||w_j|| != 0 (to BALANCE_TOL): the invariant of docs/design.md section 2 is 0."""
    norms2 = np.einsum("ij,ij->i", W, W)
    return bool(np.all(v != 0) and np.all(np.abs(v * v - norms2) <= BALANCE_TOL * (v * v + norms2)))


def make_coordinates(
    coords: str,
    W: np.ndarray,
    v: np.ndarray,
    X: Any,
    y: Any,
    c: float,
    arithmetic: Arithmetic,
    implicit: bool = False,
) -> Coordinates:
    """The coordinate system for ``coords`` ('auto', 'plain', 'log' or 'span'), with X and y in ``arithmetic``.

    'auto': log-norm coordinates for a small balanced init; else data-span coordinates when n < d and the
    method is explicit (an implicit one has its analytic Jacobian in plain coordinates); else plain.
    """
    coords = check_choice("coords", coords, COORDINATES)
    balanced = is_balanced(W, v)
    if coords == "log" and not balanced:
        raise ParameterError(
            "coords = 'log' needs a balanced initialization (v_j = +-||w_j|| != 0 for every neuron); "
            "use coords = 'plain' or 'auto'"
        )
    use_log = coords == "log" or (
        coords == "auto" and balanced and np.linalg.norm(W, axis=1).max() < LOG_COORDS_SCALE
    )
    X_a, y_a = arithmetic.convert(X), arithmetic.convert(y)
    if use_log:
        return LogCoordinates(X_a, y_a, c, np.sign(v), arithmetic)
    n, d = X.shape
    if coords == "span" or (coords == "auto" and n < d and not implicit):
        return SpanCoordinates(X_a, y_a, c, W, arithmetic)
    return PlainCoordinates(X_a, y_a, c, W.shape[0], arithmetic)


def resolve_stop_rule(
    target_risk: float | None, stop_rule: StopRule | None, y: np.ndarray
) -> StopRule | None:
    """The run's stopping rule from ``target_risk`` (shorthand for TargetRisk) or ``stop_rule`` (not both)."""
    if target_risk is not None and stop_rule is not None:
        raise ParameterError("give either target_risk or stop_rule, not both")
    if stop_rule is not None and not isinstance(stop_rule, StopRule):
        raise ParameterError(
            f"stop_rule must be a StopRule (TargetRisk, PositiveClassLoss, ...), got {stop_rule!r}"
        )
    rule = TargetRisk(check_positive("target_risk", target_risk)) if target_risk is not None else stop_rule
    if rule is not None:
        rule.check_labels(y)
    return rule


def resolve_schedule(save_at: Any) -> SaveSchedule:
    """A SaveSchedule from None (every step), an array of times, or a SaveSchedule."""
    if save_at is None:
        return SaveSchedule.every_step()
    if isinstance(save_at, SaveSchedule):
        return save_at
    return SaveSchedule.at(save_at)


def dense_evaluator(
    flow: HybridFlow,
    outcome: FlowOutcome,
    recorder: Recorder,
    integrator: ExplicitPieces | ScipyPieces,
    switched: list[ExplicitPieces | ScipyPieces] | None = None,
):
    """t -> (W, v) on [0, t_stop]: replays the run from the last checkpoint before t.

    ``integrator`` replays the pieces, and ``switched[k]`` those that start at or after the run's k-th switch
    of method (``flow.switches``: to an implicit method where the explicit one would be held at its stability
    boundary, or to a higher-order one where that does several times less work).

    From the checkpoint's state and mode, each piece that starts before t is re-integrated to its start, where
    the event's projected rows of the touched neurons replace theirs and the mode takes their new sides
    (``Recorder.pieces``); the piece containing t is then integrated to t. Agrees with the run to its
    tolerance (the re-integration takes its own adaptive steps; the projected rows are the run's own).
    """
    checkpoints = recorder.checkpoints
    times = [float(t) for t, _, _, _ in checkpoints]
    starts = [float(start) for start, _, _, _ in recorder.pieces]
    coords = flow.coords
    replays = [integrator, *(switched or [])]
    switch_times = [switch.t for switch in flow.switches][: len(replays) - 1]

    def advance(mode: Mode, t0: Any, Y: Any, t1: Any) -> Any:
        """The piece's state at t1 from (t0, Y); a stage that overflows is a rejected step, as in the run (no
        warning)."""
        weights = SlidingWeights(mode, flow.gram, flow.arith)
        replay = replays[bisect.bisect_right(switch_times, float(t0))]
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            return replay.run(flow.field(weights), flow.jacobian(weights), t0, Y, t1, None, None, None).y

    def dense(t: float) -> tuple[np.ndarray, np.ndarray]:
        t = check_in_range("t", t, times[0], float(outcome.t))
        t_c, Y, piece, sides = checkpoints[bisect.bisect_right(times, t) - 1]
        mode = Mode.of_sides(sides)
        for k in range(piece + 1, bisect.bisect_right(starts, t)):
            start, neurons, new_sides, rows = recorder.pieces[k]
            Y = advance(mode, t_c, Y, start).copy()
            coords.row_block(Y)[neurons] = rows
            mode, t_c = mode.with_rows(dict(zip(neurons.tolist(), new_sides, strict=True))), start
        W, v = coords.network(advance(mode, t_c, Y, t))
        return np.array(W, dtype=np.float64), np.array(v, dtype=np.float64)  # copies: never the checkpoint's

    return dense


def integrate_flow(
    W0: Any,
    v0: Any,
    X: Any,
    y: Any,
    *,
    c: float = 1.0,
    loss: str = "logistic",
    target_risk: float | None = None,
    t_max: float,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "DOP853",
    save_at: Any = None,
    stop_rule: StopRule | None = None,
    coords: str = "auto",
    b0: Any = None,
    sample_weight: Any = None,
    record_events: bool = False,
    stiff_method: str | None = "Radau",
    high_order_method: str | None = "DOP853",
) -> RunResult:
    """Integrate the Filippov gradient flow theta' = -grad R of docs/design.md section 2 from (W0, v0) on (X, y).

    A hybrid integrator: adaptive ``method`` (scipy DOP853 by default; RK45, RK23, the Heun–Euler pair RK12 for
    runs whose steps events end (:mod:`simulate.flow.heun_euler`), or Radau / BDF with the analytic Jacobian)
    on each smooth piece; activation crossings, sliding entries / exits and the stopping
    time located on the dense output (see :mod:`simulate.flow.hybrid`).

    Args:
        W0, v0, X, y: initial parameters (m, d), (m,), data (n, d), targets (n,): labels in {-1, +1} for a
            margin loss, real numbers for ``squared``.
        c: output multiplier; loss: one of theory.losses.LOSSES.
        b0: initial hidden biases (m,), or None for the bias-free network; with biases the flow is the
            bias-free one on inputs (x, 1) (:mod:`simulate.flow.biased`) and the result also has ``b``.
        sample_weight: per-sample weights (n,) >= 0 (normalized to mean 1, theory.losses), or None.
        target_risk: stop at tau = inf{t : R <= target_risk}; or give ``stop_rule`` (stopping.StopRule)
        instead.
        t_max: time limit. With a target, reaching t_max first ends ``not_reached``; without one, ``t_max``.
        rtol in [1e-14, 1e-2], atol > 0: each step's local error in the weights, component by component,
            within about atol + rtol |w| (w_jk and v_j) in every coordinate system; log and span coordinates
            convert it to their own state (:mod:`simulate.flow.tolerance`; docs/flow.md, "Options").
        save_at: None (every step), times, or a SaveSchedule; the final time is always saved last.
        coords: 'plain' (W, v), 'log' (directions and log-norms; balanced init only), 'span' (W - W(0) in
            the span of the samples, and v: m (n + 1) numbers) or 'auto' (log for a balanced init with max
            ||w_j|| < 0.1, else span when n < d and the method is explicit, else plain).
        record_events: keep every transition: ``info["event_log"]`` then holds arrays ``t``, ``neuron``,
            ``sample`` and ``kind`` ('cross', 'enter_sliding', 'leave_sliding'), one entry per pair and event,
            and 'stay_at_origin' (sample -1) where a neuron is frozen at its origin.
        stiff_method: the implicit method ('Radau' or 'BDF') an explicit ``method`` hands the rest of the run to
            when its steps are held at their stability boundary (:mod:`simulate.flow.stiffness`), or None to
            keep ``method`` throughout. A switch is said in the message and recorded in
            ``info["method_switch"]`` (t, from, to, eigenvalue, step, ratio; None without a switch);
            ``info["stiffness"]`` says how many tests ran and the largest ratio they found.
        high_order_method: the explicit method of higher order ('RK45' or 'DOP853') an RK12 / RK23 / RK45 ``method``
            hands the rest of the run to when, measured on the run, it would do several times less work (a
            tight tolerance on a smooth stretch: :mod:`simulate.flow.order`), or None to keep ``method``. Said
            in the message and in ``info["method_switch"]`` like a stiff switch (with ``reason`` 'order' or
            'stiff'; the last switch of the run, ``info["method_switches"]`` every one);
            ``info["order"]`` says how many tests ran and the largest gain they found.

    Returns a RunResult (engine 'flow' or 'flow-logcoords') with diagnostics ``rhs_evals``, ``switches``
    (crossings), ``sliding_entries``, ``invariant_drift`` (exact 0 in log coordinates),
    ``wall_time`` and ``dense(t)``; ``info`` holds sliding exits, events, pieces, coordinates and tolerances.
    A neuron that reaches its origin where it stays and cannot leave is frozen there (w_j = 0, v_j constant)
    and the run goes on without it (:mod:`simulate.flow.freeze`): ``info["stays"]`` (times ``t``, ``neuron``)
    and ``info["frozen_neurons"]`` say so, and the run ends ``failed`` where such a stay stops being unique.
    """
    if b0 is not None:
        return with_bias(
            integrate_flow, W0, b0, v0, X, y, c=c, loss=loss, target_risk=target_risk, t_max=t_max, rtol=rtol,
            atol=atol, method=method, save_at=save_at, stop_rule=stop_rule, coords=coords,
            sample_weight=sample_weight, stiff_method=stiff_method, high_order_method=high_order_method,
        )  # fmt: skip
    started = time.perf_counter()
    W, v, X, y, c = validate_network(W0, v0, X, y, c=c, loss=loss)
    loss = check_choice("loss", loss, LOSSES)
    weights = as_sample_weight(sample_weight, X.shape[0])
    t_max = check_positive("t_max", t_max)
    rtol = check_in_range("rtol", rtol, 1e-14, 1e-2)
    atol = check_positive("atol", atol)
    method = check_choice("method", method, SOLVERS)
    if stiff_method is not None:
        stiff_method = check_choice("stiff_method", stiff_method, IMPLICIT + (None,))
    if high_order_method is not None:
        high_order_method = check_choice("high_order_method", high_order_method, tuple(TARGETS) + (None,))
    rule = resolve_stop_rule(target_risk, stop_rule, y)
    segment = partial(
        flow_segment, X=X, y=y, c=c, loss=loss, weights=weights, t_max=t_max, rtol=rtol, atol=atol,
        schedule=resolve_schedule(save_at), record_events=record_events, stiff_method=stiff_method,
        high_order_method=high_order_method,
    )  # fmt: skip
    result, stay = segment(W, v, t0=0.0, method=method, rule=rule, coords=coords)
    if stay is not None:
        problem = RunData(X, y, c, float_arithmetic(loss, weights), t_max)
        result = continue_past_stays(segment, result, stay, rule, problem)
    result.wall_time = time.perf_counter() - started
    return result


def flow_segment(
    W: np.ndarray,
    v: np.ndarray,
    *,
    X: np.ndarray,
    y: np.ndarray,
    c: float,
    loss: str,
    weights: np.ndarray | None,
    t0: float,
    t_max: float,
    rtol: float,
    atol: float,
    method: str,
    schedule: SaveSchedule,
    rule: StopRule | None,
    coords: str,
    record_events: bool,
    stiff_method: str | None,
    high_order_method: str | None,
    labels: np.ndarray | None = None,
) -> tuple[RunResult, int | None]:
    """The run of :func:`integrate_flow` (validated arguments) from (W, v) at time t0, and the row of the
    neuron whose unique stay at its origin ended it (None where none did: the run is then the whole flow).
    ``labels``: each row's neuron in messages and the event log (None: the rows themselves)."""
    arithmetic = float_arithmetic(loss, weights)
    coordinates = make_coordinates(coords, W, v, X, y, c, arithmetic, implicit=method in IMPLICIT)
    integrator = piece_integrator(method, rtol, atol, stiff_method, high_order_method, coords=coordinates)
    log = EventLog() if record_events else None
    flow = HybridFlow(coordinates, integrator, rule, loss, log, stiff_method, labels)
    recorder = Recorder(schedule, coordinates, loss)
    # Overflow and NaN end the run with status 'diverged'; numpy need not warn about them as well.
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        try:
            outcome = flow.run(t0, coordinates.pack(W, v), t_max, recorder)
        except (np.linalg.LinAlgError, ValueError, ArithmeticError) as exc:
            t_last, Y_last = flow.position or (t0, coordinates.pack(W, v))
            outcome = FlowOutcome("failed", f"{type(exc).__name__}: {exc}", t_last, Y_last, flow.counts)
        recorder.finish(outcome.t, outcome.y)
    switch = flow.method_switch
    for each in flow.switches:
        outcome.message = f"{outcome.message}; {each.describe()}"
    dense = None
    if recorder.checkpoints:
        switched = [piece_integrator(each.target, rtol, atol, coords=coordinates) for each in flow.switches]
        explicit = piece_integrator(method, rtol, atol, coords=coordinates)
        dense = dense_evaluator(flow, outcome, recorder, explicit, switched)
    engine = "flow-logcoords" if coordinates.name == "log" else "flow"
    order_monitor = getattr(integrator, "order_monitor", None)  # explicit RK12 / RK23 / RK45 integrators only
    info = {
        "method": method,
        "rtol": rtol,
        "atol": atol,
        "loss": loss,
        "c": c,
        "stop_rule": rule.describe() if rule is not None else None,
        "method_switch": switch.as_dict() if switch is not None else None,
        "method_switches": [each.as_dict() for each in flow.switches],
        "stiffness": integrator.monitor.summary() if integrator.monitor is not None else None,
        "order": order_monitor.summary() if order_monitor is not None else None,
    }
    if log is not None:
        info["event_log"] = log.arrays()
    return run_result(outcome, recorder, engine=engine, wall_time=0.0, dense=dense, info=info), outcome.stay
