"""Which regime each run is in, measured from its metrics and predicted from the theory's boundaries.

Measured label (:func:`measured_regime`), from the over-alignment / over-fitting split of DESIGN.md section 2: let
excess = test error - Bayes error of the network and OA the over-alignment cost of its Psi. The share of the excess
that over-alignment explains decides:

    OA >= (2/3) excess  -> "over-alignment"      (being pinned to the class-sum cone is most of the loss)
    OA <= (1/3) excess  -> "over-fitting"        (most of the loss is inside the cone: f0, noise fitting)
    otherwise, or excess <= 0 -> "balanced"

Data without the split (no Bayes direction) fall back on alignment and kernel movement: Psi >= 0.9 with the tangent
kernel moved by more than its own size (kernel_movement > 1) is "over-alignment", a kernel that moved by less than
10 % (kernel_movement < 0.1, lazy) is "over-fitting", anything else "balanced".

Predicted label (:func:`predicted_regime`), from :func:`compare.predictions.boundaries`: FLS at or above the
alignment boundary -> "over-alignment"; FLS at or below the f0 boundary with an init whose f0 is not zero ->
"over-fitting"; otherwise "balanced".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

#: The three regimes, from strong to weak feature learning.
REGIMES = ("over-alignment", "balanced", "over-fitting")

#: Share of the excess error explained by over-alignment above which a run is over-aligned, and below which it is
#: over-fitted.
OA_SHARE_HIGH, OA_SHARE_LOW = 2.0 / 3.0, 1.0 / 3.0

#: Fallback thresholds (no Bayes direction): alignment and relative tangent-kernel movement.
ALIGNED_PSI, RICH_MOVEMENT, LAZY_MOVEMENT = 0.9, 1.0, 0.1

#: Inits whose initial function is identically zero (no f0 over-fitting).
ZERO_F0_INITS = ("antisymmetric",)


def measured_regime(row: Mapping[str, float]) -> str | None:
    """The regime of one run from its metrics (module docstring); None when the run has no usable metrics."""
    test, bayes, oa = (row.get(key, math.nan) for key in ("test_error", "bayes_error", "oa"))
    if all(np.isfinite(value) for value in (test, bayes, oa)):
        excess = test - bayes
        if excess <= 0:
            return "balanced"
        share = oa / excess
        return "over-alignment" if share >= OA_SHARE_HIGH else "over-fitting" if share <= OA_SHARE_LOW else "balanced"
    psi, movement = row.get("Psi", math.nan), row.get("kernel_movement", math.nan)
    if not (np.isfinite(psi) and np.isfinite(movement)):
        return None
    if psi >= ALIGNED_PSI and movement > RICH_MOVEMENT:
        return "over-alignment"
    return "over-fitting" if movement < LAZY_MOVEMENT else "balanced"


def predicted_regime(fls: float, init: str, bounds: Mapping[str, float]) -> str:
    """The regime the boundaries predict at ``fls`` for ``init`` (module docstring)."""
    if fls >= bounds["alignment"]:
        return "over-alignment"
    if init not in ZERO_F0_INITS and fls <= bounds["f0"]:
        return "over-fitting"
    return "balanced"


def label_regimes(table: pd.DataFrame, bounds: Mapping[tuple, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """The table with a ``regime`` column (measured) and, when ``bounds`` maps (data.n, model.width) to the
    boundaries of :func:`compare.predictions.boundaries`, a ``predicted_regime`` column."""
    out = table.copy()
    out["regime"] = [measured_regime(row) for row in out.to_dict("records")]
    if bounds is not None:
        out["predicted_regime"] = [
            predicted_regime(row["fls"], row["model.init"], bounds[(row["data.n"], row["model.width"])])
            if (row["data.n"], row["model.width"]) in bounds else None
            for row in out.to_dict("records")
        ]
    return out
