"""The user's own data in a sweep: ``data.model = "file"`` (docs/design.md section 3; every key: docs/config.md).

A config names a ``.npz`` or ``.csv`` file (``data.path``, relative to the config file; the format is
:mod:`simulate.userdata`'s). The config resolves the path to an absolute one, and every run of the file records
what it read: ``data.n``, ``data.d`` and ``data.n_test`` from the file's arrays, ``data.task`` (below) and
``data.digest``, the first 16 hex digits of the SHA-256 of the file's bytes, so a changed file makes new runs
(new run ids) instead of resuming the old ones, and a run whose file changed after its config was read is
refused (:func:`file_dataset` with ``expected_digest``). ``data.sample_weight`` says whether the file's per-sample weights enter the risk
(``file``, the default: they do, normalized to mean 1 as :mod:`theory.losses` says) or not (``uniform``: every
sample weighs 1, whatever the file holds).

The task of a file's runs is the data set's (``Dataset.params["task"]``): ``regression`` for real targets, which
only ``model.loss = "squared"`` accepts, else ``classification``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from fls.simulate.data import Dataset
from fls.simulate.userdata import load_dataset
from fls.theory.validation import ParameterError, check_choice

#: The data model of a config that reads the user's file.
FILE_MODEL = "file"
#: Where the sample weights of a file's runs come from (the first is the default; module docstring).
WEIGHT_SOURCES = ("file", "uniform")


def absolute_path(path: str, base: str | os.PathLike[str]) -> str:
    """``path`` as an absolute path: unchanged if absolute, else relative to the directory ``base``."""
    return str((Path(base) / Path(path).expanduser()).resolve())


def digest(path: str) -> str:
    """First 16 hex digits of the SHA-256 of the bytes of the file ``path``."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=8)
def _load(path: str, loss: str, file_digest: str) -> Dataset:
    """The checked data set (cached per file content, so a sweep's runs read a file once per process)."""
    return load_dataset(path, loss=loss)


def file_dataset(
    path: str, *, loss: str, sample_weight: str = WEIGHT_SOURCES[0], expected_digest: str | None = None
) -> Dataset:
    """The data set in the file ``path`` checked for the targets of ``loss``; with ``sample_weight =
    "uniform"`` its weights are dropped. Raises ParameterError naming the file and what is wrong with it, or
    when the file's digest is not ``expected_digest`` (the file changed after the run was made)."""
    check_choice("data.sample_weight", sample_weight, WEIGHT_SOURCES)
    found = digest(path) if Path(path).is_file() else ""
    if expected_digest is not None and found != expected_digest:
        raise ParameterError(
            f"data.path = {path!r} changed after the run was made (data.digest {expected_digest}, the file now "
            f"{found or 'missing'}); allowed: the file the config was read with (load the config again)"
        )
    dataset = _load(path, loss, found)
    if sample_weight == "uniform" and dataset.sample_weight is not None:
        return dataclasses.replace(dataset, sample_weight=None)
    return dataset


def file_run_keys(path: str, *, loss: str) -> dict[str, int | str]:
    """The keys a run of the file records (module docstring): n, d, n_test, the task and the file's digest."""
    dataset = file_dataset(path, loss=loss)
    return {
        "n": dataset.n,
        "d": dataset.d,
        "n_test": len(dataset.y_test),
        "task": dataset.params["task"],
        "digest": digest(path),
    }
