"""The network outputs carried from an event to the next piece's start, and the event's touched neurons.

An event moves only the neurons it touches (their projection onto their surfaces) and changes the mode only in
their rows, so every sample's output at the next piece's start is the event's outputs plus those neurons'
change, O(touched n row), instead of one output evaluation of the whole network (about a third of a field
evaluation at m = 20000, docs/flow.md "Cost"). Under the mode's gates A,

    f_i = c sum_j A_ji amp_j D_ji,

so with the touched neurons T (their rows of A and of the state changed, the others not)

    f_i(start, new mode) = f_i(event, old mode) - sum_{j in T} [old part at the event]
                                                + sum_{j in T} [new part at the start],

each part from :meth:`~simulate.flow.coords.Coordinates.neuron_outputs`. The event's own outputs come from
the step's guards or one output evaluation at the event (``smooth.accepted_step``), never from an earlier
update, so the rounding of these sums does not accumulate from piece to piece: the carried outputs differ from
a fresh evaluation by a few roundoffs of the summed terms, sum_j |c amp_j D_ji| eps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.modes import SlidingWeights

#: The fewest pairs (m n) at which the outputs are carried: on smaller networks one output evaluation costs
#: less than the update's few numpy calls, and carrying them changed low_signal's runs at m = 100 (data-span
#: coordinates) by a roundoff (5e-16 and 1.8e-15 relative) for 5 % more CPU.
CARRY_MIN_PAIRS = 20_000


def touched_neurons(touching: np.ndarray, hints: dict[int, Any]) -> list[int]:
    """The neurons (sorted) with a pair on its surface in ``touching`` (m, n) or a sliding weight at a bound
    (``hints``' keys): from the flat indices of the touched pairs, O(m n) in one pass over a boolean array
    (``touching.any(axis=1)`` reduces each short row on its own, about 0.4 ms at m = 20000, n = 20)."""
    rows = touching.ravel().nonzero()[0] // touching.shape[1]
    return sorted(set(rows.tolist()) | set(hints))


class CarriedOutputs:
    """What an event leaves for the next piece's start: the state after its projection, the outputs there
    under the event's (old) mode, the touched neurons' part of them, and those neurons."""

    def __init__(self) -> None:
        self._kept: tuple[Any, Any, Any, list[int]] | None = None

    def keep(self, Y: Any, outputs: Any, old_part: Any, neurons: list[int]) -> None:
        """After an event: ``outputs`` (n_samples,) at the projected state Y under the old mode, of which the
        neurons ``neurons`` contribute ``old_part``."""
        self._kept = (Y, outputs, old_part, neurons)

    def forget(self) -> None:
        """The next piece does not start at the event's state (a switch of method, the run's start)."""
        self._kept = None

    def at_start(self, coords: Coordinates, Y: Any, weights: SlidingWeights) -> Any:
        """Every sample's output (1, n_samples) at the piece's start Y under the new mode ``weights``, from
        what the event left (None when it left nothing for this very state, or on a network of fewer than
        :data:`CARRY_MIN_PAIRS` pairs), used once."""
        kept, self._kept = self._kept, None
        if kept is None or kept[0] is not Y or coords.m * coords.n < CARRY_MIN_PAIRS:
            return None
        _, outputs, old_part, neurons = kept
        if not neurons:
            return outputs[None]
        return (outputs + (coords.neuron_outputs(Y, weights, neurons) - old_part))[None]
