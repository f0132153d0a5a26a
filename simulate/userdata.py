"""The user's own data from a file: ``.npz`` or ``.csv`` (docs/design.md section 3, "Your own data").

- ``.npz`` (numpy's ``np.savez``): arrays ``X`` (n, d) and ``y`` (n,), optional ``X_test`` (n_test, d) with
  ``y_test`` (n_test,), optional ``sample_weight`` (n,). Any other array is an error (a misspelt name would
  otherwise be ignored silently).
- ``.csv``: a header row, then one sample per row. The column ``y`` holds the target; an optional column
  ``sample_weight`` the weight; an optional column ``split`` says ``train`` or ``test`` (default: every row is
  a training row); every other column is an input coordinate, in the order of the header. Test rows take no
  weight (their ``sample_weight`` cell, if any, must be empty).

Both go through :meth:`simulate.data.Dataset.from_arrays`, which checks shapes, NaN and the targets the loss
accepts; errors name the file and the array or column.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from fls.simulate.data import Dataset
from fls.theory.validation import ParameterError

#: The arrays a ``.npz`` file may hold (the first two are required).
NPZ_ARRAYS = ("X", "y", "X_test", "y_test", "sample_weight")
#: The file types :func:`load_dataset` reads.
FILE_TYPES = (".npz", ".csv")
#: The values of a ``.csv`` file's ``split`` column.
SPLITS = ("train", "test")


def _read_npz(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    unknown = sorted(set(arrays) - set(NPZ_ARRAYS))
    missing = [name for name in ("X", "y") if name not in arrays]
    if unknown or missing:
        raise ParameterError(
            f"{path}: arrays {unknown} are not allowed and {missing} are missing; "
            f"allowed: {', '.join(NPZ_ARRAYS)} (X and y required)"
        )
    return arrays


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise ParameterError(f"{path}, line {line}, column {column!r}: {text!r} is not a number") from exc


def _read_csv(path: Path) -> dict[str, Any]:
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    if len(rows) < 2 or "y" not in rows[0]:
        raise ParameterError(f"{path}: needs a header row with a column 'y' and at least one data row")
    header = [name.strip() for name in rows[0]]
    features = [k for k, name in enumerate(header) if name not in ("y", "sample_weight", "split")]
    if not features:
        raise ParameterError(f"{path}: no input columns; every column other than y, sample_weight, split is one")
    parts: dict[str, list[list[float]]] = {split: [] for split in SPLITS}
    weights: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ParameterError(f"{path}, line {line}: {len(row)} cells; the header has {len(header)}")
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        split = cells.get("split", "train")
        if split not in SPLITS:
            raise ParameterError(f"{path}, line {line}: split = {split!r}; allowed: 'train', 'test'")
        values = [_number(path, line, header[k], row[k]) for k in features]
        parts[split].append([*values, _number(path, line, "y", cells["y"])])
        if "sample_weight" in cells:
            if split == "test" and cells["sample_weight"]:
                raise ParameterError(f"{path}, line {line}: a test row takes no sample_weight; leave it empty")
            if split == "train":
                weights.append(_number(path, line, "sample_weight", cells["sample_weight"]))
    if not parts["train"]:
        raise ParameterError(f"{path}: no training rows (split = 'train' or no split column)")
    train = np.array(parts["train"])
    arrays: dict[str, Any] = {"X": train[:, :-1], "y": train[:, -1]}
    if parts["test"]:
        test = np.array(parts["test"])
        arrays.update(X_test=test[:, :-1], y_test=test[:, -1])
    if "sample_weight" in header:
        arrays["sample_weight"] = np.array(weights)
    return arrays


def load_dataset(path: str | Path, *, loss: str) -> Dataset:
    """The data set in ``path`` (``.npz`` or ``.csv``, module docstring), checked for ``loss``'s targets."""
    path = Path(path)
    if path.suffix not in FILE_TYPES:
        raise ParameterError(f"path = {str(path)!r} has type {path.suffix!r}; allowed: '.npz', '.csv'")
    if not path.is_file():
        raise ParameterError(f"path = {str(path)!r} is not a readable file")
    arrays = _read_npz(path) if path.suffix == ".npz" else _read_csv(path)
    try:
        return Dataset.from_arrays(**arrays, loss=loss, name=str(path))
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from exc
