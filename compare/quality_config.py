"""The quality family's sweeps, one per axis of its claim, and the controls (docs/design.md section 5, "The
layers"; the family and its axes: docs/quality.md).

The claim is checked along three axes (:mod:`compare.quality_axes`), each a sweep of its own:

- ``alpha``: the main sweep, ``compare/configs/quality.toml`` without its ``[axes]`` table: FLS varies at one
  width (S_3, width 128);
- ``width``: the same task at one alpha, the width (capacity) varying, from ``[axes.width]``;
- ``task``: a second task over the main sweep's alphas, from ``[axes.task]`` (changes to ``[data]``);

plus the controls of :data:`CONTROLS` (informational). The ``[axes]`` table's keys are documented in
the sweep schema (:data:`compare.config_schema.AXES_KEYS`, so docs/config.md lists them) and checked here
(:func:`read_axes`; every error names the key ``axes.<axis>.<key>`` and what is allowed), together with the
sweeps they make; :func:`compare.config.load_config` accepts the table and leaves it out of the resolved config,
so ``fls sweep`` runs the main sweep of the same file (:func:`main_sweep`). An axis whose table is absent is not swept.

``axes.width.dtype = "float32"`` trains that sweep's networks in float32 (the kernel fits and measures stay in
float64): the run records ``train.dtype``, so its id differs from the float64 run's. Measured on S_3 at width
2048, n = 800, alpha = 0.05: training 2.3x faster, the same step count, test MSE of the network equal to 4
digits and of the tangent after-kernel within 2 % (docs/quality.md, "Precision").
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fls.compare.config import ConfigError, expand_runs, load_config, run_id
from fls.compare.config_schema import AXES_KEYS, AXES_TABLE, PRECISIONS
from fls.compare.vocabulary import ALPHA_KEY, N_KEY, SEEDS_KEY, WIDTH_KEY
from fls.theory.validation import ParameterError, check_choice, check_int, check_positive

#: The packaged default quality sweep.
QUALITY_CONFIG = Path(__file__).parent / "configs" / "quality.toml"

#: Sweep names: the main sweep (the alpha axis) and the sweeps of the other two axes.
MAIN_SWEEP, WIDTH_SWEEP, TASK_SWEEP = "staircase-regression", "width", "task"

#: The axis each sweep varies; the controls vary none.
SWEEP_AXES = {MAIN_SWEEP: "alpha", WIDTH_SWEEP: "width", TASK_SWEEP: "task"}

#: Each sweep's store is ``<out>/store-<sweep name>`` (the layout `fls verify --family quality` writes).
STORE_PREFIX = "store-"

#: The run key that records a non-default training precision.
DTYPE_KEY = "train.dtype"

#: The keys of each axis table: name -> (required, what is allowed), from the schema's [axes] entry.
AXIS_KEYS: Mapping[str, Mapping[str, tuple[bool, str]]] = {
    axis: {key: (required, allowed) for key, (required, _, allowed, _) in keys.items()}
    for axis, keys in AXES_KEYS.items()
}

#: The controls run next to the axes, as changes to the main sweep (``None`` removes a key): the sign of S_3
#: as labels (the error is then an error rate), and the parity x1 x2 x3 (no staircase to climb), each at the
#: largest and the smallest FLS of the main grid. Both keep the squared loss, so every kernel peer is an exact
#: ridgeless fit: a logistic-loss variant ("model": {"loss": "logistic"}) fits its kernels by kernel gradient
#: flow to the same target risk, which at n = 800 takes minutes per kernel (10^5 to 10^6 units of normalized
#: time, and t_max for the conjugate kernel at init, whose 128 features do not separate the data).
CONTROLS: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "staircase-classification": {
        "data": {"task": "classification"},
        "grid": {ALPHA_KEY: [0.05, 2.0], SEEDS_KEY: 2},
        "sweep": {"name": "quality-classification"},
    },
    "parity": {
        "data": {"model": "parity", "task": None},
        "grid": {ALPHA_KEY: [0.05, 2.0], SEEDS_KEY: 2},
        "sweep": {"name": "quality-parity"},
    },
}


@dataclass(frozen=True)
class WidthAxis:
    """``[axes.width]``: the main task at one alpha over the widths, with ``seeds`` seeds, trained in ``dtype``."""

    widths: tuple[int, ...]
    alpha: float
    seeds: int
    dtype: str = "float64"


@dataclass(frozen=True)
class TaskAxis:
    """``[axes.task]``: the main sweep's grid on the task the ``data`` changes make, with ``seeds`` seeds."""

    data: Mapping[str, Any]
    seeds: int


