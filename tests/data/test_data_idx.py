"""MNIST IDX files: the real MNIST (skipped when absent) and generated files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from caffe_like.data import idx
from caffe_like.errors import DataError

from datahelp import batches, data_net


def plain_idx(path):
    """The README's minimal reader (gzip + numpy), as an independent oracle."""
    b = gzip.open(path).read()
    ndim = b[3]
    dims = np.frombuffer(b, ">i4", ndim, 4)
    return np.frombuffer(b, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array, *, gz=False):
    array = np.asarray(array)
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i2"): 0x0B, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def test_real_mnist_header_shapes(mnist_dir):
    h = idx.read_header(mnist_dir / "train-images-idx3-ubyte.gz")
    assert (h.dims, h.dtype, h.offset, h.gzipped) == ((60000, 28, 28), np.uint8, 16, True)
    assert idx.read_header(mnist_dir / "t10k-labels-idx1-ubyte.gz").dims == (10000,)


def test_real_mnist_through_the_data_layer(mnist_dir):
    net = data_net({"type": "Data", "data_param": {"source": "mnist/train", "backend": "IDX", "batch_size": 100}},
                   data_root=str(mnist_dir.parent))
    assert net.blob_shapes == {"data": (100, 1, 28, 28), "label": (100,)}
    (data, label), = batches(net, 1)
    assert label[:5].tolist() == [5, 0, 4, 1, 9]  # the official first training labels
    images = plain_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data[:, 0], images[:100].astype(np.float32))  # byte-exact, no scale
    labels = plain_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(label, labels[:100])


def test_real_mnist_test_alias_and_scale(mnist_dir):
    net = data_net({"type": "Data", "transform_param": {"scale": 0.00390625},
                    "data_param": {"source": "mnist/test", "backend": "IDX", "batch_size": 8}},
                   phase="TEST", data_root=str(mnist_dir.parent))
    (data, label), = batches(net, 1)
    images = plain_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data[:, 0], images[:8].astype(np.float32) * np.float32(0.00390625))
    assert label.tolist() == plain_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")[:8].tolist()


def test_raw_file_is_memory_mapped(tmp_path):
    images = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    path = write_idx(tmp_path / "x-images-idx3-ubyte", images)
    loaded = idx.load(path)
    assert isinstance(loaded.base, np.memmap) or isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, images)


def test_other_value_types(tmp_path):
    values = np.arange(6, dtype=">i2").reshape(6)
    np.testing.assert_array_equal(idx.load(write_idx(tmp_path / "s", values)), np.arange(6))
    floats = np.linspace(0, 1, 4, dtype=">f4").reshape(1, 2, 2)
    loaded = idx.load(write_idx(tmp_path / "f", floats, gz=True))
    assert loaded.dtype == np.float32 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, floats.astype(np.float32))


def test_locate_prefix_images_file_and_dotted_names(tmp_path):
    images = np.zeros((2, 2, 2), np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([1, 2], np.uint8), gz=True)
    tried = []
    assert idx.locate(tmp_path / "train", tried) == (tmp_path / "train-images-idx3-ubyte.gz",
                                                     tmp_path / "train-labels-idx1-ubyte.gz")
    assert idx.locate(tmp_path / "train-images-idx3-ubyte.gz", [])[1] == tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(tmp_path / "t10k-images.idx3-ubyte", images)
    assert idx.locate(tmp_path / "test", []) == (tmp_path / "t10k-images.idx3-ubyte", None)


def test_not_idx_and_truncated(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04hello")
    with pytest.raises(DataError, match="not an IDX file"):
        idx.read_header(bad)
    cut = tmp_path / "cut"
    cut.write_bytes(write_idx(tmp_path / "full", np.zeros((4, 3, 3), np.uint8)).read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        idx.load(cut)


def test_build_reads_only_the_header(tmp_path):
    """Building (e.g. ``caffe-like summary``) peeks at the header: a file whose pixels are cut off still
    builds with the right shapes, and fails only when data are read."""
    full = write_idx(tmp_path / "full", np.zeros((50, 6, 7), np.uint8)).read_bytes()
    (tmp_path / "cut-images-idx3-ubyte").write_bytes(full[:16 + 10])
    write_idx(tmp_path / "cut-labels-idx1-ubyte", np.zeros(50, np.uint8))
    net = data_net({"type": "Data", "data_param": {"source": str(tmp_path / "cut"), "backend": "IDX",
                                                   "batch_size": 4}}, peek_only=True)
    assert net.blob_shapes["data"] == (4, 1, 6, 7)
    with pytest.raises(DataError, match="truncated"):
        net()


def test_label_count_mismatch(tmp_path):
    write_idx(tmp_path / "a-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "a-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="4] values for 3 images"):
        idx.IdxSource(*idx.locate(tmp_path / "a", []))


def test_labels_file_missing_with_a_label_top(tmp_path):
    write_idx(tmp_path / "a-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    layer = {"type": "Data", "data_param": {"source": str(tmp_path / "a"), "backend": "IDX", "batch_size": 2}}
    with pytest.raises(DataError, match="has no labels"):
        data_net(layer)
    (data,), = batches(data_net(layer, tops=("data",)), 1)
    assert data.shape == (2, 1, 2, 2)
