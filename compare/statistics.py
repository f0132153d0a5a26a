"""Statistics of the claims: seed bootstrap, percentile intervals, smooth argmin, held-out depths, rank
correlation (docs/design.md section 5, "The layers").

Seeds are the independent replicates (each draws its own training set, test set and initialization), so the
bootstrap resamples them: :data:`N_BOOT` resamples from ``np.random.default_rng(seed)``, the same every time.
Precision: the intervals are Monte-Carlo percentiles of N_BOOT resamples (their ends move by about
1 / sqrt(N_BOOT) of the spread between seeds of the bootstrap RNG); everything else is exact float64.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata

from fls.theory.validation import check_int

#: Bootstrap resamples and the level of the reported intervals.
N_BOOT = 2000


LEVEL = 0.95


def resample_indices(n_seeds: int, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n_seeds) seed indices drawn with replacement from ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, n_seeds, size=(check_int("n_boot", n_boot), n_seeds))


def bootstrap_means(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Means over resampled seeds (axis 0 of ``values``) for each row of ``indices``; NaN entries are skipped
    (a resample with no finite entry gives NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values[indices], axis=1)


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap samples (NaN samples skipped)."""
    finite = np.asarray(samples, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def smooth_argmin(log_x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """The minimizer over log_x of each row of y (or of y itself when 1-D): the vertex of the parabola through
    the grid minimum and its two neighbours (clipped to them; the grid point itself when the three are not
    convex), NaN when the minimum is at an end of the grid or a neighbour is missing."""
    Y = np.atleast_2d(np.asarray(y, dtype=float))
    x = np.asarray(log_x, dtype=float)
    filled = np.where(np.isfinite(Y), Y, np.inf)
    k = np.argmin(filled, axis=1)
    inside = (k > 0) & (k < Y.shape[1] - 1) & np.isfinite(filled.min(axis=1))
    k = np.clip(k, 1, Y.shape[1] - 2)
    rows = np.arange(Y.shape[0])
    x0, x1, x2 = x[k - 1], x[k], x[k + 1]
    y0, y1, y2 = Y[rows, k - 1], Y[rows, k], Y[rows, k + 1]
    with np.errstate(all="ignore"):
        denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denominator
        vertex = np.where(a > 0, np.clip(-b / (2 * a), x0, x2), x1)
    out = np.where(inside & np.isfinite(y0) & np.isfinite(y2), vertex, np.nan)
    return float(out[0]) if np.ndim(y) == 1 else out


def held_out_depths(values: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0) -> list[tuple[float, tuple]]:
    """How much each end of the grid errs above the minimum, free of selection bias: the seeds are split in
    two halves (even and odd rows); the argmin is chosen on one half and the depth mean(end) - mean(argmin)
    measured on the other, both ways, and averaged. Returns, for the first and the last column, the depth and
    its bootstrap interval (seeds resampled within each half)."""
    halves = (values[0::2], values[1::2])
    rng_seeds = (seed, seed + 1)
    boots = [
        bootstrap_means(half, resample_indices(len(half), n_boot=n_boot, seed=s))
        for half, s in zip(halves, rng_seeds, strict=True)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(half, axis=0) for half in halves]
    picks = [int(np.nanargmin(m)) for m in means]
    out = []
    for end in (0, values.shape[1] - 1):
        point = np.mean([means[1 - h][end] - means[1 - h][picks[h]] for h in (0, 1)])
        draws = np.mean([boots[1 - h][:, end] - boots[1 - h][:, picks[h]] for h in (0, 1)], axis=0)
        out.append((float(point), interval(draws)))
    return out


def finite_mean(values: Any) -> float:
    """Mean of the finite entries (NaN when there is none)."""
    finite = np.asarray(values, dtype=float).ravel()
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of x and y (shape (..., N)): the Pearson correlation of the ranks
    (average ranks for ties); NaN for a row with a constant side."""
    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    norms = np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (rx * ry).sum(-1) / np.where(norms > 0, norms, 1.0), np.nan)
