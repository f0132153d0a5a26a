"""Which regime each run is in, measured from its metrics and predicted from the theory's boundaries; the
regime thresholds every layer uses (docs/design.md section 5, "The layers").

Measured label (:func:`measured_regime`), from the two mechanisms of docs/design.md section 2:

    f0_contamination >= 0.5  -> "over-fitting"     (the initial function, which training does not remove off the
                                                     training set, is at least half the size of what was learned)
    psi_at_escape >= 0.9     -> "over-alignment"   (w_hat+ was pinned to the class-sum direction before the
                                                     network left the small-norm phase)
    otherwise                -> "balanced"

The over-alignment / over-fitting split (metrics ``oa``, ``of``) is not used here: it splits the error of the
linear surrogate w_hat+, which at small FLS is about 60 % OA on the low_signal mixture at every alpha up to
the optimum, while the network's own error falls by a third over the same range; the claims report it.

Predicted label (:func:`predicted_regime`), from :func:`compare.limits.boundaries`: FLS at or above the
alignment boundary -> "over-alignment"; FLS at or below the f0 boundary with an init whose f0 is not zero ->
"over-fitting"; otherwise "balanced".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from fls.compare.vocabulary import INIT_KEY, N_KEY, WIDTH_KEY

#: The three regimes, from strong to weak feature learning.
REGIMES = ("over-alignment", "balanced", "over-fitting")

#: Thresholds of the measured label (module docstring).
F0_CONTAMINATION, ALIGNED_PSI = 0.5, 0.9

#: Inits whose initial function is identically zero (no f0 over-fitting).
ZERO_F0_INITS = ("antisymmetric",)


def measured_regime(row: Mapping[str, float]) -> str | None:
    """The regime of one run from its metrics (module docstring); None when the run has no usable metrics."""
    f0, psi = row.get("f0_contamination", math.nan), row.get("psi_at_escape", math.nan)
    if np.isfinite(f0) and f0 >= F0_CONTAMINATION:
        return "over-fitting"
    if not np.isfinite(f0):
        return None
    return "over-alignment" if np.isfinite(psi) and psi >= ALIGNED_PSI else "balanced"


def predicted_regime(fls: float, init: str, bounds: Mapping[str, float]) -> str:
    """The regime the boundaries predict at ``fls`` for ``init`` (module docstring)."""
    if fls >= bounds["alignment"]:
        return "over-alignment"
    if init not in ZERO_F0_INITS and fls <= bounds["f0"]:
        return "over-fitting"
    return "balanced"


def label_regimes(
    table: pd.DataFrame, bounds: Mapping[tuple, Mapping[str, float]] | None = None
) -> pd.DataFrame:
    """The table with a ``regime`` column (measured) and, when ``bounds`` maps (data.n, model.width) to the
    boundaries of :func:`compare.limits.boundaries`, a ``predicted_regime`` column."""
    out = table.copy()
    out["regime"] = [measured_regime(row) for row in out.to_dict("records")]
    if bounds is not None:
        out["predicted_regime"] = [
            predicted_regime(row["fls"], row[INIT_KEY], bounds[(row[N_KEY], row[WIDTH_KEY])])
            if (row[N_KEY], row[WIDTH_KEY]) in bounds
            else None
            for row in out.to_dict("records")
        ]
    return out
