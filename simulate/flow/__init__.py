"""flow: the high-precision, switch-aware gradient-flow engine (docs/design.md section 4)."""

from fls.simulate.flow.api import SWEEP_ATOL_PER_RTOL, SWEEP_METHOD, SWEEP_RTOL, integrate_flow
from fls.simulate.flow.recording import SaveSchedule
from fls.simulate.stopping import ZERO_TRAIN_ERROR, PositiveClassLoss, StopRule, TargetRisk, TrainAccuracy

__all__ = [
    "SWEEP_ATOL_PER_RTOL",
    "SWEEP_METHOD",
    "SWEEP_RTOL",
    "ZERO_TRAIN_ERROR",
    "PositiveClassLoss",
    "SaveSchedule",
    "StopRule",
    "TargetRisk",
    "TrainAccuracy",
    "integrate_flow",
]
