"""Sweep configuration: read a TOML file, check every key before any run starts, expand the grid into runs.

A config has the tables of docs/design.md section 5's sweeps: [data], [model], [train], [stop], [grid] (dotted config
key -> list of values, {logspace = [a, b, num]} / {linspace = [a, b, num]}, "fls" -> FLS values, seeds = N or a
list), [phase], [sweep], and the optional [claims], [certify] and [axes] (how to analyse, certify and extend the
runs: not part of a run). Every key with its type, default and range is in docs/config.md.

:func:`load_config` returns the resolved config: the same tables with every default filled in (the data preset
expanded into explicit values) and every grid written out as an explicit list, so the file a store keeps
(:func:`compare.toml_text.dump_config`) reproduces the sweep even if defaults change later; ``load_config`` of a resolved config
returns it unchanged.

A run is a flat dict of dotted keys -> scalars ("data.n": 40, "model.alpha": 0.01, ..., "seed": 3), plus
"fls" = 1 / (c alpha^2) (docs/design.md section 2) and "run_id", the first 16 hex digits of the SHA-256 of the run's
canonical JSON (sorted keys, without run_id): the key of the run table, stable across processes and machines.
The data preset, once expanded, is not part of a run, and neither is [claims] (it says how to analyse the
runs; a resolved config has it only when the file gives it). Grid values override the tables' values; the product of
the grids is taken in the order the grid lists them, seeds innermost.

Every check happens here, before a run starts: an unknown key, a wrong type or an out-of-range value raises
:class:`ConfigError` naming the dotted key, the value and what is allowed. Ranges come from the packages that use
the values (simulate.data.MODELS for data parameters, simulate.initialization.INIT_SCHEMES, theory's LOSSES,
the run vocabulary of compare.vocabulary); the thresholds of [claims] are checked against the claims when the
runs are analysed (compare.registry). Every key with its type, default and range: docs/config.md (made from
:mod:`compare.config_schema` by :mod:`compare.config_reference`). Its place among the layers: docs/design.md section 5.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from fls.compare.config_schema import (
    AXES_TABLE,
    DATA_MODELS,
    FLS_KNOBS,
    OPTIONAL,
    POSITIVE,
    REQUIRED,
    RUN_SECTIONS,
    SECTIONS,
    TABLES,
    TYPE_NAMES,
    ConfigError,
    Field,
    at_least,
    data_fields,
    one_of,
)
from fls.compare.datafile import FILE_MODEL, absolute_path, file_run_keys
from fls.compare.vocabulary import DATA_PATH_KEY, FLS_KEY, SEEDS_KEY
from fls.simulate.data import MODELS
from fls.theory.losses import RISK_AT_ZERO
from fls.theory.validation import ParameterError, check_in_range

#: Stop rules whose target is a risk (stop.eps), which the zero function already meets at or above its risk.
TARGET_RULES = ("risk", "positive_risk")

#: Grid spacings a grid entry may be written as: {logspace = [a, b, num]} is num values from 10^a to 10^b.
SPACINGS: Mapping[str, Callable[..., np.ndarray]] = {"logspace": np.logspace, "linspace": np.linspace}


def _typed(name: str, value: Any, kind: type) -> Any:
    """``value`` if it is of TOML type ``kind`` (an int is accepted where a float is expected), else ConfigError."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ConfigError(
            f"{name} = {value!r} has the wrong type ({type(value).__name__}); allowed: {TYPE_NAMES[kind]}"
        )
    return value


def _checked(name: str, value: Any, field: Field, resolved: Mapping[str, Any]) -> Any:
    """The value of key ``name`` typed and range-checked; every failure is a ConfigError naming ``name``."""
    try:
        return field.check(name, _typed(name, value, field.kind), resolved)
    except ConfigError:
        raise
    except ParameterError as exc:
        raise ConfigError(str(exc)) from exc


def _value(name: str, value: Any, kind: type, check: Callable[[str, Any, Mapping[str, Any]], Any]) -> Any:
    """A value outside the tables (data.model, grid bounds, FLS) typed and checked like a table key."""
    return _checked(name, value, Field(REQUIRED, kind, check), {})