@dataclass(frozen=True)
class QualitySweep:
    """One sweep of the family: its name, the axis it varies (None for a control), its resolved config
    (:func:`compare.config.load_config`) and its runs, ready for :func:`compare.sweep.run_sweep`."""

    name: str
    axis: str | None
    config: dict[str, Any]
    runs: list[dict[str, Any]]


def _axis_table(axes: Mapping[str, Any], axis: str) -> dict[str, Any] | None:
    """The table ``axes.<axis>`` with its keys checked against :data:`AXIS_KEYS` (None when absent)."""
    table = axes.get(axis)
    if table is None:
        return None
    allowed = AXIS_KEYS[axis]
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"{AXES_TABLE}.{axis} = {table!r} is not a table; allowed keys: {', '.join(allowed)}"
        )
    unknown = sorted(set(table) - set(allowed))
    missing = [key for key, (required, _) in allowed.items() if required and key not in table]
    if unknown or missing:
        key = (unknown or missing)[0]
        problem = "is not a key of" if unknown else "is missing from"
        raise ConfigError(
            f"{AXES_TABLE}.{axis}.{key} {problem} [{AXES_TABLE}.{axis}]; allowed: "
            + "; ".join(f"{name} ({words})" for name, (_, words) in allowed.items())
        )
    return dict(table)


def _checked(axis: str, key: str, check: Any, value: Any, **options: Any) -> Any:
    """``check(name, value)`` with the name ``axes.<axis>.<key>``; a ParameterError becomes a ConfigError."""
    try:
        return check(f"{AXES_TABLE}.{axis}.{key}", value, **options)
    except ParameterError as exc:
        raise ConfigError(str(exc)) from None


def _widths(value: Any) -> tuple[int, ...]:
    name = f"{AXES_TABLE}.width.widths"
    if not isinstance(value, list) or len(set(map(repr, value))) < 2:
        raise ConfigError(f"{name} = {value!r} is not usable; allowed: {AXIS_KEYS['width']['widths'][1]}")
    widths = tuple(_checked("width", "widths", check_int, w) for w in value)
    if len(set(widths)) != len(widths):
        raise ConfigError(f"{name} = {value!r} repeats a width; allowed: {AXIS_KEYS['width']['widths'][1]}")
    return tuple(sorted(widths))


def read_axes(raw: Mapping[str, Any]) -> tuple[WidthAxis | None, TaskAxis | None]:
    """The width and task axes of a quality config's tables ``raw`` (None for an absent one), checked."""
    axes = raw.get(AXES_TABLE, {})
    if not isinstance(axes, Mapping) or set(axes) - set(AXIS_KEYS):
        stray = sorted(set(axes) - set(AXIS_KEYS)) if isinstance(axes, Mapping) else [repr(axes)]
        raise ConfigError(
            f"{AXES_TABLE}.{stray[0]} is not an axis of the quality family; allowed: {', '.join(AXIS_KEYS)}"
        )
    width, task = _axis_table(axes, "width"), _axis_table(axes, "task")
    width_axis = task_axis = None
    if width is not None:
        width_axis = WidthAxis(
            _widths(width["widths"]),
            _checked("width", "alpha", check_positive, width["alpha"]),
            _checked("width", "seeds", check_int, width["seeds"], minimum=2),
            _checked("width", "dtype", check_choice, width.get("dtype", PRECISIONS[0]), choices=PRECISIONS),
        )
    if task is not None:
        if not isinstance(task["data"], Mapping) or not task["data"]:
            raise ConfigError(
                f"{AXES_TABLE}.task.data = {task['data']!r} changes nothing; allowed: "
                f"{AXIS_KEYS['task']['data'][1]}, e.g. {{ k = 4 }}"
            )
        task_axis = TaskAxis(
            dict(task["data"]), _checked("task", "seeds", check_int, task["seeds"], minimum=2)
        )
    return width_axis, task_axis


