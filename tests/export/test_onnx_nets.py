"""Whole nets through ONNX: export (dynamic batch) and onnxruntime (CPU) vs PyTorch at batch 1 and 7.

LeNet and the paper's MNIST-2D net (train/test YAML written here, Data layers replaced by an Input),
a BatchNorm+Scale net and a CIFAR-style net with random weights, including odd spatial sizes where
ceil pooling overhangs and a padded pooling whose last window Caffe/PyTorch clip.  fp32 on both sides:
rtol 1e-4, atol 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="the default (torch.export-based) exporter needs onnxscript")

import caffe_like  # noqa: E402
from caffe_like.export import derive_deploy, export_onnx  # noqa: E402

from onnx_nets import bn_scale_net, cifar_like, lenet, mnist2d, mnist_folder, need, randomize  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
CORE = ("Convolution", "Pooling", "InnerProduct", "ReLU")


def _weights(source, tmp_path, *, input_shape=None, seed=0):
    """Random weights for the deploy net of ``source``, saved as a .caffemodel; returns (net, path)."""
    deploy = derive_deploy(source, input_shape=input_shape)
    net = caffe_like.Net(deploy.spec, phase="TEST", seed=seed)
    randomize(net, seed)
    path = tmp_path / "w.caffemodel"
    net.save_weights(path)
    return net, path


def _round_trip(source, tmp_path, *, outputs=(), input_shape=None, batches=(1, 7), seed=0):
    net, weights = _weights(source, tmp_path, input_shape=input_shape, seed=seed)
    result = export_onnx(source, tmp_path / "m.onnx", weights=weights, outputs=list(outputs), input_shape=input_shape)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == result.outputs
    (name, shape), = result.deploy.inputs.items()
    rng = np.random.default_rng(seed)
    for batch in batches:
        x = rng.standard_normal((batch, *shape[1:])).astype(np.float32)
        with torch.no_grad():
            net(**{name: torch.from_numpy(x)})
        got = session.run(None, {name: x})
        for blob, value in zip(result.outputs, got):
            want = net.blobs[blob].numpy()
            assert value.shape == want.shape
            np.testing.assert_allclose(value, want, rtol=RTOL, atol=ATOL, err_msg=f"{blob}, batch {batch}")
    return result


def test_lenet(tmp_path):
    need(*CORE)
    source = lenet(str(mnist_folder(tmp_path / "mnist")))
    result = _round_trip(source, tmp_path, outputs=["ip1"])
    assert result.outputs == ["ip2", "ip1"] and result.prediction == "ip2"
    assert result.inputs == {"data": ["N", 1, 28, 28]}


@pytest.mark.parametrize("variant", ["softmax", "lsoftmax", "center", "rn", "rn_lsoftmax"])
def test_mnist2d_yaml(variant, tmp_path):
    need(*CORE, "PReLU")
    folder = mnist_folder(tmp_path / "mnist")
    path = tmp_path / f"mnist2d_{variant}.yaml"
    path.write_text(yaml.safe_dump(mnist2d(str(folder), variant)))
    result = _round_trip(str(path), tmp_path, outputs=["ip1"])
    assert result.outputs == ["ip2", "ip1"]
    types = {layer.type for layer in result.deploy.spec.layers}
    assert types == {"Input", "Convolution", "Pooling", "InnerProduct", "PReLU"}


def test_bn_scale(tmp_path):
    need(*CORE, "BatchNorm", "Scale", "Softmax")
    result = _round_trip(bn_scale_net(), tmp_path)
    assert result.outputs == ["prob"]


@pytest.mark.parametrize("size", [32, 33, 31, 29])
def test_cifar_like_odd_sizes(size, tmp_path):
    need(*CORE, "BatchNorm", "Scale", "Softmax", "PReLU")
    result = _round_trip(cifar_like(size), tmp_path, outputs=["ip1"])
    assert result.outputs == ["prob", "ip1"]


def test_input_shape_override_changes_the_exported_size(tmp_path):
    need(*CORE, "BatchNorm", "Scale", "Softmax", "PReLU")
    result = _round_trip(cifar_like(32), tmp_path, input_shape=(3, 35, 35), batches=(1,))
    assert result.inputs == {"data": ["N", 3, 35, 35]}


def test_exporting_a_built_net_keeps_its_weights(tmp_path):
    need(*CORE)
    net = caffe_like.Net(lenet(with_data=False), phase="TEST", seed=3)
    result = caffe_like.export_onnx(net, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        want = net(data=torch.from_numpy(x), label=torch.zeros(3))
    got = session.run(None, {"data": x})[0]
    np.testing.assert_allclose(got, net.blobs["ip2"].numpy(), rtol=RTOL, atol=ATOL)
    assert "loss" in want and result.outputs == ["ip2"]


def test_torchscript_exporter_is_available_for_comparison(tmp_path):
    need("InnerProduct", "ReLU", "Softmax")
    spec = {"name": "mlp", "layer": [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [2, 8]}}},
        {"name": "ip", "type": "InnerProduct", "bottom": "data", "top": "ip",
         "inner_product_param": {"num_output": 4, "weight_filler": {"type": "xavier"}}},
        {"name": "relu", "type": "ReLU", "bottom": "ip", "top": "ip"},
        {"name": "prob", "type": "Softmax", "bottom": "ip", "top": "prob"}]}
    result = export_onnx(spec, tmp_path / "ts.onnx", exporter="torchscript")
    assert result.opset == 17 and result.verify_max_abs is not None
    assert onnx.load(str(tmp_path / "ts.onnx")).opset_import[0].version == 17
