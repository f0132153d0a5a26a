"""What a flow run keeps: save schedule, saved trajectory, invariant drift, restart checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fls.simulate.flow.coords import Coordinates
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


@dataclass
class Recorder:
    """Collects the saved trajectory, the invariant drift and checkpoints (t, state, piece) for dense output.

    Called by the piece integrators after every accepted step (see ``smooth.Observer``).
    """

    schedule: SaveSchedule
    coords: Coordinates
    loss: str
    checkpoint_every: int = 16
    t: list[float] = field(default_factory=list)
    risk: list[float] = field(default_factory=list)
    W: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)
    drift: float = 0.0
    checkpoints: list[tuple[float, Any, int]] = field(default_factory=list)
    piece: int = 0
    _invariant0: Any = None
    _steps: int = 0

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

    def begin_piece(self, index: int, t: float, Y: Any) -> None:
        """A new piece starts at (t, Y) (after an event's projection): a checkpoint of its own."""
        self.piece = index
        self._steps = 0
        self.checkpoints.append((t, Y, index))

    def __call__(self, t_a: Any, t_b: Any, y_b: Any, dense: Callable[[Any], Any]) -> None:
        self._track_drift(y_b)
        self._steps += 1
        if self._steps % self.checkpoint_every == 0:
            self.checkpoints.append((t_b, y_b, self.piece))
        times = self.schedule.times
        if times is None:
            self._save(t_b, y_b)
            return
        inside = times[slice(*np.searchsorted(times, [float(t_a), float(t_b)], side="right"))]  # times sorted
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
