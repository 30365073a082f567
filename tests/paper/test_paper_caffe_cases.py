"""The paper layers against the original Caffe: ../shared/caffe_cases/layers/{lsoftmax_m2, center_loss}.

Those numbers were computed by the authors' own layers (wy1iu/LargeMargin_Softmax_Loss, ydwen/caffe-face)
compiled into a CPU Caffe, in float32.  Here the case's net.prototxt is built with caffe_like.Net (TRAIN, as
case.json says), weights.caffemodel is loaded with Net.load_weights (caffe_like.weights.read_caffemodel; the
file stores the fork's parameter blocks under field numbers 147/148, which are skipped as unknown), the inputs
are fed, the objective is back-propagated, and everything is compared in float32 with rtol 1e-5, atol 1e-6
(observed: ≤ 1 ulp, e.g. 4.8e-7 on logits of magnitude ~7; the λ top and the losses are bit-identical).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.weights import read_caffemodel

from paper_helpers import CAFFE

pytestmark = pytest.mark.caffe_cases


def load_case(caffe_cases, name):
    path = caffe_cases / "layers" / name
    if not path.is_dir():
        pytest.skip(f"case {name} not found at {path}")
    arrays = {f: dict(np.load(path / f"{f}.npz")) for f in ("inputs", "forward", "backward")}
    arrays["topdiff"] = dict(np.load(path / "topdiff.npz")) if (path / "topdiff.npz").exists() else {}
    case = json.loads((path / "case.json").read_text())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*layers not in the net were ignored.*")  # Caffe's Split
        net = caffe_like.Net(path / "net.prototxt", phase=case["phase"], weights=path / "weights.caffemodel")
    return net, arrays, case, path


def forward_backward(net, arrays, case):
    """Forward and backward; returns the input blobs (force_backward makes them require grad, as Caffe)."""
    assert net.force_backward
    net(**{name: torch.tensor(arrays["inputs"][name]) for name in case["inputs"]})
    assert net.loss.dtype == torch.float32
    objective = net.loss
    for name, diff in arrays["topdiff"].items():  # non-loss outputs: Caffe seeded their diff with topdiff.npz
        top = net.blobs[name]
        if top.requires_grad:
            objective = objective + (top * torch.tensor(diff)).sum()
    objective.backward()
    return {name: net.blobs[name] for name in case["inputs"]}


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64), **CAFFE)


def test_lsoftmax_m2(caffe_cases):
    net, arrays, case, path = load_case(caffe_cases, "lsoftmax_m2")
    layer = net.layer_dict()["lm_ip"]
    assert (layer.m, layer.iter) == (2, 3)
    stored = {entry.name: entry.blobs for entry in read_caffemodel(path / "weights.caffemodel").layers}
    np.testing.assert_array_equal(layer.blobs[0].detach().numpy(), stored["lm_ip"][0])  # W, (num_output, K)
    inputs = forward_backward(net, arrays, case)
    fwd, bwd = arrays["forward"], arrays["backward"]
    assert layer.iter == 4  # incremented before use: the first forward used iteration + 1
    # λ in Caffe's float arithmetic: bit-identical (7.1428576, not the float32 of 10/1.4)
    np.testing.assert_array_equal(net.blobs["lambda"].detach().numpy(), fwd["lambda"])
    for blob in ("logits", "loss"):
        close(net.blobs[blob].detach().numpy(), fwd[blob])
    close(inputs["x"].grad.numpy(), bwd["in/x"])
    close(layer.blobs[0].grad.numpy(), bwd["param/lm_ip/0"])
    assert inputs["label"].grad is None and not bwd["in/label"].any()


def test_center_loss(caffe_cases):
    net, arrays, case, _ = load_case(caffe_cases, "center_loss")
    assert case["loss_weights"] == {"center_loss": 0.5}
    inputs = forward_backward(net, arrays, case)
    fwd, bwd = arrays["forward"], arrays["backward"]
    close(net.blobs["center_loss"].detach().numpy(), fwd["center_loss"])  # the top: the unweighted loss
    assert float(net.loss.detach()) == pytest.approx(0.5 * float(fwd["center_loss"]), rel=1e-6)
    close(inputs["x"].grad.numpy(), bwd["in/x"])
    centers_diff = net.params["center"][0].grad.numpy()
    close(centers_diff, bwd["param/center/0"])
    assert np.all(centers_diff[3] == 0.0)  # class 3 is absent from the batch
    single = int(np.flatnonzero(arrays["inputs"]["label"] == 4)[0])  # class 4 is seen once: (c - x)/2
    centers = net.params["center"][0].detach().numpy()
    close(centers_diff[4], (centers[4] - arrays["inputs"]["x"][single]) / 2)
    assert inputs["label"].grad is None and not bwd["in/label"].any()
