"""The manifest of a run store: which batches are committed, with a SHA-256 checksum of each of their files.

A store's ``manifest.jsonl`` is a journal, one JSON line per record, each line carrying the SHA-256 of its own
body (``{"body": ..., "sha256": ...}``), so a damaged line is told from a good one:

- ``{"kind": "config", "text": ...}``: the resolved config of the sweep as TOML text (the newest good one is the
  store's config; ``config.toml`` is the copy for people to read);
- ``{"kind": "part", "name": ..., "runs": <sha256>, "trajectories": <sha256 or null>, "count": <runs>,
  "provenance": {...}}``: a committed batch, the checksums of its runs part and its trajectories part, and
  where its runs were computed (compare.provenance).

Appending a part line is the commit point of a batch (docs/design.md section 5, "The pipeline"): a part file
without its line was never committed. A line is appended with one ``write`` on a file opened for appending; a
process killed mid-line leaves a last line without its newline or with a wrong checksum, which reads as not
committed. Any other bad line is damage, reported with its line number. The checksums are what make a
single flipped bit in a Parquet file visible: Parquet itself checks no checksums by default.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.jsonl"


def digest(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def sealed(body: Mapping[str, Any]) -> bytes:
    """``body`` as one line of JSON with the SHA-256 of its canonical JSON, newline-terminated."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return (json.dumps({"body": body, "sha256": digest(text.encode())}, sort_keys=True) + "\n").encode()


def unsealed(line: bytes) -> dict[str, Any] | None:
    """The body of a :func:`sealed` line whose checksum holds, else None."""
    try:
        record = json.loads(line)
        body = record["body"]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        if not isinstance(body, dict) or record["sha256"] != digest(text.encode()):
            return None
        return body
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class PartEntry:
    """A committed batch: its part file name, the checksums of its runs and trajectories parts, its run count."""

    name: str
    runs: str
    trajectories: str | None
    count: int
    provenance: dict[str, Any] | None = None


@dataclass
class Manifest:
    """What a store's journal says: its config text, its committed parts (in commit order) and its bad lines."""

    config_text: str | None = None
    parts: dict[str, PartEntry] = field(default_factory=dict)
    damaged_lines: list[int] = field(default_factory=list)
    torn_tail: bool = False

    @property
    def exists(self) -> bool:
        """Whether the store has a journal at all (stores written before manifests have none)."""
        return self.config_text is not None or bool(self.parts) or bool(self.damaged_lines) or self.torn_tail


def read_manifest(directory: Path) -> Manifest:
    """Parse ``directory/manifest.jsonl``; good lines build the manifest, bad ones are listed by line number
    (a last line without its newline, the trace of a process killed while appending, is ``torn_tail``)."""
    manifest = Manifest()
    try:
        lines = (directory / MANIFEST_FILE).read_bytes().split(b"\n")
    except FileNotFoundError:
        return manifest
    complete, tail = lines[:-1], lines[-1]
    for number, line in enumerate(complete, start=1):
        body = unsealed(line)
        if body is None or body.get("kind") not in ("config", "part"):
            manifest.damaged_lines.append(number)
        elif body["kind"] == "config":
            manifest.config_text = str(body["text"])
        else:
            entry = PartEntry(
                str(body["name"]),
                str(body["runs"]),
                body["trajectories"],
                int(body["count"]),
                body.get("provenance"),
            )
            manifest.parts[entry.name] = entry
    manifest.torn_tail = bool(tail)
    return manifest


def append_config(directory: Path, text: str) -> None:
    """Record the store's resolved config (TOML text)."""
    _append(directory, {"kind": "config", "text": text})


def append_part(directory: Path, entry: PartEntry) -> None:
    """Commit a batch: record its parts and their checksums."""
    _append(directory, _part_body(entry))


def _part_body(entry: PartEntry) -> dict[str, Any]:
    return {
        "kind": "part",
        "name": entry.name,
        "runs": entry.runs,
        "trajectories": entry.trajectories,
        "count": entry.count,
        "provenance": entry.provenance,
    }


def _append(directory: Path, body: Mapping[str, Any]) -> None:
    descriptor = os.open(directory / MANIFEST_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, sealed(body))
    finally:
        os.close(descriptor)


def rewrite_manifest(directory: Path, config_text: str | None, entries: list[PartEntry]) -> None:
    """Replace the journal by its good records (after a repair), written to a temporary file and renamed."""
    lines = [] if config_text is None else [sealed({"kind": "config", "text": config_text})]
    lines += [sealed(_part_body(entry)) for entry in entries]
    temporary = directory / f".tmp-{MANIFEST_FILE}"
    temporary.write_bytes(b"".join(lines))
    os.replace(temporary, directory / MANIFEST_FILE)
