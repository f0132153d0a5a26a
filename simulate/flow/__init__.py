"""flow: the high-precision, switch-aware gradient-flow engine (DESIGN.md section 4)."""

from simulate.flow.api import integrate_flow
from simulate.flow.recording import SaveSchedule
from simulate.flow.stopping import PositiveClassLoss, StopRule, TargetRisk, TrainAccuracy, zero_train_error

__all__ = [
    "PositiveClassLoss",
    "SaveSchedule",
    "StopRule",
    "TargetRisk",
    "TrainAccuracy",
    "integrate_flow",
    "zero_train_error",
]
