"""CIFAR python batches through the restricted unpickler: generated batches load, hostile pickles do not."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

from caffe_like.data import cifar
from caffe_like.errors import DataError

from datahelp import batches, data_net


def cifar10_batch(n, start, protocol=2):
    data = np.random.default_rng(start).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[:, 0] = np.arange(start, start + n) % 256  # identifiable records
    batch = {"data": data, "labels": [int(v) for v in np.arange(start, start + n) % 10],
             "batch_label": f"training batch starting at {start}", "filenames": [f"img_{i}.png" for i in range(n)]}
    return pickle.dumps(batch, protocol=protocol), data


@pytest.fixture
def cifar10_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    arrays = []
    for i in range(1, 6):
        raw, data = cifar10_batch(4, 4 * (i - 1), protocol=(2, 4, 5, 2, 3)[i - 1])
        (folder / f"data_batch_{i}").write_bytes(raw)
        arrays.append(data)
    raw, test = cifar10_batch(3, 100)
    (folder / "test_batch").write_bytes(raw)
    return folder, np.concatenate(arrays), test


def test_cifar10_train_is_batches_1_to_5_in_order(cifar10_dir):
    folder, train, _ = cifar10_dir
    net = data_net({"type": "Data", "data_param": {"source": "cifar-10-batches-py/train", "backend": "CIFAR",
                                                   "batch_size": 20}}, data_root=str(folder.parent))
    assert net.blob_shapes["data"] == (20, 3, 32, 32)
    (data, label), = batches(net, 1)
    np.testing.assert_array_equal(data, train.reshape(20, 3, 32, 32).astype(np.float32))  # planes R, G, B
    assert label.tolist() == [i % 10 for i in range(20)]


def test_cifar10_test_batch(cifar10_dir):
    folder, _, test = cifar10_dir
    net = data_net({"type": "Data", "data_param": {"source": str(folder / "test"), "backend": "CIFAR",
                                                   "batch_size": 2}}, phase="TEST")
    (d0, l0), (d1, l1) = batches(net, 2)
    assert l0.tolist() == [0, 1] and l1.tolist() == [2, 0]  # 3 records, wrapping around
    np.testing.assert_array_equal(d1[1], test[0].reshape(3, 32, 32))


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.zeros((4, 3072), np.uint8)
    batch = {b"data": data, b"fine_labels": [10, 20, 30, 99], b"coarse_labels": [1, 2, 3, 19],
             b"batch_label": b"training batch 1 of 1", b"filenames": [b"a", b"b", b"c", b"d"]}
    (folder / "train").write_bytes(pickle.dumps(batch, protocol=2))
    for label_set, want in (("fine", [10, 20, 30, 99]), ("coarse", [1, 2, 3, 19])):
        net = data_net({"type": "Data", "data_param": {"source": str(folder / "train"), "backend": "CIFAR",
                                                       "batch_size": 4, "cifar_label": label_set}})
        (_, label), = batches(net, 1)
        assert label.tolist() == want


def test_coarse_labels_need_cifar100(cifar10_dir):
    folder, _, _ = cifar10_dir
    with pytest.raises(DataError, match="coarse needs CIFAR-100"):
        data_net({"type": "Data", "data_param": {"source": str(folder / "train"), "backend": "CIFAR",
                                                 "batch_size": 2, "cifar_label": "coarse"}})


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official files: str as BINSTRING, numpy.core globals."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    def save_text(self, obj):
        self.save_py2_str(obj.encode("latin1"))

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_text
    dispatch[type] = save_global


def test_python2_cpickle_batches_load(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump({"data": data, "labels": [3, 7], "batch_label": "training batch 1 of 5",
                                         "filenames": ["a.png", "b.png"]})
    raw = buffer.getvalue()
    globals_used = {arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    assert globals_used == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    (tmp_path / "data_batch_1").write_bytes(raw)
    batch = cifar.load_batch(tmp_path / "data_batch_1")
    assert batch["labels"] == [3, 7] and batch["batch_label"] == "training batch 1 of 5"
    np.testing.assert_array_equal(batch["data"], data)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Exploit(marker), "labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"forbidden global '(posix|os|nt)\.system'"):
        cifar.load_batch(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps(getattr),  # builtins.getattr
    b"cbuiltins\neval\n(S'1+1'\ntR.",  # a hand-written protocol-0 call
    pickle.dumps(np.array([object()], dtype=object)[:0]),  # object arrays
])
def test_other_globals_and_object_arrays_are_refused(tmp_path, payload):
    path = tmp_path / "batch"
    path.write_bytes(payload)
    with pytest.raises(DataError, match="refused|forbidden|object"):
        cifar.load_batch(path)


def test_not_a_pickle_and_wrong_content(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        cifar.load_batch(path)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataError, match="N×3072"):
        cifar.CifarSource([path]).read(np.array([0]))


def test_missing_cifar_names_the_command(tmp_path):
    with pytest.raises(DataError) as info:
        data_net({"type": "Data", "data_param": {"source": "cifar-100-python/train", "backend": "CIFAR",
                                                 "batch_size": 2}})
    assert "caffe-like data cifar100 --root DIR" in str(info.value)
