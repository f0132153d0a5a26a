"""How precisely the network outputs fix the sample factors, and with them the rates an event selects on.

Every sample factor s_i = -l'(y_i f_i) y_i (and each merged offset N_i, :mod:`simulate.flow.samples`) is
computed from an output f_i that carries at least one rounding of its own, a relative error eps, so s_i is
known only to about |ds_i / df_i| eps |f_i|. Near a fit of the squared loss that is eps |y_i| ~ 2e-16 for
every sample, an absolute error that no relative rule sees: at an equilibrium the factors themselves are a few
roundoffs (s_i ~ 7e-16, a field of 1e-13), the rates of the pairs on their surfaces are sums of them, and a
Filippov weight, a rate over a jump, is not determined at all. Two computations of one weight (the selection's
box-constrained problem and the piece's sliding map) then disagree by more than the weight's range: the
selection kept a pair sliding at mu = 0.031 whose piece started at mu = -0.2, and its lower bound was an event
at once, 201 times (docs/flow.md, "Robustness", "Jumps below the sample factors' precision").

:func:`float_factors` measures that precision by recomputing the factors from outputs one rounding
larger; it enters the rates' one resolution (:mod:`simulate.flow.tangent_rates`, equation (1)) beside their
arithmetic's roundoff, which :func:`~simulate.flow.modes.select_neuron_mode` reads for a rate's sign, for
whether a pair's jump can slide, and for its weight's resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow.coords import Coordinates


def float_factors(
    coords: Coordinates, outputs: Any, s: Any, offset: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(S, N, errors) in float64 from the factors ``s`` and offsets ``offset`` (None without opposite samples)
    that ``outputs`` give in the run's arithmetic; errors (n,) = |change of S_i| + |change of N_i| when every
    output f moves by one rounding, eps |f|: their absolute precision. A lower bound: an output that is a sum
    of cancelling terms carries more."""
    arith = coords.arith
    s, offset = arith.to_float(s), None if offset is None else arith.to_float(offset)
    moved_s, moved_offset = coords.sample_factors(outputs + arith.eps * abs(outputs))
    errors = np.abs(arith.to_float(moved_s) - s)
    if offset is not None:
        errors += np.abs(arith.to_float(moved_offset) - offset)
    return s, offset, errors
