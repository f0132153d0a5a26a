"""flow: the high-precision, switch-aware gradient-flow engine (docs/design.md section 4).

The names are imported from their modules on first access (:mod:`fls.lazyexports`).
"""

from fls.lazyexports import lazy_exports

#: Each public name and the module that defines it.
_ORIGINS = {
    "ZERO_TRAIN_ERROR": "fls.simulate.stopping",
    "PositiveClassLoss": "fls.simulate.stopping",
    "SaveSchedule": "fls.simulate.flow.recording",
    "StopRule": "fls.simulate.stopping",
    "TargetRisk": "fls.simulate.stopping",
    "TrainAccuracy": "fls.simulate.stopping",
    "integrate_flow": "fls.simulate.flow.api",
}

__all__ = list(_ORIGINS)
__getattr__, __dir__ = lazy_exports(__name__, _ORIGINS)
