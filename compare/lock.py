"""One writer per run store: an advisory lock on ``<store>/lock`` that names its holder, and the check that the
store's directory can be written at all.

A sweep's driver takes the lock before it touches the store (its start-up repair deletes and quarantines files)
and holds it until it returns. The lock is an ``flock`` on the file, which the operating system releases when
the holder exits for any reason, SIGKILL and power loss included, so a lock left by a dead process is stale by
construction and the next sweep simply takes it. The file itself records who holds it (host, pid, start
time), for the message a second writer gets (docs/design.md section 5, "The pipeline").

Needs POSIX ``fcntl`` (Linux, macOS). On a network file system, flock is as reliable as the file system's
locking: on NFS, Linux maps it to the server's byte-range locks.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fls.theory.validation import ParameterError

LOCK_FILE = "lock"


class StoreLocked(ParameterError):
    """Another process holds the store's lock."""


def holder(directory: Path) -> str:
    """Who the lock file of ``directory`` says holds it, in words."""
    try:
        record = json.loads((directory / LOCK_FILE).read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(record["since"])))
        return f"pid {record['pid']} on host {record['host']} (since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its lock file is unreadable)"


@contextmanager
def store_lock(directory: Path) -> Iterator[None]:
    """Hold the write lock of the store in ``directory`` (which must exist) while the block runs; raise
    StoreLocked naming the holder when another process has it."""
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise StoreLocked(
            f"store {str(directory)!r} is in use by {holder(directory)}; allowed: one sweep per store at a "
            "time (wait for it to finish, or stop it with Ctrl-C, or use another --store)"
        ) from None
    try:
        record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        yield
    finally:
        os.ftruncate(descriptor, 0)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def writable_directory(store_dir: str | os.PathLike[str]) -> Path:
    """``store_dir`` as a directory this process can write, created if missing; ParameterError naming it and
    why not otherwise (a file in the way, no permission)."""
    directory = Path(store_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ParameterError(
            f"store_dir = {str(store_dir)!r} cannot be a directory: it or a folder above it is a file; "
            "allowed: a directory path"
        ) from None
    except OSError as exc:
        raise ParameterError(
            f"store_dir = {str(store_dir)!r} cannot be created ({exc.strerror}); allowed: a directory path "
            "where you may write"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ParameterError(
            f"store_dir = {str(store_dir)!r} is not writable; allowed: a directory where you may write"
        )
    return directory
