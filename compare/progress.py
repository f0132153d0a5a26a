"""The progress bar of a sweep (tqdm, on stderr): runs done out of the sweep's total, runs running and failed, ETA.

The bar counts runs, not batches; runs finished before a resumed sweep started count as done from the start, so
the ETA (tqdm's, from the rate since this sweep started) covers only what is left. It draws only when asked for
and when stderr is a terminal; elsewhere (``fls verify > log 2>&1``) the same counts come as periodic lines.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self

from tqdm import tqdm

#: Seconds between progress lines when stderr is not a terminal (a log file, a batch job's output).
LINE_SECONDS = 30.0


class SweepProgress:
    """A context manager around a tqdm bar on a terminal, or periodic lines elsewhere; ``update`` after each
    finished batch.

    Lines (when stderr is not a terminal): one when the sweep starts (its runs, those already stored), one
    after the first finished batch (the pilot: its rate gives the first estimate of the time left), then one
    every ``interval`` seconds, and one at the end.
    """

    def __init__(
        self,
        *,
        total: int,
        done: int,
        failed: int,
        name: str,
        enabled: bool = True,
        interval: float = LINE_SECONDS,
    ) -> None:
        self._failed = failed
        self._lines = enabled and not sys.stderr.isatty()
        self._name, self._total, self._initial, self._done = name, total, done, done
        self._interval, self._started = interval, time.monotonic()
        self._last_line: float | None = None
        self._last_done = done  # runs done when the last line was printed
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
        if self._lines:
            self._line(f"{total} runs, {done} stored, {total - done} to run")

    def _line(self, text: str) -> None:
        print(f"{self._name}: {text}", file=sys.stderr, flush=True)

    def _show(self, running: int) -> None:
        self._bar.set_postfix(running=running, failed=self._failed, refresh=False)

    def _status(self, running: int) -> str:
        spent = time.monotonic() - self._started
        rate = (self._done - self._initial) / spent if spent > 0 else 0.0
        unfinished = self._total - self._done
        left = f", about {unfinished / rate:.0f} s left" if rate > 0 and unfinished else ""
        return (
            f"{self._done}/{self._total} runs ({self._failed} failed, {running} running), "
            f"{rate:.3g} run/s{left}"
        )

    def update(self, *, finished: int, failed: int, running: int) -> None:
        """Count ``finished`` more runs (``failed`` of them failed or diverged); ``running`` are executing now."""
        self._failed += failed
        self._done += finished
        self._show(running)
        self._bar.update(finished)
        now = time.monotonic()
        due = self._last_line is None or now - self._last_line >= self._interval
        if self._lines and finished and due:
            self._last_line, self._last_done = now, self._done
            self._line(self._status(running))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._bar.close()
        if self._lines and self._done != self._last_done:
            self._line(self._status(0))
