"""The hybrid (piecewise-smooth) gradient flow: pieces, events and mode changes, in any arithmetic.

The Filippov flow of docs/design.md section 2 is integrated as a sequence of smooth pieces. On a piece the mode
(the activation pattern and the sliding set, :mod:`simulate.flow.modes`) is fixed and the field is smooth; a
piece ends at the first guard event (:mod:`simulate.flow.events`) located on the dense output. At an event:

1. every pair on its surface at that instant is collected, for all neurons at once (|cos| <= eps^(3/4)):
   aligned duplicate neurons reach the same surface at the same instant, and all such events are handled
   together;
2. each neuron is projected exactly onto every surface it touches (its sliding ones included);
3. each touched neuron's next mode comes from its one-sided fields through one box-constrained least-squares
   problem (cross, start sliding, stop sliding), :func:`simulate.flow.modes.select_neuron_mode`.

An event that makes no progress (the next piece ends at once, a pair leaving its surface the wrong way) is a
tangency: the first time, the pair does not get the same side again (it slides, or crosses); the second time
at the same instant, the contact is below the integration's resolution and the pair keeps its side while a
dip of its guard that comes back within the step is not an event (docs/flow.md, "Robustness"). So is a guard
that an event left at its bound and that is back there within one step of it (a dip of the dense output's
error: a kept pair, a pair that left sliding through a weight bound, a weight kept sliding), from then on
until its pair changes side (:mod:`simulate.flow.grazing`); a grazing guard counts as crossed only below its
change under a state error of the tolerances (:meth:`HybridFlow.resolution`). What the events of one instant
decided (those sides, the tolerated dips, the sides of sliding weights that left through a bound) holds for every
later event of that instant (:class:`InstantMemory`): the events of one instant are resolved together, so a
pair's exit and another neuron's weight exit at the same instant do not undo each other's selection in turn.
Only events that still repeat, :data:`MAX_INSTANT_EVENTS` in a row, end the run ``failed``, naming the neuron
and sample; where they repeat at a neuron's origin where it stays and cannot leave, the outcome says so
(``FlowOutcome.stay``) and the run goes on without that neuron (:mod:`simulate.flow.freeze`); where, in d = 2,
it cannot stay and has exactly one way out, it takes that one and the run goes on (:mod:`simulate.flow.leave`).

The same loop drives the float engine (scipy solvers) and the mpmath reference: only the piece integrator and
the arithmetic differ. Diagnostics: crossings (``switches``), sliding entries and exits, events, pieces, RHS
calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from fls.simulate.flow.carried_outputs import CarriedOutputs, touched_neurons
from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.events import MU_HIGH, MU_LOW, PAIR, PieceGuards
from fls.simulate.flow.grazing import GrazingContacts, NearBounds, below_resolution
from fls.simulate.flow.implicit_cost import AnalyticJacobian
from fls.simulate.flow.leave import leave_origin
from fls.simulate.flow.modes import (
    ACTIVE,
    INACTIVE,
    SLIDING,
    Mode,
    SlidingWeights,
    neuron_rows,
    select_neuron_mode,
)
from fls.simulate.flow.origin import contact_at, repeated_events_message
from fls.simulate.flow.piece_end import PieceEnd
from fls.simulate.flow.piece_field import EventCounts, PieceField
from fls.simulate.flow.recording import Recorder
from fls.simulate.flow.roundoff import float_factors
from fls.simulate.flow.start_jumps import StartJumps, start_jumps
from fls.simulate.flow.step_control import EventSpacing
from fls.simulate.flow.stiffness import MethodSwitch
from fls.simulate.flow.switching import handover
from fls.simulate.flow.tangent_rates import pair_rates, rate_scale
from fls.simulate.flow.touching import touched_columns
from fls.simulate.stopping import StopRule

#: A run whose events stop advancing time (more than this many in a row within a few roundoffs of t) has
#: failed: the flow is not unique there.
MAX_INSTANT_EVENTS = 200
#: A grazing column's crossing depth, in units of its guard's change under a state error of the tolerances:
#: the dense output's error exceeds the step's error estimate by up to a few times.
RESOLUTION_FACTOR = 10.0


class PieceIntegrator(Protocol):
    """Integrates one smooth piece until its first guard event or t_bound (see ``smooth.ScipyPieces.run``)."""

    implicit: bool

    def run(self, fun, jac, t0, y0, t_bound, guards, first_step, observer) -> PieceEnd: ...

    def state_tolerance(self, y: Any) -> Any:
        """The error per step allowed in each component of y (``tolerance.StepTolerance.of``)."""
        ...


#: The kinds of transition an event log records (:class:`EventLog`).
TRANSITIONS = ("cross", "enter_sliding", "leave_sliding")


@dataclass
class EventLog:
    """Every transition of a run, in order, like solve_ivp's ``t_events``: at time ``t[k]`` the pair (neuron
    ``neuron[k]``, sample ``sample[k]``) crossed its surface, entered sliding or left it (``kind[k]``, one of
    :data:`TRANSITIONS`). Transitions of one event share its time. A run that freezes a neuron at its origin
    adds an entry of kind ``freeze.STAY`` there (:mod:`simulate.flow.freeze`)."""

    t: list[float] = field(default_factory=list)
    neuron: list[int] = field(default_factory=list)
    sample: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)

    def add(self, t: Any, neuron: int, sample: int, kind: str) -> None:
        self.t.append(float(t))
        self.neuron.append(int(neuron))
        self.sample.append(int(sample))
        self.kind.append(kind)

    def arrays(self) -> dict[str, np.ndarray]:
        """The log as arrays ``t`` (float), ``neuron``, ``sample`` (int) and ``kind`` (str)."""
        return {
            "t": np.asarray(self.t, dtype=np.float64),
            "neuron": np.asarray(self.neuron, dtype=np.int64),
            "sample": np.asarray(self.sample, dtype=np.int64),
            "kind": np.asarray(self.kind, dtype=str),
        }


@dataclass
class InstantMemory:
    """What the events at the current instant decided, for every later event at the same instant.

    ``repeats``: pair (j, i) -> its wrong-way exits; ``stuck``: neuron -> sample -> the side its pair left the
    wrong way once (it does not get it again); ``grazing``: pair columns left the wrong way twice (a contact
    below the integration's resolution: the pair keeps its side and a dip of its guard that comes back
    within the step is not an event); ``hints``: neuron -> sample -> the side of a sliding weight's exit
    through a bound. Without it, an event that re-selects a neuron for another pair's sake forgets them and
    two exits of one instant can undo each other's choice until ``failed``.
    """

    repeats: dict[tuple[int, int], int] = field(default_factory=dict)
    stuck: dict[int, dict[int, int]] = field(default_factory=dict)
    grazing: set[int] = field(default_factory=set)
    hints: dict[int, dict[int, int]] = field(default_factory=dict)

    def clear(self) -> None:
        """Time has advanced: a new instant."""
        for memory in (self.repeats, self.stuck, self.grazing, self.hints):
            memory.clear()

    def left_wrong_way(self, neurons: list[int], i: int, side: np.ndarray, n: int) -> None:
        """Pair (j, i) of each neuron in ``neurons`` (the mode's ``side`` (m, n)) left its surface at once."""
        for j in neurons:
            self.repeats[j, i] = self.repeats.get((j, i), 0) + 1
            if self.repeats[j, i] == 1:  # first time: its rate on that side is zero to roundoff
                self.stuck.setdefault(j, {})[i] = int(side[j, i])
            else:  # a grazing contact below the integration's resolution: the pair keeps its side
                self.stuck.get(j, {}).pop(i, None)
                self.grazing.add(j * n + i)

    def with_hints(self, hints: dict[int, dict[int, int]]) -> dict[int, dict[int, int]]:
        """The event's hints added to those of the instant (the event's own win), all of them."""
        for j, sides in hints.items():
            self.hints.setdefault(j, {}).update(sides)
        return self.hints


@dataclass
class FlowOutcome:
    """End of a hybrid run: status (a RunResult status), where it stopped, and its diagnostics."""

    status: str
    message: str
    t: Any
    y: Any
    counts: EventCounts
    #: the neuron (its row) whose repeated events are at its origin where it stays and cannot leave: the run
    #: ends there and goes on without it (:mod:`simulate.flow.freeze`); None otherwise
    stay: int | None = None


class HybridFlow:
    """The event loop over smooth pieces for one problem (coordinates carry X, y, c and the arithmetic)."""

    def __init__(
        self,
        coords: Coordinates,
        integrator: PieceIntegrator,
        stop_rule: StopRule | None,
        loss: str,
        log: EventLog | None = None,
        stiff_method: str | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        self.coords, self.integrator, self.stop_rule, self.loss = coords, integrator, stop_rule, loss
        #: the name of each neuron in messages and the event log (its row in the whole network, when this one
        #: leaves out frozen neurons: :mod:`simulate.flow.freeze`)
        self.labels = np.arange(coords.m) if labels is None else labels
        self.log = log  # every transition, when asked for
        self.stiff_method = stiff_method  # the implicit method a piece that ends 'stiff' hands the run to
        self.switches: list[MethodSwitch] = []  # every switch of the run, in order
        self.arith = coords.arith
        self.gram = coords.X @ coords.X.T
        self.X_float = self.arith.to_float(coords.X)
        self.x_norms_float = np.sqrt(np.einsum("ij,ij->i", self.X_float, self.X_float))  # for every selection
        self.counts = EventCounts()
        self.weight_maps: dict = {}  # SlidingWeights' per-neuron maps, reused across pieces
        self.position: tuple[Any, Any] | None = None  # (t, state) at the start of the current piece
        self.carried = CarriedOutputs()  # the last event's outputs, for the next piece's start

    # -- the field of a piece -----------------------------------------------------------------------------
    def field(
        self, weights: SlidingWeights, start: tuple[Any, Any] = (None, None), jumps: StartJumps | None = None
    ) -> PieceField:
        """y -> the mode's field, counting evaluations; ``start``: (state, outputs) as for :class:`PieceField`;
        ``jumps`` get the factors of the evaluations."""
        return PieceField(self.coords, weights, self.counts, start, jumps)

    def jacobian(self, weights: SlidingWeights) -> AnalyticJacobian | None:
        """y -> the analytic Jacobian of the piece's field for the implicit methods and the stiffness test's
        trial of one (None for the others): every coordinate system has one (:mod:`~simulate.flow.chain`,
        docs/flow.md "How it works")."""
        if not self.integrator.implicit and self.stiff_method is None:
            return None
        return AnalyticJacobian(self.coords, weights, self.loss, self.counts)

    # -- events ------------------------------------------------------------------------------------------
    def initial_mode(self, t: Any, Y: Any) -> tuple[Any, Mode]:
        """The mode at the start: signs of the pre-activations; pairs that start on a surface are selected."""
        cos = self.arith.to_float(self.coords.cosines(Y))
        mode = Mode(cos > 0, np.zeros_like(cos, dtype=bool))
        touching = np.abs(cos) <= self.arith.touch_tol
        if not touching.any():
            return Y, mode
        weights = SlidingWeights(mode, self.gram, self.arith)
        Y, mode, _ = self.apply_event(Y, mode, weights, touching, {}, t)
        return Y, mode

    def event_pairs(self, mode: Mode, guards: PieceGuards, end: PieceEnd):
        """Pairs on their surface at an event (m, n) and the sliding pairs whose weight hit 0 or 1 (hints).

        Uses the guards at the event (``end.values``): |side cos| of the non-sliding pairs, mu and 1 - mu.
        """
        tol = self.arith.touch_tol
        values = np.asarray(end.values, dtype=np.float64)
        P, S = guards.n_pairs, guards.n_sliding
        columns = np.arange(len(values)) if end.columns is None else end.columns  # the guards of ``values``
        touching, at_bound = touched_columns(values, columns, P, S, tol)
        touching = touching.reshape(mode.sliding.shape)
        column = int(end.column)
        kind = guards.kind(column)
        if kind == PAIR:
            touching[guards.pair(column)] = True
        elif kind in (MU_LOW, MU_HIGH) and column not in at_bound:
            at_bound.append(column)
        hints: dict[int, dict[int, int]] = {}
        for col in at_bound:
            j, i = guards.sliding_pair(col)
            hints.setdefault(j, {})[i] = INACTIVE if guards.kind(col) == MU_LOW else ACTIVE
        return touching, hints

    def apply_event(
        self,
        Y: Any,
        mode: Mode,
        weights: SlidingWeights,
        touching: np.ndarray,
        hints: dict[int, dict[int, int]],
        t: Any,
        stuck: dict[int, dict[int, int]] | None = None,
        outputs: Any = None,
    ) -> tuple[Any, Mode, list[int]]:
        """Project the touched neurons onto their surfaces, select their next modes, count (and log) the
        transitions at time t. ``stuck``: neuron -> sample -> the side its pair left the wrong way at once
        (see :func:`~simulate.flow.modes.select_neuron_mode`). ``outputs``: every sample's network output at
        Y under ``weights``, when known (the piece's end has them): the outputs after the projection then
        differ from them by the touched neurons' change only, O(touched n row) instead of an evaluation.

        Returns the projected state, the next mode (``mode`` itself, updated in place in the touched rows:
        O(touched n), no (m, n) copy) and the neurons whose rows of the mode may have changed.
        """
        coords, arith = self.coords, self.arith
        affected = touched_neurons(touching, hints)
        on_surface = {j: (touching[j] | mode.sliding[j]).nonzero()[0] for j in affected}
        rows = neuron_rows(affected)
        before = None if outputs is None else coords.neuron_outputs(Y, weights, rows)
        Y = Y.copy()
        for j in affected:
            coords.project(Y, j, on_surface[j])
        moved = coords.neuron_outputs(Y, weights, rows)
        outputs = coords.output(Y, weights) if outputs is None else outputs + (moved - before)
        self.carried.keep(Y, outputs, moved, affected)
        s_a, offset_a = coords.sample_factors(outputs)
        s, offset, errors = float_factors(coords, outputs, s_a, offset_a)  # float64, and their precision
        scale = rate_scale(s, offset, self.x_norms_float, errors)  # the rates' resolution, once per event
        h_old = arith.to_float(weights.neuron_gates(s_a, offset_a, affected)) @ self.X_float  # h_j = X^T q_j
        signs = coords.signs(Y)
        rows = {}
        for j, h_j in zip(affected, h_old, strict=True):
            old, surfaces = mode.side[j], on_surface[j]
            # the side each touched pair was moving to under the old mode (sliding ones: where the rate points)
            before = old[surfaces]
            rate = pair_rates(signs[j], h_j, surfaces, self.X_float, self.x_norms_float, scale)
            prefer = old.copy()
            prefer[surfaces] = np.where(
                before != SLIDING,
                np.where(before * rate < 0, -before, before),
                np.where(rate > 0, ACTIVE, INACTIVE),
            )
            new = select_neuron_mode(
                self.X_float,
                s,
                signs[j],
                old,
                surfaces,
                prefer,
                hints.get(j),
                offset,
                (stuck or {}).get(j),
                self.x_norms_float,
                errors,
                scale,
            )
            self.record(t, j, surfaces, before, new[surfaces])
            rows[j] = new
        mode.update_rows(rows)
        return Y, mode, affected

    def record(self, t: Any, j: int, pairs: np.ndarray, was: np.ndarray, now: np.ndarray) -> None:
        """Count (and log) the transitions at time t of neuron j's ``pairs`` from sides ``was`` to ``now``."""
        for i, before, after in zip(pairs.tolist(), was.tolist(), now.tolist(), strict=True):
            kind = _transition(before, after)
            if kind is None:
                continue
            counts = self.counts
            if kind == "cross":
                counts.switches += 1
            elif kind == "enter_sliding":
                counts.sliding_entries += 1
            else:
                counts.sliding_exits += 1
            if self.log is not None:
                self.log.add(t, self.labels[j], self.coords.samples.index[i], kind)

    def resolution(self, Y: Any, guards: PieceGuards, columns: set[int]) -> dict[int, float]:
        """column -> the change of its guard under a state error of the size the tolerances allow.

        A step is exact to about its tolerance per component (:meth:`PieceIntegrator.state_tolerance`), and
        so is its dense output: a guard that starts on its surface moves by up to about
        ||grad g . tolerance|| in it from that error alone, which for a pair whose rate is near 0 (a tangency)
        or with loose tolerances (atol 1e-4 on |w| ~ 30: 4e-6 in cosine units) exceeds its true motion over
        the step. Measured along two fixed sign patterns of the tolerance (any coordinates), times
        :data:`RESOLUTION_FACTOR` for the interpolant's error constant.
        """
        tolerance = self.integrator.state_tolerance(Y)
        probes = Y + np.stack([tolerance * signs for signs in _probe_signs(len(tolerance))])
        G = self.arith.to_float(guards.evaluate(np.concatenate([Y[None], probes])))
        cols = sorted(columns)
        change = np.abs(G[1:, cols] - G[0, cols]).max(axis=0)
        return {col: RESOLUTION_FACTOR * float(depth) for col, depth in zip(cols, change, strict=True)}

    def switch_method(self, end: PieceEnd) -> None:
        """The explicit integrator ended a piece 'stiff' or 'order' at end.t: the rest of the run goes to
        another method (:func:`~simulate.flow.switching.handover`), and the switch is recorded. Only the float
        engine's integrators (``smooth.ExplicitPieces``, ``smooth.ScipyPieces``) end a piece so."""
        self.integrator, switch = handover(self.integrator, end, self.stiff_method)
        self.switches.append(switch)

    @property
    def method_switch(self) -> MethodSwitch | None:
        """The run's last switch of method, None without one."""
        return self.switches[-1] if self.switches else None

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, t0: float, Y0: Any, t_max: float, recorder: Recorder) -> FlowOutcome:
        """Integrate from (t0, Y0) until the stopping rule, t_max, divergence or failure."""
        counts = self.counts
        Y, mode = self.initial_mode(t0, Y0)
        t, step, instant, piece = t0, None, 0, -1
        recorder.start(t, Y)

        def outcome(status: str, message: str, t_end: Any, Y_end: Any) -> FlowOutcome:
            return FlowOutcome(status, message, t_end, Y_end, counts)

        weights: SlidingWeights | None = None
        guards: PieceGuards | None = None
        changed: list[int] = []  # the neurons whose mode rows the last event changed
        near = NearBounds()  # the guards that events left at their bounds
        memory, contacts = InstantMemory(), GrazingContacts(mode.side.shape[1])
        spacing = EventSpacing()  # bounds the first step after an event by the events' spacing
        left = None  # (time, neuron) of the last leave from an origin: once an instant
        while True:
            weights = SlidingWeights(mode, self.gram, self.arith, self.weight_maps, weights, changed)
            start_outputs = self.carried.at_start(self.coords, Y, weights)
            jumps = start_jumps(self.coords, weights, Y, start_outputs)
            guards = PieceGuards(self.coords, weights, self.stop_rule, guards, changed, Y, start_outputs, jumps)
            depths = contacts.depths_in(guards, partial(self.resolution, Y, guards))
            if memory.grazing:
                depths.update(self.resolution(Y, guards, memory.grazing))
            if depths:
                guards.graze(depths)
            piece += 1
            self.position = (t, Y)
            recorder.begin_piece(piece, t, Y, mode, changed)
            if self.stop_rule is not None and guards.stop_value(Y) <= 0:
                return outcome("target_reached", f"{self.stop_rule.describe()} at t = {float(t):.10g}", t, Y)
            end = self.integrator.run(
                self.field(weights, (Y, start_outputs), jumps),
                self.jacobian(weights),
                t,
                Y,
                t_max,
                guards,
                step,
                recorder,
            )
            counts.pieces += 1
            step = spacing.first_step(t, end.t, end.step or step) if end.kind == "event" else end.step or step
            if end.kind == "t_bound":
                if self.stop_rule is None:
                    return outcome("t_max", f"reached t_max = {float(t_max):g}", end.t, end.y)
                return outcome(
                    "not_reached",
                    f"{self.stop_rule.describe()} not reached by t_max = {float(t_max):g}",
                    end.t,
                    end.y,
                )
            if end.kind in ("diverged", "failed"):
                return outcome(end.kind, end.message, end.t, end.y)
            if end.kind in ("stiff", "order"):  # not an event: the same mode goes on with another method
                self.switch_method(end)
                t, Y, step, changed = end.t, end.y, None, []
                continue
            if end.column == guards.stop_column:
                return outcome(
                    "target_reached", f"{self.stop_rule.describe()} at t = {float(end.t):.10g}", end.t, end.y
                )
            counts.events += 1
            instant = instant + 1 if abs(end.t - t) <= 64 * self.arith.eps * abs(float(t)) else 0
            if instant > MAX_INSTANT_EVENTS:
                j, i = (
                    guards.pair(end.column)
                    if guards.kind(end.column) == PAIR
                    else guards.sliding_pair(end.column)
                )
                contact = contact_at(self.coords, weights, end.y, j)
                way = None if (end.t, j) == left else leave_origin(self.coords, weights, end.y, j, contact)
                if way is not None:  # its one way out (d = 2): the run goes on from w_j = 0 in that mode
                    (Y, row), t, instant, changed, left = way, end.t, 0, [j], (end.t, j)
                    self.record(t, j, np.arange(len(row)), mode.side[j].copy(), row)
                    mode.update_rows({j: row})
                    memory.clear()
                    continue
                i = self.coords.samples.index[i]
                message = repeated_events_message(contact, instant, t, self.labels[j], i)
                stay = j if contact is not None and contact.unique_stay else None
                return FlowOutcome("failed", message, end.t, end.y, counts, stay)
            touching, hints = self.event_pairs(mode, guards, end)
            grazing = [] if instant else below_resolution(guards, end, near, touching)
            if not instant:
                memory.clear()
            elif guards.kind(end.column) == PAIR:  # no progress: the pair left its surface at once
                i = guards.pair(end.column)[1]  # with it, every neuron on that surface (aligned duplicates)
                memory.left_wrong_way(np.flatnonzero(touching[:, i]).tolist(), i, mode.side, guards.n)
            elif guards.kind(end.column) in (MU_LOW, MU_HIGH):  # a weight leaving through a bound at once
                j, i = guards.sliding_pair(end.column)
                if (j, i) in memory.repeats:  # it slides only because it left that side the wrong way
                    memory.left_wrong_way([j], i, mode.side, guards.n)  # the second time: it keeps that side
            hints = memory.with_hints(hints)
            t = end.t
            pairs = touching.ravel().nonzero()[0]
            before = mode.side.ravel()[pairs]  # a copy: the event updates the mode in place
            Y, mode, changed = self.apply_event(
                end.y, mode, weights, touching, hints, t, memory.stuck, end.outputs
            )
            near.update(pairs, before, hints, mode.side, t)
            contacts.forget_changed(mode, changed)
            contacts.add(grazing, mode.side)
            if end.stiff:  # events that come every step of a stiff run: the next piece is implicit
                self.switch_method(end)
                step = None


def _probe_signs(size: int) -> np.ndarray:
    """Two fixed patterns of signs (2, size) along which :meth:`HybridFlow.resolution` perturbs a state."""
    return np.random.default_rng(0).choice((-1.0, 1.0), size=(2, size))


def _transition(was: int, now: int) -> str | None:
    """The kind of transition (one of :data:`TRANSITIONS`) of a pair going from side ``was`` to ``now``, or None."""
    if was != SLIDING and now == -was:
        return "cross"
    if was != SLIDING and now == SLIDING:
        return "enter_sliding"
    if was == SLIDING and now != SLIDING:
        return "leave_sliding"
    return None
