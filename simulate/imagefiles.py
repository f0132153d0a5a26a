"""Readers for the published binary formats of the image data sets (docs/train.md, "Real data"); no pickle.

- IDX (MNIST, Fashion-MNIST): bytes 0-1 zero, byte 2 the element type (0x08: unsigned byte, the only one these data
  sets use), byte 3 the number of dimensions k, then k sizes as big-endian uint32, then the values in row-major
  order. The files come gzip-compressed (``.gz``) or plain; the reader tells them apart by the gzip magic bytes.
- CIFAR-10 binary version (``cifar-10-batches-bin``): records of 1 + 3072 bytes, a label byte in 0..9 then a 32x32
  image as 1024 red, 1024 green and 1024 blue bytes, each channel row-major; ``data_batch_1.bin`` ...
  ``data_batch_5.bin`` (10000 records each) form the training set, ``test_batch.bin`` the test set.

Every problem with a file (missing, truncated, a header or size that does not fit the format, a label out of range)
raises :class:`FormatError` naming the file and what was expected.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fls.theory.validation import ParameterError

GZIP_MAGIC = b"\x1f\x8b"
IDX_UNSIGNED_BYTE = 0x08
CIFAR10_SIDE = 32
CIFAR10_RECORD = 1 + 3 * CIFAR10_SIDE * CIFAR10_SIDE
CIFAR10_CLASSES = 10


class FormatError(ParameterError):
    """A data file is missing or does not hold what its format prescribes."""


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip-compressed."""
    if not path.is_file():
        raise FormatError(f"{path} does not exist")
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise FormatError(f"{path} is a damaged gzip file ({exc})") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array stored in an IDX file (gzip-compressed or plain), with the shape its header gives."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != IDX_UNSIGNED_BYTE:
        raise FormatError(
            f"{path} is not an IDX file of unsigned bytes: expected the magic 00 00 08 <ndim>, "
            f"found {raw[:4].hex(' ') or 'an empty file'}"
        )
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise FormatError(f"{path} ends inside its header: expected {ndim} sizes of 4 bytes after the magic")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise FormatError(f"{path} holds {data.size} values; its header says shape {shape}")
    return data.reshape(shape)


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR-10 binary batch file."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % CIFAR10_RECORD:
        raise FormatError(
            f"{path} holds {len(raw)} bytes; expected a positive multiple of {CIFAR10_RECORD} "
            "(a label byte and a 3x32x32 image per record: the CIFAR-10 binary version)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= CIFAR10_CLASSES:
        bad = int(np.argmax(labels >= CIFAR10_CLASSES))
        raise FormatError(
            f"{path}: record {bad} has label {labels[bad]}; expected 0 ... {CIFAR10_CLASSES - 1}"
        )
    return records[:, 1:].reshape(-1, 3, CIFAR10_SIDE, CIFAR10_SIDE), labels
