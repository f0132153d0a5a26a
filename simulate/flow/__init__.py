"""flow: the high-precision, switch-aware gradient-flow engine (docs/design.md section 4).

The names are imported from their modules on first access (:mod:`fls.lazyexports`).
"""

from fls.lazyexports import lazy_exports
from fls.simulate import STOP_RULES

#: The modules that define the public names, and the names each gives this package.
_EXPORTS = {
    "fls.simulate.flow.api": ("SWEEP_ATOL_PER_RTOL", "SWEEP_METHOD", "SWEEP_RTOL", "integrate_flow"),
    "fls.simulate.flow.recording": ("SaveSchedule",),
    "fls.simulate.stopping": STOP_RULES,
}


__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
