"""Exported models: one self-contained checked file with metadata; `caffe-like infer` on .npy/.npz, IDX
and image inputs, top-k, JSON and the PyTorch parity check."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="the default (torch.export-based) exporter needs onnxscript")
Image = pytest.importorskip("PIL.Image")

import caffe_like  # noqa: E402
from caffe_like.cli import main  # noqa: E402
from caffe_like.export import derive_deploy, export_onnx  # noqa: E402
from caffe_like.export.infer import OnnxModel, top_k  # noqa: E402
from caffe_like.export.inputs import load_inputs  # noqa: E402

from onnx_nets import lenet, mnist_folder, need, randomize  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A LeNet train/test YAML with random weights, exported with --labels and --output ip1 by the CLI."""
    need("Convolution", "Pooling", "InnerProduct", "ReLU")
    import yaml

    folder = tmp_path_factory.mktemp("lenet")
    mnist = mnist_folder(folder / "mnist", n=12)
    net_file = folder / "lenet.yaml"
    net_file.write_text(yaml.safe_dump(lenet(str(mnist))))
    net = caffe_like.Net(derive_deploy(str(net_file)).spec, phase="TEST", seed=1)
    randomize(net, 1)
    net.save_weights(folder / "lenet.caffemodel")
    labels = folder / "labels.txt"
    labels.write_text("".join(f"digit {i}\n" for i in range(10)))
    assert main(["export", "--model", str(net_file), "--weights", str(folder / "lenet.caffemodel"),
                 "-o", str(folder / "lenet.onnx"), "--output", "ip1", "--labels", str(labels)]) == 0
    return {"dir": folder, "net": net_file, "weights": folder / "lenet.caffemodel", "model": folder / "lenet.onnx",
            "mnist": mnist}


