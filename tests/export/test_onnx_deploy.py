"""Deploy-net derivation (caffe_like.export.deploy): a pure, torch-free spec transformation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from caffe_like.errors import ExportError
from caffe_like.export import derive_deploy
from caffe_like.export.preprocess import apply, mean_image
from caffe_like.spec.net import NetSpec

from onnx_nets import lenet, mnist2d, mnist_folder


def _types(deploy):
    return [(layer.name, layer.type) for layer in deploy.spec.layers]


def test_lenet_train_test(tmp_path):
    deploy = derive_deploy(lenet(str(mnist_folder(tmp_path))))
    assert deploy.inputs == {"data": (100, 1, 28, 28)}  # the TEST data layer's batch size; dynamic at export
    assert _types(deploy)[0] == ("data", "Input")
    assert [t for _, t in _types(deploy)] == ["Input", "Convolution", "Pooling", "Convolution", "Pooling",
                                               "InnerProduct", "ReLU", "InnerProduct"]
    assert deploy.outputs == ["ip2"] and deploy.prediction == "ip2"
    assert any("accuracy" in c for c in deploy.changes) and any("dropped label" in c for c in deploy.changes)
    pre = deploy.preprocessing["data"]
    assert pre["scale"] == pytest.approx(1 / 256) and pre["channel_order"] == "gray" and pre["raw"]
    # the result is a valid net (reloads from its own YAML, no data/loss layers)
    again = NetSpec.from_text(deploy.spec.to_yaml(), yaml_syntax=True)
    assert [layer.type for layer in again.layers] == [t for _, t in _types(deploy)]


def test_requested_output_and_yaml_source(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(mnist2d(str(mnist_folder(tmp_path / "m")))))
    deploy = derive_deploy(str(path), outputs=["ip1"])
    assert deploy.outputs == ["ip2", "ip1"]
    assert deploy.source_file == str(path)
    import hashlib

    assert deploy.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_paper_layers(tmp_path):
    deploy = derive_deploy(mnist2d(str(mnist_folder(tmp_path)), "rn_lsoftmax"), outputs=["ip1"])
    ip2 = deploy.spec.layer("ip2")
    assert ip2.type == "InnerProduct" and list(ip2.bottom) == ["ip1"] and list(ip2.top) == ["ip2"]
    assert ip2.inner_product_param.num_output == 10 and ip2.inner_product_param.bias_term is False
    assert ip2.inner_product_param.weight_filler.type == "msra"
    assert "incay" not in [layer.name for layer in deploy.spec.layers]
    center = derive_deploy(mnist2d(str(mnist_folder(tmp_path)), "center"))
    assert [layer.type for layer in center.spec.layers if "Loss" in layer.type] == []
    assert center.outputs == ["ip2"]


def test_pruning_keeps_the_classifier_and_requested_blobs(tmp_path):
    net = mnist2d(str(mnist_folder(tmp_path)), "center")
    # a layer that only feeds the center loss: pruned; a prob output of the TEST net: kept
    net["layer"].insert(-1, {"name": "feat_norm", "type": "Power", "bottom": "ip1", "top": "feat_norm",
                             "power_param": {"scale": 0.5}})
    net["layer"][-1]["bottom"] = ["feat_norm", "label"]
    net["layer"].append({"name": "prob", "type": "Softmax", "bottom": "ip2", "top": "prob",
                         "include": {"phase": "TEST"}})
    deploy = derive_deploy(net)
    assert "feat_norm" not in [layer.name for layer in deploy.spec.layers]
    assert any(c.startswith("pruned feat_norm") for c in deploy.changes)
    assert deploy.outputs == ["prob"] and deploy.prediction == "prob"
    kept = derive_deploy(net, outputs=["feat_norm"])  # kept, and then a net output like any other
    assert kept.outputs == ["feat_norm", "prob"] and kept.prediction == "prob"


def test_label_read_by_a_kept_layer_is_an_error(tmp_path):
    net = lenet(str(mnist_folder(tmp_path)))
    net["layer"].insert(-2, {"name": "lab", "type": "Power", "bottom": "label", "top": "lab2"})
    net["layer"].insert(-2, {"name": "mix", "type": "Eltwise", "bottom": ["ip2", "lab2"], "top": "mix"})
    with pytest.raises(ExportError, match="label top of data layer 'mnist'") as caught:
        derive_deploy(net)
    assert "layer 'lab'" in str(caught.value)


def test_unknown_output_names_the_choices(tmp_path):
    with pytest.raises(ExportError, match="cannot export blob 'ipl'") as caught:
        derive_deploy(lenet(str(mnist_folder(tmp_path))), outputs=["ipl"])
    assert "did you mean 'ip" in str(caught.value) and "ip1, ip2, pool1" in str(caught.value)
    with pytest.raises(ExportError, match="'loss'.*removed layer"):
        derive_deploy(lenet(str(mnist_folder(tmp_path))), outputs=["loss"])


def _net_with(data_layer: dict) -> dict:
    return {"name": "n", "layer": [data_layer,
                                   {"name": "ip", "type": "InnerProduct", "bottom": "data", "top": "ip",
                                    "inner_product_param": {"num_output": 3}},
                                   {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"],
                                    "top": "loss"}]}


def test_data_layer_shapes_and_preprocessing(tmp_path):
    memory = derive_deploy(_net_with({"name": "d", "type": "MemoryData", "top": ["data", "label"],
                                      "memory_data_param": {"batch_size": 5, "channels": 3, "height": 7, "width": 9},
                                      "transform_param": {"mean_value": [1, 2, 3]}}))
    assert memory.inputs == {"data": (5, 3, 7, 9)} and memory.preprocessing["data"]["channel_order"] == "BGR"
    dummy = derive_deploy(_net_with({"name": "d", "type": "DummyData", "top": ["data", "label"],
                                     "dummy_data_param": {"shape": [{"dim": [2, 4]}, {"dim": [2]}]}}))
    assert dummy.inputs == {"data": (2, 4)} and dummy.preprocessing["data"]["channel_order"] == "none"
    image = derive_deploy(_net_with({"name": "d", "type": "ImageData", "top": ["data", "label"],
                                     "image_data_param": {"source": "list.txt", "batch_size": 3, "new_height": 40,
                                                          "new_width": 36, "is_color": True},
                                     "transform_param": {"crop_size": 32, "scale": 0.5}}))
    assert image.inputs == {"data": (3, 3, 32, 32)}
    pre = image.preprocessing["data"]
    assert (pre["channel_order"], pre["image_size"], pre["crop_size"]) == ("BGR", [40, 36], 32)
    gray = derive_deploy(_net_with({"name": "d", "type": "ImageData", "top": ["data", "label"],
                                    "image_data_param": {"source": "l.txt", "new_height": 8, "new_width": 8,
                                                         "is_color": False}}))
    assert gray.inputs == {"data": (1, 1, 8, 8)} and gray.preprocessing["data"]["channel_order"] == "gray"
    cifar = derive_deploy(_net_with({"name": "d", "type": "Data", "top": ["data", "label"],
                                     "data_param": {"source": "cifar", "backend": "CIFAR", "batch_size": 10},
                                     "transform_param": {"crop_size": 28}}))
    assert cifar.inputs == {"data": (10, 3, 28, 28)} and cifar.preprocessing["data"]["channel_order"] == "RGB"
    assert cifar.preprocessing["data"]["image_size"] == [32, 32]


def test_unknown_data_shape_asks_for_it(tmp_path):
    net = _net_with({"name": "d", "type": "Data", "top": ["data", "label"],
                     "data_param": {"source": str(tmp_path / "nothing"), "backend": "LMDB", "batch_size": 4}})
    with pytest.raises(ExportError, match="cannot tell the shape of the data top 'data'") as caught:
        derive_deploy(net)
    assert "--input-shape" in str(caught.value)
    assert derive_deploy(net, input_shape=(3, 8, 8)).inputs == {"data": (4, 3, 8, 8)}


def test_mean_file_is_stored_and_applied(tmp_path):
    from caffe_like.weights import write_blobproto

    mean = np.arange(2 * 6 * 6, dtype=np.float32).reshape(1, 2, 6, 6)
    write_blobproto(tmp_path / "mean.binaryproto", mean)
    net = _net_with({"name": "d", "type": "MemoryData", "top": ["data", "label"],
                     "memory_data_param": {"batch_size": 1, "channels": 2, "height": 4, "width": 4},
                     "transform_param": {"mean_file": str(tmp_path / "mean.binaryproto"), "scale": 2.0,
                                         "crop_size": 4}})
    deploy = derive_deploy(net)
    pre = deploy.preprocessing["data"]
    assert pre["mean_file"] == "mean.binaryproto" and pre["image_size"] == [6, 6]
    np.testing.assert_array_equal(mean_image(pre), mean[0])
    pixels = np.full((1, 2, 6, 6), 100, dtype=np.uint8)
    x = apply(pixels, pre, input_shape=(2, 4, 4))
    np.testing.assert_allclose(x, (100 - mean[:, :, 1:5, 1:5]) * 2.0)


def test_a_deploy_net_passes_through(tmp_path):
    net = lenet(with_data=False)
    net["layer"] = [layer for layer in net["layer"] if layer["type"] not in ("Accuracy", "SoftmaxWithLoss")]
    net["layer"] = [layer for layer in net["layer"] if layer["name"] != "label"]
    deploy = derive_deploy(net)
    assert deploy.changes == [] and deploy.inputs == {"data": (64, 1, 28, 28)} and deploy.preprocessing == {}


def test_derivation_is_torch_free(tmp_path):
    folder = mnist_folder(tmp_path)
    code = ("import sys, yaml; from caffe_like.export import derive_deploy; "
            f"d = derive_deploy(yaml.safe_load(open({str(tmp_path / 'n.yaml')!r}))); "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(d.outputs)")
    (tmp_path / "n.yaml").write_text(yaml.safe_dump(mnist2d(str(folder), "rn_lsoftmax")))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ip2']"