def _changed(base: Mapping[str, Any], changes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A deep copy of the config tables ``base`` with ``changes`` (table -> key -> value; None removes)."""
    config = copy.deepcopy(dict(base))
    for table, values in changes.items():
        for key, value in values.items():
            if value is None:
                config[table].pop(key, None)
            else:
                config[table][key] = value
    return config


def _sweep(name: str, tables: Mapping[str, Any], origin: str, dtype: str = PRECISIONS[0]) -> QualitySweep:
    """The checked sweep of the config ``tables`` (errors prefixed by ``origin``); runs in a non-default
    ``dtype`` record it, which changes their ids."""
    try:
        config = load_config(tables)
        runs = expand_runs(config)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if dtype != PRECISIONS[0]:
        for run in runs:
            run[DTYPE_KEY] = dtype
            run["run_id"] = run_id(run)
    return QualitySweep(name, SWEEP_AXES.get(name), config, runs)


def read_quality_config(source: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The tables of a quality config: a TOML path or a mapping of tables (default :data:`QUALITY_CONFIG`)."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    path = QUALITY_CONFIG if source is None else Path(source)
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"quality config {str(path)!r} cannot be read as TOML: {exc}") from exc


def quality_sweeps(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> dict[str, QualitySweep]:
    """Every sweep of a quality config (default :data:`QUALITY_CONFIG`): the main one, those of its width and
    task axes, and the controls, checked in full before anything runs."""
    raw = read_quality_config(source)
    width, task = read_axes(raw)
    base = {table: values for table, values in raw.items() if table != AXES_TABLE}
    sweeps = {MAIN_SWEEP: _sweep(MAIN_SWEEP, base, "quality config")}
    name = base.get("sweep", {}).get("name", "quality")
    if width is not None:
        # largest first (n, then width): the costliest batches start first, so no worker is left with one
        sizes = sorted(base["grid"].get(N_KEY, []), reverse=True)
        grid = {key: value for key, value in base["grid"].items() if key not in (ALPHA_KEY, SEEDS_KEY, N_KEY)}
        grid = {**({N_KEY: sizes} if sizes else {}), **grid}
        grid.update(
            {WIDTH_KEY: sorted(width.widths, reverse=True), ALPHA_KEY: [width.alpha], SEEDS_KEY: width.seeds}
        )
        tables = {**copy.deepcopy(base), "grid": grid}
        tables = _changed(tables, {"sweep": {"name": f"{name}-width"}})
        sweeps[WIDTH_SWEEP] = _sweep(WIDTH_SWEEP, tables, f"{AXES_TABLE}.width", width.dtype)
    if task is not None:
        changes = {"data": task.data, "grid": {SEEDS_KEY: task.seeds}, "sweep": {"name": f"{name}-task"}}
        sweeps[TASK_SWEEP] = _sweep(TASK_SWEEP, _changed(base, changes), f"{AXES_TABLE}.task.data")
        if sweeps[TASK_SWEEP].config["data"] == sweeps[MAIN_SWEEP].config["data"]:
            raise ConfigError(
                f"{AXES_TABLE}.task.data = {dict(task.data)!r} makes the main sweep's task again; allowed: "
                f"{AXIS_KEYS['task']['data'][1]}"
            )
    for control, changes in CONTROLS.items():
        sweeps[control] = _sweep(control, _changed(base, changes), f"control {control!r}")
    return sweeps


def main_sweep(tables: Mapping[str, Any]) -> QualitySweep | None:
    """The main (alpha-axis) sweep of the config ``tables`` when they have an ``[axes]`` table (a quality
    config: every sweep of the file is checked first, so a bad axis is refused here too); None for another
    config. ``fls sweep`` and ``fls run`` on a quality config run this sweep with the quality runner."""
    if AXES_TABLE not in tables:
        return None
    return quality_sweeps(tables)[MAIN_SWEEP]


def sweep_store(out_dir: str | os.PathLike[str], name: str) -> Path:
    """The store of the sweep ``name`` under ``out_dir``: ``out_dir/store-<name>``."""
    return Path(out_dir) / f"{STORE_PREFIX}{name}"


def axis_stores(main_store: str | os.PathLike[str]) -> dict[str, Path]:
    """The stores of the other axes' sweeps beside ``main_store`` (axis -> store), found only when
    ``main_store`` is the main sweep's store in the layout of :func:`sweep_store`; empty otherwise."""
    main_store = Path(main_store)
    if main_store.name != sweep_store("", MAIN_SWEEP).name:
        return {}
    beside = {SWEEP_AXES[name]: sweep_store(main_store.parent, name) for name in (WIDTH_SWEEP, TASK_SWEEP)}
    return {axis: path for axis, path in beside.items() if path.is_dir()}
