"""The analyse stage of the pipeline: read a sweep's run table, prepare it for the claims of its families (for
``fls``: the theory's predictions and the regimes), check the claims, and store all of it beside the run table (docs/design.md section 5, "The
layers").

    sweep (compare.sweep)  ->  analyse (this module)  ->  render (compare.report, compare.claim_figures)

Each stage reads the last one's stored output: :func:`analyse` writes ``<store>/analysis/`` (the analysed
table and the claims' verdict records, :meth:`compare.store.RunStore.write_analysis`), and
:func:`stored_analysis` returns it while the store's batches and the analysis settings are unchanged, so a
report renders again without recomputing anything. The settings come from the config's ``[claims]`` table
(docs/config.md): the families to check, the modules that add families (docs/claims.md), and each claim's
thresholds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from fls import __version__
from fls.compare import registry
from fls.compare.store import RunStore
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext, ClaimResult


@dataclass
class Analysis:
    """What the analyse stage stores: the analysed run table, the claims' results and what each step took."""

    table: pd.DataFrame
    results: list[ClaimResult]
    timings: dict[str, float] = field(default_factory=dict)


def claim_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[claims]`` table of a resolved config, with its defaults where a store's config has none."""
    settings = dict(config.get("claims", {}))
    return {
        "families": list(settings.pop("families", ["fls"])),
        "modules": list(settings.pop("modules", [])),
        "thresholds": {key: dict(values) for key, values in settings.items()},
    }


def _record(store: RunStore, settings: Mapping[str, Any], context: ClaimContext) -> dict[str, Any]:
    """What an analysis was made from: the store's batches, the settings, the context and the package
    version."""
    return {
        "fingerprint": store.fingerprint(),
        "settings": dict(settings),
        "context": asdict(context),
        "version": __version__,
    }


def stored_analysis(
    store: RunStore, *, families: Sequence[str] | None = None, context: ClaimContext = DEFAULT_CONTEXT
) -> Analysis | None:
    """The analysis stored in ``store`` when it was made from the store's current batches with the same
    settings (config ``[claims]``, ``families`` when given, and ``context``) by the same version of fls, else
    None (a claims module changed since is not noticed: ``fls report --recompute``)."""
    stored = store.analysis()
    if stored is None:
        return None
    table, record = stored
    settings = claim_settings(store.config())
    if families is not None:
        settings["families"] = list(families)
    expected = _record(store, settings, context)
    if any(record.get(key) != value for key, value in expected.items()):
        return None
    return Analysis(table, [ClaimResult.from_dict(r) for r in record["claims"]], dict(record["timings"]))


def current_analysis(
    store: RunStore,
    *,
    families: Sequence[str] | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
    recompute: bool = False,
) -> Analysis:
    """The stored analysis of ``store`` when it is current (:func:`stored_analysis`) and ``recompute`` is False,
    else a new one (:func:`analyse`)."""
    found = None if recompute else stored_analysis(store, families=families, context=context)
    return analyse(store, families=families, context=context) if found is None else found


def analyse(
    store: RunStore, *, families: Sequence[str] | None = None, context: ClaimContext = DEFAULT_CONTEXT
) -> Analysis:
    """The runs of ``store`` prepared for the claims of ``families`` (default: the config's
    ``claims.families``; for ``fls``, the predictions and regimes of :mod:`compare.predictions`) and checked by
    them; stored beside the run table and returned as stored (the results as read back from their
    JSON record, so a report made now and one re-rendered later print the same)."""
    settings = claim_settings(store.config())
    if families is not None:
        settings["families"] = list(families)
    registry.load_entry_points()
    registry.load_modules(settings["modules"])
    spent = {}
    start = time.perf_counter()
    table = registry.prepare_table(store.table(), settings["families"])
    spent["predictions"] = time.perf_counter() - start  # the preparation: for fls, the predictions
    start = time.perf_counter()
    results = registry.check_claims(
        table, families=settings["families"], context=context, thresholds=settings["thresholds"]
    )
    spent["claims"] = time.perf_counter() - start
    record = _record(store, settings, context)
    record.update({"timings": spent, "claims": [result.to_dict() for result in results]})
    store.write_analysis(table, record)
    return Analysis(table, [ClaimResult.from_dict(r) for r in record["claims"]], spent)
