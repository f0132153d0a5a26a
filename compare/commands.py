"""The commands of the `fls` command line (docs/design.md section 5, "The layers"); :mod:`compare.cli` loads
this module only when a command runs, so ``fls --help`` and ``fls --version`` import none of it.

Outputs go under ``fls-out/`` unless told otherwise: a sweep's store is ``fls-out/<sweep.name>/store`` and its
figures and report sit next to it. ``--workers N`` sizes the local process pool (0: run in this process);
``--scheduler`` sends the batches to Dask instead ("local:N" starts a local cluster of N workers, an address
such as tcp://host:8786 uses a running scheduler; see compare.sweep). A bad argument or config exits with
status 1 and a message naming the key and what is allowed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from fls.compare.certify import certify
from fls.compare.config import anchor_data_paths, expand_runs, load_config, read_toml
from fls.compare.interrupt import SweepInterrupted
from fls.compare.overrides import parse_assignment, with_assignments
from fls.compare.plots import phase_diagram
from fls.compare.quality_config import QUALITY_CONFIG, main_sweep
from fls.compare.quality_report import store_axes_section
from fls.compare.quality_runner import run_quality_batch
from fls.compare.report import build_report, claims_table
from fls.compare.runner import execute_batch
from fls.compare.store import open_store
from fls.compare.sweep import MAX_RUNS, run_sweep
from fls.compare.verify import DEFAULT_CONFIG, QUALITY_FAMILY
from fls.compare.verify import verify as verify_claims
from fls.compare.vocabulary import ALPHA_KEY, FLS_KEY, SEEDS_KEY
from fls.simulate.train.device import configure_threads
from fls.theory.validation import ParameterError

#: Option names of the help flag, for every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}

#: Exit status of a sweep stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_STATUS = 130

#: Columns `fls runs` prints besides run_id and status unless told otherwise (those a run table has).
RUNS_COLUMNS = ("model.alpha", "fls", "seed", "t_stop", "test_error")

#: Where outputs go unless an option says otherwise.
OUTPUT_ROOT = Path("fls-out")


def default_store_dir(config: Mapping[str, Any]) -> Path:
    """A sweep's store unless --store says otherwise: fls-out/<sweep.name>/store."""
    return OUTPUT_ROOT / config["sweep"]["name"] / "store"


