"""Where a sweep's runs were computed: the versions of fls and of the libraries its numbers depend on, the git
commit of the source tree where there is one, the host and when the sweep started (docs/cli.md, "fls runs").

The driver collects this once per sweep and the store keeps it with every committed batch (compare.manifest),
so ``fls runs STORE --provenance`` shows it for each run. Library versions are read from the installed
distributions' metadata, so nothing heavy (torch) is imported to read them.
"""

from __future__ import annotations

import platform
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path

#: Distributions whose versions a run records.
LIBRARIES = ("fls", "numpy", "scipy", "torch")
#: Seconds git may take to name the commit before the commit is left out.
GIT_SECONDS = 5


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git(directory: Path, *arguments: str) -> str:
    """What ``git ARGUMENTS`` prints in ``directory``, stripped; raises if git fails or takes too long."""
    return subprocess.run(
        ["git", *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=GIT_SECONDS,
        check=True,
    ).stdout.strip()


def git_commit(directory: Path) -> str | None:
    """The commit checked out in the git work tree holding ``directory`` (with ``+dirty`` when files differ),
    or None when it is not one or git is not available."""
    try:
        head = _git(directory, "rev-parse", "HEAD")
        changed = _git(directory, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if changed else "") if head else None


def collect() -> dict[str, str | None]:
    """The provenance of runs computed now by this process."""
    record: dict[str, str | None] = {f"{name}_version": _version(name) for name in LIBRARIES}
    record["python_version"] = platform.python_version()
    record["git_commit"] = git_commit(Path(__file__).resolve().parent)
    record["host"] = socket.gethostname()
    record["sweep_started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return record