def resolve_table(
    section: str, given: Mapping[str, Any], fields: Mapping[str, Field], gridded: frozenset[str]
) -> dict[str, Any]:
    """Check the keys of one table and fill in defaults; a gridded key may be missing even if required."""
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(f'{section}.{k}' for k in unknown)}; allowed in [{section}]: "
            + ", ".join(fields)
        )
    resolved: dict[str, Any] = {}
    for key, field in fields.items():
        name = f"{section}.{key}"
        if key in given:
            resolved[key] = _checked(name, given[key], field, resolved)
        elif key in gridded or field.default is OPTIONAL:
            continue
        elif field.default is REQUIRED:
            raise ConfigError(f"{name} is required; give it in [{section}] or as a [grid] key")
        else:
            resolved[key] = field.default() if callable(field.default) else field.default
    return resolved


def _data_model(given: Mapping[str, Any]) -> str:
    """data.model of a [data] table, checked (default gaussian_mixture)."""
    return _value("data.model", given.get("model", "gaussian_mixture"), str, one_of(DATA_MODELS))


def anchor_data_paths(tables: Mapping[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """A copy of a config's tables whose ``data.path`` values (in [data] and in [grid]) are absolute, relative
    ones taken against ``base``: what a path in a TOML file means once its tables are handled as a mapping (for
    example after ``--set`` changes), whose own base would be the working directory."""
    anchored = dict(tables)

    def absolute(path: Any) -> Any:
        return absolute_path(path, base) if isinstance(path, str) else path

    data, grid = anchored.get("data"), anchored.get("grid")
    if isinstance(data, Mapping) and "path" in data:
        anchored["data"] = {**data, "path": absolute(data["path"])}
    if isinstance(grid, Mapping) and isinstance(grid.get(DATA_PATH_KEY), list):
        anchored["grid"] = {**grid, DATA_PATH_KEY: [absolute(path) for path in grid[DATA_PATH_KEY]]}
    return anchored


def _data_path(path: str, base: str | os.PathLike[str]) -> str:
    """data.path made absolute (relative paths are relative to ``base``, the config file's directory); a
    ConfigError when no file is there."""
    absolute = absolute_path(path, base)
    if not os.path.isfile(absolute):
        raise ConfigError(
            f"{DATA_PATH_KEY} = {path!r} ({absolute}) is not a readable file; allowed: an existing file"
        )
    return absolute


def _resolve_data(
    given: Mapping[str, Any], gridded: frozenset[str], base: str | os.PathLike[str] = "."
) -> dict[str, Any]:
    """The [data] table: the model, its preset expanded under the explicit keys, sizes and parameters checked
    (the user's file: its path made absolute against ``base``)."""
    model = _data_model(given)
    presets = MODELS[model].presets if model in MODELS else {}
    explicit = {key: value for key, value in given.items() if key not in ("model", "preset")}
    resolved: dict[str, Any] = {"model": model}
    if "preset" in given:
        if not presets:
            raise ConfigError(
                f"data.preset = {given['preset']!r} is not supported: data model {model!r} has no presets"
            )
        resolved["preset"] = _value("data.preset", given["preset"], str, one_of(tuple(presets)))
        explicit = {**presets[resolved["preset"]], **explicit}
    resolved.update(resolve_table("data", explicit, data_fields(model), gridded))
    if "path" in resolved:
        resolved["path"] = _data_path(resolved["path"], base)
    return resolved


def _table(raw: Mapping[str, Any], section: str) -> dict[str, Any]:
    value = raw.get(section, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{section}] = {value!r} is not a table; allowed: a table of keys")
    return dict(value)


def _finite(name: str, value: Any, _: Mapping[str, Any]) -> float:
    return check_in_range(name, value, -math.inf, math.inf, closed="neither")


def _spaced(name: str, value: Mapping[str, Any]) -> list[float]:
    """{logspace = [a, b, num]} or {linspace = [a, b, num]} written out."""
    if len(value) != 1 or next(iter(value)) not in SPACINGS:
        forms = ", ".join(f"{{{spacing} = [a, b, num]}}" for spacing in SPACINGS)
        raise ConfigError(f"{name} = {value!r} is not a grid; allowed: a list of values, {forms}")
    ((spacing, bounds),) = value.items()
    if not (isinstance(bounds, list) and len(bounds) == 3):
        raise ConfigError(f"{name}.{spacing} = {bounds!r} has the wrong form; allowed: [a, b, num]")
    low = _value(f"{name}.{spacing}[0]", bounds[0], float, _finite)
    high = _value(f"{name}.{spacing}[1]", bounds[1], float, _finite)
    num = _value(f"{name}.{spacing}[2]", bounds[2], int, at_least(1))
    return SPACINGS[spacing](low, high, num).tolist()


def grid_values(key: str, value: Any) -> list[Any]:
    """One grid entry as an explicit, non-empty list without repeats (values are checked per run)."""
    name = f"grid.{key}"
    if key == SEEDS_KEY and isinstance(value, int) and not isinstance(value, bool):
        values = list(range(_value(name, value, int, at_least(1))))
    elif key == SEEDS_KEY and isinstance(value, list):
        values = [_value(name, seed, int, at_least(0)) for seed in value]
    elif key == SEEDS_KEY:
        raise ConfigError(
            f"{name} = {value!r} has the wrong type; allowed: an integer N >= 1 (seeds 0..N-1) or a list"
        )
    elif isinstance(value, Mapping):
        values = _spaced(name, value)
    elif isinstance(value, list):
        values = list(value)
    else:
        raise ConfigError(
            f"{name} = {value!r} has the wrong type; allowed: a list of values or {{logspace = [a, b, num]}}"
        )
    if not values:
        raise ConfigError(f"{name} is empty; allowed: at least one value")
    repeated = _repeated(values)
    if repeated:
        raise ConfigError(f"{name} repeats the value(s) {', '.join(repeated)}; allowed: distinct values")
    return values


def _repeated(values: list[Any]) -> list[str]:
    """The values that occur more than once (1 and 1.0 count as equal), in linear time when they hash."""
    try:
        counts = Counter(values)
    except TypeError:  # unhashable values (lists): compare pairwise
        return sorted({repr(v) for v in values if values.count(v) > 1})
    return sorted(repr(value) for value, count in counts.items() if count > 1)


def _grid_keys(data_model: str) -> tuple[str, ...]:
    """Every key a grid may vary: the run tables' keys (not data.model / data.preset), FLS and the seeds."""
    keys = [f"data.{key}" for key in data_fields(data_model)]
    keys += [f"{section}.{key}" for section in ("model", "train", "stop") for key in TABLES[section]]
    return (*keys, FLS_KEY, SEEDS_KEY)


def _resolve_grid(raw: Mapping[str, Any], data_model: str) -> dict[str, list[Any]]:
    """The grid with explicit value lists, seeds last (innermost in the product)."""
    allowed = _grid_keys(data_model)
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise ConfigError(
            f"grid key(s) {', '.join(map(repr, unknown))} name no config key of data model {data_model!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    if FLS_KEY in raw and "model.alpha" in raw:
        raise ConfigError(
            "grid.fls and grid.model.alpha both set the initialization scale; allowed: one of them"
        )
    grid = {key: grid_values(key, value) for key, value in raw.items() if key != SEEDS_KEY}
    grid[SEEDS_KEY] = grid_values(SEEDS_KEY, raw.get(SEEDS_KEY, 1))
    return grid


def _resolve_phase(given: Mapping[str, Any], grid: Mapping[str, list[Any]]) -> dict[str, Any]:
    phase = resolve_table("phase", given, TABLES["phase"], frozenset())
    axes = [key for key in grid if key not in (*FLS_KNOBS, SEEDS_KEY)]
    if "y" not in phase and axes:
        phase["y"] = axes[0]
    if "y" in phase and phase["y"] not in grid:
        raise ConfigError(
            f"phase.y = {phase['y']!r} is not a grid key; allowed: {', '.join(map(repr, grid))}"
        )
    return phase


def _names(name: str, value: Any) -> list[str]:
    """A list of distinct non-empty strings (claim families, module names)."""
    if not (isinstance(value, list) and all(isinstance(item, str) and item for item in value)):
        raise ConfigError(f"{name} = {value!r} has the wrong type; allowed: a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ConfigError(f"{name} = {value!r} repeats a name; allowed: distinct names")
    return list(value)


def _resolve_claims(given: Mapping[str, Any]) -> dict[str, Any]:
    """The [claims] table: families and modules checked as name lists, each [claims.<key>] a table of scalars
    (checked against the claim's parameters when the runs are analysed, compare.registry)."""
    resolved: dict[str, Any] = {
        "families": _names("claims.families", given.get("families", ["fls"])),
        "modules": _names("claims.modules", given.get("modules", [])),
    }
    for key, thresholds in given.items():
        if key in resolved:
            continue
        if not isinstance(thresholds, Mapping):
            raise ConfigError(
                f"claims.{key} = {thresholds!r} is not a table; allowed: families, modules, or a "
                f"[claims.{key}] table of the claim's thresholds"
            )
        for name, value in thresholds.items():
            if not isinstance(value, bool | int | float | str):
                raise ConfigError(
                    f"claims.{key}.{name} = {value!r} has the wrong type; allowed: a number, string or boolean"
                )
        resolved[key] = dict(thresholds)
    return resolved


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The tables of a TOML file; a missing file or a syntax error is a ConfigError naming the file."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file {str(path)!r} is not text (not UTF-8); allowed: a TOML text file"
        ) from None


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any], *, check_runs: bool = True
) -> dict[str, Any]:
    """The resolved, fully checked config from a TOML file path or from a mapping of tables.

    Raises ConfigError (naming the dotted key, the value and what is allowed) for an unknown key, a wrong type,
    an out-of-range value, a grid key that names no config key, or (with ``check_runs``) a grid point that makes
    an invalid run. ``check_runs=False`` leaves the grid points to whoever expands them (:func:`iter_runs`),
    so a caller that counts the runs first (:func:`count_runs`) or picks one does not build them all.
    """
    raw = dict(source) if isinstance(source, Mapping) else read_toml(source)
    base = "." if isinstance(source, Mapping) else os.path.dirname(os.path.abspath(source))
    unknown = sorted(set(raw) - set(SECTIONS) - {AXES_TABLE})
    if unknown:
        raise ConfigError(
            f"unknown table(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(SECTIONS)}, {AXES_TABLE} "
            "(a quality config's axes, docs/quality.md)"
        )
    data = _table(raw, "data")
    grid = _resolve_grid(_table(raw, "grid"), _data_model(data))
    if DATA_PATH_KEY in grid:
        grid[DATA_PATH_KEY] = [_data_path(path, base) for path in grid[DATA_PATH_KEY]]
    gridded = set(grid) | ({"model.alpha"} if FLS_KEY in grid else set())
    config: dict[str, Any] = {}
    for section in RUN_SECTIONS:
        in_grid = frozenset(key.split(".", 1)[1] for key in gridded if key.startswith(f"{section}."))
        if section == "data":
            config[section] = _resolve_data(data, in_grid, base)
        else:
            config[section] = resolve_table(section, _table(raw, section), TABLES[section], in_grid)
    config["grid"] = grid
    config["phase"] = _resolve_phase(_table(raw, "phase"), config["grid"])
    config["sweep"] = resolve_table("sweep", _table(raw, "sweep"), TABLES["sweep"], frozenset())
    if "claims" in raw:
        config["claims"] = _resolve_claims(_table(raw, "claims"))
    if "certify" in raw:
        config["certify"] = resolve_table("certify", _table(raw, "certify"), TABLES["certify"], frozenset())
    if check_runs:
        expand_runs(config)
    return config


def count_runs(config: Mapping[str, Any]) -> int:
    """The number of runs of a resolved config without making them: the product of the grid's axis lengths."""
    return math.prod(len(values) for values in config["grid"].values())


def run_id(run: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``run`` without its "run_id" key."""
    body = {key: value for key, value in run.items() if key != "run_id"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _scale(model: dict[str, Any], point: Mapping[str, Any]) -> float:
    """FLS = 1 / (c alpha^2) of a run, setting model["alpha"] = 1 / sqrt(c FLS) when the grid gives FLS."""
    if FLS_KEY in point:
        fls = _value(FLS_KEY, point[FLS_KEY], float, POSITIVE)
        model["alpha"] = _value("model.alpha", 1.0 / math.sqrt(model["c"] * fls), float, POSITIVE)
        return fls
    strength = model["c"] * model["alpha"] * model["alpha"]  # inf, not OverflowError, for alpha = 1e200
    if not (0.0 < strength < math.inf and math.isfinite(1.0 / strength)):
        raise ConfigError(
            f"model.alpha = {model['alpha']!r} with model.c = {model['c']!r} gives c alpha^2 = {strength!r}, "
            "so FLS = 1 / (c alpha^2) is not a finite float; allowed: 0 < c alpha^2 < inf with a finite inverse"
        )
    return 1.0 / strength


def _file_keys(path: str, loss: str) -> dict[str, Any]:
    """The keys a run of the user's file records (compare.datafile), or a ConfigError saying what the file
    lacks for ``model.loss``."""
    try:
        return file_run_keys(path, loss=loss)
    except ParameterError as exc:
        raise ConfigError(
            f"{DATA_PATH_KEY} = {path!r} cannot be used with model.loss = {loss!r}: {exc}"
        ) from exc


#: Stop rules that read class labels (docs/design.md section 2): not for regression runs.
LABEL_STOP_RULES = ("positive_risk", "accuracy", "zero_error")


def _check_combination(
    data: Mapping[str, Any], model: Mapping[str, Any], train: Mapping[str, Any], stop: Mapping[str, Any]
) -> None:
    """Constraints between keys of different tables."""
    if model["init"] == "antisymmetric" and model["width"] % 2:
        raise ConfigError(
            f"model.width = {model['width']} is out of range for model.init = 'antisymmetric' "
            "(neurons come in pairs (w, +v), (w, -v)); allowed: even integers >= 2"
        )
    if data.get("task") == "regression" and (stop["rule"] in LABEL_STOP_RULES or model["loss"] != "squared"):
        raise ConfigError(
            f"stop.rule = {stop['rule']!r} with model.loss = {model['loss']!r} needs class labels, and the data "
            "hold real targets (task = 'regression'); allowed: stop.rule = 'risk' with model.loss = 'squared'"
        )
    margin_target = stop["rule"] in TARGET_RULES and data.get("task") != "regression"
    if margin_target and stop["eps"] >= RISK_AT_ZERO[model["loss"]]:
        raise ConfigError(
            f"stop.eps = {stop['eps']!r} is out of range for model.loss = {model['loss']!r}: the zero function "
            f"has risk {RISK_AT_ZERO[model['loss']]:.6g}, so the target would be met at t = 0; allowed: "
            f"0 < eps < {RISK_AT_ZERO[model['loss']]:.6g}"
        )
    if train["engine"] == "sgd" and train["batch_size"] > data["n"]:
        raise ConfigError(
            f"train.batch_size = {train['batch_size']} is out of range for train.engine = 'sgd' with "
            f"data.n = {data['n']}; allowed: integers in [1, {data['n']}]"
        )


def _run(config: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """One run: the tables updated by a grid point, checked as a whole, flattened to dotted keys."""
    given = {section: dict(config[section]) for section in RUN_SECTIONS}
    for key, value in point.items():
        if key not in (FLS_KEY, SEEDS_KEY):
            section, name = key.split(".", 1)
            given[section][name] = value
    data = _resolve_data(given["data"], frozenset())
    data.pop("preset", None)
    skip_alpha = frozenset({"alpha"} if FLS_KEY in point else ())
    model = resolve_table("model", given["model"], TABLES["model"], skip_alpha)
    if model.get("bias") is False:
        del model["bias"]  # a bias-free run is recorded as before model.bias existed (same run id)
    fls = _scale(model, point)
    tables = {
        "data": data,
        "model": model,
        "train": resolve_table("train", given["train"], TABLES["train"], frozenset()),
        "stop": resolve_table("stop", given["stop"], TABLES["stop"], frozenset()),
    }
    if data["model"] == FILE_MODEL:
        data.update(_file_keys(data["path"], model["loss"]))
    _check_combination(data, model, tables["train"], tables["stop"])
    run = {f"{section}.{key}": value for section, table in tables.items() for key, value in table.items()}
    run["seed"] = point[SEEDS_KEY]
    run[FLS_KEY] = fls
    run["run_id"] = run_id(run)
    return run


def expand_runs(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every run of a resolved config (from :func:`load_config`), in grid order with seeds innermost.

    Raises ConfigError when a grid point makes an invalid run or two grid points make the same run.
    """
    return list(iter_runs(config))


def iter_runs(config: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The runs of :func:`expand_runs` one at a time, in the same order, made as they are asked for."""
    grid = config["grid"]
    seen: set[str] = set()
    for values in itertools.product(*grid.values()):
        run = _run(config, dict(zip(grid, values)))
        if run["run_id"] in seen:
            raise ConfigError(
                f"the grid makes the same run twice (run_id {run['run_id']}, e.g. 1 and 1.0 in one list); "
                "allowed: distinct grid points"
            )
        seen.add(run["run_id"])
        yield run
