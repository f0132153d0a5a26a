"""What a flow run keeps: save schedule, saved trajectory, invariant drift, restart checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.modes import Mode
from fls.simulate.result import RunResult
from fls.theory.compiled import compile_field
from fls.theory.validation import ParameterError, as_array


@dataclass(frozen=True)
class SaveSchedule:
    """Which times a run records (t, risk and, with ``keep_states``, W and v).

    ``times=None``: the start, every accepted step, every event and the stop. Otherwise the given times that
    fall in [t0, t_stop], evaluated on the dense output, plus t_stop itself (so ``risk[-1]`` is always the
    final risk).
    """

    times: np.ndarray | None = None
    keep_states: bool = False

    @classmethod
    def every_step(cls, keep_states: bool = False) -> SaveSchedule:
        return cls(None, keep_states)

    @classmethod
    def at(cls, times: Any, keep_states: bool = True) -> SaveSchedule:
        arr = as_array("save_at", np.atleast_1d(times), ndim=1)
        if np.any(np.diff(arr) < 0) or np.any(arr < 0):
            raise ParameterError("save_at must be non-negative and non-decreasing")
        return cls(arr, keep_states)


#: Bytes the checkpoints of one run may hold (states and mode snapshots): beyond it every other one is dropped
#: and the interval between checkpoints doubled, so a run's memory is this plus O(changed neurons (n + row))
#: per event, whatever its length and width (docs/flow.md, "Cost").
CHECKPOINT_BUDGET = 1 << 27


@dataclass
class Recorder:
    """Collects the saved trajectory, the invariant drift, and what dense output needs: checkpoints
    (t, state, piece, the piece's sides (m, n)) every ``checkpoint_every`` steps or more, and for every piece
    the rows its starting event changed (:attr:`pieces`).

    Called by the piece integrators after every accepted step (see ``smooth.Observer``). A piece start keeps
    only the event's changes: its time, the neurons it touched, their new sides and their projected rows of the
    state (O(touched (n + row))); the full state and mode are kept at the checkpoints, whose total is bounded by
    ``budget`` bytes (every other one dropped and the interval doubled when it is exceeded). Dense output
    replays the pieces from the last checkpoint before t (``api.dense_evaluator``).
    """

    schedule: SaveSchedule
    coords: Coordinates
    loss: str
    checkpoint_every: int = 16
    budget: int = CHECKPOINT_BUDGET
    t: list[float] = field(default_factory=list)
    risk: list[float] = field(default_factory=list)
    W: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)
    drift: float = 0.0
    checkpoints: list[tuple[Any, Any, int, np.ndarray]] = field(default_factory=list)
    #: per piece: (start time, touched neurons (k,), their sides (k, n), their rows of the state (k, row))
    pieces: list[tuple[Any, np.ndarray, np.ndarray, Any]] = field(default_factory=list)
    piece: int = 0
    _invariant0: Any = None
    _steps: int = 0
    _mode: Mode | None = None
    _bytes: int = 0

    def __post_init__(self) -> None:
        arith = self.coords.arith
        self._risk = compile_field(self.loss).risk
        self._data = (
            arith.to_float(self.coords.X_all),
            arith.to_float(self.coords.y),
            float(self.coords.c),
            arith.weights,
        )

    def _save(self, t: float, Y: Any) -> None:
        W, v = (self.coords.arith.to_float(a) for a in self.coords.network(Y))
        self.t.append(float(t))
        self.risk.append(float(self._risk(W, v, *self._data)))
        if self.schedule.keep_states:
            self.W.append(W)
            self.v.append(v)

    def _track_drift(self, Y: Any) -> None:
        q = self.coords.invariant(Y)
        if q is None:
            return
        if self._invariant0 is None:
            self._invariant0 = q
        self.drift = max(self.drift, float(np.abs(self.coords.arith.to_float(q - self._invariant0)).max()))

    def start(self, t0: float, Y0: Any) -> None:
        self._track_drift(Y0)
        times = self.schedule.times
        if times is None or np.any(times == t0):
            self._save(t0, Y0)

    def begin_piece(self, index: int, t: Any, Y: Any, mode: Mode, changed: list[int]) -> None:
        """Piece ``index`` starts at (t, Y) (after an event's projection) with ``mode``, which differs from the
        piece before in the rows ``changed`` only (it is updated in place later: only those rows are kept)."""
        self.piece, self._mode = index, mode
        neurons = np.asarray(changed, dtype=np.int64)
        self.pieces.append((t, neurons, mode.side[neurons], self.coords.row_block(Y)[neurons]))
        if index == 0 or self._steps >= self.checkpoint_every:
            self._checkpoint(t, Y)

    def _checkpoint(self, t: Any, Y: Any) -> None:
        """Keep (t, Y, piece, sides); past the budget, every other checkpoint goes and the interval doubles."""
        self._steps = 0
        self.checkpoints.append((t, Y, self.piece, self._mode.side.copy()))
        self._bytes += Y.nbytes + self._mode.side.nbytes
        if self._bytes > self.budget and len(self.checkpoints) > 1:
            self.checkpoints = self.checkpoints[::2]
            self.checkpoint_every *= 2
            self._bytes = sum(Y_c.nbytes + side.nbytes for _, Y_c, _, side in self.checkpoints)

    def __call__(self, t_a: Any, t_b: Any, y_b: Any, dense: Callable[[Any], Any]) -> None:
        self._track_drift(y_b)
        self._steps += 1
        if self._steps >= self.checkpoint_every:
            self._checkpoint(t_b, y_b)
        times = self.schedule.times
        if times is None:
            self._save(t_b, y_b)
            return
        t_a, t_b = float(t_a), float(t_b)
        if not len(times) or t_b < times[0] or t_a >= times[-1]:  # none in (t_a, t_b] (most steps): no search
            return
        inside = times[slice(*np.searchsorted(times, [t_a, t_b], side="right"))]  # times sorted
        if len(inside):
            for t, Y in zip(inside, dense(inside), strict=True):
                self._save(t, Y)

    def finish(self, t_stop: float, Y: Any) -> None:
        if not self.t or self.t[-1] != float(t_stop):
            self._save(t_stop, Y)


def run_result(
    outcome: Any,
    recorder: Recorder,
    *,
    engine: str,
    wall_time: float,
    dense: Callable[[float], tuple[np.ndarray, np.ndarray]] | None,
    info: dict[str, Any],
) -> RunResult:
    """The :class:`~simulate.result.RunResult` of a finished run (``outcome``: a ``hybrid.FlowOutcome``)."""
    coords = recorder.coords
    W, v = (coords.arith.to_float(a) for a in coords.network(outcome.y))
    counts = outcome.counts
    keep = recorder.schedule.keep_states and recorder.W
    return RunResult(
        status=outcome.status,
        message=outcome.message,
        engine=engine,
        t_stop=float(outcome.t),
        W=W,
        v=v,
        t=np.asarray(recorder.t),
        risk=np.asarray(recorder.risk),
        W_t=np.stack(recorder.W) if keep else None,
        v_t=np.stack(recorder.v) if keep else None,
        rhs_evals=counts.rhs_evals,
        switches=counts.switches,
        sliding_entries=counts.sliding_entries,
        invariant_drift=recorder.drift,
        wall_time=wall_time,
        dense=dense,
        info={
            "coords": coords.name,
            "sliding_exits": counts.sliding_exits,
            "events": counts.events,
            "pieces": counts.pieces,
            "jac_evals": counts.jac_evals,
            **info,
        },
    )
