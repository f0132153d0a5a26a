"""The progress bar of a sweep (tqdm, on stderr): runs done out of the sweep's total, runs running and failed, ETA.

The bar counts runs, not batches; runs finished before a resumed sweep started count as done from the start, so
the ETA (tqdm's, from the rate since this sweep started) covers only what is left. It draws only when asked for
and when stderr is a terminal.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Self

from tqdm import tqdm


class SweepProgress:
    """A context manager around a tqdm bar; ``update`` after each finished batch."""

    def __init__(self, *, total: int, done: int, failed: int, name: str, enabled: bool = True) -> None:
        self._failed = failed
        self._bar = tqdm(
            total=total,
            initial=done,
            desc=name,
            unit="run",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=None if enabled else True,
        )
        self._show(running=0)

    def _show(self, running: int) -> None:
        self._bar.set_postfix(running=running, failed=self._failed, refresh=False)

    def update(self, *, finished: int, failed: int, running: int) -> None:
        """Count ``finished`` more runs (``failed`` of them failed or diverged); ``running`` are executing now."""
        self._failed += failed
        self._show(running)
        self._bar.update(finished)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._bar.close()
