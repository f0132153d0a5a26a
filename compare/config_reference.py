"""Write docs/config.md from the config schema (nothing in that page is typed by hand; docs/design.md section
5, "The layers"):

    python -m fls.compare.config_reference [docs/config.md]

Every key of every table, with its TOML type, default, allowed range and meaning, comes from
:mod:`compare.config_schema`; tests/compare/test_config_reference.py fails when the page is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from fls.compare.config_schema import (
    AXES_KEYS,
    AXES_TABLE,
    CLAIMS_KEYS,
    DATA_MODELS,
    GRID_SPECIAL,
    OPTIONAL,
    REQUIRED,
    SECTIONS,
    TABLES,
    TYPE_NAMES,
    Field,
    data_fields,
)
from fls.compare.config_schema import Check as RangeCheck
from fls.compare.toml_text import toml_value
from fls.simulate.data import MODELS

#: The page this module writes, relative to the repository root.
PAGE = Path("docs") / "config.md"

HEADER = """# Config reference

A sweep config is a TOML file with the tables below (docs/design.md section 6); every key is optional unless
its default says *required*. `fls` checks the whole file before any run starts and names the dotted key, the
value and what is allowed when one is wrong. A resolved config (the store's `config.toml`) has every default
filled in. This page is written by `python -m fls.compare.config_reference docs/config.md` from the schema in
`compare/config_schema.py`; a test fails when it is stale.
"""

_ROW = "| {} | {} | {} | {} | {} |"
_HEAD = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]


def _default(field: Field) -> str:
    if field.default is REQUIRED:
        return "*required*"
    if field.default is OPTIONAL:
        return "*optional*"
    return f"`{toml_value(field.default)}`"


def _allowed(field: Field) -> str:
    return field.check.allowed if isinstance(field.check, RangeCheck) else ""


def _rows(section: str, fields: Mapping[str, Field]) -> Iterable[str]:
    for key, field in fields.items():
        kind = TYPE_NAMES[field.kind].removeprefix("an ").removeprefix("a ")
        yield _ROW.format(f"`{section}.{key}`", kind, _default(field), _allowed(field), field.meaning)


def _data_section() -> list[str]:
    lines = [
        "## [data]",
        "",
        '`data.model` (default `"gaussian_mixture"`; one of '
        + ", ".join(f"`{m}`" for m in DATA_MODELS)
        + ") chooses "
        "the data model (docs/design.md section 3), `data.preset` a named set of its values (explicit keys win). "
        "Then, per model:",
        "",
    ]
    for model in DATA_MODELS:
        lines += [f"### {model}", ""]
        presets = MODELS[model].presets if model in MODELS else {}
        if presets:
            lines += [f"Presets: {', '.join(f'`{preset}`' for preset in presets)}.", ""]
        lines += [*_HEAD, *_rows("data", data_fields(model)), ""]
    return lines


def _grid_section() -> list[str]:
    return [
        "## [grid]",
        "",
        (
            "Dotted config key -> a list of values, or `{logspace = [a, b, num]}` / `{linspace = [a, b, num]}`; "
            "the product of the grids is taken in the order listed, seeds innermost. Any run key of [data], "
            "[model], [train] and [stop] (not `data.model` or `data.preset`) may be gridded, and:"
        ),
        "",
        "| key | meaning |",
        "|---|---|",
        *[f"| `{key}` | {meaning} |" for key, meaning in GRID_SPECIAL.items()],
        "",
    ]


def _claims_section() -> list[str]:
    rows = [
        _ROW.format(f"`claims.{key}`", kind, f"`{default}`", allowed, meaning)
        for key, (kind, default, allowed, meaning) in CLAIMS_KEYS.items()
    ]
    return [
        "## [claims]",
        "",
        "How the runs are analysed (docs/claims.md); optional, and not part of a run.",
        "",
        *_HEAD,
        *rows,
        "",
    ]


def _axes_section() -> list[str]:
    rows = [
        _ROW.format(
            f"`{AXES_TABLE}.{axis}.{key}`", kind, "*required*" if required else "*optional*", allowed, meaning
        )
        for axis, keys in AXES_KEYS.items()
        for key, (required, kind, allowed, meaning) in keys.items()
    ]
    about = (
        'The quality family\'s axes beyond alpha (docs/quality.md, "The axes"); optional, not part of a run and '
        "not in the resolved config. `fls verify --family quality` sweeps every axis; `fls sweep` and `fls run` "
        "on such a config run its main sweep (the alpha axis) with the quality runner. An absent "
        "`[axes.<axis>]` table is an axis not swept."
    )
    return [f"## [{AXES_TABLE}]", "", about, "", *_HEAD, *rows, ""]


def render() -> str:
    """The text of docs/config.md."""
    lines = [HEADER]
    for section in SECTIONS:
        if section == "data":
            lines += _data_section()
        elif section == "grid":
            lines += _grid_section()
        elif section == "claims":
            lines += _claims_section()
        else:
            lines += [f"## [{section}]", "", *_HEAD, *_rows(section, TABLES[section]), ""]
    lines += _axes_section()
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    """Write :func:`render` to the path given (default docs/config.md)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else PAGE
    path.write_text(render())


if __name__ == "__main__":
    main()
