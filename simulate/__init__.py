"""simulate: data models, initialization, the engines (exact gradient flow, batched discrete training) and the
stopping rules they share.

The names are imported from their modules on first access (:mod:`fls.lazyexports`), so ``import fls.simulate``
imports neither torch nor sympy; the torch engines load torch when they are used (docs/design.md section 1).
"""

from fls.lazyexports import lazy_exports

#: Each public name and the module that defines it.
_ORIGINS = {
    "INIT_SCHEMES": "fls.simulate.initialization",
    "STATUSES": "fls.simulate.result",
    "ZERO_TRAIN_ERROR": "fls.simulate.stopping",
    "Dataset": "fls.simulate.data",
    "PositiveClassLoss": "fls.simulate.stopping",
    "RunResult": "fls.simulate.result",
    "StopRule": "fls.simulate.stopping",
    "TargetRisk": "fls.simulate.stopping",
    "TrainAccuracy": "fls.simulate.stopping",
    "init_params": "fls.simulate.initialization",
    "integrate_flow": "fls.simulate.flow",
    "make_data": "fls.simulate.data",
    "train_deep": "fls.simulate.train",
    "train_ensemble": "fls.simulate.train",
}

__all__ = list(_ORIGINS)
__getattr__, __dir__ = lazy_exports(__name__, _ORIGINS)
