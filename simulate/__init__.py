"""simulate: data models, initialization, the engines (exact gradient flow, batched discrete training) and the
stopping rules they share."""

from fls.simulate.data import Dataset, make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.initialization import INIT_SCHEMES, init_params
from fls.simulate.result import STATUSES, RunResult
from fls.simulate.stopping import ZERO_TRAIN_ERROR, PositiveClassLoss, StopRule, TargetRisk, TrainAccuracy
from fls.simulate.train import train_deep, train_ensemble

__all__ = [
    "INIT_SCHEMES",
    "STATUSES",
    "ZERO_TRAIN_ERROR",
    "Dataset",
    "PositiveClassLoss",
    "RunResult",
    "StopRule",
    "TargetRisk",
    "TrainAccuracy",
    "init_params",
    "integrate_flow",
    "make_data",
    "train_deep",
    "train_ensemble",
]
