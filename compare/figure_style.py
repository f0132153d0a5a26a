"""The drawing conventions every figure of compare/ shares (docs/design.md section 5, "Figures a referee
accepts"): log axes with short tick labels, panels lettered and titled, one legend per figure placed below
its panels (never over data), one colour scale across the panels of a figure, and the PNG + PDF writer.

These are drawing helpers only: no module here decides anything, and :mod:`compare.figure_audit` checks
the rules on a drawn figure.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

FLS_LABEL = "FLS = 1/(c α²)"

#: Most major ticks on a log axis: more decades than this are labelled every second (third, ...) decade, so
#: the labels of a sparse grid over many decades cannot run into each other.
MAX_LOG_TICKS = 6

_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def short_number(value: float) -> str:
    """A tick label of at most five characters: "0.01", "5", "200", "10⁴", "2·10⁻⁵" (plain numbers from
    0.001 to 1000, powers of ten outside; Unicode rather than math text, which is parsed for every tick)."""
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)) + 1e-9)
    if -3 <= exponent <= 3:
        return f"{value:g}"
    mantissa = value / 10.0**exponent
    power = f"10{str(exponent).translate(_SUPERSCRIPTS)}"
    return power if abs(mantissa - 1) < 1e-6 else f"{mantissa:g}·{power}"


#: Tick labels as short numbers (:func:`short_number`).
SHORT = matplotlib.ticker.FuncFormatter(lambda value, _: short_number(value))


def log_axis(ax: plt.Axes, which: str = "x") -> None:
    """A log scale with at most :data:`MAX_LOG_TICKS` short major labels and unlabelled minor ticks."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    plain_log_ticks(axis, subs=(1.0,) if which == "x" else (1.0, 2.0, 5.0))


def plain_log_ticks(axis: matplotlib.axis.Axis, subs: tuple[float, ...]) -> None:
    """Major ticks at subs x 10^k (at most :data:`MAX_LOG_TICKS`) with short labels, unlabelled minor
    ticks."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=subs, numticks=MAX_LOG_TICKS))
    axis.set_major_formatter(SHORT)
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def fls_axis(ax: plt.Axes) -> None:
    """FLS on a log x axis with its label and a light grid."""
    log_axis(ax, "x")
    ax.set_xlabel(FLS_LABEL)
    ax.grid(alpha=0.3, linewidth=0.4)


def nonnegative_axis(ax: plt.Axes, *, linthresh: float = 1e-3) -> None:
    """A y axis for a quantity that is >= 0 by definition (OA, OF, a ratio of norms): symmetric-log above
    ``linthresh`` so that several decades show, starting at 0 so no empty negative range or negative tick is
    drawn."""
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.yaxis.set_major_formatter(SHORT)
    ax.set_ylim(bottom=0.0)


def panel_titles(axes: Sequence[plt.Axes], titles: Sequence[str]) -> None:
    """Title each panel; with more than one panel, prefixed by its letter: "(a) ...", "(b) ..."."""
    lettered = len(axes) > 1
    for number, (ax, title) in enumerate(zip(axes, titles, strict=True)):
        letter = string.ascii_lowercase[number]
        ax.set_title(f"({letter}) {title}" if lettered else title, fontsize=10)


def legend_below(
    figure: plt.Figure, axes: Iterable[plt.Axes], *, columns: int = 3, title: str | None = None
) -> None:
    """One legend for the whole figure (titled ``title``), below its panels: each labelled artist of ``axes``
    once (by label). Outside every panel it covers no data; ``save`` crops to include it."""
    handles: dict[str, matplotlib.artist.Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        figure.tight_layout()
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(columns, len(handles)),
            fontsize=8,
            frameon=False,
            title=title,
            title_fontsize=8,
        )


def shared_log_norm(images: Iterable[np.ndarray]) -> matplotlib.colors.LogNorm:
    """One logarithmic colour scale spanning the positive finite values of every panel's image, so that equal
    colours mean equal values across the panels of a figure."""
    values = np.concatenate([np.ravel(image) for image in images])
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return matplotlib.colors.LogNorm(vmin=1e-3, vmax=1.0)
    low, high = float(positive.min()), float(positive.max())
    return matplotlib.colors.LogNorm(vmin=low, vmax=high if high > low else low * 10)


def save(figure: plt.Figure, out_path: str | Path) -> list[Path]:
    """Write ``figure`` as PNG and PDF at ``out_path`` (any suffix is replaced; cropped to everything drawn,
    a legend below the panels included); close it; return both paths."""
    base = Path(out_path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_suffix(".png"), base.with_suffix(".pdf")]
    if not figure.legends:
        figure.tight_layout()
    for path in paths:
        figure.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(figure)
    return paths
