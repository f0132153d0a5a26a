"""Small real data sets that ship inside installed packages (no download at run time), for the deep-net runs.

- ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, pixel values 0..16, scaled to [0, 1]).
  ``task="multiclass"``: labels 0..9; ``task="binary"``: +1 for the odd digits, -1 for the even ones.
- ``mnist1d``: the MNIST-1D benchmark built procedurally by ``mnist1d.data.make_dataset`` with its default
  arguments (5000 signals of length 40, its own 4000 / 1000 split). ``get_dataset`` is never called (it
  downloads). make_dataset reseeds Python's and numpy's global generators; their states are restored afterwards.
- ``fashion_mnist``: Zalando's Fashion-MNIST (28x28, 60000 / 10000), read from the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) when it is installed.

Splits are fixed: digits is split once, stratified by class, with a fixed seed (``split_seed``); MNIST-1D and
Fashion-MNIST keep their published splits. Each loader returns a :class:`simulate.data.Dataset` whose ``params``
hold ``task``, ``classes`` and ``input_shape`` (for the CNN), with float64 inputs flattened to (n, D).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np

from fls.simulate.data import Dataset
from fls.theory.validation import ParameterError, check_choice, check_in_range, check_int

TASKS = ("binary", "multiclass")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _binary_odd_even(labels: np.ndarray) -> np.ndarray:
    """+1 for odd class indices, -1 for even ones."""
    return np.where(labels % 2 == 1, 1.0, -1.0)


def _dataset(name: str, task: str, X, y, X_test, y_test, input_shape, seed: int = 0, **extra) -> Dataset:
    task = check_choice("task", task, TASKS)
    if task == "binary":
        y, y_test = _binary_odd_even(y), _binary_odd_even(y_test)
    else:
        y, y_test = y.astype(np.float64), y_test.astype(np.float64)
    params = {
        "n": len(y),
        "d": X.shape[1],
        "n_test": len(y_test),
        "task": task,
        "classes": 2 if task == "binary" else 10,
        "input_shape": tuple(input_shape),
        **extra,
    }
    return Dataset(name=name, seed=seed, params=params, X=X, y=y, X_test=X_test, y_test=y_test)


def load_digits(task: str = "multiclass", *, test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's digits, pixels / 16, split stratified by class (``test_fraction`` of each class held out)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    check_in_range("test_fraction", test_fraction, 0.0, 1.0, closed="neither")
    split_seed = check_int("split_seed", split_seed, minimum=0)
    bunch = sklearn_digits()
    X = bunch.data.astype(np.float64) / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, bunch.target, test_size=test_fraction, random_state=split_seed, stratify=bunch.target
    )
    return _dataset(
        "digits",
        task,
        X_train,
        y_train,
        X_test,
        y_test,
        (1, 8, 8),
        seed=split_seed,
        test_fraction=test_fraction,
    )


def load_mnist1d(task: str = "multiclass", *, num_samples: int | None = None) -> Dataset:
    """MNIST-1D from ``mnist1d.data.make_dataset`` with its defaults; the global RNG states are left untouched.

    ``num_samples`` (default: the package's 5000) builds a smaller set with the same procedure and split fraction
    (the build is a Python loop over samples: about 10 s for the default size).
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    if num_samples is not None:
        args.num_samples = check_int("num_samples", num_samples, minimum=10)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(args)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    X, X_test = raw["x"].astype(np.float64), raw["x_test"].astype(np.float64)
    return _dataset("mnist1d", task, X, raw["y"], X_test, raw["y_test"], (1, X.shape[1]))


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip-compressed): magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, then uint8 data."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ParameterError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ParameterError(f"{path} holds {data.size} values; its header says shape {shape}")
    return data.reshape(shape)


def load_fashion_mnist(
    task: str = "multiclass",
    *,
    root: str | Path = FASHION_MNIST_DIR,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Dataset:
    """Fashion-MNIST from the Debian package's files (pixels / 255); ``n_train``/``n_test`` keep the first ones.

    Binary task: odd class indices (trouser, dress, sandal, sneaker, ankle boot) against the even ones.
    Raises FileNotFoundError when the package (or ``root``) is missing.
    """
    root = Path(root)
    files = {
        key: root / f"{prefix}-{kind}-idx{dim}-ubyte.gz"
        for key, prefix, kind, dim in (
            ("X", "train", "images", 3),
            ("y", "train", "labels", 1),
            ("X_test", "t10k", "images", 3),
            ("y_test", "t10k", "labels", 1),
        )
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found: {missing}; install the Debian package dataset-fashion-mnist"
        )
    arrays = {key: _read_idx(path) for key, path in files.items()}
    keep_train = len(arrays["y"]) if n_train is None else check_int("n_train", n_train)
    keep_test = len(arrays["y_test"]) if n_test is None else check_int("n_test", n_test)
    X = arrays["X"][:keep_train].reshape(-1, 28 * 28).astype(np.float64) / 255.0
    X_test = arrays["X_test"][:keep_test].reshape(-1, 28 * 28).astype(np.float64) / 255.0
    return _dataset(
        "fashion_mnist",
        task,
        X,
        arrays["y"][:keep_train].astype(np.int64),
        X_test,
        arrays["y_test"][:keep_test].astype(np.int64),
        (1, 28, 28),
    )
