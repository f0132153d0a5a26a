"""The config of a deep c sweep: real images, a deep network h, f = c h (or centered) trained by SGD at step
eta / c to a stop rule; every key checked before a run starts, the grid expanded into runs (docs/deep.md;
docs/design.md section 5, "The layers").

A deep config has the tables

    [data]   name = "digits" | "mnist1d" | "fashion_mnist" | "cifar10", task = "multiclass" | "binary",
             root = "" (the directory of the Fashion-MNIST or CIFAR-10 files; "" = the loader's default),
             n_train = 0, n_test = 0 (keep the first ones; 0 = all)
    [model]  architecture = "mlp" | "cnn" | "vgg" | "resnet", widths = "128" (hidden widths or stage widths,
             joined by "-"), depth = 1, batch_norm = false, alpha = 1.0, c = 1.0, centered = false,
             knob = "multiplier" | "init_scale"
    [train]  eta = 0.5, large_c_step = true, batch_size = 64 (0: full-batch GD), max_steps = 3000,
             save_every = 10, device = "cpu", dtype = "float32", autocast = "none", augmentation = false,
             members_per_batch = 0 (0: by architecture and device, :func:`members_per_batch`), eval_batch = 0
    [stop]   rule = "accuracy" | "risk" | "none", accuracy = 0.99, eps = 0.05, every = 25
    [grid]   "model.c" = [...], seeds = N or a list, and any other key of the tables above
    [sweep]  name, batch_size;  [claims] families = ["deep"], thresholds as for any family

and a run is the flat dict of dotted keys the two-layer sweeps use (:mod:`compare.config`), with ``seed`` and
``run_id``. ``large_c_step`` makes the base step eta / max(1, c), so the run's step is eta / (c max(1, c)):
with f = c h the function moves by about eta c |grad h|^2 per step at step eta / c, which diverges at large c
unless eta shrinks like 1 / c there (docs/deep.md, "Steps").
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

from fls.compare.config import grid_values, read_toml, resolve_table, run_id
from fls.compare.config_schema import (
    POSITIVE,
    SWEEP_NAME,
    Check,
    ConfigError,
    Field,
    at_least,
    one_of,
)
from fls.compare.vocabulary import SEEDS_KEY
from fls.theory.validation import ParameterError, check_in_range

#: Data sets of the deep runs (:mod:`simulate.realdata`).
DATA_SETS = ("digits", "mnist1d", "fashion_mnist", "cifar10")
ARCHITECTURES = ("mlp", "cnn", "vgg", "resnet")
KNOBS = ("multiplier", "init_scale")
DEEP_STOP_RULES = ("accuracy", "risk", "none")


def parse_widths(name: str, value: str) -> tuple[int, ...]:
    """Widths written "16-32" as (16, 32); each an integer >= 1."""
    parts = value.split("-")
    if not value or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ConfigError(f"{name} = {value!r} is not a list of widths; allowed: integers >= 1 joined by '-'")
    return tuple(int(part) for part in parts)


def _widths(name: str, value: Any, _: Mapping[str, Any]) -> str:
    parse_widths(name, value)
    return value


def _proportion(name: str, value: Any, _: Mapping[str, Any]) -> float:
    return check_in_range(name, value, 0.0, 1.0, closed="right")


def _device(name: str, value: Any, _: Mapping[str, Any]) -> str:
    kind, _, index = value.partition(":")
    if kind not in ("cpu", "cuda") or (index and not (kind == "cuda" and index.isdigit())):
        raise ConfigError(f"{name} = {value!r} is not a device; allowed: cpu, cuda, cuda:N")
    return value


WIDTHS = Check(_widths, "integers >= 1 joined by '-', e.g. '16-32'")
NON_NEGATIVE = at_least(0)

#: Every key of a deep config's run tables.
DEEP_TABLES: Mapping[str, Mapping[str, Field]] = {
    "data": {
        "name": Field("digits", str, one_of(DATA_SETS), "data set (docs/train.md, 'Real data')"),
        "task": Field("multiclass", str, one_of(("multiclass", "binary")), "ten classes or odd / even"),
        "root": Field("", str, Check(lambda _, v, __: v, "a directory"), "directory of the image files"),
        "n_train": Field(0, int, NON_NEGATIVE, "training images kept (the first ones; 0 = all)"),
        "n_test": Field(0, int, NON_NEGATIVE, "test images kept (the first ones; 0 = all)"),
    },
    "model": {
        "architecture": Field("mlp", str, one_of(ARCHITECTURES), "the network h (docs/train.md)"),
        "widths": Field("128", str, WIDTHS, "hidden widths (MLP), channels (CNN) or stage widths"),
        "depth": Field(1, int, at_least(1), "convolutions per VGG stage, residual blocks per ResNet stage"),
        "batch_norm": Field(False, bool, Check(lambda _, v, __: v, "true, false"), "ResNet batch norm"),
        "alpha": Field(1.0, float, POSITIVE, "init scale (times torch's default initialization)"),
        "c": Field(1.0, float, POSITIVE, "output multiplier c (FLS = 1 / c at a fixed init)"),
        "centered": Field(False, bool, Check(lambda _, v, __: v, "true, false"), "train c (h - h0)"),
        "knob": Field("multiplier", str, one_of(KNOBS), "c as the multiplier, or as the equivalent init"),
    },
    "train": {
        "eta": Field(0.5, float, POSITIVE, "base step; the run steps eta / c"),
        "large_c_step": Field(
            True, bool, Check(lambda _, v, __: v, "true, false"), "base step eta / max(1, c)"
        ),
        "batch_size": Field(64, int, NON_NEGATIVE, "SGD minibatch (0: full-batch GD)"),
        "max_steps": Field(3000, int, at_least(1), "step budget of a run"),
        "save_every": Field(10, int, at_least(1), "steps between recorded test accuracies"),
        "device": Field("cpu", str, Check(_device, "cpu, cuda, cuda:N"), "where runs train"),
        "dtype": Field("float32", str, one_of(("float32", "float64")), "parameter precision"),
        "autocast": Field("none", str, one_of(("none", "bfloat16")), "mixed precision (float32 only)"),
        "augmentation": Field(False, bool, Check(lambda _, v, __: v, "true, false"), "random crop and flip"),
        "members_per_batch": Field(0, int, NON_NEGATIVE, "members per vmapped ensemble (0: automatic)"),
        "eval_batch": Field(0, int, NON_NEGATIVE, "samples per evaluation chunk (0: all at once)"),
    },
    "stop": {
        "rule": Field("accuracy", str, one_of(DEEP_STOP_RULES), "99 % train accuracy, target loss, or none"),
        "accuracy": Field(
            0.99, float, Check(_proportion, "in (0, 1]"), "train accuracy of the accuracy rule"
        ),
        "eps": Field(0.05, float, POSITIVE, "target training loss of the risk rule"),
        "every": Field(25, int, at_least(1), "steps between checks of the rule"),
    },
}

#: The tables of a deep config that say how to sweep.
SWEEP_TABLE: Mapping[str, Field] = {
    "name": Field("deep", str, SWEEP_NAME, "the sweep's name"),
    "batch_size": Field(64, int, at_least(1), "most runs per batch (one ensemble, one worker task)"),
}


def _table(raw: Mapping[str, Any], section: str) -> dict[str, Any]:
    value = raw.get(section, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{section}] = {value!r} is not a table; allowed: a table of keys")
    return dict(value)


def _resolve_grid(raw: Mapping[str, Any]) -> dict[str, list[Any]]:
    allowed = [f"{section}.{key}" for section, fields in DEEP_TABLES.items() for key in fields]
    unknown = [key for key in raw if key not in (*allowed, SEEDS_KEY)]
    if unknown:
        raise ConfigError(
            f"grid key(s) {', '.join(map(repr, unknown))} name no key of a deep config; "
            f"allowed: {', '.join(allowed)}, seeds"
        )
    grid = {key: grid_values(key, value) for key, value in raw.items() if key != SEEDS_KEY}
    grid[SEEDS_KEY] = grid_values(SEEDS_KEY, raw.get(SEEDS_KEY, 1))
    return grid


def load_deep_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved, fully checked deep config from a TOML path or a mapping of tables (module docstring);
    a bad key or value raises ConfigError naming the dotted key, the value and what is allowed."""
    raw = dict(source) if isinstance(source, Mapping) else read_toml(source)
    sections = (*DEEP_TABLES, "grid", "sweep", "claims")
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown table(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sections)}")
    grid = _resolve_grid(_table(raw, "grid"))
    config: dict[str, Any] = {
        section: resolve_table(section, _table(raw, section), fields, frozenset())
        for section, fields in DEEP_TABLES.items()
    }
    config["grid"] = grid
    config["sweep"] = resolve_table("sweep", _table(raw, "sweep"), SWEEP_TABLE, frozenset())
    config["claims"] = dict(_table(raw, "claims")) or {"families": ["deep"]}
    expand_deep_runs(config)
    return config


