"""The inputs of a run: its data set, its initialization and its stop rule, from its config keys
(docs/design.md section 5, "The layers"; the model of section 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fls.compare.datafile import FILE_MODEL, file_dataset
from fls.compare.vocabulary import (
    ALPHA_KEY,
    BIAS_KEY,
    D_KEY,
    DATA_MODEL_KEY,
    DATA_PATH_KEY,
    EPS_KEY,
    ETA_KEY,
    INIT_KEY,
    LOSS_KEY,
    MAX_STEPS_KEY,
    SAMPLE_WEIGHT_KEY,
    STEP_POLICY_KEY,
    STOP_RULE_KEY,
    STOP_RULES,
    T_MAX_KEY,
    WIDTH_KEY,
)
from fls.simulate.data import Dataset, make_data
from fls.simulate.initialization import init_params
from fls.simulate.stopping import ZERO_TRAIN_ERROR, PositiveClassLoss, StopRule, TargetRisk, TrainAccuracy
from fls.theory.validation import check_choice, check_positive

#: Train accuracy of the ``accuracy`` stop rule (docs/design.md section 2: train accuracy >= 99 %).
ACCURACY_LEVEL = 0.99


def stop_rule(rule: str, eps: float) -> StopRule:
    """The engine's stop rule for a config's ``stop.rule`` and ``stop.eps`` (docs/design.md section 2)."""
    rule = check_choice(STOP_RULE_KEY, rule, STOP_RULES)
    eps = check_positive(EPS_KEY, eps)
    if rule == "risk":
        return TargetRisk(eps)
    if rule == "positive_risk":
        return PositiveClassLoss(eps)
    if rule == "accuracy":
        return TrainAccuracy(ACCURACY_LEVEL)
    return ZERO_TRAIN_ERROR


def data_params(run: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`simulate.data.make_data` for a run (every ``data.*`` key but the
    model)."""
    return {key[5:]: value for key, value in run.items() if key.startswith("data.") and key != DATA_MODEL_KEY}


def dataset_for(run: Mapping[str, Any]) -> Dataset:
    """The run's data set: model ``data.model`` with its parameters, drawn from the run's seed, or the user's
    file (``data.model = "file"``, :mod:`compare.datafile`), the same for every seed."""
    if run[DATA_MODEL_KEY] == FILE_MODEL:
        return file_dataset(
            run[DATA_PATH_KEY],
            loss=run[LOSS_KEY],
            sample_weight=run[SAMPLE_WEIGHT_KEY],
            expected_digest=run["data.digest"],
        )
    return make_data(run[DATA_MODEL_KEY], seed=int(run["seed"]), **data_params(run))


def has_bias(run: Mapping[str, Any]) -> bool:
    """Whether the run's network has hidden biases (``model.bias``; a run records the key only when true)."""
    return bool(run.get(BIAS_KEY, False))


def initial_state(run: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The run's initialization (W0, v0, b0) (:func:`simulate.initialization.init_params`); b0 is None for a
    bias-free network."""
    drawn = init_params(
        int(run[WIDTH_KEY]),
        int(run[D_KEY]),
        alpha=float(run[ALPHA_KEY]),
        scheme=run[INIT_KEY],
        seed=int(run["seed"]),
        bias=has_bias(run),
    )
    return (*drawn, None) if len(drawn) == 2 else drawn


def initial_parameters(run: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The run's first-layer weights and second layer (W0, v0) (:func:`initial_state` without the biases)."""
    return initial_state(run)[:2]


def training_settings(run: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`compare.staged.train_staged` that a run's config keys set: step size and
    policy, stop rule, loss and budgets (the batch size and seeds are the caller's)."""
    return {
        "eta": float(run[ETA_KEY]),
        "policy": run[STEP_POLICY_KEY],
        "rule": stop_rule(run[STOP_RULE_KEY], float(run[EPS_KEY])),
        "loss": run[LOSS_KEY],
        "max_steps": int(run[MAX_STEPS_KEY]),
        "t_max": float(run[T_MAX_KEY]),
    }
