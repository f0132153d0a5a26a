"""The `fls` command line: verify the claims, run a sweep, draw its phase diagram, write a report, run one run
(docs/design.md section 5, "The layers").

    fls verify [--out DIR] [--config FILE] [--workers N] [--scheduler ADDR] [--family NAME]
    fls sweep CONFIG [--store DIR] [--workers N] [--scheduler ADDR] [--retry-failed] [--no-progress]
    fls phase CONFIG [--store DIR] [--out DIR] [--workers N] [--scheduler ADDR]
    fls report STORE [--out DIR] [--recompute]
    fls run CONFIG [--seed S] [--set KEY=VALUE ...]

The group starts at once: it knows each command by name and one-line summary (:data:`SUMMARIES`) and imports
the commands' module (:mod:`compare.commands`, which loads numpy, torch and the engines) only when a command
runs or its own help is asked for, so ``fls --help`` and ``fls --version`` import click alone.
"""

from __future__ import annotations

import importlib

import click

#: The module that defines the commands, imported when one of them is needed.
COMMANDS_MODULE = "fls.compare.commands"

#: Each command's one-line summary, shown by ``fls --help`` (the first line of the command's own help).
SUMMARIES = {
    "verify": "Run the default sweep, check every claim, write OUT/report.md with its figures.",
    "sweep": "Run every run of CONFIG's grid not yet in the store (a stopped sweep resumes where it stopped).",
    "phase": "Run CONFIG's sweep (or resume it) and draw its phase diagram, [phase] x against y, as PNG and PDF.",
    "report": "Check the claims on the runs of STORE (or reuse the stored analysis), print the claims table and write report.md with its figures.",
    "run": "Run one run of CONFIG (its grid's first, or the one --set selects) here and print its row.",
    "runs": "List the runs of STORE as a table (or CSV), filtered by --where; damaged parts are named on stderr.",
}


class LazyCommands(click.Group):
    """A click group whose commands are loaded from :data:`COMMANDS_MODULE` by name when first used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUMMARIES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUMMARIES:
            return None
        return getattr(importlib.import_module(COMMANDS_MODULE), cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`SUMMARIES`, without importing the commands."""
        with formatter.section("Commands"):
            formatter.write_dl(list(SUMMARIES.items()))


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fls", prog_name="fls")
def main() -> None:
    """fls: check theoretical claims about feature-learning strength (FLS = 1 / (c alpha^2)) numerically."""
