"""Nets and helpers shared by the ONNX tests (tests/export): LeNet, MNIST-2D (and its paper variants),
a BatchNorm+Scale net and a CIFAR-style net, as dicts with the YAML's structure."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest


def need(*types: str) -> None:
    """Skip the test when a layer type it builds is not registered (yet)."""
    from caffe_like.layers.registry import LAYERS

    missing = [t for t in types if t not in LAYERS]
    if missing:
        pytest.skip(f"layer type(s) not registered yet: {', '.join(missing)}")


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (MNIST's format)."""
    array = np.asarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def mnist_folder(root: Path, n: int = 16, seed: int = 0) -> Path:
    """A folder with a tiny MNIST-like test set (IDX, gzip)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    return root


def _data_layers(source: str, scale: float = 0.00390625) -> list[dict]:
    return [
        {"name": "mnist", "type": "Data", "top": ["data", "label"], "include": {"phase": phase},
         "transform_param": {"scale": scale},
         "data_param": {"source": source, "backend": "IDX", "batch_size": batch}}
        for phase, batch in (("TRAIN", 64), ("TEST", 100))
    ]


def _xavier(num_output: int, **extra) -> dict:
    return {"num_output": num_output, "weight_filler": {"type": "xavier"}, **extra}


def lenet(source: str = "mnist", *, with_data: bool = True) -> dict:
    """Caffe's examples/mnist/lenet_train_test.prototxt (IDX backend)."""
    head = _data_layers(source) if with_data else [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [64, 1, 28, 28]}}},
        {"name": "label", "type": "Input", "top": "label", "input_param": {"shape": {"dim": [64]}}},
    ]
    return {"name": "LeNet", "layer": head + [
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "param": [{"lr_mult": 1}, {"lr_mult": 2}], "convolution_param": _xavier(20, kernel_size=5, stride=1)},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "conv2", "type": "Convolution", "bottom": "pool1", "top": "conv2",
         "param": [{"lr_mult": 1}, {"lr_mult": 2}], "convolution_param": _xavier(50, kernel_size=5, stride=1)},
        {"name": "pool2", "type": "Pooling", "bottom": "conv2", "top": "pool2",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool2", "top": "ip1",
         "param": [{"lr_mult": 1}, {"lr_mult": 2}], "inner_product_param": _xavier(500)},
        {"name": "relu1", "type": "ReLU", "bottom": "ip1", "top": "ip1"},
        {"name": "ip2", "type": "InnerProduct", "bottom": "ip1", "top": "ip2",
         "param": [{"lr_mult": 1}, {"lr_mult": 2}], "inner_product_param": _xavier(10)},
        {"name": "accuracy", "type": "Accuracy", "bottom": ["ip2", "label"], "top": "accuracy",
         "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip2", "label"], "top": "loss"},
    ]}


def mnist2d(source: str = "mnist", variant: str = "softmax") -> dict:
    """The paper's MNIST-2D net: conv 5x5x20, pool, conv 5x5x50, pool, FC 2, PReLU, FC 10 (no bias),
    SoftmaxWithLoss; variants "lsoftmax" (L-Softmax classifier), "center" (+ CenterLoss on the feature),
    "rn" (+ ReciprocalNormLoss), "rn_lsoftmax"."""
    classifier = {"name": "ip2", "type": "InnerProduct", "bottom": "ip1", "top": "ip2",
                  "inner_product_param": _xavier(10, bias_term=False)}
    if "lsoftmax" in variant:
        classifier = {"name": "ip2", "type": "LargeMarginInnerProduct", "bottom": ["ip1", "label"], "top": "ip2",
                      "largemargin_inner_product_param": {"num_output": 10, "type": "DOUBLE", "base": 1000,
                                                          "gamma": 0.000025, "power": 35, "lambda_min": 0,
                                                          "weight_filler": {"type": "msra"}}}
    layers = _data_layers(source) + [
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": _xavier(20, kernel_size=5)},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "conv2", "type": "Convolution", "bottom": "pool1", "top": "conv2",
         "convolution_param": _xavier(50, kernel_size=5)},
        {"name": "pool2", "type": "Pooling", "bottom": "conv2", "top": "pool2",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool2", "top": "ip1", "inner_product_param": _xavier(2)},
        {"name": "prelu1", "type": "PReLU", "bottom": "ip1", "top": "ip1"},
        classifier,
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip2", "label"], "top": "loss"},
    ]
    if variant == "center":
        layers.append({"name": "center_loss", "type": "CenterLoss", "bottom": ["ip1", "label"], "top": "center_loss",
                       "loss_weight": 0.01, "center_loss_param": {"num_output": 10, "center_filler": {"type": "xavier"}}})
    if variant.startswith("rn"):
        layers.append({"name": "incay", "type": "ReciprocalNormLoss", "bottom": ["ip1", "ip2", "label"],
                       "top": "incay", "loss_weight": 0.1})
    return {"name": f"mnist2d_{variant}", "layer": layers}


