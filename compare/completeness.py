"""Whether a store holds every run of its sweep: the claims are called on a whole table or, when asked, on a
partial one that says what it lacks (docs/cli.md, "fls report").

A run is missing when its run_id (from the store's own config, compare.config.expand_runs) has no row in a
sound part: never computed, in a batch a killed sweep had not finished, in a deleted runs file, or in a part
that fails its checksum (compare.store, "Integrity").
"""

from __future__ import annotations

from dataclasses import dataclass

from fls.compare.config import expand_runs, load_config
from fls.compare.store import Damage, RunStore
from fls.theory.validation import ParameterError

#: Missing run ids named in a message before "and N more".
SHOWN = 5


class PartialStore(ParameterError):
    """A store lacks runs of its sweep, and a partial table was not allowed."""


@dataclass(frozen=True)
class Completeness:
    """How many runs the sweep has, which run ids the store lacks, and what is damaged in it."""

    expected: int
    missing: list[str]
    damage: list[Damage]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.damage

    def summary(self) -> str:
        """One sentence: runs held of the sweep's runs, which are missing, which files are damaged."""
        held = self.expected - len(self.missing)
        text = f"{held} of {self.expected} runs"
        if self.missing:
            shown = ", ".join(self.missing[:SHOWN])
            more = f" and {len(self.missing) - SHOWN} more" if len(self.missing) > SHOWN else ""
            text += f"; missing {len(self.missing)}: {shown}{more}"
        if self.damage:
            text += "; damaged: " + "; ".join(map(str, self.damage))
        return text


def completeness(store: RunStore) -> Completeness:
    """Compare the store's run ids with those of its config's grid."""
    expected = [run["run_id"] for run in expand_runs(load_config(store.config()))]
    present = set(store.statuses())
    return Completeness(
        len(expected), [run_id for run_id in expected if run_id not in present], store.damage()
    )


def require_complete(store: RunStore, *, allow_partial: bool = False) -> Completeness:
    """The store's completeness; raises PartialStore naming what is missing unless the store is complete or
    ``allow_partial`` is set."""
    found = completeness(store)
    if found.complete or allow_partial:
        return found
    raise PartialStore(
        f"store {str(store.directory)!r} holds {found.summary()}; allowed: a complete store (run `fls sweep "
        f"{store.directory}/config.toml --store {store.directory}` to compute the missing runs; damaged parts "
        "are quarantined and their batches run again), or --allow-partial to check the claims on the runs it has"
    )
