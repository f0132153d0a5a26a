"""The jump factors at a piece's start, which scale its sliding weights' guards, from its first field evaluation.

A piece with sliding pairs scales the guards of each weight by its jump squared at the piece's start,
S_i(t_0)^2 (``PieceGuards.weight_guards``), so they need the sample factors S there. Those are the factors
the piece's first field evaluation forms anyway: both integrators evaluate the field at the start before
they take a step (``Coordinates.rhs_and_factors`` returns them with the field). Taking them from there
saves one output evaluation and one sample-factor evaluation per event where nothing else needs the
outputs at the start: plain and data-span coordinates below the output screen's size
(``output_screen.PRODUCT_SCREEN_MIN_PAIRS``, which is also where outputs stop being carried over from the
event): about 40 us of the 1.1 ms of an event on low_signal at m = 100 (docs/flow.md "Cost").

Same numbers: the field's evaluation at the start forms the outputs from the same pre-activations by the
same products as ``Coordinates.output`` on that one state (a vector times the gated pre-activations), so its
factors are those of the output evaluation bit for bit (tested in plain, log and data-span coordinates, with
merged and opposite samples). Where the first evaluation is not at the start state itself (scipy's solver
objects evaluate a copy of it) or the guards need the units before it (a grazing depth), the factors come
from one output evaluation as before.
"""

from __future__ import annotations

from typing import Any

from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.modes import SlidingWeights
from fls.simulate.flow.output_screen import screens


class StartJumps:
    """The jump factors S (n_samples,) at one piece's start state ``start`` under its mode ``weights``."""

    def __init__(self, coords: Coordinates, weights: SlidingWeights, start: Any) -> None:
        self.coords, self.weights, self.start = coords, weights, start
        self._factors: Any = None

    def record(self, Y: Any, factors: Any) -> None:
        """The piece's field was evaluated at Y with jump factors ``factors``: kept when Y is the start."""
        if Y is self.start and self._factors is None:
            self._factors = factors

    def __call__(self) -> Any:
        """S at the start: the first evaluation's, else from one output evaluation there."""
        if self._factors is None:
            outputs = self.coords.output(self.start[None], self.weights)
            self._factors = self.coords.sample_factors(outputs)[0][0]
        return self._factors


def start_jumps(coords: Coordinates, weights: SlidingWeights, start: Any, start_outputs: Any) -> StartJumps | None:
    """The start's jump factors from the piece's first evaluation, or None where the guards form the outputs
    at the start anyway: carried over from the event (``start_outputs``), or read by the sliding weights'
    output screen (:func:`~simulate.flow.output_screen.screens`: log coordinates, and plain and data-span
    ones from its size on)."""
    if start_outputs is not None or screens(coords):
        return None
    return StartJumps(coords, weights, start)
