"""Certification by the exact flow (docs/design.md section 5, "Certification by the exact flow"): re-run a
stratified subset of a sweep's discrete runs with the exact flow engine (:func:`fls.simulate.flow.integrate_flow`
through the runner's flow path: same data, same initial weights, same stop rule) and report the discretization
gap per claim (:mod:`compare.discretization`).

The subset is the config's ``[certify]`` table (docs/config.md): by default every alpha of claim (a)'s cell
(the headline init's middle value of every second axis, :func:`compare.selection.base_cell`), the first 2
seeds, every init of the grid. It is a sweep of its own, ``<store>/../certify`` (manifest, checksums, resume
as for any store, so a resumed verify recomputes nothing), over the grid reduced to those runs with
``train.engine`` = [the discrete engine, "flow"]: the discrete twins are run again there only to keep their
final parameters (the runner's ``keep_parameters``), while the test errors and stop times compared are those
of the main store, which the claims read.
"""

from __future__ import annotations

import copy
import functools
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.compare import registry
from fls.compare.analyse import claim_settings, current_analysis
from fls.compare.certify_plots import discretization_figure
from fls.compare.config import expand_runs, run_id
from fls.compare.config_schema import CERTIFY_ALL, TABLES, ConfigError
from fls.compare.discretization import TWIN, ClaimShift, Gap, Pair, claim_shifts, pair_rows, substitute
from fls.compare.runner import PARAMETERS, execute_batch
from fls.compare.selection import base_cell, headline_init, network_runs
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from fls.compare.toml_text import toml_value
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext
from fls.compare.vocabulary import ENGINE_KEY, INIT_KEY, SEEDS_KEY

#: The engines whose runs are certified (discrete training), and the engine that certifies them.
DISCRETE_ENGINES, FLOW_ENGINE = ("gd", "sgd"), "flow"

#: Runs per batch of the certification sweep: the flow integrates one run at a time (seconds each), so small
#: batches keep the workers evenly loaded and an interrupted certification loses little when it resumes.
FLOW_BATCH = 8


def certify_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[certify]`` table of a resolved config, its defaults filled in where the config has none."""
    given = dict(config.get("certify", {}))
    return {key: given.get(key, spec.default) for key, spec in TABLES["certify"].items()}


@dataclass
class Certification:
    """The outcome: ``status`` (``certified`` or ``not run``) and why, the pairs compared, their largest gaps,
    each claim on the discrete and the flow-substituted table, the flow runs that missed their target, the
    figure and the wall time."""

    status: str
    reason: str
    pairs: list[Pair] = field(default_factory=list)
    shifts: list[ClaimShift] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    figure: Path | None = None
    seconds: float = 0.0

    @property
    def gap(self) -> Gap:
        return Gap.of(self.pairs)

    @property
    def unfinished(self) -> list[Pair]:
        """The flow runs that did not end ``target_reached``."""
        return [p for p in self.pairs if p.status != "target_reached"]

    def claim_lines(self) -> list[str]:
        """One line per claim: its statistic on both tables, the change against the tolerance, both verdicts."""
        lines = []
        for shift in self.shifts:
            within = WITHIN_WORDS[shift.within]
            lines.append(
                f"({shift.key}) statistic {shift.discrete.value:.4g} -> {shift.flow.value:.4g} "
                f"(change {shift.change:.3g}, tolerance {shift.tolerance:.3g}: {within}); verdict "
                f"{shift.discrete.verdict} -> {shift.flow.verdict} ({'agree' if shift.agrees else 'DIFFER'})"
            )
        return lines

    def printed(self) -> list[str]:
        """What ``fls verify`` prints: the subset's gap and each claim's shift."""
        if self.status != "certified":
            return [f"discretization: {self.status} ({self.reason})"]
        head = f"discretization ({self.reason}; {self.seconds:.1f} s): {self.gap.describe()}"
        failed = [f"  flow run {p.status}: {describe_pair(p)}" for p in self.unfinished]
        return [head, *failed, *(f"  {line}" for line in self.claim_lines())]

    def markdown(self, link_root: Path) -> list[str]:
        """The report's "Discretization" section."""
        lines = ["## Discretization", ""]
        if self.status != "certified":
            return [*lines, f"Not certified: {self.reason}.", ""]
        lines += [
            (
                f"Certified subset: {self.reason} (`[certify]` {_settings_text(self.settings)}); each re-run "
                f"with the exact flow (same data, initial weights and stop rule); wall time {self.seconds:.1f} s."
            ),
            "",
            f"Gap over the subset: {self.gap.describe()}.",
            "",
        ]
        for init in dict.fromkeys(p.init for p in self.pairs):
            lines.append(f"- init {init}: {Gap.of([p for p in self.pairs if p.init == init]).describe()}")
        lines += [""] + [f"- flow run {p.status}: {describe_pair(p)}" for p in self.unfinished]
        lines += [
            *([""] if self.unfinished else []),
            (
                "Each claim recomputed with the subset's discrete rows replaced by their flow twins; tolerance: "
                "half the width of the claim's 95% interval on the discrete table (its own resolution)."
            ),
            "",
            (
                "| claim | statistic (discrete) | statistic (flow) | change | tolerance | below | verdict "
                "(discrete) | verdict (flow) |"
            ),
            "|---|---|---|---|---|---|---|---|",
        ]
        for shift in self.shifts:
            lines.append(
                f"| {shift.key}: {shift.title} | {shift.discrete.value:.4g} | {shift.flow.value:.4g} | "
                f"{shift.change:.3g} | {shift.tolerance:.3g} | {WITHIN_WORDS[shift.within]} | "
                f"{shift.discrete.verdict} | "
                f"{shift.flow.verdict} |"
            )
        if self.figure is not None:
            lines += [
                "",
                f"![discretization]({self.figure.relative_to(link_root).as_posix()})",
                "",
                (
                    "Test error of the certified runs against FLS, one panel per init: faint markers are "
                    "single seeds, lines the means over the certified seeds and cells (circles discrete, "
                    "crosses exact flow)."
                ),
            ]
        return [*lines, ""]


