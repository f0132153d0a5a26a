"""The field of one piece of the hybrid flow (:mod:`simulate.flow.hybrid`): the mode's field y -> y' with every
evaluation counted, its first evaluation at the piece's start from the outputs an event carried there, and a
test of its finiteness from the outputs alone (docs/flow.md, "Cost", "Robustness"); and the run's counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.modes import SlidingWeights
from fls.simulate.flow.start_jumps import StartJumps


@dataclass
class EventCounts:
    """Event diagnostics of one run."""

    switches: int = 0
    sliding_entries: int = 0
    sliding_exits: int = 0
    events: int = 0
    pieces: int = 0
    rhs_evals: int = 0
    jac_evals: int = 0


class PieceField:
    """The field of one piece's mode, y -> y' (each evaluation counted), and a cheaper test of its finiteness;
    ``start``: (its start state, the outputs carried there or None) for the restart's :meth:`Coordinates.rhs`."""

    writes_into = True  # takes ``out=`` (:func:`~simulate.flow.stage_sums.stage_value`)

    def __init__(
        self,
        coords: Coordinates,
        weights: SlidingWeights,
        counts: EventCounts,
        start: tuple = (None, None),
        jumps: StartJumps | None = None,
    ) -> None:
        self.coords, self.weights, self.counts, self.jumps = coords, weights, counts, jumps
        self.start, self.start_outputs = start

    def __call__(self, Y: Any, out: Any = None) -> Any:
        """The field at Y, written into ``out`` when given (:meth:`Coordinates.rhs`)."""
        self.counts.rhs_evals += 1
        outputs = self.start_outputs if Y is self.start else None
        self.start_outputs = None  # used once: only the restart's evaluation is at that very state
        dY, S, _ = self.coords.rhs_and_factors(Y, self.weights, None if outputs is None else outputs[0], out)
        if self.jumps is not None:
            self.jumps.record(Y, S)
        return dY

    def outputs(self, Y: Any) -> Any:
        """Every sample's network output (..., n) at states Y (..., size) under the piece's mode."""
        return self.coords.output(Y, self.weights)

    def finite_at(self, Y: Any) -> bool:
        """Whether the field is finite at a finite state Y (size,), or at each of states Y (K, size), from
        the outputs alone (:meth:`finite_outputs`): about a third of an evaluation per state, not counted as
        one."""
        return self.finite_outputs(self.outputs(Y))

    def finite_outputs(self, f: Any) -> bool:
        """Whether the field is finite where the network outputs are f (..., n), from the sample factors
        s = -l'(y_i f_i) y_i: the field is (c/n) times products of the state with s, so it overflows where s
        does (an exponential loss far out; the same test of |.|^2 as the integrators' on the field)."""
        s, offset = self.coords.sample_factors(f)
        s = self.coords.arith.to_float(s)
        if offset is None:  # a Python float's test: a fraction of np.isfinite's cost on a scalar
            return math.isfinite(np.vdot(s, s))
        offset = self.coords.arith.to_float(offset)
        return math.isfinite(np.vdot(s, s)) and math.isfinite(np.vdot(offset, offset))
