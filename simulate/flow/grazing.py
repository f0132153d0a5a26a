"""Contacts below the integration's resolution, kept from event to event until their pair changes side.

A step is exact to about its tolerance per component (:mod:`simulate.flow.tolerance`), and so is its dense
output (docs/flow.md, "Robustness"). A guard that starts a piece at or near its bound, with its motion
pointing away, can dip below the bound within the first step by that error alone: a pair that an event left on
its side with a tiny rate, or a sliding weight that an event found at a bound and kept inside [0, 1] (a weight
is a rate over its jump,
so for a small jump, a nearly fitted sample, the state's error moves it by far more than its distance to the
bound). Such a contact *grazes*: its guard counts as crossed only below its change under a state error of the
tolerances (the depth, :meth:`~simulate.flow.hybrid.HybridFlow.resolution`), and a dip that comes back within
the step is not an event (:meth:`~simulate.flow.events.PieceGuards.graze`).

A contact is found grazing when its guard comes back to its bound within the first step of the piece after the
event that kept it; it then grazes in every later piece, with the depth measured when it was found, until its
pair changes side (or stops sliding, for a weight). Forgetting it at the next event, which may belong to
another neuron, made two such contacts take turns: each event let one of them graze and the other dip next,
and the run advanced by a fraction of a step per event (two aligned neurons on one surface, two sliding
weights of different neurons: 10 000 to 20 000 events a time unit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fls.simulate.flow.events import MU_HIGH, MU_LOW, PAIR, PieceGuards
from fls.simulate.flow.modes import INACTIVE, SLIDING, Mode
from fls.simulate.flow.piece_end import PieceEnd

#: A grazing contact: a pair column j n + i (a pair kept on its side), or (j, i, MU_LOW or MU_HIGH) (the bound of
#: a sliding weight).
Contact = int | tuple[int, int, int]


class GrazingContacts:
    """The contacts of a run found below the resolution, each with its depth and the side it grazes on."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.depths: dict[Contact, float] = {}
        self.sides: dict[Contact, int] = {}  # the pair's side when found (SLIDING for a weight's bound)
        self.pending: set[Contact] = set()  # found at the last event, depth not yet measured

    def add(self, contacts: Iterable[Contact], side: np.ndarray) -> None:
        """Contacts found grazing at an event, by the sides (m, n) after it: a pair's if it kept a side, a
        weight's bound if its pair slides."""
        for contact in contacts:
            j, i = self._pair(contact)
            if (int(side[j, i]) == SLIDING) == isinstance(contact, tuple):
                self.sides[contact] = int(side[j, i])
                self.pending.add(contact)

    def depths_in(
        self, guards: PieceGuards, measure: Callable[[set[int]], dict[int, float]]
    ) -> dict[int, float]:
        """column -> depth for the piece's ``guards``; the contacts found at the last event are measured here,
        ``measure`` (columns -> depths) at the piece's start."""
        columns = {contact: _column(guards, contact) for contact in self.sides}
        columns = {contact: col for contact, col in columns.items() if col is not None}
        new = {contact: columns[contact] for contact in self.pending if contact in columns}
        if new:
            measured = measure(set(new.values()))
            self.depths.update({contact: measured[col] for contact, col in new.items()})
        self.pending.clear()
        return {columns[contact]: depth for contact, depth in self.depths.items() if contact in columns}

    def forget_changed(self, mode: Mode, neurons: Iterable[int]) -> None:
        """Drop the contacts of ``neurons`` whose pair is no longer on the side it grazed on."""
        touched = set(neurons)
        for contact in [c for c in self.sides if self._pair(c)[0] in touched]:
            j, i = self._pair(contact)
            if int(mode.side[j, i]) != self.sides[contact]:
                del self.sides[contact]
                self.depths.pop(contact, None)
                self.pending.discard(contact)

    def _pair(self, contact: Contact) -> tuple[int, int]:
        if isinstance(contact, tuple):
            return contact[0], contact[1]
        j, i = divmod(contact, self.n)
        return j, i