def _check_run(run: Mapping[str, Any]) -> None:
    """Constraints between keys: the equivalent-init knob needs a homogeneous net, batch norm a ResNet,
    bfloat16 autocast float32 parameters, the SGD batch no more than the training images."""
    if run["model.batch_norm"] and run["model.architecture"] != "resnet":
        raise ConfigError(
            f"model.batch_norm = true is out of range for model.architecture = {run['model.architecture']!r}; "
            "allowed: 'resnet'"
        )
    if run["train.autocast"] == "bfloat16" and run["train.dtype"] != "float32":
        raise ConfigError("train.autocast = 'bfloat16' needs train.dtype = 'float32'; allowed: float32")
    if run["data.n_train"] and run["train.batch_size"] > run["data.n_train"]:
        raise ConfigError(
            f"train.batch_size = {run['train.batch_size']} is out of range for data.n_train = "
            f"{run['data.n_train']}; allowed: 0 ... {run['data.n_train']}"
        )


def expand_deep_runs(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every run of a resolved deep config, in grid order with seeds innermost; each a flat dict of dotted
    keys with ``seed`` and ``run_id`` (:func:`compare.config.run_id`)."""
    grid = config["grid"]
    runs = []
    for values in itertools.product(*grid.values()):
        run = {f"{s}.{k}": v for s in DEEP_TABLES for k, v in config[s].items()}
        for key, value in zip(grid, values, strict=True):
            if key == SEEDS_KEY:
                continue
            section, name = key.split(".", 1)
            try:
                run[key] = resolve_table(
                    section, {name: value}, {name: DEEP_TABLES[section][name]}, frozenset()
                )[name]
            except ParameterError as exc:
                raise ConfigError(str(exc)) from exc
        run["seed"] = values[-1]
        _check_run(run)
        run["run_id"] = run_id(run)
        runs.append(run)
    return runs