class Command(click.Command):
    """A click command that reports a bad parameter or config as a one-line error (exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ParameterError as exc:
            raise click.ClickException(str(exc)) from exc
        except SweepInterrupted as exc:
            click.echo(f"fls: {exc}", err=True)
            ctx.exit(INTERRUPTED_STATUS)


_CONFIG = click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_WORKERS = click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Local worker processes (default: the usable CPUs; 0: run in this process).",
)
_SCHEDULER = click.option(
    "--scheduler",
    metavar="ADDR",
    default=None,
    help="Run on Dask: 'local:N' for a local cluster of N workers, or a scheduler address (tcp://host:8786).",
)
_SET = click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a config key before the sweep (model.width=50, grid.seeds=3, fls=100; see docs/cli.md); "
    "repeatable.",
)
_STORE = click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run store directory [default: fls-out/<sweep.name>/store].",
)


def _options(*decorators: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[..., Any]:
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


@click.command(cls=Command, context_settings=CONTEXT)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=OUTPUT_ROOT / "verify",
    show_default=True,
    help="Directory for the store, the figures and report.md.",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Sweep config to verify on [default: the packaged default sweep].",
)
@_options(_WORKERS, _SCHEDULER, _SET)
@click.option(
    "--family",
    default=None,
    help="Claims to check [default: the config's claims.families, i.e. fls]: fls (over-alignment / over-fitting), "
    "quality (feature-learning strength against quality, its own sweeps), deep (deep networks on real images, "
    "its own sweeps; docs/deep.md) or a family a [claims] module adds.",
)
@click.option(
    "--device",
    default=None,
    help="Where the deep family's runs train: cpu, cuda or cuda:N [default: each config's train.device].",
)
def verify(
    out: Path,
    config: Path | None,
    workers: int | None,
    scheduler: str | None,
    assignments: tuple[str, ...],
    family: str | None,
    device: str | None,
) -> None:
    """Run the default sweep, check every claim, write OUT/report.md with its figures."""
    configure_threads()
    # the quality family has a default config of its own, so --set changes apply to its sweeps too
    default = QUALITY_CONFIG if family == QUALITY_FAMILY else DEFAULT_CONFIG
    tables = _config_tables(default if config is None else config, assignments)
    verify_claims(
        out, config=tables, workers=workers, scheduler=scheduler, family=family, device=device
    )  # prints its summary


def _config_tables(config: Path, assignments: tuple[str, ...]) -> dict[str, Any]:
    """The tables of the TOML file CONFIG with the --set changes, its data paths taken relative to its folder."""
    return anchor_data_paths(with_assignments(read_toml(config), assignments), Path(config).resolve().parent)


def _sweep(
    config: Path, store: Path | None, assignments: tuple[str, ...], **options: Any
) -> tuple[dict[str, Any], Path, Any]:
    """Run (or resume) the sweep of CONFIG with the --set changes; returns its resolved config, its store and
    its run table."""
    tables = _config_tables(config, assignments)
    quality = main_sweep(tables)
    resolved = load_config(tables, check_runs=False) if quality is None else quality.config
    store = default_store_dir(resolved) if store is None else store
    configure_threads()
    if quality is not None:
        click.echo(
            f"fls: {config} is a quality config: this runs its main sweep, the claim's alpha axis; its width "
            f"and task axes run under `fls verify --family quality --config {config}`",
            err=True,
        )
        options = {**options, "runner": run_quality_batch, "runs": quality.runs}
    return resolved, store, run_sweep(resolved, store, **options)


@click.command(cls=Command, context_settings=CONTEXT)
@_CONFIG
@_options(_STORE, _WORKERS, _SCHEDULER, _SET)
@click.option("--retry-failed", is_flag=True, help="Run again the runs stored with status 'failed'.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@click.option("--yes", is_flag=True, help=f"Run a grid of more than {MAX_RUNS} runs.")
def sweep(
    config: Path,
    store: Path | None,
    workers: int | None,
    scheduler: str | None,
    assignments: tuple[str, ...],
    retry_failed: bool,
    progress: bool,
    yes: bool,
) -> None:
    """Run every run of CONFIG's grid not yet in the store (a stopped sweep resumes where it stopped)."""
    resolved, store, table = _sweep(
        config,
        store,
        assignments,
        workers=workers,
        scheduler=scheduler,
        retry_failed=retry_failed,
        progress=progress,
        max_runs=None if yes else MAX_RUNS,
    )
    counts = Counter(table["status"])
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    click.echo(f"{len(table)} runs in {store}: {summary}")
    _certified(resolved, store, store.parent, workers)


def _certified(config: Mapping[str, Any], store: Path, out: Path, workers: int | None) -> list[str]:
    """When ``config`` has a [certify] table: certify the sweep in ``store`` (compare.certify, its flow runs
    beside the store), print the discretization gap and return the report's section; else nothing."""
    if "certify" not in config:
        return []
    certification = certify(config, store, out, workers=workers)
    click.echo("\n".join(certification.printed()))
    return certification.markdown(out)


@click.command(cls=Command, context_settings=CONTEXT)
@_CONFIG
@_options(_STORE)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the figures [default: the store's parent].",
)
@_options(_WORKERS, _SCHEDULER, _SET)
def phase(
    config: Path,
    store: Path | None,
    out: Path | None,
    workers: int | None,
    scheduler: str | None,
    assignments: tuple[str, ...],
) -> None:
    """Run CONFIG's sweep (or resume it) and draw its phase diagram, [phase] x against y, as PNG and PDF."""
    resolved, store, table = _sweep(config, store, assignments, workers=workers, scheduler=scheduler)
    out = store.parent if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    for path in phase_diagram(table, resolved, out / f"phase-{resolved['sweep']['name']}.png"):
        click.echo(path)


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for report.md and its figures [default: the store's parent].",
)
@click.option(
    "--recompute", is_flag=True, help="Analyse the runs again even if a current analysis is stored."
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Check the claims even when the store lacks runs of its sweep (report.md says which).",
)
def report(store: Path, out: Path | None, recompute: bool, allow_partial: bool) -> None:
    """Check the claims on the runs of STORE (or reuse the stored analysis), print the claims table and write
    report.md with its figures. A store missing runs of its sweep, or with damaged parts, is refused (exit 1,
    naming them) unless --allow-partial. A sweep whose config has a [certify] table is certified by the
    exact flow first (its flow runs beside the store, resumed) and the report gets a Discretization section; a
    quality store's report gets the quality claim per axis."""
    out = store.parent if out is None else out
    sections = [
        *store_axes_section(store),
        *_certified(open_store(store).config(), store, out, None),
    ]
    made = build_report(store, out, recompute=recompute, allow_partial=allow_partial, sections=sections)
    click.echo(claims_table(made.results))
    click.echo(made.path)


