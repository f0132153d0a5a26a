"""The fls family's preparation of a run table: the theory's predictions for its runs and their regimes, as
columns the claims read (docs/design.md section 5, "The layers"; the limits: docs/design.md section 2).

:func:`prepare_table` is what the registry runs before the claims of the ``fls`` family
(:mod:`compare.registry`): :func:`add_predictions` (the small-alpha and lazy limits of :mod:`compare.limits`,
computed from the runs' own data, initializations and stop rule) and the measured and predicted regimes of
:mod:`compare.regimes` with the boundaries of :func:`bounds_by_cell`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fls.compare import regimes
from fls.compare.extremenet import small_alpha_prediction
from fls.compare.inputs import dataset_for, initial_parameters
from fls.compare.limits import (
    boundaries,
    lazy_limit,
    lazy_test_error,
    predicted_escape_time,
    small_alpha_limit,
    unit_tangent_kernels,
)
from fls.compare.selection import base_cell, network_runs
from fls.compare.vocabulary import (
    ALPHA_KEY,
    C_KEY,
    ENSEMBLE_KEYS,
    EPS_KEY,
    INIT_KEY,
    LOSS_KEY,
    N_KEY,
    T_MAX_KEY,
    WIDTH_KEY,
)
from fls.theory.smallinit import alignment_rates

#: Columns :func:`add_predictions` writes.
PREDICTION_COLUMNS = (
    "lambda_plus",
    "pred_escape_time",
    "pred_Psi",
    "pred_cos_bayes",
    "pred_small_alpha_error",
    "pred_extreme_neurons",
    "pred_lazy_error",
    "pred_lazy_error_se",
)


def add_predictions(table: pd.DataFrame, *, cells: str = "base", lazy_top: int = 3) -> pd.DataFrame:
    """The run table with the predictions of this module for the runs of the network engines.

    For every run: lambda+ and the predicted escape time. For the runs of the selected cells (a cell: the runs
    that share every key but alpha, c and the seed; ``cells="base"``: per init, the middle value of every
    second axis, as the claims read them; ``"all"``: every cell), per seed: the extreme-vector cosines, the
    test error of the network reduced to its extreme vectors at the cell's smallest alpha
    (``pred_small_alpha_error``, :mod:`compare.extremenet`, with its number of effective neurons
    ``pred_extreme_neurons``; both written on every alpha of the seed), and the lazy limit at the cell's ``lazy_top`` largest alphas (``pred_lazy_error``; NaN
    elsewhere: at small alpha the kernel flow needs times ~ 1 / alpha^2 and predicts nothing the network
    does).
    """
    out = table.copy()
    runs = network_runs(out)
    selected = set()
    for init in dict.fromkeys(runs[INIT_KEY]):
        cell = base_cell(runs, init)[0] if cells == "base" else runs[runs[INIT_KEY] == init]
        selected.update(cell.index)
    keys = [k for k in runs.columns if "." in k and k not in ENSEMBLE_KEYS]
    columns = {column: np.full(len(out), np.nan) for column in PREDICTION_COLUMNS}
    position = {label: i for i, label in enumerate(out.index)}
    for _, cell in runs.groupby(keys, dropna=False, sort=False):
        seeds = sorted(cell["seed"].unique())
        datasets = {seed: dataset_for(cell[cell["seed"] == seed].iloc[0].to_dict()) for seed in seeds}
        c, width = float(cell[C_KEY].iloc[0]), int(cell[WIDTH_KEY].iloc[0])
        rates = {seed: alignment_rates(datasets[seed].X, datasets[seed].y, c=c)[0] for seed in seeds}
        for label, seed, alpha in zip(cell.index, cell["seed"], cell[ALPHA_KEY], strict=True):
            columns["lambda_plus"][position[label]] = rates[seed]
            columns["pred_escape_time"][position[label]] = predicted_escape_time(
                rates[seed], alpha=float(alpha), width=width, c=c
            )
        if not selected.intersection(cell.index):
            continue
        alphas = np.sort(cell[ALPHA_KEY].unique())
        smallest = cell[cell[ALPHA_KEY] == alphas[0]]
        first = {seed: smallest[smallest["seed"] == seed].iloc[0].to_dict() for seed in seeds}
        reduced, sizes = small_alpha_prediction(
            [datasets[s] for s in seeds], [initial_parameters(first[s]) for s in seeds], first[seeds[0]]
        )
        for seed, error, size in zip(seeds, reduced, sizes, strict=True):
            limit = small_alpha_limit(datasets[seed], c=c)
            rows = [position[label] for label in cell.index[cell["seed"] == seed]]
            columns["pred_Psi"][rows] = limit.psi
            columns["pred_cos_bayes"][rows] = limit.cos_bayes
            columns["pred_small_alpha_error"][rows] = error
            columns["pred_extreme_neurons"][rows] = size
            kernels = unit_tangent_kernels(datasets[seed], width=width, c=c, scheme=cell[INIT_KEY].iloc[0])
            lazy_rows = cell[(cell["seed"] == seed) & cell[ALPHA_KEY].isin(alphas[-lazy_top:])]
            for label, run in zip(lazy_rows.index, lazy_rows.to_dict("records"), strict=True):
                W0, v0 = initial_parameters(run)
                lazy = lazy_limit(
                    datasets[seed],
                    W0,
                    v0,
                    alpha=float(run[ALPHA_KEY]),
                    c=c,
                    eps=float(run[EPS_KEY]),
                    t_max=float(run[T_MAX_KEY]),
                    scheme=run[INIT_KEY],
                    loss=run[LOSS_KEY],
                    unit_kernels=kernels,
                )
                error, se = lazy_test_error(lazy, datasets[seed])
                columns["pred_lazy_error"][position[label]] = error
                columns["pred_lazy_error_se"][position[label]] = se
    for column, values in columns.items():
        out[column] = values
    return out


def bounds_by_cell(table: pd.DataFrame) -> dict[tuple, dict[str, float]]:
    """The predicted boundaries for every (data.n, model.width) of the table's network runs (seed-0 data)."""
    out = {}
    for (n, width), cell in network_runs(table).groupby([N_KEY, WIDTH_KEY]):
        out[(n, width)] = boundaries(dataset_for(cell.iloc[0].to_dict()), width=int(width))
    return out


def prepare_table(table: pd.DataFrame) -> pd.DataFrame:
    """The run table with the predictions (:func:`add_predictions`) and the ``regime`` and
    ``predicted_regime`` columns (:func:`compare.regimes.label_regimes`)."""
    predicted = add_predictions(table)
    return regimes.label_regimes(predicted, bounds_by_cell(predicted))
