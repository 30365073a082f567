"""HDF5Data (optional h5py): dataset-named tops, batches straddling files, shuffle, resume."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from caffe_like.errors import DataError, SpecError

from datahelp import batches, data_net


def test_without_h5py_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)
    (tmp_path / "list.txt").write_text("a.h5\n")
    with pytest.raises(DataError, match="pip install h5py"):
        data_net({"type": "HDF5Data", "hdf5_data_param": {"source": str(tmp_path / "list.txt"), "batch_size": 2}})


@pytest.fixture
def h5_files(tmp_path):
    h5py = pytest.importorskip("h5py", reason="the optional 'h5py' package is not installed")
    rows = [3, 4]
    start = 0
    for i, n in enumerate(rows):
        with h5py.File(tmp_path / f"part{i}.h5", "w") as f:
            f["data"] = np.arange(start, start + n, dtype=np.float64)[:, None, None].repeat(2, 1).repeat(3, 2)
            f["label"] = np.arange(start, start + n, dtype=np.int32)
        start += n
    (tmp_path / "list.txt").write_text("part0.h5\n\npart1.h5\n")
    return tmp_path


def h5_layer(folder, batch_size=3, shuffle=False):
    return {"type": "HDF5Data", "hdf5_data_param": {"source": str(folder / "list.txt"), "batch_size": batch_size,
                                                   "shuffle": shuffle}}


def test_batches_straddle_files_and_wrap(h5_files):
    net = data_net(h5_layer(h5_files, 5))
    assert net.blob_shapes == {"data": (5, 2, 3), "label": (5,)}
    got = [b[1].tolist() for b in batches(net, 3)]
    assert got == [[0, 1, 2, 3, 4], [5, 6, 0, 1, 2], [3, 4, 5, 6, 0]]
    (data, label), = batches(data_net(h5_layer(h5_files, 2)), 1)
    np.testing.assert_array_equal(data[:, 0, 0], label)
    assert data.dtype == np.float32


def test_shuffle_and_resume(h5_files):
    net = data_net(h5_layer(h5_files, 3, shuffle=True))
    seen = np.concatenate([b[1] for b in batches(net, 7)])  # 21 rows = 3 passes over 7
    for epoch in seen.reshape(3, 7):
        assert sorted(epoch.tolist()) == list(range(7))
    layer = h5_layer(h5_files, 3, shuffle=True)
    a = data_net(layer)
    batches(a, 2)
    state = a.layer_dict()["d"].get_extra_state()
    rest = batches(a, 4)
    b = data_net(layer)
    b.layer_dict()["d"].set_extra_state(state)
    for x, y in zip(batches(b, 4), rest):
        np.testing.assert_array_equal(x[1], y[1])


def test_errors(h5_files):
    with pytest.raises(DataError, match="no dataset 'feat'"):
        data_net(h5_layer(h5_files), tops=("feat", "label"))
    with pytest.raises(SpecError, match="does not transform"):
        data_net({**h5_layer(h5_files), "transform_param": {"scale": 2.0}})
