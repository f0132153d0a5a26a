"""Learning curves of the quality family: mean test errors, strength and quality per (n, alpha), and the
network's advantage over the best kernel at init (docs/design.md section 5, "The layers"; the family:
docs/quality.md).
"""

from __future__ import annotations

import pandas as pd

from fls.compare.quality_claims import with_gains
from fls.compare.vocabulary import ALPHA_KEY, N_KEY, WIDTH_KEY

#: Test errors in a learning curve, with their labels.
CURVE_ERRORS = {
    "err_network": "network",
    "err_tangent": "tangent kernel at init",
    "err_tangent_closed": "tangent kernel at init (infinite width)",
    "err_conjugate": "conjugate kernel at init",
    "err_conjugate_closed": "conjugate kernel at init (infinite width)",
    "err_tangent_after": "tangent after-kernel",
    "err_conjugate_after": "conjugate after-kernel",
}


INIT_ERRORS = ("err_tangent", "err_tangent_closed", "err_conjugate", "err_conjugate_closed")


def learning_curves(table: pd.DataFrame, axis: str = ALPHA_KEY) -> pd.DataFrame:
    """Mean test errors, strength and quality over seeds per (n, ``axis``) of the finished runs (``axis``:
    alpha, or the width for the width sweep), with the network's advantage

        ratio = min over init kernels of the mean error / mean network error

    (the best kernel at init against the network); ``runs`` counts the finished runs of each cell."""
    runs = with_gains(table[table["status"] == "target_reached"])
    columns = [c for c in (*CURVE_ERRORS, "weight_change", "kernel_change", "gain_tangent") if c in runs]
    if runs.empty:
        return pd.DataFrame(columns=[N_KEY, axis, *columns, "runs", "fls", "ratio"])
    cells = runs.groupby([N_KEY, axis])
    curves = cells[columns].mean()
    curves["runs"] = cells.size()
    curves["fls"] = cells["fls"].first()
    curves["ratio"] = curves[[c for c in INIT_ERRORS if c in curves]].min(axis=1) / curves["err_network"]
    return curves.reset_index()


def headline_ratio(curves: pd.DataFrame) -> pd.DataFrame:
    """Per n (and width, for the width sweep), the network at the largest FLS against the best kernel at init
    (:func:`learning_curves`)."""
    rich = curves[curves["fls"] == curves["fls"].max()]
    width = [WIDTH_KEY] if WIDTH_KEY in rich else []
    return rich[
        [N_KEY, *width, "fls", "err_network", *[c for c in INIT_ERRORS if c in rich], "ratio", "runs"]
    ]
