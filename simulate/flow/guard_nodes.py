"""Where within a step the guards are sampled, per method (docs/flow.md, "How it works"): the sub-intervals
that resolve the step's dense output, a polynomial of the method's degree."""

from __future__ import annotations

import numpy as np

#: Sub-intervals per step at which the guards are sampled: three more than the degree of the method's dense
#: output (7, 4, 3, 2, 3, <= 5), at least 6, so the samples resolve the step's polynomial with room to spare.
NODES = {"DOP853": 10, "RK45": 7, "RK23": 6, "RK12": 6, "Radau": 6, "BDF": 8}


def guard_fractions(method: str) -> np.ndarray:
    """The fractions of a step at which ``method``'s guards are sampled: NODES[method] equal sub-intervals."""
    return np.linspace(0.0, 1.0, NODES[method] + 1)
