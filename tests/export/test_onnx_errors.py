"""What cannot be exported or run says so, naming the layer, the file and the expected shape."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="the default (torch.export-based) exporter needs onnxscript")

import caffe_like  # noqa: E402
from caffe_like.cli import main  # noqa: E402
from caffe_like.errors import DataError, ExportError  # noqa: E402
from caffe_like.export import export_onnx  # noqa: E402
from caffe_like.export.infer import OnnxModel  # noqa: E402
from caffe_like.layers import Layer, register_layer  # noqa: E402
from caffe_like.layers.registry import LAYERS  # noqa: E402

from onnx_nets import lenet, mnist_folder, need, write_idx  # noqa: E402


@pytest.fixture
def temporary_layer():
    """Register layer classes for one test, then restore the registry."""
    saved = dict(LAYERS)
    yield lambda cls: register_layer(cls, replace=True)
    LAYERS.clear()
    LAYERS.update(saved)


def _one_layer_net(layer_type: str, **fields) -> dict:
    return {"name": "n", "layer": [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [2, 3, 6, 6]}}},
        {"name": "odd", "type": layer_type, "bottom": "data", "top": "y", **fields}]}


def test_stochastic_pooling_in_train_is_named(tmp_path):
    need("Pooling")
    net = caffe_like.Net(_one_layer_net("Pooling", pooling_param={"pool": "STOCHASTIC", "kernel_size": 2,
                                                                  "stride": 2}), phase="TRAIN")
    with pytest.raises(ExportError, match=r"layer 'odd' \(Pooling\): cannot be exported.*STOCHASTIC"):
        export_onnx(net, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    # the TEST formula is deterministic and exports
    test_net = caffe_like.Net(_one_layer_net("Pooling", pooling_param={"pool": "STOCHASTIC", "kernel_size": 2,
                                                                       "stride": 2}), phase="TEST")
    assert export_onnx(test_net, tmp_path / "ok.onnx").outputs == ["y"]


def test_python_layer_is_named(tmp_path, monkeypatch):
    (tmp_path / "doubling_layer.py").write_text(
        "import caffe\n\n\n"
        "class L(caffe.Layer):\n"
        "    def setup(self, bottom, top):\n        pass\n\n"
        "    def reshape(self, bottom, top):\n        top[0].reshape(*bottom[0].data.shape)\n\n"
        "    def forward(self, bottom, top):\n        top[0].data[...] = 2 * bottom[0].data\n\n"
        "    def backward(self, top, propagate_down, bottom):\n        bottom[0].diff[...] = 2 * top[0].diff\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    net = caffe_like.Net(_one_layer_net("Python", python_param={"module": "doubling_layer", "layer": "L"}),
                         phase="TEST")
    with pytest.raises(ExportError, match=r"layer 'odd' \(Python\): cannot be exported.*Python layer"):
        export_onnx(net, tmp_path / "m.onnx")


def test_a_layer_the_exporter_fails_on_is_located(tmp_path, temporary_layer):
    @temporary_layer
    class ValueBranch(Layer):  # Python control flow on a value: a tracer would freeze one branch
        TYPE = "ValueBranchForOnnxTest"

        def infer_shapes(self, bottom_shapes):
            return [bottom_shapes[0]]

        def forward(self, x):
            return (x * 2 if float(x.mean()) > 0 else x * 3,)

    need("ReLU")
    spec = _one_layer_net("ReLU")
    spec["layer"].append({"name": "branchy", "type": "ValueBranchForOnnxTest", "bottom": "y", "top": "z"})
    with pytest.raises(ExportError, match=r"layer 'branchy' \(ValueBranchForOnnxTest\): cannot be exported"):
        export_onnx(spec, tmp_path / "m.onnx")


def test_bad_arguments(tmp_path):
    with pytest.raises(ExportError, match="opset >= 18"):
        export_onnx(lenet(with_data=False), tmp_path / "m.onnx", opset=17)
    with pytest.raises(ExportError, match="unknown exporter"):
        export_onnx(lenet(with_data=False), tmp_path / "m.onnx", exporter="tf")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    need("Convolution", "Pooling", "InnerProduct", "ReLU")
    with pytest.raises(ExportError, match="2 labels but the output 'ip2' has 10 classes"):
        export_onnx(lenet(with_data=False), tmp_path / "m.onnx", labels_file=labels)


@pytest.fixture(scope="module")
def lenet_model(tmp_path_factory):
    need("Convolution", "Pooling", "InnerProduct", "ReLU")
    folder = tmp_path_factory.mktemp("lenet")
    net = lenet(str(mnist_folder(folder / "mnist")))
    export_onnx(net, folder / "lenet.onnx")
    return folder / "lenet.onnx"


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_not_an_onnx_file(tmp_path, capsys):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not a protobuf at all\x00\xff" * 4)
    with pytest.raises(ExportError, match=r"model.onnx: not a model onnxruntime can load"):
        OnnxModel(bad)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1, 28, 28), np.float32))
    code, out, err = _cli(capsys, "infer", str(bad), str(x))
    assert code == 2 and err.startswith("caffe-like infer: error: ") and "model.onnx" in err.splitlines()[0]
    assert "Traceback" not in err


def test_wrong_shape_and_dtype(lenet_model, tmp_path, capsys):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 1, 20, 20), np.float32))
    code, _, err = _cli(capsys, "infer", str(lenet_model), str(wrong))
    first = err.splitlines()[0]
    assert code == 2 and "wrong.npy" in first and "[3, 1, 20, 20]" in first and "(N, 1, 28, 28)" in first
    ints = tmp_path / "ints.npy"
    np.save(ints, np.zeros((2, 1, 28, 28), np.int64))
    code, _, err = _cli(capsys, "infer", str(lenet_model), str(ints))
    assert code == 2 and "ints.npy" in err and "int64" in err and "(N, 1, 28, 28)" in err
    labels = write_idx(tmp_path / "labels-idx1-ubyte.gz", np.arange(5))
    with pytest.raises(DataError, match="labels"):
        main(["--debug", "infer", str(lenet_model), str(labels)])


def test_undecodable_image(lenet_model, tmp_path, capsys):
    broken = tmp_path / "digit.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    code, _, err = _cli(capsys, "infer", str(lenet_model), str(broken))
    assert code == 2 and "digit.png" in err.splitlines()[0] and "cannot decode the image" in err
    assert "Traceback" not in err
