"""LMDB Datum databases (raw and encoded) and NPZ archives through the Data layer."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from caffe_like.data import lmdb_source, npz
from caffe_like.errors import DataError
from caffe_like.weights import encode_datum, encode_datum_image

from datahelp import batches, data_net

lmdb = pytest.importorskip("lmdb", reason="the optional 'lmdb' package is not installed")


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_raw_datums_in_key_order_wrapping_around(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 4, 6), dtype=np.uint8)
    lmdb_source.write_lmdb(tmp_path / "db", (encode_datum(im, 10 + i) for i, im in enumerate(images)))
    net = data_net({"type": "Data", "transform_param": {"scale": 0.5},
                    "data_param": {"source": "db", "backend": "LMDB", "batch_size": 3}}, data_root=str(tmp_path))
    assert net.blob_shapes == {"data": (3, 3, 4, 6), "label": (3,)}
    (d0, l0), (d1, l1) = batches(net, 2)
    assert l0.tolist() == [10, 11, 12] and l1.tolist() == [13, 14, 10]
    np.testing.assert_array_equal(d1, images[[3, 4, 0]].astype(np.float32) * 0.5)


def test_float_datums(tmp_path):
    values = np.linspace(-1, 1, 2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    lmdb_source.write_lmdb(tmp_path / "db", (encode_datum(v, i) for i, v in enumerate(values)))
    (data, _), = batches(data_net({"type": "Data", "data_param": {"source": str(tmp_path / "db"),
                                                                   "backend": "LMDB", "batch_size": 2}}), 1)
    np.testing.assert_array_equal(data, values)


def test_encoded_png_datums_decode_to_bgr(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    records = [encode_datum_image(png_bytes(im), i) for i, im in enumerate(rgb)]
    lmdb_source.write_lmdb(tmp_path / "color", records)
    net = data_net({"type": "Data", "data_param": {"source": str(tmp_path / "color"), "backend": "LMDB",
                                                   "batch_size": 2}})
    assert net.blob_shapes["data"] == (2, 3, 5, 7)
    (data, label), = batches(net, 1)
    np.testing.assert_array_equal(data, rgb[:, :, :, ::-1].transpose(0, 3, 1, 2))  # BGR, as OpenCV
    assert label.tolist() == [0, 1]
    lmdb_source.write_lmdb(tmp_path / "gray", [encode_datum_image(png_bytes(gray), 3)])
    net = data_net({"type": "Data", "data_param": {"source": str(tmp_path / "gray"), "backend": "LMDB",
                                                   "batch_size": 1}})
    assert net.blob_shapes["data"] == (1, 1, 5, 7)  # native channels
    forced = data_net({"type": "Data", "transform_param": {"force_color": True},
                       "data_param": {"source": str(tmp_path / "gray"), "backend": "LMDB", "batch_size": 1}})
    (data, _), = batches(forced, 1)
    np.testing.assert_array_equal(data[0], np.stack([gray] * 3))


def test_resume_in_an_lmdb(tmp_path):
    images = np.arange(7 * 1 * 2 * 2, dtype=np.uint8).reshape(7, 1, 2, 2)
    lmdb_source.write_lmdb(tmp_path / "db", (encode_datum(im, i) for i, im in enumerate(images)))
    layer = {"type": "Data", "transform_param": {"mirror": True},
             "data_param": {"source": str(tmp_path / "db"), "backend": "LMDB", "batch_size": 3}}
    net = data_net(layer)
    run = batches(net, 2)
    state = net.layer_dict()["d"].get_extra_state()
    rest = batches(net, 3)
    other = data_net(layer)
    other.layer_dict()["d"].set_extra_state(state)
    for a, b in zip(batches(other, 3), rest):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert run[1][1].tolist() == [3, 4, 5]


def test_missing_lmdb_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(DataError, match="pip install lmdb"):
        lmdb_source.require_lmdb()


def test_leveldb_is_refused_with_advice(tmp_path):
    lmdb_source.write_lmdb(tmp_path / "db", [encode_datum(np.zeros((1, 2, 2), np.uint8), 0)])
    with pytest.raises(Exception, match="LEVELDB is not supported") as info:
        data_net({"type": "Data", "data_param": {"source": str(tmp_path / "db"), "batch_size": 1}})
    assert "set data_param { backend: LMDB }" in str(info.value)


def test_npz(make_npz):
    path, data = make_npz(n=5, shape=(2, 3, 3))
    net = data_net({"type": "Data", "data_param": {"source": str(path.with_suffix("")), "backend": "NPZ",
                                                   "batch_size": 2}})
    assert net.blob_shapes["data"] == (2, 2, 3, 3)
    got = batches(net, 3)
    assert [b[1].tolist() for b in got] == [[0, 1], [2, 3], [4, 0]]
    np.testing.assert_array_equal(got[2][0], data[[4, 0]].astype(np.float32))


def test_npz_gray_float_and_errors(tmp_path):
    np.savez(tmp_path / "g.npz", data=np.full((3, 2, 2), 0.25, np.float64), label=np.array([1.0, 2.0, 3.0]))
    source = npz.NpzSource(tmp_path / "g.npz")
    assert source.sample_shape() == (1, 2, 2)
    images, labels = source.read(np.array([2]))
    assert images.dtype == np.float32 and labels.tolist() == [3]
    np.savez(tmp_path / "nolabel.npz", images=np.zeros((1, 1, 1, 1)))
    with pytest.raises(DataError, match="no array 'data'"):
        npz.NpzSource(tmp_path / "nolabel.npz")
    np.savez(tmp_path / "bad.npz", data=np.zeros((2, 1, 1, 1)), label=np.zeros(3))
    with pytest.raises(DataError, match="'label' must have shape"):
        npz.NpzSource(tmp_path / "bad.npz")


def test_a_legacy_caffe_prototxt_next_to_its_lmdb(tmp_path):
    """V1 ``layers { type: DATA }`` with the deprecated data_param.scale: upgraded, and the source resolves
    against the prototxt's folder."""
    images = (np.arange(5 * 784) % 256).astype(np.uint8).reshape(5, 1, 28, 28)
    lmdb_source.write_lmdb(tmp_path / "mnist_train_lmdb", (encode_datum(im, i) for i, im in enumerate(images)))
    (tmp_path / "lenet.prototxt").write_text(
        'name: "LeNet"\nlayers {\n  name: "mnist"\n  type: DATA\n  top: "data"\n  top: "label"\n'
        '  data_param {\n    source: "mnist_train_lmdb"\n    backend: LMDB\n    batch_size: 4\n'
        '    scale: 0.00390625\n  }\n  include: { phase: TRAIN }\n}\n')
    import caffe_like

    out = caffe_like.Net(str(tmp_path / "lenet.prototxt"), phase="TRAIN")()
    np.testing.assert_array_equal(out["data"].numpy(), images[:4] * np.float32(0.00390625))
    assert out["label"].tolist() == [0, 1, 2, 3]
