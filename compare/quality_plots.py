"""Figures of the quality family: strength measures against the quality, learning curves (docs/design.md
section 5, "The layers"; the family: docs/quality.md). Each writes a PNG and a PDF and returns both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from fls.compare.figure_style import SHORT, legend_below, log_axis, panel_titles, plt, save
from fls.compare.quality_claims import Correlation
from fls.compare.quality_curves import CURVE_ERRORS
from fls.compare.vocabulary import N_KEY


def strength_quality_figure(
    runs: pd.DataFrame, found: Sequence[Correlation], quality: str, out_path: str | Path
) -> list[Path]:
    """Every strength measure against the quality, one lettered panel each (titled by the measure and its
    rank correlation), colour = data size, marker size = log FLS; one legend below the panels."""
    figure, axes = plt.subplots(1, len(found), figsize=(4.0 * len(found), 3.6), sharey=True)
    sizes = sorted(runs[N_KEY].unique())
    for ax, correlation in zip(np.atleast_1d(axes), found, strict=True):
        for i, n in enumerate(sizes):
            cell = runs[runs[N_KEY] == n]
            ax.scatter(
                cell[correlation.measure],
                cell[quality],
                s=12 + 10 * np.log10(cell["fls"] / runs["fls"].min()),
                color=f"C{i}",
                alpha=0.8,
                label=f"n = {n}",
            )
        if correlation.measure in ("weight_change", "kernel_change"):
            ax.set_xscale("log")
        ax.set_xlabel(correlation.measure.replace("_", " "))
        ax.set_ylabel(f"{quality.replace('_', ' ')} (error at init / after)")
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    titles = []
    for correlation in found:
        lo, hi = correlation.interval
        titles.append(
            f"{correlation.measure.replace('_', ' ')}: ρ = {correlation.rho:+.2f} [{lo:+.2f}, {hi:+.2f}]\n"
            f"{correlation.state}"
        )
    panel_titles(np.atleast_1d(axes), titles)
    legend_below(figure, np.atleast_1d(axes), columns=4, title="colour: n; marker size ~ log FLS")
    return save(figure, out_path)


def learning_curve_figure(curves: Mapping[str, pd.DataFrame], out_path: str | Path) -> list[Path]:
    """Test error against n, one lettered panel per task: the network at the largest and the smallest FLS,
    the kernels at init, and the after-kernels at the largest FLS; one legend below the panels."""
    figure, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.8))
    for ax, (name, table) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        rich, lazy = table["fls"].max(), table["fls"].min()
        for colour, (column, label) in enumerate(CURVE_ERRORS.items()):
            if column not in table:
                continue
            at = table[table["fls"] == rich]
            style = "-" if column in ("err_network", "err_tangent_after", "err_conjugate_after") else "--"
            suffix = f" (FLS {rich:.3g})" if style == "-" else ""
            ax.plot(at[N_KEY], at[column], style, marker="o", ms=3, color=f"C{colour}", label=label + suffix)
        at = table[table["fls"] == lazy]
        ax.plot(
            at[N_KEY],
            at["err_network"],
            ":",
            marker="s",
            ms=3,
            color="C0",
            label=f"network (FLS {lazy:.3g})",
        )
        ax.set(xscale="log", xlabel="n", ylabel="test error")
        ax.set_xticks(sorted(table[N_KEY].unique()))
        ax.xaxis.set_major_formatter(SHORT)
        ax.xaxis.set_minor_formatter(NullFormatter())
        log_axis(ax, "y")
    panel_titles(np.atleast_1d(axes), list(curves))
    legend_below(figure, np.atleast_1d(axes), columns=3)
    return save(figure, out_path)
