"""On-disk cache of the compiled field's kernel source, so a process does not re-derive the field.

Deriving the field with sympy costs about 2 s of CPU per process and loss (importing sympy included); a sweep
starts many worker processes. The derivation's result that the compiled code needs is small: the Python source
of five elementwise kernels (:mod:`theory.fieldsource`). It is stored here as one JSON entry per loss and read
back, verified, by :func:`theory.compiled.compile_field` without importing sympy (docs/design.md section 6,
"The field cache").

Where: ``$FLS_CACHE_DIR`` if set, else the platform's user cache directory (``$XDG_CACHE_HOME/fls`` or
``~/.cache/fls`` on Linux, ``~/Library/Caches/fls`` on macOS, ``%LOCALAPPDATA%\\fls\\Cache`` on Windows).

Key: everything the kernel source depends on -- the loss, whether the network has hidden biases (the biased
derivation is a different one, even where its kernels print the same), the package version, the sympy version, the Python
version, the entry format and a SHA-256 of the derivation's own source files (:data:`DERIVATION_MODULES`, which
hold the model's conventions: relu'(0) = 0, the mean risk, the loss definitions). The key's hash names the file,
and the key is stored in the entry too, so a different derivation never reads another's entry.

Writes are atomic (a private temporary file in the same directory, then ``os.replace``), so processes that warm
the cache at once each write a complete entry and the last rename wins; readers see the old file, the new file or
none, never a partial one. Reads are verified (format, key, a SHA-256 checksum of the content, each kernel's
source parses to one function of its name): a damaged, truncated or stale entry is reported as missing, and the
caller derives and rewrites it. An unwritable directory is not an error: the caller keeps the derived kernels in
memory. Clearing the cache is deleting the directory (or its ``field-*.json`` files) at any time. The kernels
are executed as Python code, so the directory must be as trusted as the installed package (like its ``.pyc``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
from pathlib import Path

import fls

#: The kernels an entry holds, by name: each is the source of one Python function of that name.
KERNEL_NAMES = ("neuron_W", "neuron_v", "sample", "sample_slope", "loss")
#: The modules (in theory/) whose source determines the kernels; their SHA-256 is part of the key.
DERIVATION_MODULES = ("losses.py", "symbolic.py", "fieldsource.py")
#: Version of the entry layout below; bumping it invalidates every stored entry (2: loss kernels of (f, y), bias).
ENTRY_FORMAT = 2
#: The environment variable that overrides the cache directory.
CACHE_DIR_VARIABLE = "FLS_CACHE_DIR"

# How compile_field obtained its kernels (CompiledField.source_origin).
HIT = "read from the cache"
STORED = "derived and stored in the cache"
UNSTORED = "derived; the cache directory is not writable"


def cache_directory() -> Path:
    """The directory of the cache: ``$FLS_CACHE_DIR``, else the platform's user cache directory for fls."""
    override = os.environ.get(CACHE_DIR_VARIABLE)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "fls" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fls"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fls"


def _derivation_hash() -> str:
    digest = hashlib.sha256()
    for name in DERIVATION_MODULES:
        digest.update(name.encode())
        digest.update(Path(__file__).with_name(name).read_bytes())
    return digest.hexdigest()


def cache_key(loss: str, bias: bool = False) -> dict[str, str | int | bool]:
    """Everything the kernel source of ``loss`` (with hidden biases when ``bias``) depends on (module docstring)."""
    return {
        "format": ENTRY_FORMAT,
        "loss": loss,
        "bias": bias,
        "fls": fls.__version__,
        "sympy": importlib.metadata.version("sympy"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "derivation": _derivation_hash(),
    }


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def entry_checksum(key: dict[str, str | int | bool], kernels: object) -> str:
    """SHA-256 of an entry's key and kernels (canonical JSON): what a reader recomputes to detect damage."""
    return hashlib.sha256(_canonical([key, kernels])).hexdigest()


def entry_path(key: dict[str, str | int | bool]) -> Path:
    """The file of the entry with this key: ``field-<loss>[-bias]-<first 16 hex digits of the key's SHA-256>.json``."""
    model = f"{key['loss']}-bias" if key.get("bias") else key["loss"]
    return cache_directory() / f"field-{model}-{hashlib.sha256(_canonical(key)).hexdigest()[:16]}.json"


def _is_one_function(name: str, source: object) -> bool:
    """Whether ``source`` is Python text defining exactly one function, called ``name``, and nothing else."""
    if not isinstance(source, str):
        return False
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return len(body) == 1 and isinstance(body[0], ast.FunctionDef) and body[0].name == name


def read_entry(key: dict[str, str | int | bool]) -> dict[str, str] | None:
    """The kernel sources stored under ``key``, or None when the entry is missing, unreadable or fails a check."""
    try:
        entry = json.loads(entry_path(key).read_bytes())
    except (OSError, ValueError):  # missing, unreadable, truncated or not JSON
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    kernels = entry.get("kernels")
    if entry.get("checksum") != entry_checksum(key, kernels):
        return None
    if not isinstance(kernels, dict) or set(kernels) != set(KERNEL_NAMES):
        return None
    if not all(_is_one_function(name, source) for name, source in kernels.items()):
        return None
    return kernels


def write_entry(key: dict[str, str | int | bool], kernels: dict[str, str]) -> bool:
    """Store ``kernels`` under ``key`` atomically; False (and nothing left behind) if the directory is not
    writable."""
    path = entry_path(key)
    entry = {
        "key": key,
        "kernels": kernels,
        "checksum": entry_checksum(key, kernels),
    }
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(_canonical(entry))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        return False
    return True