def _selected(config: Path, seed: int | None, assignments: tuple[str, ...]) -> dict[str, Any]:
    """The first run of CONFIG's grid with each KEY=VALUE (and the seed) fixed as a one-value grid entry; only
    that run is made, however large the grid."""
    resolved = load_config(config, check_runs=False)
    grid = {key: values[:1] for key, values in resolved["grid"].items()}
    for key, value in map(parse_assignment, assignments):
        if key in (FLS_KEY, ALPHA_KEY):
            grid.pop(ALPHA_KEY if key == FLS_KEY else FLS_KEY, None)
        grid[key] = [value]
    if seed is not None:
        grid[SEEDS_KEY] = [seed]
    return expand_runs(load_config({**resolved, "grid": grid}))[0]


@click.command(cls=Command, context_settings=CONTEXT)
@_CONFIG
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Seed of the run [default: the grid's first]."
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fix a config key (dotted, e.g. model.alpha=0.01, or fls=100); repeatable.",
)
def run(config: Path, seed: int | None, assignments: tuple[str, ...]) -> None:
    """Run one run of CONFIG (its grid's first, or the one --set selects) here and print its row."""
    chosen = _selected(config, seed, assignments)
    runner = execute_batch if main_sweep(read_toml(config)) is None else run_quality_batch
    configure_threads()
    (output,) = runner([chosen])
    row = {**chosen, **output.row}
    width = max(map(len, row))
    for key, value in row.items():
        click.echo(f"{key:<{width}} = {value}")
    for key, values in output.arrays.items():
        click.echo(
            f"{key:<{width}} : {len(values)} points" + (f", last {values[-1]:.6g}" if len(values) else "")
        )


def _selected_runs(table: Any, where: str | None, columns: str | None) -> Any:
    """The rows of ``table`` that satisfy WHERE, with the COLUMNS asked for; errors name the option."""
    if where:
        try:
            table = table.query(where, engine="python")
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds for a bad expression
            raise ParameterError(
                f"--where {where!r} cannot be evaluated ({type(exc).__name__}: {exc}); allowed: a pandas "
                "query such as \"status == 'failed'\" or '`model.alpha` > 0.1' (dotted names in backticks)"
            ) from None
    if columns:
        wanted = [name.strip() for name in columns.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in table.columns]
        if unknown:
            raise ParameterError(
                f"--columns names unknown column(s) {', '.join(unknown)}; allowed: {', '.join(table.columns)}"
            )
        table = table[wanted]
    return table


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--where", "where", default=None, metavar="EXPR", help="Keep the runs where EXPR holds.")
@click.option(
    "--columns",
    default="run_id,status," + ",".join(RUNS_COLUMNS),
    show_default=True,
    metavar="A,B,...",
    help="Columns to print, comma-separated ('all' for every column).",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of an aligned table.")
@click.option(
    "--provenance",
    is_flag=True,
    help="Add where each run was computed: versions, git commit, host, sweep start (docs/cli.md).",
)
def runs(store: Path, where: str | None, columns: str, as_csv: bool, provenance: bool) -> None:
    """List the runs of STORE as a table (or CSV), filtered by --where; damaged parts are named on stderr."""
    opened = open_store(store)
    table = opened.table()
    if provenance:
        origin = opened.provenance()
        origin = origin[["run_id", *(name for name in origin.columns if name not in table.columns)]]
        table = table.merge(origin, on="run_id", how="left")
        columns = columns if columns == "all" else ",".join([columns, *origin.columns.drop("run_id")])
    for problem in opened.damage():
        click.echo(f"fls: {store}: {problem}", err=True)
    present = ",".join(name for name in columns.split(",") if name.strip() in table.columns)
    table = _selected_runs(table, where, None if columns == "all" else present or columns)
    if as_csv:
        click.echo(table.to_csv(index=False).rstrip("\n"))
    else:
        click.echo(table.to_string(index=False) if len(table) else f"no runs ({', '.join(table.columns)})")
