"""The IDX and CIFAR-10 binary readers on files written byte by byte from the published format descriptions."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from fls.simulate.imagefiles import FormatError, read_cifar10_batch, read_idx


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip_in_any_dimension(tmp_path, compress):
    rng = np.random.default_rng(0)
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)]:
        array = rng.integers(0, 256, shape).astype(np.uint8)
        header = bytes([0, 0, 8, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape)
        payload = header + array.tobytes()
        path = tmp_path / f"a{len(shape)}"
        path.write_bytes(gzip.compress(payload) if compress else payload)
        read = read_idx(path)
        assert read.shape == shape and read.dtype == np.uint8
        np.testing.assert_array_equal(read, array)


def test_idx_malformed_files(tmp_path):
    cases = {
        "empty": (b"", "an empty file"),
        "float": (bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + bytes(4), "found 00 00 0d 01"),
        "short-header": (
            bytes([0, 0, 8, 3]) + struct.pack(">I", 2),
            "ends inside its header: expected 3 sizes",
        ),
        "short-data": (
            bytes([0, 0, 8, 2]) + struct.pack(">II", 2, 2) + bytes(3),
            r"holds 3 values.*\(2, 2\)",
        ),
    }
    for name, (payload, message) in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(FormatError, match=f"{name} .*{message}"):
            read_idx(tmp_path / name)
    (tmp_path / "broken.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + bytes(40))[:-6])
    with pytest.raises(FormatError, match="broken.gz is a damaged gzip file"):
        read_idx(tmp_path / "broken.gz")
    with pytest.raises(FormatError, match="absent does not exist"):
        read_idx(tmp_path / "absent")


def test_cifar10_batch_layout(tmp_path):
    """A record is the label byte, then 1024 red, 1024 green, 1024 blue bytes, each plane row-major."""
    red = np.arange(1024).reshape(32, 32) % 251
    green, blue = (red + 1) % 256, (red * 3) % 256
    record = bytes([7]) + b"".join(plane.astype(np.uint8).tobytes() for plane in (red, green, blue))
    (tmp_path / "batch.bin").write_bytes(record + bytes([2]) + bytes(3072))
    images, labels = read_cifar10_batch(tmp_path / "batch.bin")
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [7, 2]
    np.testing.assert_array_equal(images[0, 0], red)
    np.testing.assert_array_equal(images[0, 1, 5], green[5])
    np.testing.assert_array_equal(images[0, 2, :, 9], blue[:, 9])
    assert not images[1].any()