def _conv_bn(name: str, bottom: str, n: int, *, prelu: bool = False) -> list[dict]:
    return [
        {"name": name, "type": "Convolution", "bottom": bottom, "top": name,
         "convolution_param": _xavier(n, kernel_size=3, pad=1, bias_term=False)},
        {"name": f"{name}_bn", "type": "BatchNorm", "bottom": name, "top": name},
        {"name": f"{name}_scale", "type": "Scale", "bottom": name, "top": name, "scale_param": {"bias_term": True}},
        {"name": f"{name}_relu", "type": "PReLU" if prelu else "ReLU", "bottom": name, "top": name},
    ]


def bn_scale_net(size: int = 16) -> dict:
    return {"name": "bn_scale", "layer": [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [4, 3, size, size]}}},
        *_conv_bn("conv1", "data", 8),
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool1", "top": "ip1", "inner_product_param": _xavier(10)},
        {"name": "prob", "type": "Softmax", "bottom": "ip1", "top": "prob"},
    ]}


def cifar_like(size: int = 32) -> dict:
    """A CIFAR-style net (the paper's conv -> BN -> ReLU stages, smaller), with ceil pooling that
    overhangs for odd sizes and a padded pooling whose last window is clipped."""
    return {"name": "cifar_like", "layer": [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [2, 3, size, size]}}},
        *_conv_bn("conv0", "data", 16),
        *_conv_bn("conv1_1", "conv0", 16, prelu=True),
        {"name": "pool1", "type": "Pooling", "bottom": "conv1_1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
        *_conv_bn("conv2_1", "pool1", 24),
        {"name": "pool2", "type": "Pooling", "bottom": "conv2_1", "top": "pool2",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2, "pad": 1}},
        *_conv_bn("conv3_1", "pool2", 32),
        {"name": "pool3", "type": "Pooling", "bottom": "conv3_1", "top": "pool3",
         "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool3", "top": "ip1", "inner_product_param": _xavier(64)},
        {"name": "ip2", "type": "InnerProduct", "bottom": "ip1", "top": "ip2", "inner_product_param": _xavier(10)},
        {"name": "prob", "type": "Softmax", "bottom": "ip2", "top": "prob"},
    ]}


def randomize(net, seed: int = 0) -> None:
    """Random blobs everywhere (BatchNorm: positive variances, scale factor 1)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layer_dict().values():
            kind = type(layer).TYPE
            for index, blob in enumerate(layer.blobs):
                values = torch.randn(blob.shape, generator=generator, dtype=torch.float64)
                if kind == "BatchNorm":
                    values = {0: values * 0.2, 1: values.abs() * 0.5 + 0.5, 2: torch.ones_like(values)}[index]
                elif kind == "Scale":
                    values = 1.0 + 0.2 * values if index == 0 else 0.1 * values
                elif kind == "PReLU":
                    values = 0.25 + 0.05 * values
                else:
                    fan_in = max(1, blob[0].numel()) if blob.dim() > 1 else 1
                    values = values / np.sqrt(fan_in)
                blob.copy_(values.to(blob.dtype))
