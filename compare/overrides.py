"""``--set KEY=VALUE`` on the command line: change a config's tables before it is checked (docs/cli.md).

VALUE is read as a TOML value (``40``, ``1e-3``, ``true``, ``"x"``, ``[0.1, 1.0]``), else taken as a bare
string. KEY is dotted:

- ``SECTION.NAME`` (``model.width``, ``stop.eps``, ``sweep.batch_size``) sets that key of its table; a grid
  entry of the same key is dropped, so the value holds for every run (``model.alpha`` drops ``fls`` too);
- ``grid.KEY`` (``grid.model.alpha``, ``grid.seeds``) sets a grid entry (a list, a spacing table, or for
  seeds a count);
- ``fls`` fixes the feature-learning strength of every run (a one-value grid entry replacing model.alpha's).

The result is checked like any config (compare.config.load_config), so a bad value gets the usual message
naming its key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from fls.compare.config_schema import SECTIONS, ConfigError
from fls.compare.vocabulary import ALPHA_KEY, FLS_KEY

GRID = "grid"


def parse_assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE read as a TOML value, else as a bare string."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"--set {text!r} is not KEY=VALUE; allowed: e.g. --set model.alpha=0.01")
    try:
        return key.strip(), tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value.strip()


def with_assignments(tables: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """A copy of a config's tables with each ``--set KEY=VALUE`` applied (module docstring)."""
    config = {name: dict(table) if isinstance(table, Mapping) else table for name, table in tables.items()}
    grid = config.setdefault(GRID, {})
    for key, value in map(parse_assignment, assignments):
        section, _, name = key.partition(".")
        if key == FLS_KEY:
            grid.pop(ALPHA_KEY, None)
            grid[FLS_KEY] = [value]
        elif section == GRID and name:
            grid[name] = value
        elif section in SECTIONS and section != GRID and name:
            config.setdefault(section, {})[name] = value
            grid.pop(key, None)
            if key == ALPHA_KEY:
                grid.pop(FLS_KEY, None)
        else:
            raise ConfigError(
                f"--set {key}={value!r} names no config key; allowed: SECTION.NAME with SECTION one of "
                f"{', '.join(name for name in SECTIONS if name != GRID)}, grid.KEY, or fls"
            )
    return config
