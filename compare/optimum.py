"""The optimal alpha of a cell and its uncertainty in alpha and FLS (docs/design.md section 5, "Resolution of
the optimum"): alpha* is the smooth argmin of the mean test error over log alpha
(:func:`compare.statistics.smooth_argmin`: the vertex of the parabola through the grid minimum and its two
neighbours), and its 95 % interval is the percentile interval of alpha* over bootstrap resamples of the seeds
(the same resamples at every alpha, since one seed is one data set across the grid). Claim (a) reports it and
:mod:`compare.refine` adds alphas and seeds until it is narrow; on the refinement's windows (9 alphas over a
factor 9) three neighbouring points are as noisy as the differences between them, so there alpha* is the
vertex of the least-squares parabola in log alpha through every point of the window (:func:`window_vertex`),
whose spread shrinks with the curvature the whole window shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fls.compare.selection import SeedGrid
from fls.compare.statistics import bootstrap_means, interval, resample_indices, smooth_argmin
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext


def optimal_alpha(grid: SeedGrid, means: np.ndarray | None = None) -> np.ndarray | float:
    """alpha* of a cell: the smooth argmin (:func:`smooth_argmin`) of the mean test error over log alpha; pass
    ``means`` (B, K) (bootstrap means over the grid's FLS order) for B values at once."""
    order = np.argsort(grid.alpha)
    values = grid.mean() if means is None else np.asarray(means)
    return np.exp(smooth_argmin(np.log(grid.alpha[order]), values[..., order]))


def window_vertex(log_x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The minimizer of the least-squares parabola through (log_x, y) for each row of y (B, K): its vertex
    when it opens upwards and lies inside [min log_x, max log_x], else NaN (no interior minimum). Columns
    without a finite value in every row are left out."""
    Y = np.atleast_2d(np.asarray(y, dtype=float))
    usable = np.all(np.isfinite(Y), axis=0)
    if usable.sum() < 3:
        return np.full(Y.shape[0], np.nan)
    x = np.asarray(log_x, dtype=float)[usable]
    a, b, _ = np.polyfit(x, Y[:, usable].T, 2)
    with np.errstate(all="ignore"):
        vertex = -b / (2 * a)
    inside = (a > 0) & (vertex >= x.min()) & (vertex <= x.max())
    return np.where(inside, vertex, np.nan)


@dataclass(frozen=True)
class Optimum:
    """alpha* of a cell with its 95 % bootstrap interval, the same in FLS = 1 / (c alpha^2), and the fraction
    of resamples whose minimum fell on an end of the grid (no interior optimum: left out of the interval)."""

    alpha: float
    alpha_interval: tuple[float, float]
    c: float
    lost: float

    @property
    def fls(self) -> float:
        return 1.0 / (self.c * self.alpha**2)

    @property
    def fls_interval(self) -> tuple[float, float]:
        low, high = self.alpha_interval
        return (1.0 / (self.c * high**2), 1.0 / (self.c * low**2))

    @property
    def span(self) -> float:
        """hi / lo of the alpha interval (the factor it spans; NaN without an interval)."""
        low, high = self.alpha_interval
        return high / low if low > 0 else float("nan")

    def describe(self) -> str:
        (a_lo, a_hi), (f_lo, f_hi) = self.alpha_interval, self.fls_interval
        return (
            f"alpha* {self.alpha:.4g} [{a_lo:.4g}, {a_hi:.4g}] (a factor {self.span:.3g}); "
            f"FLS {self.fls:.4g} [{f_lo:.4g}, {f_hi:.4g}]; {self.lost:.0%} of resamples without an interior optimum"
        )


def locate_optimum(
    grid: SeedGrid, context: ClaimContext = DEFAULT_CONTEXT, *, window: bool = False
) -> Optimum:
    """alpha* of the mean test error in ``grid`` (one cell, seeds x alphas) and its bootstrap interval over
    ``context.n_boot`` resamples of the seeds: the smooth argmin, or with ``window`` the vertex of the
    parabola fitted to every alpha of the grid (:func:`window_vertex`)."""
    indices = resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    boot = bootstrap_means(grid.values, indices)
    if window:
        log_alpha = np.log(grid.alpha)
        centre = np.exp(window_vertex(log_alpha, grid.mean())[0])
        draws = np.exp(window_vertex(log_alpha, boot))
    else:
        centre, draws = optimal_alpha(grid), np.atleast_1d(optimal_alpha(grid, boot))
    finite = draws[np.isfinite(draws)]
    c = float(1.0 / (grid.fls[0] * grid.alpha[0] ** 2))
    return Optimum(
        float(centre),
        interval(finite) if finite.size else (float("nan"), float("nan")),
        c,
        1.0 - finite.size / draws.size,
    )
