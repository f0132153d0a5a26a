"""The switch of the flow engine's compiled kernels: numba where it is installed and not turned off.

The float64 engine spends most of an event at m = 100 in the overhead of numpy calls on arrays of a few
thousand numbers (docs/flow.md, "Cost"). Nine kernels do the same arithmetic in one compiled call each: the
field of a mode (:mod:`~simulate.flow.field_kernel`), the data-span tolerance
(:mod:`~simulate.flow.span_tolerance_kernel`), a step's full pair test (:mod:`~simulate.flow.pair_test_kernel`),
its crossed intervals (:mod:`~simulate.flow.crossings_kernel`), the crossed guards' brackets
(:mod:`~simulate.flow.brackets_kernel`), the dips between samples (:mod:`~simulate.flow.dips_kernel`), Newton on
a pair's guard polynomial (:mod:`~simulate.flow.root_kernel`), the sliding weights' guards
(:mod:`~simulate.flow.weight_guards_kernel`) and the guards on their bounds at an event
(:mod:`~simulate.flow.touching_kernel`). The first two round sums and exp differently from numpy (their
docstrings state by how much), the others are bit for bit the code they mirror; that code stays the reference
and the path every other arithmetic (mpmath) runs. A tenth,
:mod:`~simulate.flow.screen_kernel`, forms the norms of short rows for the step screens' bounds (at m = 20000
in d = 3 numpy's reduction over the short axis costs more than the arithmetic; a few ulps from numpy's). Two
more fuse an explicit step's passes over a wide state (from :data:`~simulate.flow.rk_step.FUSED_MIN_SIZE`
components): its stage sums, error norm and dense output's coefficients (:mod:`~simulate.flow.rk_step_kernel`,
its sums over the stages in another order) and the log coordinates' tolerance
(:mod:`~simulate.flow.log_tolerance_kernel`, bit for bit); one more forms the log coordinates' excursion
bounds for the output screen around numpy's exp (:mod:`~simulate.flow.excursion_kernel`, bit for bit).

The environment variable ``FLS_NUMBA=0`` turns compilation off (read where a kernel is looked up: a run's
coordinates and explicit step at their construction, the other kernels at each call); without numba the numpy
path runs. numba is imported only by the kernel modules, which this module imports at a flow run's first use
of a kernel, never by ``import fls`` or the command line's ``--help``. The kernels are compiled with
``cache=True`` (numba's on-disk cache next to the modules, or ``$NUMBA_CACHE_DIR``): the first run of a fresh
install compiles them once (docs/flow.md, "Cost"); later processes load them.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from types import ModuleType

#: The environment variable that turns the compiled kernels off ("0") or leaves them on (anything else).
SWITCH = "FLS_NUMBA"


def enabled() -> bool:
    """Whether the compiled kernels run: numba importable and ``$FLS_NUMBA`` not "0" (read at each call)."""
    return os.environ.get(SWITCH, "1").strip() != "0" and _numba_available()


@cache
def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def kernels(module: str) -> ModuleType | None:
    """The compiled kernel module ``fls.simulate.flow.<module>`` when :func:`enabled`, else None (the caller
    runs its numpy code)."""
    return _module(module) if enabled() else None


@cache
def _module(module: str) -> ModuleType:
    """The kernel module, imported once (a lookup at every step costs a dict access, not an import)."""
    return importlib.import_module(f"fls.simulate.flow.{module}")
