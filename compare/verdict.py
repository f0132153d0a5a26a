"""The verdict record every claim returns, the settings claims share, and the way a claim combines its checks
(docs/design.md section 5, "The layers").

A claim is a plain function of the run table returning a :class:`ClaimResult` (docs/claims.md): ``pass``,
``fail`` or ``inconclusive`` with the reason, the statistic it decides on, its 95 % interval, the evidence
behind it as printable name -> value pairs, and ``data``: the arrays and numbers a figure of the claim needs
(claims decide, they never draw; :mod:`compare.claim_figures` draws from ``data``). A result round-trips
through JSON (:meth:`ClaimResult.to_dict`, :meth:`ClaimResult.from_dict`), so the analysis stored beside the
run table renders again without recomputing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fls.compare.statistics import N_BOOT
from fls.theory.validation import check_choice

#: Verdicts a claim can return (``skipped``: the registry did not evaluate it, the table has no runs it can
#: read; compare.applicability).
VERDICTS = ("pass", "fail", "inconclusive", "skipped")


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim.

    Attributes:
        key: short name ("a", "b", ...); title: the claim in words.
        verdict: one of :data:`VERDICTS`; reason: why, in one sentence.
        statistic: what ``value`` is; value: its estimate; interval: its 95 % bootstrap interval.
        evidence: the numbers behind the verdict, as name -> value.
        figure: the figure's path (PNG) once one is drawn, or None.
        data: what a figure of the claim needs (JSON types: numbers, strings, lists, dicts).
    """

    key: str
    title: str
    verdict: str
    reason: str
    statistic: str
    value: float
    interval: tuple[float, float]
    evidence: dict[str, Any] = field(default_factory=dict)
    figure: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("verdict", self.verdict, VERDICTS)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON types (numpy scalars and arrays become numbers and lists)."""
        out = _plain(asdict(self))
        out["figure"] = None if self.figure is None else str(self.figure)
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ClaimResult:
        """The result :meth:`to_dict` wrote."""
        values = dict(record)
        values["interval"] = tuple(values["interval"])
        values["figure"] = None if values.get("figure") is None else Path(values["figure"])
        return cls(**values)


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class ClaimContext:
    """Settings shared by the claims: bootstrap size and seed."""

    n_boot: int = N_BOOT
    seed: int = 0


#: The default settings (2000 resamples, seed 0).
DEFAULT_CONTEXT = ClaimContext()

#: A claim: ``claim(table, context, **thresholds) -> ClaimResult`` (docs/claims.md).
Claim = Callable[..., ClaimResult]


def inconclusive(key: str, title: str, statistic: str, reason: str, **evidence: Any) -> ClaimResult:
    """An inconclusive verdict with no statistic, the reason and optional evidence."""
    nan = float("nan")
    return ClaimResult(key, title, "inconclusive", reason, statistic, nan, (nan, nan), evidence)


def skipped(key: str, reason: str) -> ClaimResult:
    """A claim not evaluated, with the reason ("skipped: ..."), and no statistic."""
    nan = float("nan")
    return ClaimResult(key, key, "skipped", reason, "", nan, (nan, nan))


@dataclass(frozen=True)
class Subcheck:
    """One test inside a claim: a statistic, its interval, and the verdict of that test alone."""

    name: str
    value: float
    interval: tuple[float, float]
    verdict: str


def combine(checks: Sequence[Subcheck]) -> tuple[str, str]:
    """pass if every check passes, fail if any fails, else inconclusive; with the reason."""
    failed = [c.name for c in checks if c.verdict == "fail"]
    open_ = [c.name for c in checks if c.verdict == "inconclusive"]
    if failed:
        return "fail", f"failed: {', '.join(failed)}"
    if open_:
        return "inconclusive", f"not decided: {', '.join(open_)}"
    return "pass", "every check passed"


def within(name: str, value: float, bounds: tuple[float, float], low: float, high: float) -> Subcheck:
    """Pass when the interval lies inside [low, high], fail when it lies outside, else inconclusive."""
    lo, hi = bounds
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Subcheck(name, value, bounds, "inconclusive")
    verdict = "pass" if low <= lo and hi <= high else "fail" if hi < low or lo > high else "inconclusive"
    return Subcheck(name, value, bounds, verdict)


def evidence_of(checks: Sequence[Subcheck]) -> dict[str, Any]:
    """Each check as 'value [low, high] -> verdict', by name."""
    return {
        c.name: f"{c.value:.4g} [{c.interval[0]:.4g}, {c.interval[1]:.4g}] -> {c.verdict}" for c in checks
    }
