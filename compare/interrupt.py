"""Ctrl-C during a sweep, in two steps (docs/cli.md, "Stopping a sweep").

The first SIGINT asks the sweep to stop: no new batch starts, the running ones may finish (for at most
:data:`GRACE_SECONDS`) and are committed, and the sweep ends with :class:`SweepInterrupted`, whose message
says how to resume. A second SIGINT raises KeyboardInterrupt at once: the running batches are cancelled (the
committed ones stay). Worker processes ignore SIGINT (a Ctrl-C in a terminal reaches the whole process group),
so only the driver decides.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Self

#: How long the first Ctrl-C waits for the running batches before cancelling them.
GRACE_SECONDS = 120.0


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C after committing its finished batches; the message says how to resume."""


class Interrupt:
    """While entered (in the main thread), count SIGINTs instead of raising on the first one."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.requested_at: float | None = None
        self._previous: object = None

    @property
    def requested(self) -> bool:
        """Whether a first Ctrl-C came: start no new batch."""
        return self.requested_at is not None

    def expired(self) -> bool:
        """Whether the running batches have had their grace time since the first Ctrl-C."""
        return self.requested_at is not None and time.monotonic() - self.requested_at > self.grace

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested_at is not None:
            raise KeyboardInterrupt
        self.requested_at = time.monotonic()
        print(
            f"\nfls: stopping: no new batches; waiting up to {self.grace:.0f} s for the running ones to be "
            "stored (Ctrl-C again to cancel them)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
