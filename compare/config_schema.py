"""The config schema: every key of a sweep config with its TOML type, default, allowed range and meaning
(docs/design.md section 5, "The layers"). :mod:`compare.config` checks a config against it, and
:mod:`compare.config_reference` writes docs/config.md from it, so the page and the checks cannot disagree.

A key's range is stated by its check (:class:`Check`: the function that raises for a bad value and the words
for what it allows). The [data] parameters of each data model are checked by simulate.data's own checks; their
ranges and meanings are :data:`DATA_PARAMETERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fls.compare.datafile import FILE_MODEL, WEIGHT_SOURCES
from fls.compare.vocabulary import ENGINES, FLOW_METHODS, FLS_KEY, SEEDS_KEY, STEP_POLICIES, STOP_RULES
from fls.simulate.data import DEFAULT_N_TEST, MODELS
from fls.simulate.flow import SWEEP_ATOL_PER_RTOL, SWEEP_METHOD, SWEEP_RTOL
from fls.simulate.initialization import INIT_SCHEMES
from fls.simulate.userdata import FILE_TYPES
from fls.theory.losses import LOSSES
from fls.theory.validation import ParameterError, check_choice, check_in_range, check_int, check_positive

#: Tables of a config file, in the order a resolved config lists them.
SECTIONS = ("data", "model", "train", "stop", "grid", "phase", "sweep", "claims", "certify")
#: Tables whose keys define a run (the others say how to sweep, plot and analyse).
RUN_SECTIONS = ("data", "model", "train", "stop")
#: Axes a phase diagram can put on x.
PHASE_X = (FLS_KEY, "model.alpha")
#: Keys that set the feature-learning strength, never a phase diagram's second axis by default.
FLS_KNOBS = (FLS_KEY, "model.alpha", "model.c")

#: The default of a key that must be given, and of a key that may be left out.
REQUIRED, OPTIONAL = object(), object()
#: TOML types in words.
TYPE_NAMES = {int: "an integer", float: "a real number", str: "a string", bool: "a boolean (true or false)"}

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class ConfigError(ParameterError):
    """A sweep config is invalid: the message names the dotted key, the value and what is allowed."""


@dataclass(frozen=True)
class Check:
    """A range check, ``check(name, value, resolved) -> normalized value`` (raises ParameterError naming
    ``name``), and what it allows, in words."""

    run: Callable[[str, Any, Mapping[str, Any]], Any]
    allowed: str

    def __call__(self, name: str, value: Any, resolved: Mapping[str, Any]) -> Any:
        return self.run(name, value, resolved)


@dataclass(frozen=True)
class Field:
    """One config key: its default (or REQUIRED / OPTIONAL), its TOML type, its range check and its meaning.

    ``check(name, value, resolved)`` receives the value already of type ``kind`` (ints widened to float for
    float keys), the keys of the same table resolved so far, and returns the normalized value or raises
    ParameterError naming ``name``.
    """

    default: Any
    kind: type
    check: Callable[[str, Any, Mapping[str, Any]], Any]
    meaning: str = ""


def at_least(minimum: int) -> Check:
    """Integers >= ``minimum``."""
    return Check(lambda name, value, _: check_int(name, value, minimum=minimum), f"integer >= {minimum}")


POSITIVE = Check(lambda name, value, _: check_positive(name, value), "> 0")
TOLERANCE = Check(lambda name, value, _: check_in_range(name, value, 0.0, 1.0, closed="neither"), "in (0, 1)")
ANY_TEXT = Check(lambda name, value, _: value, "a grid key (checked against [grid])")


def one_of(choices: tuple[Any, ...]) -> Check:
    """One of ``choices``."""
    return Check(lambda name, value, _: check_choice(name, value, choices), ", ".join(map(str, choices)))


def _sweep_name(name: str, value: Any, _: Mapping[str, Any]) -> str:
    if not _NAME_PATTERN.fullmatch(value):
        raise ConfigError(
            f"{name} = {value!r} is not a usable name; allowed: letters, digits, '.', '_', '-', not starting with '.'"
        )
    return value


SWEEP_NAME = Check(_sweep_name, "letters, digits, '.', '_', '-'; not starting with '.'")

#: ``certify.cells``: claim (a)'s cell, or every cell of the grid; ``certify.inits``: every init of the grid.
CERTIFY_CELLS = ("headline", "all")
CERTIFY_ALL = "all"


def _certify_inits(name: str, value: Any, _: Mapping[str, Any]) -> str:
    return check_choice(name, value, (CERTIFY_ALL, *INIT_SCHEMES))


#: The keys of every table but [data] (whose keys depend on the data model), [grid] and [claims].
TABLES: Mapping[str, Mapping[str, Field]] = {
    "model": {
        "width": Field(100, int, at_least(1), "hidden width m"),
        "c": Field(1.0, float, POSITIVE, "output multiplier c (FLS = 1 / (c alpha^2))"),
        "init": Field(
            "random_sign", str, one_of(INIT_SCHEMES), "second-layer initialization (design section 2)"
        ),
        "loss": Field(
            "logistic",
            str,
            one_of(LOSSES),
            "training loss: logistic or exponential on labels in {-1, +1}, squared (f - y)^2 / 2 on real targets",
        ),
        "bias": Field(
            OPTIONAL,
            bool,
            Check(lambda name, value, _: value, "true, false"),
            "hidden biases b_j: f(x) = c sum_j v_j relu(<w_j, x> + b_j), b_j(0) = alpha bbar_j (design section "
            "2) [default: false; a run records the key only when true, so bias-free run ids stay as they were]",
        ),
        "alpha": Field(
            REQUIRED, float, POSITIVE, "initialization scale (or grid it, directly or through fls)"
        ),
    },
    "train": {
        "engine": Field("gd", str, one_of(ENGINES), "engine (design section 4; kernel: the lazy limit)"),
        "eta": Field(0.1, float, POSITIVE, "step size, or its scale under the sharpness policy"),
        "step_policy": Field(STEP_POLICIES[0], str, one_of(STEP_POLICIES), "how the step sizes are chosen"),
        "max_steps": Field(20_000, int, at_least(1), "most discrete steps of a run"),
        "t_max": Field(1e4, float, POSITIVE, "latest gradient-flow time of a run"),
        "batch_size": Field(32, int, at_least(1), "minibatch size of the sgd engine"),
        "rtol": Field(
            SWEEP_RTOL,
            float,
            TOLERANCE,
            f"relative tolerance of the flow engine (atol = rtol * {SWEEP_ATOL_PER_RTOL:g}; the measured sweep "
            "default, docs/flow.md)",
        ),
        "method": Field(
            SWEEP_METHOD,
            str,
            one_of(FLOW_METHODS),
            "solver of the flow engine's smooth pieces: explicit RK12, RK23, RK45, DOP853 or implicit Radau, BDF (the "
            "measured sweep default, docs/flow.md)",
        ),
    },
    "stop": {
        "rule": Field("risk", str, one_of(STOP_RULES), "stopping rule (design section 2)"),
        "eps": Field(0.05, float, POSITIVE, "target of the risk and positive_risk rules"),
    },
    "phase": {
        "x": Field(FLS_KEY, str, one_of(PHASE_X), "x axis of the phase diagram"),
        "y": Field(OPTIONAL, str, ANY_TEXT, "y axis [default: the first grid key that is not an FLS knob]"),
    },
    "sweep": {
        "name": Field("sweep", str, SWEEP_NAME, "the sweep's name (its output folder under fls-out/)"),
        "batch_size": Field(64, int, at_least(1), "most runs per batch (one ensemble, one worker task)"),
    },
    "certify": {
        "enabled": Field(
            True,
            bool,
            Check(lambda name, value, _: value, "true, false"),
            "re-run a subset of the discrete runs with the exact flow and report the discretization gap "
            '(docs/design.md section 5, "Certification by the exact flow"); `fls verify` certifies unless '
            "this is false, `fls sweep` and `fls report` when the config has a [certify] table",
        ),
        "cells": Field(
            CERTIFY_CELLS[0],
            str,
            one_of(CERTIFY_CELLS),
            "headline: the cell claim (a) reads (headline init's middle value of every second axis); all: "
            "every cell of the grid",
        ),
        "seeds": Field(2, int, at_least(1), "the first N seeds of the grid (every alpha of each cell)"),
        "inits": Field(
            CERTIFY_ALL,
            str,
            Check(_certify_inits, f"{CERTIFY_ALL}, {', '.join(INIT_SCHEMES)}"),
            f"{CERTIFY_ALL}: every init of the grid; or one init scheme",
        ),
    },
}

#: The [data] parameters of the data models: allowed range and meaning (the checks are simulate.data's).
DATA_PARAMETERS: Mapping[str, tuple[str, str]] = {
    "kappa": ("> 0", "class-signal strength of the Gaussian mixture"),
    "sigma": ("> 0", "noise standard deviation of the Gaussian mixture"),
    "balanced": ("true, false", "exactly balanced classes"),
    "rho": ("in [0, 0.5)", "fraction of flipped training labels"),
    "p": ("in [0, 1]", "probability of the minority group's direction"),
    "k": ("integer in [1, d]", "order of the staircase or parity"),
    "task": ("classification, regression", "labels sign(S_k) or real targets S_k"),
}


def _data_file(name: str, value: Any, _: Mapping[str, Any]) -> str:
    if not value.endswith(FILE_TYPES):
        raise ConfigError(
            f"{name} = {value!r} is not a data file; allowed: a path ending in {', '.join(FILE_TYPES)}"
        )
    return value


#: The [data] keys of ``data.model = "file"`` (compare.datafile): the file, and where its weights come from.
FILE_FIELDS: Mapping[str, Field] = {
    "path": Field(
        REQUIRED,
        str,
        Check(_data_file, f"a path ending in {', '.join(FILE_TYPES)}"),
        "the data file, relative to the config file: arrays X, y, optional X_test, y_test, sample_weight "
        "(design section 3); its runs record data.n, data.d, data.n_test, data.task and data.digest",
    ),
    "sample_weight": Field(
        WEIGHT_SOURCES[0],
        str,
        one_of(WEIGHT_SOURCES),
        "file: the file's sample weights enter the risk (mean-normalized); uniform: every sample weighs 1",
    ),
}

#: Every value of ``data.model``: the synthetic models of simulate.data and the user's file.
DATA_MODELS = (*MODELS, FILE_MODEL)

#: The keys of [claims] (checked by compare.config; thresholds checked against the claims by
#: compare.registry).
CLAIMS_KEYS: Mapping[str, tuple[str, str, str, str]] = {
    "families": (
        "list of strings",
        '["fls"]',
        "registered families",
        "the claim families to check, in order",
    ),
    "modules": (
        "list of strings",
        "[]",
        "importable module names",
        "modules that add families (docs/claims.md)",
    ),
    "<key>.<name>": (
        "number, string or boolean",
        "claim default",
        "a keyword parameter of claim <key>",
        "a threshold of one claim, e.g. [claims.b] aligned_psi = 0.95",
    ),
}


#: The table of a quality config that declares the axes beyond alpha.
AXES_TABLE = "axes"

#: Training precisions a quality config's width axis may train in (``axes.width.dtype``).
PRECISIONS = ("float64", "float32")

#: The [axes] table of a quality config (docs/quality.md, "The axes"): not part of a run or of the resolved
#: config; the quality family reads and checks it (compare.quality_config.read_axes, which also checks the
#: sweeps it makes), and compare.config accepts it only so that one file serves `fls sweep` (the main, alpha
#: axis) and `fls verify --family quality` (every axis). Axis -> key -> (required, TOML type, allowed, meaning).
AXES_KEYS: Mapping[str, Mapping[str, tuple[bool, str, str, str]]] = {
    "width": {
        "widths": (
            True,
            "list of integers",
            "a list of at least 2 distinct integers >= 1",
            "the widths of the width axis",
        ),
        "alpha": (True, "real number", "a real number > 0", "the init scale the width axis holds fixed"),
        "seeds": (True, "integer", "an integer >= 2", "seeds per (n, width)"),
        "dtype": (
            False,
            "string",
            f"one of {', '.join(PRECISIONS)} [default: {PRECISIONS[0]}]",
            "training precision of the width sweep (kernel fits and measures stay float64)",
        ),
    },
    "task": {
        "data": (
            True,
            "table",
            "a table of [data] keys that change the main sweep's task",
            "the second task, e.g. { k = 4 }",
        ),
        "seeds": (True, "integer", "an integer >= 2", "seeds per (n, alpha) of the task axis"),
    },
}


@cache
def data_fields(model: str) -> dict[str, Field]:
    """The [data] keys of one data model: sizes, then the model's parameters with simulate.data's checks (the
    user's file: :data:`FILE_FIELDS`)."""
    if model == FILE_MODEL:
        return dict(FILE_FIELDS)
    spec = MODELS[model]
    fields = {
        "n": Field(REQUIRED, int, at_least(1), "training-set size"),
        "d": Field(REQUIRED, int, at_least(spec.min_d), "input dimension"),
        "n_test": Field(
            DEFAULT_N_TEST, int, at_least(1), "test-set size (a fixed set from an independent seed)"
        ),
    }
    for key, (default, check) in spec.parameters.items():
        allowed, meaning = DATA_PARAMETERS[key]
        fields[key] = Field(default, type(default), Check(check, allowed), meaning)
    return fields


#: Grid keys that are not table keys, with their meaning.
GRID_SPECIAL = {
    FLS_KEY: "FLS values; alpha = 1 / sqrt(c FLS) (instead of model.alpha)",
    SEEDS_KEY: "N (seeds 0..N-1) or a list of seeds; default 1",
}
