"""Figures of the deep family, drawn from the data its claims carry (docs/deep.md; docs/design.md section 5,
"The layers"). Each writes a PNG and a PDF and returns both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fls.compare.plots import plt, save


def _panels(count: int) -> tuple[plt.Figure, np.ndarray]:
    figure, axes = plt.subplots(1, max(1, count), figsize=(4.4 * max(1, count), 3.6), squeeze=False)
    return figure, axes[0]


def optimum_figure(cells: Sequence[Mapping[str, Any]], out_path: str | Path) -> list[Path]:
    """Claim (a): peak test accuracy against c per cell (mean +- sd over seeds), the argmin's bootstrap band
    shaded, the cell's verdict in the title."""
    figure, axes = _panels(len(cells))
    for ax, cell in zip(axes, cells, strict=False):
        c, accuracy, sd = (np.asarray(cell[key], dtype=float) for key in ("c", "accuracy", "sd"))
        ax.errorbar(c, accuracy, yerr=sd, marker="o", ms=4, capsize=2)
        ax.axvspan(*cell["band"], color="C1", alpha=0.15, label="argmin c, 95 % band")
        ax.set(xlabel="c (FLS = 1 / c)", ylabel="peak test accuracy")
        ax.set_xscale("log", base=2)
        ax.set_title(f"{cell['label']}\n{cell['verdict']}", fontsize=8)
        ax.legend(fontsize=7)
    return save(figure, out_path)


def equivalence_figure(
    twins: Sequence[Mapping[str, Any]], tolerance: float, out_path: str | Path
) -> list[Path]:
    """Claim (b): relative difference between the multiplier run and its equivalent-init twin against c, for
    the final loss and the parameter norm, with the tolerance."""
    figure, axes = _panels(1)
    ax = axes[0]
    floor = np.finfo(float).tiny
    for key, marker in (("loss", "o"), ("norm", "s")):
        c = [twin["c"] for twin in twins]
        ax.scatter(c, [max(twin[key], floor) for twin in twins], marker=marker, label=f"final {key}")
    ax.axhline(tolerance, color="grey", ls="--", lw=0.8, label="tolerance")
    ax.set(xlabel="c", ylabel="relative difference", title="multiplier c vs init scale c^(1/L) alpha")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return save(figure, out_path)


def centering_figure(cells: Sequence[Mapping[str, Any]], out_path: str | Path) -> list[Path]:
    """Claim (c): peak test accuracy against c, uncentered and centered (f = c (h - h0)), per cell."""
    figure, axes = _panels(len(cells))
    for ax, cell in zip(axes, cells, strict=False):
        for key, style in (("uncentered", "-o"), ("centered", "--s")):
            ax.plot(
                cell["c"], cell[key], style, ms=4, label=f"f = c h{' - c h0' if key == 'centered' else ''}"
            )
        ax.set(xlabel="c (FLS = 1 / c)", ylabel="peak test accuracy")
        ax.set_xscale("log", base=2)
        ax.set_title(f"{cell['label']}\nshrink {cell['shrink']:.4f}", fontsize=8)
        ax.legend(fontsize=7)
    return save(figure, out_path)
