"""TOML text of a config: what a store keeps as config.toml and a report prints (docs/design.md section 5,
"The layers"). ``tomllib.loads(dump_config(config)) == config`` for tables of booleans, numbers, strings,
lists and sub-tables.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from fls.theory.validation import ParameterError


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, plus DEL, which TOML (unlike JSON) wants escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """A TOML value: boolean, number (nan and inf included), string or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise ParameterError(
        f"cannot write {value!r} ({type(value).__name__}) to TOML; allowed: booleans, numbers, strings, lists"
    )


def _toml_blocks(header: str, table: Mapping[str, Any]) -> list[str]:
    """``[header]`` with the table's scalars and lists, then one block per sub-table."""
    plain = {key: value for key, value in table.items() if not isinstance(value, Mapping)}
    lines = [f"[{header}]"] + [f"{_toml_key(k)} = {toml_value(v)}" for k, v in plain.items()]
    blocks = ["\n".join(lines)]
    for key, value in table.items():
        if isinstance(value, Mapping):
            blocks += _toml_blocks(f"{header}.{_toml_key(key)}", value)
    return blocks


def dump_config(config: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text of a config (tables of scalars, lists and sub-tables); ``tomllib.loads`` reads it back
    unchanged."""
    blocks = [block for section, table in config.items() for block in _toml_blocks(_toml_key(section), table)]
    return "\n\n".join(blocks) + "\n"
