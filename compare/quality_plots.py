"""Figures of the quality family: strength measures against the quality, learning curves (docs/design.md
section 5, "The layers"; the family: docs/quality.md). Each writes a PNG and a PDF and returns both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fls.compare.plots import plt, save
from fls.compare.quality_claims import Correlation
from fls.compare.quality_curves import CURVE_ERRORS
from fls.compare.vocabulary import N_KEY


def strength_quality_figure(
    runs: pd.DataFrame, found: Sequence[Correlation], quality: str, out_path: str | Path
) -> list[Path]:
    """Every strength measure against the quality, one panel each, colour = data size, size = FLS."""
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
        lo, hi = correlation.interval
        ax.set_title(f"rho = {correlation.rho:+.2f} [{lo:+.2f}, {hi:+.2f}]\n{correlation.state}", fontsize=9)
        ax.set_xlabel(correlation.measure.replace("_", " "))
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    np.atleast_1d(axes)[0].set_ylabel(f"{quality.replace('_', ' ')} (error at init / after)")
    np.atleast_1d(axes)[0].legend(fontsize=8, title="marker size ~ log FLS", title_fontsize=7)
    return save(figure, out_path)


def learning_curve_figure(curves: Mapping[str, pd.DataFrame], out_path: str | Path) -> list[Path]:
    """Test error against n per task: the network at the largest and the smallest FLS, the kernels at init,
    and the after-kernels at the largest FLS."""
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
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel="test error", title=name)
    np.atleast_1d(axes)[0].legend(fontsize=6)
    return save(figure, out_path)
