"""Done-when of issue 5: `caffe-like export` + `caffe-like infer --check` agree with PyTorch on all 10,000
real MNIST test digits for a trained LeNet (identical predictions; the max abs error is reported).

LeNet is trained briefly here with a plain SGD loop over ``net.learnable_params()`` (Caffe's lenet solver
settings: lr 0.01, momentum 0.9, weight decay 5e-4, lr_mult as in the net), 300 iterations of 64 digits.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="the default (torch.export-based) exporter needs onnxscript")

import caffe_like  # noqa: E402
from caffe_like.cli import main  # noqa: E402
from caffe_like.export.inputs import read_idx  # noqa: E402

from onnx_nets import lenet, need  # noqa: E402


def _train_lenet(mnist_dir, iterations: int = 300, batch: int = 64, seed: int = 0) -> caffe_like.Net:
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz").astype(np.float32)[:, None] * 0.00390625
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz").astype(np.float32)
    torch.manual_seed(seed)
    net = caffe_like.Net(lenet(with_data=False), phase="TRAIN", seed=seed)
    params = [p for p in net.learnable_params() if p.lr_mult != 0]
    history = [torch.zeros_like(p.param) for p in params]
    order = np.random.default_rng(seed).permutation(len(images))
    for it in range(iterations):
        index = order[(it * batch) % len(order):][:batch]
        net(data=torch.from_numpy(images[index]), label=torch.from_numpy(labels[index]))
        for p in params:
            p.param.grad = None
        net.loss.backward()
        with torch.no_grad():  # Caffe's SGD: v = momentum * v + lr * (grad + decay * w); w -= v
            for p, v in zip(params, history):
                grad = p.param.grad + 5e-4 * p.decay_mult * p.param
                v.mul_(0.9).add_(grad, alpha=0.01 * p.lr_mult)
                p.param.sub_(v)
    return net


@pytest.mark.slow
def test_export_and_infer_check_on_10k_mnist_digits(mnist_dir, tmp_path, capsys):
    need("Convolution", "Pooling", "InnerProduct", "ReLU", "SoftmaxWithLoss")
    net = _train_lenet(mnist_dir)
    net.save_weights(tmp_path / "lenet.caffemodel")
    net_file = tmp_path / "lenet_train_test.yaml"
    net_file.write_text(yaml.safe_dump(lenet(str(mnist_dir))))
    assert main(["export", "--model", str(net_file), "--weights", str(tmp_path / "lenet.caffemodel"),
                 "-o", str(tmp_path / "lenet.onnx")]) == 0
    report = tmp_path / "infer.json"
    code = main(["infer", str(tmp_path / "lenet.onnx"), str(mnist_dir / "t10k-images-idx3-ubyte.gz"), "-q",
                 "--top-k", "1", "--json", str(report), "--check", str(net_file),
                 "--weights", str(tmp_path / "lenet.caffemodel")])
    printed = capsys.readouterr().out
    document = json.loads(report.read_text())
    check = document["check"]
    with capsys.disabled():
        print(f"\n[10k MNIST] {printed.strip().splitlines()[-2]}  (provider {document['provider']})")
    assert code == 0, printed
    assert check["items"] == 10000 and check["predictions_agree"] and check["disagreements"] == 0
    assert check["max_abs_error"] < 1e-3
    predicted = np.array([r["top_k"][0]["class"] for r in document["results"]])
    truth = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert (predicted == truth).mean() > 0.95  # the brief training did train
