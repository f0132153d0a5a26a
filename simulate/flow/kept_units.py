"""The unit directions of the last state whose outputs were formed, kept for the restart's field at an event.

In log coordinates the outputs at an event (``smooth.accepted_step``: the field's finiteness there, the
selection's sample factors) form the unit directions u_j / ||u_j|| and their norms at the event's state; the
next piece's first field evaluation, from the outputs carried to the projected state
(:mod:`~simulate.flow.carried_outputs`, ``LogCoordinates.velocity_parts``), needs them again there, and the
projection moved only the touched neurons' rows. So the directions are kept by value (a copy of the (m, d)
block, with the units and norms formed from it) and the next use forms afresh only the rows whose numbers
differ: about 0.15 field evaluations per event on the stall data at m = 20000 (docs/flow.md, "Cost"). A row
is normalized by the same operations whether alone or among all (an einsum over its own d numbers, one
division each), so the result is bit for bit that of a full normalization (tests/simulate/test_flow_step_passes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Above this fraction of rows changed the whole block is normalized again (one pass, no fancy indexing).
REFORM_FRACTION = 0.125

Units = tuple[np.ndarray, np.ndarray]  # (u_j / ||u_j|| (m, d), ||u_j|| (m,))


class KeptUnits:
    """The unit directions and norms of one state's (m, d) direction block, used at most once."""

    def __init__(self) -> None:
        self._kept: tuple[np.ndarray, Units] | None = None

    def keep(self, U: np.ndarray, units: Units) -> None:
        """Directions U (m, d) and their ``units``, formed from them (handed over: not used by the caller again)."""
        self._kept = (U.copy(), units)

    def units(self, U: np.ndarray, normalize: Callable[[Any], Units]) -> Units:
        """The units of the directions U (m, d): the kept ones, with the rows that differ from the kept
        directions formed afresh by ``normalize`` (rows (k, d) -> their units), or ``normalize(U)`` where none
        are kept, the shapes differ or more than :data:`REFORM_FRACTION` of the rows changed."""
        kept, self._kept = self._kept, None
        if kept is None or kept[0].shape != U.shape or U.dtype != np.float64:
            return normalize(U)
        directions, (unit, norms) = kept
        rows = np.unique((U != directions).ravel().nonzero()[0] // U.shape[1])
        if len(rows) > REFORM_FRACTION * len(U):
            return normalize(U)
        if len(rows):
            unit[rows], norms[rows] = normalize(U[rows])
        return unit, norms