def _column(guards: PieceGuards, contact: Contact) -> int | None:
    """The piece's guard column of a contact, or None when its pair does not slide in this piece (a weight)."""
    if not isinstance(contact, tuple):
        return contact
    j, i, kind = contact
    k = np.flatnonzero((guards.weights.pair_rows == j) & (guards.weights.pair_cols == i))
    if not len(k):
        return None
    return guards.n_pairs + int(k[0]) + (guards.n_sliding if kind == MU_HIGH else 0)


class NearBounds:
    """The guards that events left at their bounds, moving away or at rate 0, each with its time and side.

    ``kept``: pair columns touched and left on their side; ``exits``: pair columns that left sliding through a
    bound of their weight (their rate on the new side is 0 there: the bound is where it vanishes);
    ``sliding``: pair columns whose weight was at a bound and that slide on (the selection (2) put it inside
    [0, 1]). Each maps to (the event's time, the pair's side after it). An entry lasts until an event touches its
    pair again, and counts only while the pair is on that side: two such guards that dip in turn are both
    recognised, though the other's event comes between.
    """

    def __init__(self) -> None:
        self.kept: dict[int, tuple[Any, int]] = {}
        self.exits: dict[int, tuple[Any, int]] = {}
        self.sliding: dict[int, tuple[Any, int]] = {}
        # the bound (MU_LOW, MU_HIGH) each of ``exits`` left through: its side is the other one's on a surface
        # that has turned repelling (:func:`~simulate.flow.modes.bound_side`)
        self.exit_bounds: dict[int, int] = {}

    def update(
        self,
        pairs: np.ndarray,
        before: np.ndarray,
        hints: dict[int, dict[int, int]],
        side: np.ndarray,
        t: Any,
    ) -> None:
        """An event at time t: the touched pair columns ``pairs``, their sides ``before`` it, the pairs whose
        weight it found at a bound (``hints``) and the sides (m, n) after it."""
        n = side.shape[1]
        flat = side.ravel()
        bounds = [j * n + i for j, sides in hints.items() for i in sides]
        for table in (self.kept, self.exits, self.sliding):
            for col in pairs.tolist() + bounds:
                table.pop(col, None)
        for col in pairs[(flat[pairs] == before) & (before != SLIDING)].tolist():
            self.kept[col] = (t, int(flat[col]))
        for j, sides in hints.items():
            for i, hint in sides.items():
                col = j * n + i
                (self.sliding if flat[col] == SLIDING else self.exits)[col] = (t, int(flat[col]))
                self.exit_bounds[col] = MU_LOW if hint == INACTIVE else MU_HIGH

    def recent(self, table: dict[int, tuple[Any, int]], col: int, end: PieceEnd, side: np.ndarray) -> bool:
        """Whether ``col`` of ``table`` was left at its bound within one step (``end.step``) before the end's
        time, and its pair is still on the side it was left on."""
        if col not in table or end.step is None:
            return False
        when, left = table[col]
        return bool(end.t - when <= end.step and int(side.ravel()[col]) == left)


def below_resolution(
    guards: PieceGuards, end: PieceEnd, near: NearBounds, touching: np.ndarray
) -> list[Contact]:
    """The contacts an event shows grazing: none when it is a genuine crossing.

    It is the dense output's error, not a crossing, when a guard that an event left at its bound (``near``) comes
    back to it within one step of that event:
    - a kept pair: every such kept pair that touches its surface again (``touching`` (m, n)) grazes, not only the
      one that dipped first (the error is that of all of them);
    - a pair that left sliding through a weight bound and is back on its surface: that bound of its weight
      grazes (when the pair slides again, it slides on while its weight is within its resolution of the bound:
      the sliding mode that its exits and returns accumulate to);
    - a weight kept sliding and back at its bound: that bound grazes.
    """
    column, kind, side = int(end.column), guards.kind(end.column), guards.weights.mode.side
    if kind == PAIR and near.recent(near.kept, column, end, side):
        touched = touching.ravel().nonzero()[0].tolist()
        return sorted(col for col in touched if near.recent(near.kept, col, end, side))
    if kind == PAIR and near.recent(near.exits, column, end, side):
        j, i = guards.pair(column)
        return [(j, i, near.exit_bounds[column])]
    if kind in (MU_LOW, MU_HIGH):
        j, i = guards.sliding_pair(column)
        if near.recent(near.sliding, j * guards.n + i, end, side):
            return [(j, i, kind)]
    return []
