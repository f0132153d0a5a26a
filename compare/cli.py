"""The `fls` command line: verify the claims, run a sweep, draw its phase diagram, write a report, run one run.

    fls verify [--out DIR] [--config FILE] [--workers N] [--scheduler ADDR] [--family NAME]
    fls sweep CONFIG [--store DIR] [--workers N] [--scheduler ADDR] [--retry-failed] [--no-progress]
    fls phase CONFIG [--store DIR] [--out DIR] [--workers N] [--scheduler ADDR]
    fls report STORE [--out DIR]
    fls run CONFIG [--seed S] [--set KEY=VALUE ...]

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

from fls.compare.config import FLS_KEY, SEEDS_KEY, ConfigError, expand_runs, load_config
from fls.compare.sweep import run_sweep
from fls.compare.verify import VERIFY_FAMILIES
from fls.theory.validation import ParameterError

#: Where outputs go unless an option says otherwise.
OUTPUT_ROOT = Path("fls-out")


def default_store_dir(config: Mapping[str, Any]) -> Path:
    """A sweep's store unless --store says otherwise: fls-out/<sweep.name>/store."""
    return OUTPUT_ROOT / config["sweep"]["name"] / "store"


def _configure_threads() -> None:
    """torch threads of this process: one, or $FLS_TORCH_THREADS (simulate.train.device.configure_threads)."""
    from fls.simulate.train.device import configure_threads

    configure_threads()


class _Commands(click.Group):
    """A click group that reports a bad parameter or config as a one-line error (exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ParameterError as exc:
            raise click.ClickException(str(exc)) from exc


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


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fls", prog_name="fls")
def main() -> None:
    """fls: check theoretical claims about feature-learning strength (FLS = 1 / (c alpha^2)) numerically."""


@main.command()
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
    type=click.Choice(VERIFY_FAMILIES),
    default="fls",
    show_default=True,
    help="fls: the over-alignment / over-fitting claims; quality: feature-learning strength against quality.",
)
def verify(out: Path, config: Path | None, workers: int | None, scheduler: str | None, family: str) -> None:
    """Run the default sweep, check every claim, write OUT/report.md with its figures."""
    from fls.compare.verify import verify as verify_claims

    _configure_threads()
    verify_claims(
        out, config=config, workers=workers, scheduler=scheduler, family=family
    )  # prints its summary


def _sweep(config: Path, store: Path | None, **options: Any) -> tuple[dict[str, Any], Path, Any]:
    """Run (or resume) the sweep of CONFIG; returns its resolved config, its store and its run table."""
    resolved = load_config(config)
    store = default_store_dir(resolved) if store is None else store
    _configure_threads()
    return resolved, store, run_sweep(resolved, store, **options)


@main.command()
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


@main.command()
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
    from fls.compare.plots import phase_diagram

    resolved, store, table = _sweep(config, store, workers=workers, scheduler=scheduler)
    out = store.parent if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    for path in phase_diagram(table, resolved, out / f"phase-{resolved['sweep']['name']}.png"):
        click.echo(path)


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for report.md and its figures [default: the store's parent].",
)
def report(store: Path, out: Path | None) -> None:
    """Check the claims on the runs of STORE and write report.md with its figures."""
    from fls.compare.report import write_report

    click.echo(write_report(store, store.parent if out is None else out))


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
        if key in (FLS_KEY, "model.alpha"):
            grid.pop("model.alpha" if key == FLS_KEY else FLS_KEY, None)
        grid[key] = [value]
    if seed is not None:
        grid[SEEDS_KEY] = [seed]
    return expand_runs(load_config({**resolved, "grid": grid}))[0]


@main.command()
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
    from fls.compare.runner import execute_batch

    chosen = _selected(config, seed, assignments)
    _configure_threads()
    (output,) = execute_batch([chosen])
    row = {**chosen, **output.row}
    width = max(map(len, row))
    for key, value in row.items():
        click.echo(f"{key:<{width}} = {value}")
    for key, values in output.arrays.items():
        click.echo(
            f"{key:<{width}} : {len(values)} points" + (f", last {values[-1]:.6g}" if len(values) else "")
        )
