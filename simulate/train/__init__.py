"""Discretized training in torch (docs/design.md section 4, ``train``): batched two-layer ensembles and deep nets.

- :func:`train_ensemble` — E two-layer ReLU networks (per-member seed, alpha, c, step size) in one batched GD or
  SGD computation, with per-member stopping; one :class:`simulate.result.RunResult` per member.
- :func:`train_deep` — MLPs and small CNNs with output multiplier c (optionally centered) at step eta / c.
- Stop rules (:class:`TargetRisk`, :class:`PositiveClassLoss`, :class:`TrainAccuracy`, :data:`ZERO_TRAIN_ERROR`;
  from :mod:`simulate.stopping`, shared with the flow engine), the record schedule (:class:`SaveSchedule`) and
  device handling (:func:`placement`, :func:`configure_threads`).
"""

from fls.simulate.stopping import (
    ZERO_TRAIN_ERROR,
    Evaluation,
    PositiveClassLoss,
    StopRule,
    TargetRisk,
    TrainAccuracy,
)
from fls.simulate.train.deep import MLP, Architecture, SmallCNN, train_deep
from fls.simulate.train.device import DEFAULT_THREADS, Placement, configure_threads, placement
from fls.simulate.train.ensemble import init_ensemble, train_ensemble
from fls.simulate.train.schedule import SaveSchedule

__all__ = [
    "DEFAULT_THREADS",
    "MLP",
    "ZERO_TRAIN_ERROR",
    "Architecture",
    "Evaluation",
    "Placement",
    "PositiveClassLoss",
    "SaveSchedule",
    "SmallCNN",
    "StopRule",
    "TargetRisk",
    "TrainAccuracy",
    "configure_threads",
    "init_ensemble",
    "placement",
    "train_deep",
    "train_ensemble",
]
