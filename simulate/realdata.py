"""Real data sets for the deep-net runs, from installed packages or files the user has (never downloaded).

- ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, pixel values 0..16, scaled to [0, 1]).
  ``task="multiclass"``: labels 0..9; ``task="binary"``: +1 for the odd digits, -1 for the even ones.
- ``mnist1d``: the MNIST-1D benchmark built procedurally by ``mnist1d.data.make_dataset`` with its default
  arguments (5000 signals of length 40, its own 4000 / 1000 split). ``get_dataset`` is never called (it
  downloads). make_dataset reseeds Python's and numpy's global generators; their states are restored afterwards.
- ``fashion_mnist``: Zalando's Fashion-MNIST (28x28, 60000 / 10000), read from its published IDX files in a
  directory the user names, by default the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``) when it is installed.
- ``cifar10``: CIFAR-10 (3x32x32, 50000 / 10000) from the binary version's batch files in a directory the user
  names (never the pickled Python version).

The file formats are read by :mod:`simulate.imagefiles`. Splits are fixed: digits is split once, stratified by
class, with a fixed seed (``split_seed``); MNIST-1D, Fashion-MNIST and CIFAR-10 keep their published splits.
Each loader returns a :class:`simulate.data.Dataset` whose ``params`` hold ``task``, ``classes`` and
``input_shape`` (for the convolutional networks), with float64 inputs flattened to (n, D).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from fls.simulate.data import Dataset
from fls.simulate.imagefiles import FormatError, read_cifar10_batch, read_idx
from fls.theory.validation import ParameterError, check_choice, check_in_range, check_int

TASKS = ("binary", "multiclass")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "X": "train-images-idx3-ubyte",
    "y": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"


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


def _idx_file(root: Path, stem: str) -> Path:
    """``root/stem.gz`` or ``root/stem`` (the published names, compressed or not), whichever exists."""
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {root / stem}[.gz] not found; expected the four published IDX files "
        f"({', '.join(FASHION_MNIST_FILES.values())}, gzip-compressed or not) in the directory given as root, or "
        f"the Debian package dataset-fashion-mnist installed at {FASHION_MNIST_DIR}"
    )


def _first(name: str, count: int | None, available: int) -> int:
    """How many samples to keep: all when ``count`` is None, else 1 ... available."""
    if count is None:
        return available
    count = check_int(name, count)
    if count > available:
        raise ParameterError(
            f"{name} = {count} is out of range; allowed: 1 ... {available} (the file holds {available})"
        )
    return count


def load_fashion_mnist(
    task: str = "multiclass",
    *,
    root: str | Path | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Dataset:
    """Fashion-MNIST from its published IDX files in ``root`` (default: the Debian package's directory), pixels
    / 255; ``n_train``/``n_test`` keep the first ones.

    Binary task: odd class indices (trouser, dress, sandal, sneaker, ankle boot) against the even ones.
    Raises FileNotFoundError naming the missing file, :class:`simulate.imagefiles.FormatError` for a malformed one.
    """
    root = FASHION_MNIST_DIR if root is None else Path(root)
    arrays = {key: read_idx(_idx_file(root, stem)) for key, stem in FASHION_MNIST_FILES.items()}
    for key in ("X", "X_test"):
        if arrays[key].shape[1:] != (28, 28):
            raise FormatError(
                f"{_idx_file(root, FASHION_MNIST_FILES[key])} holds images of shape {arrays[key].shape[1:]}; "
                "expected (28, 28)"
            )
    for images, labels in (("X", "y"), ("X_test", "y_test")):
        if len(arrays[images]) != len(arrays[labels]):
            raise FormatError(
                f"{_idx_file(root, FASHION_MNIST_FILES[labels])} holds {len(arrays[labels])} labels for "
                f"{len(arrays[images])} images; expected one label per image"
            )
    keep_train = _first("n_train", n_train, len(arrays["y"]))
    keep_test = _first("n_test", n_test, len(arrays["y_test"]))
    X = arrays["X"][:keep_train].reshape(keep_train, -1).astype(np.float64) / 255.0
    X_test = arrays["X_test"][:keep_test].reshape(keep_test, -1).astype(np.float64) / 255.0
    return _dataset(
        "fashion_mnist",
        task,
        X,
        arrays["y"][:keep_train].astype(np.int64),
        X_test,
        arrays["y_test"][:keep_test].astype(np.int64),
        (1, 28, 28),
    )


def _cifar10_directory(root: Path) -> Path:
    """``root`` itself when it holds the batch files, else its ``cifar-10-batches-bin`` folder (the archive's)."""
    if (root / CIFAR10_TEST).is_file() or not (root / CIFAR10_FOLDER).is_dir():
        return root
    return root / CIFAR10_FOLDER


def load_cifar10(
    root: str | Path,
    task: str = "multiclass",
    *,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Dataset:
    """CIFAR-10 from the binary version's batch files in ``root`` (or ``root/cifar-10-batches-bin``), pixels / 255,
    images flattened channel-major (input shape (3, 32, 32)); ``n_train``/``n_test`` keep the first ones.

    Binary task: odd class indices (automobile, cat, dog, horse, truck) against the even ones.
    Raises FileNotFoundError naming the missing file, :class:`simulate.imagefiles.FormatError` for a malformed one.
    """
    directory = _cifar10_directory(Path(root))
    paths = [directory / name for name in (*CIFAR10_TRAIN, CIFAR10_TEST)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 files not found: {missing}; expected the binary version's {', '.join(CIFAR10_TRAIN)} and "
            f"{CIFAR10_TEST} in {directory} (the cifar-10-batches-bin folder of the binary archive)"
        )
    train = [read_cifar10_batch(p) for p in paths[:-1]]
    images, labels = np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    test_images, test_labels = read_cifar10_batch(paths[-1])
    keep_train = _first("n_train", n_train, len(labels))
    keep_test = _first("n_test", n_test, len(test_labels))
    return _dataset(
        "cifar10",
        task,
        images[:keep_train].reshape(keep_train, -1).astype(np.float64) / 255.0,
        labels[:keep_train],
        test_images[:keep_test].reshape(keep_test, -1).astype(np.float64) / 255.0,
        test_labels[:keep_test],
        (3, 32, 32),
    )
