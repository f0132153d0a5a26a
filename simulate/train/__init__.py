"""Discretized training in torch (docs/design.md section 4, ``train``): batched two-layer ensembles and deep nets.

- :func:`train_ensemble` — E two-layer ReLU networks (per-member seed, alpha, c, step size) in one batched GD or
  SGD computation, with per-member stopping; one :class:`simulate.result.RunResult` per member.
- :func:`train_deep` — MLPs and small CNNs with output multiplier c (optionally centered) at step eta / c.
- Stop rules (:class:`TargetRisk`, :class:`PositiveClassLoss`, :class:`TrainAccuracy`, :data:`ZERO_TRAIN_ERROR`;
  from :mod:`simulate.stopping`, shared with the flow engine), the record schedule (:class:`SaveSchedule`) and
  device handling (:func:`placement`, :func:`configure_threads`).

The names are imported from their modules on first access (:mod:`fls.lazyexports`), so importing this package
does not import torch until a name that needs it is used.
"""

from fls.lazyexports import lazy_exports

#: Each public name and the module that defines it.
_ORIGINS = {
    "DEFAULT_THREADS": "fls.simulate.train.device",
    "MLP": "fls.simulate.train.deep",
    "ZERO_TRAIN_ERROR": "fls.simulate.stopping",
    "Architecture": "fls.simulate.train.deep",
    "Evaluation": "fls.simulate.stopping",
    "Placement": "fls.simulate.train.device",
    "PositiveClassLoss": "fls.simulate.stopping",
    "SaveSchedule": "fls.simulate.train.schedule",
    "SmallCNN": "fls.simulate.train.deep",
    "StopRule": "fls.simulate.stopping",
    "TargetRisk": "fls.simulate.stopping",
    "TrainAccuracy": "fls.simulate.stopping",
    "configure_threads": "fls.simulate.train.device",
    "init_ensemble": "fls.simulate.train.ensemble",
    "placement": "fls.simulate.train.device",
    "train_deep": "fls.simulate.train.deep",
    "train_ensemble": "fls.simulate.train.ensemble",
}

__all__ = list(_ORIGINS)
__getattr__, __dir__ = lazy_exports(__name__, _ORIGINS)
