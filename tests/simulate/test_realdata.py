"""Real data loaders: shapes, labels, fixed splits, untouched global random state, the IDX reader."""

from __future__ import annotations

import gzip
import random
import struct

import numpy as np
import pytest

from fls.simulate import realdata
from fls.theory.validation import ParameterError

sklearn = pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits():
    return realdata.load_digits("multiclass")


def test_digits_multiclass(digits):
    assert digits.X.shape == (1437, 64) and digits.X_test.shape == (360, 64)
    assert digits.X.min() == 0.0 and digits.X.max() == 1.0
    assert set(np.unique(digits.y)) == set(range(10))
    assert digits.params["input_shape"] == (1, 8, 8) and digits.params["classes"] == 10
    # stratified: every class keeps (about) a fifth of its images for the test set
    train_counts, test_counts = np.bincount(digits.y.astype(int)), np.bincount(digits.y_test.astype(int))
    np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.2, atol=0.01)


def test_digits_split_is_fixed_and_disjoint(digits):
    again = realdata.load_digits("multiclass")
    np.testing.assert_array_equal(again.X, digits.X)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    # train and test together are the full set, each image once
    full = sklearn.datasets.load_digits()
    together = np.concatenate([digits.X, digits.X_test]) * 16.0
    labels = np.concatenate([digits.y, digits.y_test])
    order, full_order = np.lexsort(np.c_[together, labels].T), np.lexsort(np.c_[full.data, full.target].T)
    np.testing.assert_array_equal(together[order], full.data[full_order])
    np.testing.assert_array_equal(labels[order], full.target[full_order])


def test_digits_binary_is_odd_against_even(digits):
    binary = realdata.load_digits("binary")
    np.testing.assert_array_equal(binary.X, digits.X)
    np.testing.assert_array_equal(binary.y, np.where(digits.y % 2 == 1, 1.0, -1.0))
    assert set(np.unique(binary.y_test)) == {-1.0, 1.0}


def test_bad_task_names_the_parameter():
    with pytest.raises(ParameterError, match="task"):
        realdata.load_digits("ternary")
    with pytest.raises(ParameterError, match="test_fraction"):
        realdata.load_digits(test_fraction=1.0)


def test_mnist1d_leaves_the_global_random_state_alone():
    pytest.importorskip("mnist1d")
    random.seed(123)
    np.random.seed(456)
    python_before, numpy_before = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(456)
    data = realdata.load_mnist1d(num_samples=200)
    assert (random.random(), np.random.random()) == (python_before, numpy_before)
    assert data.X.shape == (160, 40) and data.X_test.shape == (40, 40)
    assert data.params["input_shape"] == (1, 40)
    again = realdata.load_mnist1d("binary", num_samples=200)
    np.testing.assert_array_equal(again.X, data.X)
    np.testing.assert_array_equal(again.y, np.where(data.y % 2 == 1, 1.0, -1.0))


@pytest.mark.slow
def test_mnist1d_default_size():
    pytest.importorskip("mnist1d")
    data = realdata.load_mnist1d()
    assert data.X.shape == (4000, 40) and data.X_test.shape == (1000, 40)
    assert set(np.unique(data.y)) == set(range(10))
    np.testing.assert_allclose(np.concatenate([data.X, data.X_test]).std(), 1.0, rtol=1e-12)


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_on_small_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    data = realdata.load_fashion_mnist(root=tmp_path, n_train=5)
    assert data.X.shape == (5, 784) and data.X_test.shape == (7, 784)
    np.testing.assert_array_equal(data.X[2], images[2].reshape(-1) / 255.0)
    np.testing.assert_array_equal(data.y_test, labels)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 9) + bytes(3))
    with pytest.raises(ParameterError, match="header says shape"):
        realdata.load_fashion_mnist(root=tmp_path)


def test_fashion_mnist_missing_package_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        realdata.load_fashion_mnist(root=tmp_path)


@pytest.mark.skipif(
    not realdata.FASHION_MNIST_DIR.exists(), reason="Debian package dataset-fashion-mnist missing"
)
def test_fashion_mnist_package():
    data = realdata.load_fashion_mnist(n_train=100, n_test=50)
    assert data.X.shape == (100, 784) and data.params["input_shape"] == (1, 28, 28)
