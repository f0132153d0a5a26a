"""One registry of claim families: the built-in ``fls`` and ``quality`` families, and the families a user's
module adds (docs/design.md section 5, "The layers"; how to write one: docs/claims.md).

A family (:class:`ClaimFamily`) is an ordered mapping of claim keys to claims, and optionally the preparation
of the run table its claims read (for ``fls``: the predictions and regimes of :mod:`compare.predictions`); a
claim is a plain function ``claim(table, context, **thresholds) -> ClaimResult`` (:mod:`compare.verdict`). A
module adds families by defining ``CLAIM_FAMILIES = {"name": {"key": claim, ...}}`` (a value may also be a
:class:`ClaimFamily`); it is loaded by name from a config's
``[claims] modules = ["my_claims"]`` (:func:`load_modules`) or from a Python entry point in the group
:data:`ENTRY_POINT_GROUP` whose value is the module (:func:`load_entry_points`). Thresholds are the keyword
parameters of a claim; a config's ``[claims.<key>]`` table sets them (:func:`check_claims` checks each name
against the claim's signature). A family may also declare which runs its claims read
(:class:`compare.applicability.RunRequirement`): it is prepared and checked on those runs only, and its claims
are reported ``skipped`` with the reason when the table has none (the ``fls`` family on regression runs).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pandas as pd

from fls.compare import claims, deep_claims, predictions, quality_claims
from fls.compare.applicability import BIAS_FREE_CLASSIFICATION, RunRequirement
from fls.compare.config import ConfigError
from fls.compare.verdict import DEFAULT_CONTEXT, Claim, ClaimContext, ClaimResult, inconclusive, skipped
from fls.theory.validation import ParameterError

#: Entry-point group through which an installed distribution adds claim families.
ENTRY_POINT_GROUP = "fls.claims"

#: The attribute a claims module defines: family name -> {claim key: claim}.
FAMILIES_ATTRIBUTE = "CLAIM_FAMILIES"

#: Prepares a run table for a family's claims: returns the table with the columns they read added.
Preparation = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class ClaimFamily:
    """A family: its claims by key, in report order, the preparation of the table they read (or None) and the
    runs they can read (None: every run)."""

    claims: Mapping[str, Claim]
    prepare: Preparation | None = field(default=None)
    runs: RunRequirement | None = field(default=None)

    def usable(self, table: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
        """The rows of ``table`` the family reads, and the skip reason when there are none."""
        if self.runs is None:
            return table, None
        return table[self.runs.select(table)], self.runs.unmet(table)


_FAMILIES: dict[str, ClaimFamily] = {
    "fls": ClaimFamily(dict(claims.CLAIMS), predictions.prepare_table, BIAS_FREE_CLASSIFICATION),
    "quality": ClaimFamily(dict(quality_claims.CLAIMS)),
    "deep": ClaimFamily(dict(deep_claims.CLAIMS)),
}


def register_family(
    name: str,
    family: Mapping[str, Claim],
    *,
    prepare: Preparation | None = None,
    runs: RunRequirement | None = None,
) -> None:
    """Add (or replace) the family ``name``: claim key -> claim, in report order, with the preparation of the
    run table its claims read (None: they read the run table as stored) and the runs they can read (None:
    every run)."""
    if not isinstance(name, str) or not name:
        raise ParameterError(f"family name = {name!r} is not usable; allowed: a non-empty string")
    not_callable = [key for key, claim in family.items() if not callable(claim)]
    if not family or not_callable or not (prepare is None or callable(prepare)):
        raise ParameterError(
            f"family {name!r} has no claims, non-callable ones ({', '.join(not_callable)}) or a preparation "
            "that is not callable; allowed: a non-empty mapping of claim key -> function(table, context, "
            "**thresholds), and prepare = None or function(table) -> table"
        )
    _FAMILIES[name] = ClaimFamily(dict(family), prepare, runs)


def families() -> tuple[str, ...]:
    """The names of the registered families."""
    return tuple(_FAMILIES)


def family_claims(name: str) -> dict[str, Claim]:
    """The claims of the family ``name``, by key in report order."""
    if name not in _FAMILIES:
        raise ConfigError(f"claims family = {name!r} is not registered; allowed: {', '.join(_FAMILIES)}")
    return dict(_FAMILIES[name].claims)


def prepare_table(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``table`` prepared for the claims of the families ``names``: each distinct preparation once, in order,
    on the rows the family can read (the other rows keep NaN in the added columns)."""
    done: list[Preparation] = []
    for name in names:
        family_claims(name)  # a ConfigError for an unknown family
        family = _FAMILIES[name]
        if family.prepare is None or family.prepare in done:
            continue
        rows, unmet = family.usable(table)
        if unmet is None:
            prepared = family.prepare(rows)
            rest = table.drop(index=rows.index)
            table = prepared if rest.empty else pd.concat([prepared, rest]).loc[table.index]
        done.append(family.prepare)
    return table


