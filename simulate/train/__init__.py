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
from fls.simulate import STOP_RULES

#: The modules that define the public names, and the names each gives this package.
_EXPORTS = {
    "fls.simulate.stopping": ("Evaluation", *STOP_RULES),
    "fls.simulate.train.deep": ("Architecture", "MLP", "SmallCNN", "train_deep"),
    "fls.simulate.train.device": ("DEFAULT_THREADS", "Placement", "configure_threads", "placement"),
    "fls.simulate.train.ensemble": ("init_ensemble", "train_ensemble"),
    "fls.simulate.train.schedule": ("SaveSchedule",),
}


__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
