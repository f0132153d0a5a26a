"""What a referee checks on a drawn figure, as a list of defects (docs/design.md section 5, "Figures a
referee accepts"): every panel has axis labels and a title, the panels of a figure with more than one are
lettered, labelled artists have a legend, no legend box covers a data point, the tick labels of an axis do not
run into each other, and the colour-mapped panels of one figure share one colour scale.

Positions are compared in display coordinates after a draw (matplotlib artists' bounding boxes), so the check
sees the figure as it is saved. The figures are drawn by :mod:`compare.plots`, :mod:`compare.quality_plots`
and :mod:`compare.claim_figures`; the tests run this audit on every figure of ``fls verify``.
"""

from __future__ import annotations

import re
import string

import matplotlib

matplotlib.use("Agg")

import matplotlib.collections
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.transforms import Bbox

#: Label matplotlib gives the axes of a colour bar.
COLORBAR = "<colorbar>"

#: A panel's title prefix: "(a) ".
_LETTER = re.compile(r"^\(([a-z])\) ")


def _panels(figure: plt.Figure) -> list[plt.Axes]:
    return [ax for ax in figure.axes if ax.get_label() != COLORBAR and ax.get_visible()]


def _data_points(ax: plt.Axes) -> np.ndarray:
    """Display coordinates (k, 2) of the drawn data points of ``ax`` inside its frame: line vertices, scatter
    and error-bar points (areas such as bands and spans are not points)."""
    points = []
    for line in ax.get_lines():
        if line.get_visible() and not line.get_label().startswith("_child"):
            xy = np.asarray(line.get_xydata(), dtype=float)
            points.append(line.get_transform().transform(xy[np.all(np.isfinite(xy), axis=1)]))
    for collection in ax.collections:
        if isinstance(collection, matplotlib.collections.PathCollection):
            offsets = np.asarray(collection.get_offsets(), dtype=float)
            if offsets.size:
                points.append(collection.get_offset_transform().transform(offsets))
        elif isinstance(collection, matplotlib.collections.LineCollection):
            for segment in collection.get_segments():
                points.append(collection.get_transform().transform(np.asarray(segment, dtype=float)))
    every = np.concatenate([np.empty((0, 2)), *[p.reshape(-1, 2) for p in points]])
    return every[_inside(every, ax.get_window_extent())]


def _inside(points: np.ndarray, box: Bbox) -> np.ndarray:
    """Which of the display points (k, 2) lie in ``box``."""
    x, y = points[:, 0], points[:, 1]
    return (x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)


def _overlapping(boxes: list[Bbox]) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def audit(figure: plt.Figure) -> list[str]:
    """The defects of ``figure`` (empty when it passes), each naming its panel."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    panels = _panels(figure)
    defects = []
    legends = [ax.get_legend() for ax in panels if ax.get_legend() is not None] + list(figure.legends)
    labelled = [
        label for ax in panels for label in ax.get_legend_handles_labels()[1] if not label.startswith("_")
    ]
    if labelled and not legends:
        defects.append(f"labelled artists without a legend: {labelled}")
    for number, ax in enumerate(panels):
        name = f"panel {number} ({ax.get_title()!r})"
        if not ax.get_xlabel() or not ax.get_ylabel():
            defects.append(f"{name}: missing axis label (x {ax.get_xlabel()!r}, y {ax.get_ylabel()!r})")
        if not ax.get_title():
            defects.append(f"{name}: no title")
        elif len(panels) > 1:
            match = _LETTER.match(ax.get_title())
            if match is None or match.group(1) != string.ascii_lowercase[number]:
                defects.append(f"{name}: not lettered ({string.ascii_lowercase[number]})")
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [
                label.get_window_extent(renderer)
                for label in axis.get_ticklabels()
                if label.get_visible() and label.get_text()
            ]
            if _overlapping(boxes):
                texts = [label.get_text() for label in axis.get_ticklabels() if label.get_text()]
                defects.append(f"{name}: {axis.axis_name} tick labels overlap: {texts}")
        points = _data_points(ax)
        for legend in legends:
            covered = _inside(points, legend.get_window_extent(renderer))
            if np.any(covered):
                defects.append(f"{name}: the legend covers {int(covered.sum())} data point(s)")
    scales = {
        (type(mappable.norm).__name__, mappable.norm.vmin, mappable.norm.vmax)
        for ax in panels
        for mappable in [*ax.collections, *ax.images]
        if isinstance(mappable, matplotlib.collections.QuadMesh | matplotlib.image.AxesImage)
    }
    if len(scales) > 1:
        defects.append(f"panels use different colour scales: {sorted(scales, key=str)}")
    return defects