def _register_module(module: ModuleType, origin: str) -> None:
    found = getattr(module, FAMILIES_ATTRIBUTE, None)
    if not isinstance(found, Mapping):
        raise ConfigError(
            f"{origin}: module {module.__name__!r} defines no {FAMILIES_ATTRIBUTE}; allowed: a module with "
            f"{FAMILIES_ATTRIBUTE} = {{'family': {{'key': claim, ...}}}} (docs/claims.md)"
        )
    for name, family in found.items():
        if isinstance(family, ClaimFamily):
            register_family(name, family.claims, prepare=family.prepare, runs=family.runs)
        else:
            register_family(name, family)


def load_modules(names: Sequence[str]) -> None:
    """Import each module of ``names`` (a config's ``claims.modules``) and register its families."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"claims.modules: module {name!r} cannot be imported: {exc}") from exc
        _register_module(module, "claims.modules")


def load_entry_points() -> None:
    """Register the families of every installed entry point of :data:`ENTRY_POINT_GROUP`."""
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        _register_module(entry.load(), f"entry point {entry.name!r}")


def _with_thresholds(key: str, claim: Claim, thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """``thresholds`` checked against the keyword parameters of ``claim`` (a ConfigError names the bad
    one)."""
    allowed = [
        name
        for name, parameter in inspect.signature(claim).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(thresholds) - set(allowed))
    if unknown:
        raise ConfigError(
            f"claims.{key}.{unknown[0]} is not a threshold of claim {key!r}; allowed: {', '.join(allowed) or 'none'}"
        )
    return dict(thresholds)


def check_claims(
    table: pd.DataFrame,
    *,
    families: Sequence[str] = ("fls",),
    context: ClaimContext = DEFAULT_CONTEXT,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ClaimResult]:
    """Every claim of ``families`` on ``table``, in order; ``thresholds[key]`` are keyword arguments of claim
    ``key``. A claim that raises is reported inconclusive with the error; the claims of a family whose runs
    the table lacks are reported skipped with the reason (:class:`ClaimFamily`)."""
    thresholds = thresholds or {}
    chosen = [(key, claim, name) for name in families for key, claim in family_claims(name).items()]
    keys = {key for key, *_ in chosen}
    stray = sorted(set(thresholds) - keys)
    if stray:
        raise ConfigError(f"claims.{stray[0]} names no claim of {list(families)}; allowed: {', '.join(keys)}")
    results = []
    for key, claim, name in chosen:
        settings = _with_thresholds(key, claim, thresholds.get(key, {}))
        rows, unmet = _FAMILIES[name].usable(table)
        if unmet is not None:
            results.append(skipped(key, unmet))
            continue
        try:
            results.append(claim(rows, context, **settings))
        except Exception as exc:  # noqa: BLE001 - one broken claim must not hide the others
            results.append(
                inconclusive(key, key, "", f"the claim could not be evaluated: {type(exc).__name__}: {exc}")
            )
    return results
