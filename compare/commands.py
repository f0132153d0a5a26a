"""The commands of the `fls` command line (docs/design.md section 5, "The layers"); :mod:`compare.cli` loads
this module only when a command runs, so ``fls --help`` and ``fls --version`` import none of it.

Outputs go under ``fls-out/`` unless told otherwise: a sweep's store is ``fls-out/<sweep.name>/store`` and its
figures and report sit next to it. ``--workers N`` sizes the local process pool (0: run in this process);
``--scheduler`` sends the batches to Dask instead ("local:N" starts a local cluster of N workers, an address
such as tcp://host:8786 uses a running scheduler; see compare.sweep). A bad argument or config exits with
status 1 and a message naming the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from fls.compare.config import ConfigError, expand_runs, load_config
from fls.compare.interrupt import SweepInterrupted
from fls.compare.plots import phase_diagram
from fls.compare.report import build_report, claims_table
from fls.compare.runner import execute_batch
from fls.compare.sweep import run_sweep
from fls.compare.verify import verify as verify_claims
from fls.compare.vocabulary import ALPHA_KEY, FLS_KEY, SEEDS_KEY
from fls.simulate.train.device import configure_threads
from fls.theory.validation import ParameterError

#: Option names of the help flag, for every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}

#: Exit status of a sweep stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_STATUS = 130

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
@_options(_WORKERS, _SCHEDULER)
@click.option(
    "--family",
    default=None,
    help="Claims to check [default: the config's claims.families, i.e. fls]: fls (over-alignment / over-fitting), "
    "quality (feature-learning strength against quality, its own sweeps) or a family a [claims] module adds.",
)
def verify(
    out: Path, config: Path | None, workers: int | None, scheduler: str | None, family: str | None
) -> None:
    """Run the default sweep, check every claim, write OUT/report.md with its figures."""
    configure_threads()
    verify_claims(
        out, config=config, workers=workers, scheduler=scheduler, family=family
    )  # prints its summary


def _sweep(config: Path, store: Path | None, **options: Any) -> tuple[dict[str, Any], Path, Any]:
    """Run (or resume) the sweep of CONFIG; returns its resolved config, its store and its run table."""
    resolved = load_config(config)
    store = default_store_dir(resolved) if store is None else store
    configure_threads()
    return resolved, store, run_sweep(resolved, store, **options)


@click.command(cls=Command, context_settings=CONTEXT)
@_CONFIG
@_options(_STORE, _WORKERS, _SCHEDULER)
@click.option("--retry-failed", is_flag=True, help="Run again the runs stored with status 'failed'.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
def sweep(
    config: Path,
    store: Path | None,
    workers: int | None,
    scheduler: str | None,
    retry_failed: bool,
    progress: bool,
) -> None:
    """Run every run of CONFIG's grid not yet in the store (a stopped sweep resumes where it stopped)."""
    _, store, table = _sweep(
        config, store, workers=workers, scheduler=scheduler, retry_failed=retry_failed, progress=progress
    )
    counts = Counter(table["status"])
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    click.echo(f"{len(table)} runs in {store}: {summary}")


@click.command(cls=Command, context_settings=CONTEXT)
@_CONFIG
@_options(_STORE)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the figures [default: the store's parent].",
)
@_options(_WORKERS, _SCHEDULER)
def phase(
    config: Path, store: Path | None, out: Path | None, workers: int | None, scheduler: str | None
) -> None:
    """Run CONFIG's sweep (or resume it) and draw its phase diagram, [phase] x against y, as PNG and PDF."""
    resolved, store, table = _sweep(config, store, workers=workers, scheduler=scheduler)
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
    naming them) unless --allow-partial."""
    made = build_report(
        store, store.parent if out is None else out, recompute=recompute, allow_partial=allow_partial
    )
    click.echo(claims_table(made.results))
    click.echo(made.path)


def _assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE read as a TOML value (40, 1e-3, true, "x"), else as a bare string."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"--set {text!r} is not KEY=VALUE; allowed: e.g. --set model.alpha=0.01")
    try:
        return key.strip(), tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value.strip()


def _selected(config: Path, seed: int | None, assignments: tuple[str, ...]) -> dict[str, Any]:
    """The first run of CONFIG's grid with each KEY=VALUE (and the seed) fixed as a one-value grid entry."""
    resolved = load_config(config)
    grid = dict(resolved["grid"])
    for key, value in map(_assignment, assignments):
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
    configure_threads()
    (output,) = execute_batch([chosen])
    row = {**chosen, **output.row}
    width = max(map(len, row))
    for key, value in row.items():
        click.echo(f"{key:<{width}} = {value}")
    for key, values in output.arrays.items():
        click.echo(
            f"{key:<{width}} : {len(values)} points" + (f", last {values[-1]:.6g}" if len(values) else "")
        )
