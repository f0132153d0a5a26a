"""The certification's figure (docs/design.md section 5, "Certification by the exact flow"): the test error of
the certified discrete runs and of their exact-flow twins against FLS, one panel per init. Drawing only; the
gaps are decided in :mod:`compare.discretization`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fls.compare.discretization import Pair
from fls.compare.figure_style import fls_axis, legend_below, panel_titles, save


def _means(pairs: Sequence[Pair], attribute: str) -> tuple[np.ndarray, np.ndarray]:
    """The FLS values of ``pairs`` in increasing order and the mean over seeds of ``attribute`` at each (NaN
    where no seed has a result)."""
    strengths = np.array(sorted({p.fls for p in pairs}))
    means = []
    for fls in strengths:
        values = [getattr(p, attribute) for p in pairs if p.fls == fls]
        finite = [v for v in values if np.isfinite(v)]
        means.append(np.mean(finite) if finite else np.nan)
    return strengths, np.array(means)


def discretization_figure(pairs: Sequence[Pair], out_path: Path) -> Path:
    """Discrete (circles) and exact-flow (crosses) test error per run and their means over seeds, against the
    runs' FLS, one panel per init; returns the PNG's path."""
    inits = list(dict.fromkeys(p.init for p in pairs))
    figure, axes = plt.subplots(1, len(inits), figsize=(4.6 * len(inits), 3.6), squeeze=False, sharey=True)
    panels = list(axes[0])
    for ax, init in zip(panels, inits, strict=True):
        chosen = [p for p in pairs if p.init == init]
        for attribute, label, marker, colour in (
            ("discrete_error", "discrete GD (sharpness steps)", "o", "tab:blue"),
            ("flow_error", "exact flow", "x", "tab:red"),
        ):
            x = [p.fls for p in chosen]
            ax.scatter(
                x, [getattr(p, attribute) for p in chosen], marker=marker, s=14, color=colour, alpha=0.5
            )
            ax.plot(
                *_means(chosen, attribute), color=colour, marker=marker, label=f"{label}, mean over seeds"
            )
        fls_axis(ax)
        ax.set_ylabel("test error")
    panel_titles(panels, [f"init {init}" for init in inits])
    legend_below(figure, panels, columns=2)
    return save(figure, out_path)[0]
