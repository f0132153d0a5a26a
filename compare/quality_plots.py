"""Figures of the quality family: strength measures against the quality, learning curves (docs/design.md
section 5, "The layers"; the family: docs/quality.md). Each writes a PNG and a PDF and returns both paths.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from fls.compare.figure_style import SHORT, legend_below, log_axis, panel_titles, plt, save
from fls.compare.quality_claims import Correlation
from fls.compare.quality_curves import CURVE_ERRORS
from fls.compare.vocabulary import N_KEY, WIDTH_KEY


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


#: Short names of the strength measures on a categorical axis.
MEASURE_LABELS = {
    "weight_change": "weight",
    "kernel_change": "kernel",
    "alignment_change": "alignment",
    "cka_change": "CKA",
}


def axes_figure(
    verdicts: Sequence[tuple[str, str, str, Sequence[Mapping[str, Any]]]],
    thresholds: tuple[float, float],
    out_path: str | Path,
) -> list[Path]:
    """The claim's verdict per axis: one lettered panel per axis (titled by the axis and its verdict), each
    strength measure's Spearman rho with the quality and its 95 % interval, and rho_n per data size;
    ``thresholds`` = (decoupled, tracking) of the claim's rule shaded: dark |rho| < decoupled (an interval inside
    it is decoupled), light |rho| < tracking (an interval beyond it tracks). All panels share the rho scale
    [-1, 1]; one legend below the panels.

    ``verdicts``: per axis (axis, setting, verdict, correlations as stored in the claim result's data)."""
    decoupled_rho, tracking_rho = thresholds
    figure, axes = plt.subplots(1, len(verdicts), figsize=(4.2 * len(verdicts), 3.8), sharey=True)
    axes = np.atleast_1d(axes)
    sizes = sorted({int(n) for *_, found in verdicts for c in found for n in c["by_size"]})
    for ax, (_, _, _, found) in zip(axes, verdicts, strict=True):
        x = np.arange(len(found))
        ax.axhspan(-tracking_rho, tracking_rho, color="0.93", zorder=0)
        ax.axhspan(-decoupled_rho, decoupled_rho, color="0.8", zorder=0)
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        for i, n in enumerate(sizes):
            rho_n = [c["by_size"].get(n, c["by_size"].get(str(n), (np.nan,)))[0] for c in found]
            ax.plot(x + 0.12 * (i + 1), rho_n, "o", ms=3.5, color=f"C{i + 1}", label=f"rho within n = {n}")
        rho = np.array([c["rho"] for c in found])
        low, high = np.array([c["interval"] for c in found], dtype=float).T
        ax.errorbar(
            x, rho, yerr=[rho - low, high - rho], fmt="s", color="C0", capsize=3, label="rho, 95 % interval"
        )
        ax.set_xticks(x, [MEASURE_LABELS.get(c["measure"], c["measure"]) for c in found])
        ax.set(xlim=(-0.5, len(found) - 0.2), ylim=(-1.05, 1.05), xlabel="strength measure")
        ax.set_ylabel("Spearman rho(strength, quality)")
    titles = [f"{axis}: {verdict}\n{textwrap.fill(setting, 44)}" for axis, setting, verdict, _ in verdicts]
    panel_titles(axes, titles)
    legend_below(
        figure,
        axes,
        columns=len(sizes) + 1,
        title=f"shaded: |rho| < {decoupled_rho:g} (dark), < {tracking_rho:g} (light)",
    )
    return save(figure, out_path)


def width_figure(curves: pd.DataFrame, out_path: str | Path) -> list[Path]:
    """The width axis (means over seeds per n and width, :func:`compare.quality_curves.learning_curves` by
    width): (a) test errors of the network, the tangent kernel at init and the tangent after-kernel, (b) the
    weight change (strength), (c) the after-kernel's gain (quality), each against the width; colour = n, one
    legend below the panels."""
    figure, axes = plt.subplots(1, 3, figsize=(13.0, 3.8))
    widths = sorted(curves[WIDTH_KEY].unique())
    styles = {
        "err_network": ("-", "network"),
        "err_tangent": ("--", "tangent kernel at init"),
        "err_tangent_after": ("-.", "tangent after-kernel"),
    }
    for i, n in enumerate(sorted(curves[N_KEY].unique())):
        cell = curves[curves[N_KEY] == n].sort_values(WIDTH_KEY)
        for column, (style, label) in styles.items():
            axes[0].plot(
                cell[WIDTH_KEY],
                cell[column],
                style,
                marker="o",
                ms=3,
                color=f"C{i}",
                label=f"{label}, n = {n}",
            )
        axes[1].plot(cell[WIDTH_KEY], cell["weight_change"], "-", marker="o", ms=3, color=f"C{i}")
        axes[2].plot(cell[WIDTH_KEY], cell["gain_tangent"], "-", marker="o", ms=3, color=f"C{i}")
    labels = ("test error", "weight change (strength)", "gain tangent (quality)")
    for ax, label in zip(axes, labels, strict=True):
        ax.set(xscale="log", xlabel="width m", ylabel=label)
        ax.set_xticks(widths)
        ax.xaxis.set_major_formatter(SHORT)
        ax.xaxis.set_minor_formatter(NullFormatter())
        log_axis(ax, "y")
    axes[2].axhline(1.0, color="grey", lw=0.8, ls=":")
    fls = float(curves["fls"].iloc[0])
    panel_titles(
        axes, [f"test error against width (FLS {fls:.3g})", "strength against width", "quality against width"]
    )
    legend_below(figure, axes, columns=3)
    return save(figure, out_path)
