"""Input checks shared by every package: each failure names the parameter, the value and the allowed range.

The toolkit's convention (docs/design.md section 6) is that bad input never reaches a numerical routine: a wrong shape,
a non-finite entry, a label outside {-1, +1} or a scale out of range raises :class:`ParameterError` at the API
boundary, with a message a user can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


class ParameterError(ValueError):
    """A user-supplied parameter is out of its allowed range, of the wrong shape or not finite."""


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    return repr(value)


def as_array(name: str, value: Any, *, ndim: int, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 array with ``ndim`` dimensions (and ``shape``, None = any size)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a real array, got {_describe(value)}") from exc
    if arr.ndim != ndim:
        raise ParameterError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(arr.shape, shape, strict=True)):
            if want is not None and got != want:
                raise ParameterError(
                    f"{name} has shape {arr.shape}; axis {axis} must have size {want} to match the other inputs"
                )
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} contains non-finite values (NaN or inf); all entries must be finite")
    return arr


def as_labels(name: str, value: Any, *, n: int | None = None) -> np.ndarray:
    """Return binary labels as float64, checking every entry is -1 or +1 (and the length is ``n``)."""
    arr = as_array(name, value, ndim=1, shape=(n,))
    bad = ~np.isin(arr, (-1.0, 1.0))
    if np.any(bad):
        raise ParameterError(f"{name} must contain only -1 and +1; found {np.unique(arr[bad])[:5].tolist()}")
    return arr


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, requiring value > 0 (or >= 0 when ``allow_zero``) and finite."""
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a real number, got {_describe(value)}") from exc
    ok = np.isfinite(x) and (x >= 0 if allow_zero else x > 0)
    if not ok:
        bound = "[0, inf)" if allow_zero else "(0, inf)"
        raise ParameterError(f"{name} = {value!r} is out of range; allowed: {bound}")
    return x


def check_in_range(name: str, value: Any, low: float, high: float, *, closed: str = "both") -> float:
    """Return ``value`` as a float inside [low, high] (``closed`` in 'both', 'left', 'right', 'neither')."""
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a real number, got {_describe(value)}") from exc
    left_ok = x >= low if closed in ("both", "left") else x > low
    right_ok = x <= high if closed in ("both", "right") else x < high
    if not (np.isfinite(x) and left_ok and right_ok):
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        raise ParameterError(f"{name} = {value!r} is out of range; allowed: {lb}{low}, {high}{rb}")
    return x


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ParameterError(f"{name} = {value} is out of range; allowed: integers >= {minimum}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise ParameterError(f"{name} = {value!r} is not supported; allowed: {', '.join(map(repr, options))}")
    return value