def test_one_checked_file_with_metadata(exported):
    files = sorted(p.name for p in exported["dir"].iterdir() if p.is_file())
    assert files == ["labels.txt", "lenet.caffemodel", "lenet.onnx", "lenet.yaml"]  # no external data
    model = onnx.load(str(exported["model"]))
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == "caffe_like"
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["ip2", "ip1"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.HasField("dim_value")  # dynamic
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props["caffe_like.source_net"] == "LeNet"
    assert props["caffe_like.source_sha256"] == hashlib.sha256(exported["net"].read_bytes()).hexdigest()
    assert props["caffe_like.weights_sha256"] == hashlib.sha256(exported["weights"].read_bytes()).hexdigest()
    assert props["caffe_like.inputs"] == {"data": ["N", 1, 28, 28]}
    assert props["caffe_like.prediction"] == "ip2"
    pre = props["caffe_like.preprocessing"]["data"]
    assert pre["scale"] == pytest.approx(1 / 256) and pre["channel_order"] == "gray" and pre["mean_value"] == []
    assert props["caffe_like.labels"] == [f"digit {i}" for i in range(10)]


def test_infer_idx_with_check_and_json(exported, tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["infer", str(exported["model"]), str(exported["mnist"] / "t10k-images-idx3-ubyte.gz"),
                 "--top-k", "3", "--json", str(out), "--check", str(exported["net"]),
                 "--weights", str(exported["weights"]), "--batch-size", "5"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "predictions agree on all 12 inputs" in text and "provider CPUExecutionProvider" in text
    document = json.loads(out.read_text())
    assert document["provider"] == "CPUExecutionProvider" and len(document["results"]) == 12
    first = document["results"][0]["top_k"]
    assert len(first) == 3 and first[0]["label"].startswith("digit ") and first[0]["score"] >= first[1]["score"]
    assert document["check"]["ok"] and document["check"]["max_abs_error"] < 1e-4


def test_inputs_agree_across_formats(exported, tmp_path):
    model = OnnxModel(exported["model"])
    from caffe_like.export.inputs import read_idx

    pixels = read_idx(exported["mnist"] / "t10k-images-idx3-ubyte.gz")[:4]
    via_idx = load_inputs(exported["mnist"] / "t10k-images-idx3-ubyte.gz", model.input_shapes,
                          model.info.preprocessing).arrays["data"][:4]
    np.save(tmp_path / "raw.npy", pixels[:, None])  # uint8: raw pixels, preprocessed
    np.save(tmp_path / "ready.npy", pixels[:, None].astype(np.float32) / 256)  # float: as is
    np.savez(tmp_path / "two.npz", a=pixels[:2, None], b=pixels[2:, None])
    for i in range(4):
        Image.fromarray(pixels[i]).save(tmp_path / f"d{i}.png")
    raw = load_inputs(tmp_path / "raw.npy", model.input_shapes, model.info.preprocessing)
    ready = load_inputs(tmp_path / "ready.npy", model.input_shapes, model.info.preprocessing)
    npz = load_inputs(tmp_path / "two.npz", model.input_shapes, model.info.preprocessing)
    png = np.concatenate([load_inputs(tmp_path / f"d{i}.png", model.input_shapes,
                                      model.info.preprocessing).arrays["data"] for i in range(4)])
    for other in (raw.arrays["data"], ready.arrays["data"], npz.arrays["data"], png):
        np.testing.assert_array_equal(other, via_idx)
    assert npz.names[0].endswith("two.npz[a][0]") and len(raw.names) == 4


def test_color_image_preprocessing(tmp_path):
    """An ImageData net (BGR, resize, mean values, scale): a PNG through infer equals the PyTorch net on
    the pixels preprocessed by hand."""
    need("Convolution", "InnerProduct", "Softmax")
    spec = {"name": "color", "layer": [
        {"name": "images", "type": "ImageData", "top": ["data", "label"],
         "image_data_param": {"source": "list.txt", "batch_size": 2, "new_height": 8, "new_width": 10},
         "transform_param": {"mean_value": [10, 20, 30], "scale": 0.5}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "convolution_param": {"num_output": 4, "kernel_size": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "ip", "type": "InnerProduct", "bottom": "conv", "top": "ip",
         "inner_product_param": {"num_output": 5, "weight_filler": {"type": "xavier"}}},
        {"name": "prob", "type": "Softmax", "bottom": "ip", "top": "prob"},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"}]}
    net = caffe_like.Net(derive_deploy(spec).spec, phase="TEST", seed=2)
    net.save_weights(tmp_path / "w.caffemodel")
    export_onnx(spec, tmp_path / "color.onnx", weights=tmp_path / "w.caffemodel")
    rgb = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    model = OnnxModel(tmp_path / "color.onnx")
    assert model.info.preprocessing["data"]["channel_order"] == "BGR"
    got = model.run(load_inputs(tmp_path / "photo.png", model.input_shapes, model.info.preprocessing).arrays)
    resized = np.asarray(Image.fromarray(rgb).resize((10, 8), Image.Resampling.BILINEAR), dtype=np.float32)
    bgr = resized[..., ::-1].transpose(2, 0, 1)[None]
    x = (bgr - np.array([10, 20, 30], np.float32).reshape(1, 3, 1, 1)) * 0.5
    with torch.no_grad():
        want = net(data=torch.from_numpy(np.ascontiguousarray(x)))["prob"].numpy()
    np.testing.assert_allclose(got["prob"], want, rtol=1e-4, atol=1e-5)


def test_top_k_orders_and_breaks_ties_by_index():
    idx, val = top_k(np.array([[0.1, 0.5, 0.5, 0.2], [3, 2, 1, 0]]), 3)
    assert idx.tolist() == [[1, 2, 3], [0, 1, 2]] and val[0].tolist() == [0.5, 0.5, 0.2]


def test_session_provider_and_quiet_logs(exported, capfd):
    model = OnnxModel(exported["model"])
    assert model.provider in ort.get_available_providers() and model.provider == model.session.get_providers()[0]
    captured = capfd.readouterr()
    assert "onnxruntime" not in captured.err and "onnxruntime" not in captured.out


def test_user_deploy_net_with_preprocessing_from_the_train_net(exported, tmp_path):
    from caffe_like.spec.net import NetSpec

    deploy = derive_deploy(str(exported["net"])).spec.to_dict()
    deploy["layer"].append({"name": "prob", "type": "Softmax", "bottom": "ip2", "top": "prob"})
    need("Softmax")
    path = tmp_path / "lenet_deploy.prototxt"
    NetSpec.load(deploy).save(path)
    result = export_onnx(str(exported["net"]), tmp_path / "d.onnx", deploy=str(path), weights=exported["weights"])
    assert result.outputs == ["prob"] and result.prediction == "prob"
    model = OnnxModel(tmp_path / "d.onnx")
    assert model.info.preprocessing["data"]["scale"] == pytest.approx(1 / 256)
    assert model.info.source_file == "lenet_deploy.prototxt"
