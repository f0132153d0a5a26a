"""The run vocabulary every layer of compare/ shares: config key names, engines, stop rules, step policies,
the keys a batch may vary, and the key that groups runs into batches (docs/design.md section 5, "The layers").

A run is a flat dict of dotted config keys -> scalars (docs/design.md section 5): the names here are the ones
every other module reads it by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The dotted keys of a run (a flat dict, docs/config.md) that the runners, limits, claims and figures read.
DATA_MODEL_KEY, N_KEY, D_KEY = "data.model", "data.n", "data.d"
DATA_PATH_KEY, SAMPLE_WEIGHT_KEY = "data.path", "data.sample_weight"
WIDTH_KEY, C_KEY, INIT_KEY, LOSS_KEY, ALPHA_KEY = (
    "model.width",
    "model.c",
    "model.init",
    "model.loss",
    "model.alpha",
)
BIAS_KEY = "model.bias"
ENGINE_KEY, ETA_KEY, STEP_POLICY_KEY = "train.engine", "train.eta", "train.step_policy"
MAX_STEPS_KEY, T_MAX_KEY, BATCH_SIZE_KEY, RTOL_KEY, METHOD_KEY = (
    "train.max_steps",
    "train.t_max",
    "train.batch_size",
    "train.rtol",
    "train.method",
)
STOP_RULE_KEY, EPS_KEY = "stop.rule", "stop.eps"

#: Grid keys that are not a table key: FLS values (alpha derived from them) and the seeds.
FLS_KEY, SEEDS_KEY = "fls", "seeds"

#: Engines a run can use (docs/design.md section 4): discrete full-batch or minibatch training, the
#: high-precision flow, the lazy-limit kernel flow.
ENGINES = ("gd", "sgd", "flow", "kernel")

#: Runge-Kutta methods the flow engine may integrate its smooth pieces with (``train.method``; the solvers of
#: :func:`fls.simulate.flow.integrate_flow`, docs/flow.md "Choosing a method and tolerances").
FLOW_METHODS = ("RK12", "RK23", "RK45", "DOP853", "Radau", "BDF")

#: Stopping rules (docs/design.md section 2): training risk <= eps, mean loss over y = +1 <= eps, train
#: accuracy >= 99 %, zero train error.
STOP_RULES = ("risk", "positive_risk", "accuracy", "zero_error")

#: Engines whose runs are networks (the kernel engine is a prediction, not a run of the network).
NETWORK_ENGINES = ("gd", "sgd", "flow")

#: Step-size policies a config may name in ``train.step_policy`` (the first is the default; docs/design.md
#: section 4, implemented by :mod:`compare.staged`).
STEP_POLICIES = ("sharpness", "constant")

#: Keys that may differ within one batch: the runner trains a batch as an ensemble over them.
ENSEMBLE_KEYS = (ALPHA_KEY, C_KEY, "seed", FLS_KEY, "run_id")

#: Environment variables that set the thread count of OpenMP, OpenBLAS and MKL in a process (one per worker).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def group_key(run: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The key of the batch a run belongs to: every (key, repr(value)) but :data:`ENSEMBLE_KEYS`, sorted.

    Runs with the same key differ only in alpha, c and the seed, so one ensemble trains them together; the
    repr keeps 1, 1.0 and True apart.
    """
    return tuple(sorted((key, repr(value)) for key, value in run.items() if key not in ENSEMBLE_KEYS))
