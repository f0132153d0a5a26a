"""Draw any claim's result: the figure of each built-in claim from the data its result carries, and a plain
curve for a user's claim whose result holds ``data = {"x": [...], "y": [...]}`` (docs/design.md section 5,
"The layers"; docs/claims.md). Claims decide and never draw; the render stage calls :func:`draw_claim` for
every result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.compare import deep_plots, plots, quality_plots
from fls.compare.quality_claims import Correlation, finished_runs
from fls.compare.selection import network_runs, restrict
from fls.compare.verdict import ClaimResult
from fls.compare.vocabulary import INIT_KEY

#: Draws one claim's figure at the given path from the run table and the result's data.
Drawer = Callable[[pd.DataFrame, Mapping[str, Any], Path], list[Path]]


def _error_vs_fls(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    band = tuple(data["argmin_band"])
    return plots.error_vs_fls(network_runs(table), path, chosen=data["chosen"], argmin_band=band)


def _alignment(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    runs = network_runs(table)
    cell = restrict(runs[runs[INIT_KEY] == data["init"]], data["chosen"])
    titles = ("alignment with the class sum", "alignment with the Bayes direction", "over-alignment")
    return plots.metric_panels(
        cell, path, ("Psi", "cos_bayes", "oa"), titles=titles, references=data["references"]
    )


def _overfitting(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    titles = ("over-fitting", "contamination by the initial function")
    columns = ("of", "f0_contamination")  # the test error itself is claim (a)'s figure
    return plots.metric_panels(network_runs(table), path, columns, titles=titles, chosen=data["chosen"])


def _limits(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    return plots.limits_figure(network_runs(table), path, chosen=data["chosen"])


def _scaling(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    drawn = {data.get("init", "measured"): data, **data.get("others", {})}
    series = {
        init: {**found, "samples": [np.asarray(s, dtype=float) for s in found["samples"]]}
        for init, found in drawn.items()
    }
    title = f"optimal α against {data['symbol']}" + (" by init" if len(series) > 1 else "")
    return plots.scaling_figure(series, data["literature"], data["symbol"], path, title=title)


def _strength_quality(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    found = [
        Correlation(
            c["measure"],
            c["rho"],
            tuple(c["interval"]),
            {int(n): (rho, tuple(bounds)) for n, (rho, bounds) in c["by_size"].items()},
            c["state"],
        )
        for c in data["correlations"]
    ]
    runs = finished_runs(table, data["quality"])
    return quality_plots.strength_quality_figure(runs, found, data["quality"], path)


#: The built-in claims' figures: claim key -> (file name, drawer).
FIGURES: dict[str, tuple[str, Drawer]] = {
    "a": ("claim_a_error_vs_fls.png", _error_vs_fls),
    "b": ("claim_b_alignment.png", _alignment),
    "c": ("claim_c_overfitting.png", _overfitting),
    "d": ("claim_d_limits.png", _limits),
    "e_n": ("claim_e_n_scaling.png", _scaling),
    "e_m": ("claim_e_m_scaling.png", _scaling),
    "q": ("quality_strength.png", _strength_quality),
    "deep_a": (
        "deep_a_optimum.png",
        lambda table, data, path: deep_plots.optimum_figure(data["cells"], path),
    ),
    "deep_b": (
        "deep_b_equivalence.png",
        lambda table, data, path: deep_plots.equivalence_figure(data["twins"], data["tolerance"], path),
    ),
    "deep_c": (
        "deep_c_centering.png",
        lambda table, data, path: deep_plots.centering_figure(data["cells"], path),
    ),
}


def draw_claim(table: pd.DataFrame, result: ClaimResult, figure_dir: Path) -> ClaimResult:
    """``result`` with its figure drawn into ``figure_dir`` (PNG and PDF) and its path set; unchanged when the
    result carries no data to draw (an early inconclusive verdict) or its claim has no figure."""
    if result.key in FIGURES and result.data:
        name, drawer = FIGURES[result.key]
    elif {"x", "y"} <= set(result.data):
        name, drawer = f"claim_{result.key}.png", _curve
    else:
        return result
    path = drawer(table, result.data, figure_dir / name)[0]
    return replace(result, figure=path)


def _curve(table: pd.DataFrame, data: Mapping[str, Any], path: Path) -> list[Path]:
    labels = {k: data[k] for k in ("xlabel", "ylabel", "title") if k in data}
    return plots.curve_figure(data["x"], data["y"], path, **labels)
