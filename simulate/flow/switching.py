"""The hand-over of a run to another method: when its explicit integrator ends a piece 'stiff', the rest of
the run goes to the implicit ``stiff_method`` (:mod:`simulate.flow.stiffness`); when it ends a piece 'order',
to the higher-order explicit method its order test measured (:mod:`simulate.flow.order`). Both at the run's
tolerances, and both recorded for the result (docs/flow.md, "Choosing a method")."""

from __future__ import annotations

from fls.simulate.flow.piece_end import PieceEnd
from fls.simulate.flow.smooth import ExplicitPieces, ScipyPieces, piece_integrator
from fls.simulate.flow.stiffness import MethodSwitch


def handover(
    source: ExplicitPieces | ScipyPieces, end: PieceEnd, stiff_method: str | None
) -> tuple[ExplicitPieces | ScipyPieces, MethodSwitch]:
    """The integrator the run goes on with after ``source`` ended the piece ``end`` ('order', or 'stiff' / an
    event found stiff), and the record of the switch at end.t. After an 'order' switch the stiffness test
    goes on watching the new method when ``stiff_method`` is given; an implicit method watches nothing."""
    rtol, atol, coords = source.rtol, source.atol, source.tolerance.coords
    if end.kind == "order":
        order = source.order_monitor
        successor = piece_integrator(order.target, rtol, atol, stiff_method, coords=coords)
        return successor, MethodSwitch(float(end.t), source.method, order.target, order.estimate)
    successor = piece_integrator(stiff_method, rtol, atol, coords=coords)
    return successor, MethodSwitch(float(end.t), source.method, stiff_method, source.monitor.estimate)
