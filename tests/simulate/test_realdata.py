"""Real data loaders: shapes, labels, fixed splits, untouched global random state, the IDX reader."""

from __future__ import annotations

import gzip
import random
import struct

import numpy as np
import pytest

from fls.simulate import realdata
from fls.simulate.imagefiles import FormatError
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


def write_idx(path, array: np.ndarray, *, compress: bool = True) -> None:
    """An IDX file as published: 00 00 08 <ndim>, big-endian uint32 sizes, the bytes row-major."""
    payload = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload += array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def write_fashion_mnist(root, images, labels, *, compress: bool = True) -> None:
    suffix = ".gz" if compress else ""
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_the_published_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    write_fashion_mnist(tmp_path, images, labels, compress=compress)
    data = realdata.load_fashion_mnist(root=tmp_path, n_train=5)
    assert data.X.shape == (5, 784) and data.X_test.shape == (7, 784)
    assert data.params["input_shape"] == (1, 28, 28)
    np.testing.assert_array_equal(data.X[2], images[2].reshape(-1) / 255.0)
    np.testing.assert_array_equal(data.y_test, labels)
    binary = realdata.load_fashion_mnist("binary", root=tmp_path)
    np.testing.assert_array_equal(binary.y, np.where(labels % 2 == 1, 1.0, -1.0))


def test_fashion_mnist_malformed_files_are_named(tmp_path):
    rng = np.random.default_rng(1)
    write_fashion_mnist(tmp_path, rng.integers(0, 256, (4, 28, 28)), rng.integers(0, 10, 4))
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(labels, "wb") as handle:  # the header promises 9 labels, the file holds 3
        handle.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 9) + bytes(3))
    with pytest.raises(FormatError, match="t10k-labels-idx1-ubyte.gz holds 3 values; its header says shape"):
        realdata.load_fashion_mnist(root=tmp_path)
    write_idx(labels, np.zeros(5))  # one label too many for 4 images
    with pytest.raises(FormatError, match="holds 5 labels for 4 images"):
        realdata.load_fashion_mnist(root=tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 14, 14)))
    with pytest.raises(FormatError, match=r"shape \(14, 14\); expected \(28, 28\)"):
        realdata.load_fashion_mnist(root=tmp_path)
    write_fashion_mnist(tmp_path, np.zeros((4, 28, 28)), np.zeros(4))
    with pytest.raises(ParameterError, match="n_train = 5 is out of range; allowed: 1 ... 4"):
        realdata.load_fashion_mnist(root=tmp_path, n_train=5)


def test_fashion_mnist_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"train-images-idx3-ubyte\[.gz\] not found.*dataset-fashion-mnist"
    ):
        realdata.load_fashion_mnist(root=tmp_path)


@pytest.mark.skipif(
    not realdata.FASHION_MNIST_DIR.exists(), reason="Debian package dataset-fashion-mnist missing"
)
def test_fashion_mnist_package():
    data = realdata.load_fashion_mnist(n_train=100, n_test=50)
    assert data.X.shape == (100, 784) and data.params["input_shape"] == (1, 28, 28)


def write_cifar10_batch(path, images: np.ndarray, labels: np.ndarray) -> None:
    """The binary version's records: a label byte, then the red, green and blue 32x32 planes, row-major."""
    records = [bytes([label]) + image.astype(np.uint8).tobytes() for image, label in zip(images, labels)]
    path.write_bytes(b"".join(records))


def cifar10_files(root, sizes=(3, 2, 2, 1, 2, 4), seed=0):
    """Small batch files (data_batch_1 ... 5, test_batch) with random images; returns what they hold."""
    rng = np.random.default_rng(seed)
    held = []
    names = [*realdata.CIFAR10_TRAIN, realdata.CIFAR10_TEST]
    for name, size in zip(names, sizes, strict=True):
        images, labels = rng.integers(0, 256, (size, 3, 32, 32)), rng.integers(0, 10, size)
        write_cifar10_batch(root / name, images, labels)
        held.append((images, labels))
    return held


@pytest.mark.parametrize("inside_archive_folder", [False, True])
def test_cifar10_reads_the_binary_batches(tmp_path, inside_archive_folder):
    directory = tmp_path / realdata.CIFAR10_FOLDER if inside_archive_folder else tmp_path
    directory.mkdir(exist_ok=True)
    held = cifar10_files(directory)
    data = realdata.load_cifar10(tmp_path)
    train_images = np.concatenate([images for images, _ in held[:-1]])
    train_labels = np.concatenate([labels for _, labels in held[:-1]])
    assert data.X.shape == (10, 3072) and data.X_test.shape == (4, 3072)
    assert data.params["input_shape"] == (3, 32, 32) and data.params["classes"] == 10
    # the second image's red plane, pixel by pixel, and the last test image's blue plane
    np.testing.assert_array_equal(data.X[1].reshape(3, 32, 32)[0] * 255.0, train_images[1, 0])
    np.testing.assert_array_equal(data.X_test[3].reshape(3, 32, 32)[2] * 255.0, held[-1][0][3, 2])
    np.testing.assert_array_equal(data.y, train_labels)
    few = realdata.load_cifar10(tmp_path, "binary", n_train=4, n_test=2)
    assert few.X.shape == (4, 3072) and set(np.unique(few.y)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(few.y, np.where(train_labels[:4] % 2 == 1, 1.0, -1.0))


def test_cifar10_malformed_or_missing_files_are_named(tmp_path):
    cifar10_files(tmp_path)
    (tmp_path / "data_batch_3.bin").write_bytes(bytes(3073 * 2 + 17))
    with pytest.raises(
        FormatError, match="data_batch_3.bin holds 6163 bytes; expected a positive multiple of 3073"
    ):
        realdata.load_cifar10(tmp_path)
    (tmp_path / "data_batch_3.bin").write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(FormatError, match="data_batch_3.bin: record 0 has label 12; expected 0 ... 9"):
        realdata.load_cifar10(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch.bin"):
        realdata.load_cifar10(tmp_path)
