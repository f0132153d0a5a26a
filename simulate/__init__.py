"""simulate: data models, initialization, the engines (exact gradient flow, batched discrete training) and the
stopping rules they share.

The names are imported from their modules on first access (:mod:`fls.lazyexports`), so ``import fls.simulate``
imports neither torch nor sympy; the torch engines load torch when they are used (docs/design.md section 1).
"""

from fls.lazyexports import lazy_exports

#: The stop rules of simulate/stopping.py, which the engines' packages (flow, train) export as well.
STOP_RULES = ("PositiveClassLoss", "StopRule", "TargetRisk", "TrainAccuracy", "ZERO_TRAIN_ERROR")
#: The modules that define the public names, and the names each gives this package.
_EXPORTS = {
    "fls.simulate.data": ("Dataset", "make_data"),
    "fls.simulate.userdata": ("load_dataset",),
    "fls.simulate.flow": ("integrate_flow",),
    "fls.simulate.initialization": ("INIT_SCHEMES", "init_params"),
    "fls.simulate.result": ("RunResult", "STATUSES"),
    "fls.simulate.stopping": STOP_RULES,
    "fls.simulate.train": ("train_deep", "train_ensemble"),
}


__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