#: Whether a claim's change is within its tolerance, in words (None: the claim has no finite statistic or
#: interval to compare).
WITHIN_WORDS = {True: "below", False: "ABOVE", None: "not comparable"}


def _settings_text(settings: Mapping[str, Any]) -> str:
    """The ``[certify]`` settings as TOML assignments."""
    return ", ".join(f"{key} = {toml_value(value)}" for key, value in settings.items())


def describe_pair(pair: Pair) -> str:
    """Where a certified run is: data seed, alpha, init, and the flow's message."""
    return f"data seed {pair.seed}, alpha {pair.alpha:.4g}, init {pair.init}: {pair.message}"


def _values(config: Mapping[str, Any], key: str) -> list[Any]:
    """The values a resolved config's runs take for the dotted ``key``: its [grid] list, else its table's."""
    section, name = key.split(".", 1)
    return list(config["grid"][key]) if key in config["grid"] else [config[section][name]]


def _engines(config: Mapping[str, Any]) -> list[str]:
    """The engines of a resolved config's runs (its [grid] values of train.engine, else its [train] one)."""
    return _values(config, ENGINE_KEY)


def _inits(config: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """The inits certified: every init of the grid, or the one ``certify.inits`` names (which must be one)."""
    inits = _values(config, INIT_KEY)
    if settings["inits"] == CERTIFY_ALL:
        return inits
    if settings["inits"] not in inits:
        raise ConfigError(
            f"certify.inits = {settings['inits']!r} is not an init of the sweep; allowed: "
            f"{', '.join([CERTIFY_ALL, *inits])}"
        )
    return [settings["inits"]]


def subset_config(
    config: Mapping[str, Any], table: pd.DataFrame, settings: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """The certification sweep of ``config`` (whose run table is ``table``): its grid reduced to the
    ``[certify]`` subset with train.engine = [its (first) discrete engine, flow]; and the subset in words."""
    seeds = list(config["grid"][SEEDS_KEY])
    if settings["seeds"] > len(seeds):
        raise ConfigError(
            f"certify.seeds = {settings['seeds']} is more than the sweep's {len(seeds)} seeds; allowed: "
            f"integers in [1, {len(seeds)}]"
        )
    out = copy.deepcopy(dict(config))
    grid = out["grid"]
    grid[INIT_KEY] = _inits(config, settings)
    grid[SEEDS_KEY] = seeds[: settings["seeds"]]
    words = "every cell"
    if settings["cells"] != "all":
        runs = network_runs(table)
        _, chosen = base_cell(runs, headline_init(runs))
        for key, value in chosen.items():
            grid[key] = [value.item() if hasattr(value, "item") else value]
        words = "claim (a)'s cell (" + ", ".join(f"{k}={v}" for k, v in chosen.items()) + ")"
    discrete = next(e for e in _engines(config) if e in DISCRETE_ENGINES)
    grid[ENGINE_KEY] = [discrete, FLOW_ENGINE]
    for key in ("phase", "certify", "claims"):
        out.pop(key, None)
    out["sweep"] = {"name": f"{out['sweep']['name']}-certify", "batch_size": FLOW_BATCH}
    train = {key: config["train"].get(key, TABLES["train"][key].default) for key in ("method", "rtol")}
    words += (
        f", every alpha, seeds {grid[SEEDS_KEY]}, inits {', '.join(grid[INIT_KEY])}, {discrete} runs, flow "
        f"{train['method']} at rtol {train['rtol']:g}"
    )
    return out, words


def _twins(subset: Mapping[str, Any]) -> dict[str, str]:
    """Each flow run's id -> its discrete twin's id (the same run with the discrete engine)."""
    discrete = next(e for e in subset["grid"][ENGINE_KEY] if e != FLOW_ENGINE)
    twins = {}
    for run in expand_runs(subset):
        if run[ENGINE_KEY] == FLOW_ENGINE:
            twin = {key: value for key, value in run.items() if key != "run_id"}
            twin[ENGINE_KEY] = discrete
            twins[run["run_id"]] = run_id(twin)
    return twins


def certify(
    config: Mapping[str, Any],
    store_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    families: Sequence[str] | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
) -> Certification:
    """Certify the sweep ``config`` stored in ``store_dir``: run its ``[certify]`` subset with the exact flow
    (a store of its own beside ``store_dir``, resumed when it exists), compare, recompute each claim of
    ``families`` (default: the config's) on the flow-substituted table, draw the figure under
    ``out_dir/figures``."""
    start = time.perf_counter()
    settings = certify_settings(config)
    if not settings["enabled"]:
        return Certification("not run", "certify.enabled = false", settings=settings)
    if not any(engine in DISCRETE_ENGINES for engine in _engines(config)):
        return Certification("not run", "the sweep has no discrete runs to certify", settings=settings)
    store = open_store(store_dir)
    analysis = current_analysis(store, families=families, context=context)
    table = store.table()
    subset, words = subset_config(config, table, settings)
    runs = run_sweep(
        subset,
        Path(store_dir).parent / "certify",
        workers=workers,
        runner=functools.partial(execute_batch, keep_parameters=True),
        progress=False,
    )
    certified = open_store(Path(store_dir).parent / "certify")
    flow = runs[runs[ENGINE_KEY] == FLOW_ENGINE].copy()
    flow[TWIN] = flow["run_id"].map(_twins(subset))
    parameters = {
        rid: certified.arrays(rid).get(PARAMETERS, np.empty(0)) for rid in [*flow["run_id"], *flow[TWIN]]
    }
    pairs = pair_rows(table[table["run_id"].isin(flow[TWIN])], flow, parameters)
    claims = claim_settings(store.config())
    chosen = list(families) if families is not None else claims["families"]
    substituted = registry.prepare_table(substitute(table, flow), chosen)
    results = registry.check_claims(
        substituted, families=chosen, context=context, thresholds=claims["thresholds"]
    )
    figure = discretization_figure(pairs, Path(out_dir) / "figures" / "discretization.png")
    return Certification(
        "certified",
        words,
        pairs,
        claim_shifts(analysis.results, results),
        settings,
        figure,
        time.perf_counter() - start,
    )
