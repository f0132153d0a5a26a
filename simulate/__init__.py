"""simulate: data models, initialization and the engines (exact gradient flow, batched discrete training)."""

from simulate.data import Dataset, make_data
from simulate.flow import integrate_flow
from simulate.initialization import INIT_SCHEMES, init_params
from simulate.result import STATUSES, RunResult
from simulate.train import train_deep, train_ensemble

__all__ = [
    "INIT_SCHEMES",
    "STATUSES",
    "Dataset",
    "RunResult",
    "init_params",
    "integrate_flow",
    "make_data",
    "train_deep",
    "train_ensemble",
]
