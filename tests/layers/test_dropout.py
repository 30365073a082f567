"""Dropout: inverted scaling at train time, the mode taken from the layer's phase (not module.train/eval),
the same mask in backward, reproducibility from torch's seed, Caffe's ratio range, ``scale_train``.

Statistical checks use 200k values: the dropped fraction has a standard deviation < 0.0011, so a window of
±0.006 (over 5 sigma) is safe.  Other expected values are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import CaffeLikeError, SpecError
from caffe_like.spec.params import DropoutParameter

import layer_db
from layer_db import LayerSample

DTYPES = ["float64", "float32"]
N = 200_000


def _net(ratio=None, phase="TRAIN", dtype="float64", shape=(N,), layer_phase=None, extra=None):
    layer = {"dropout_param": {"dropout_ratio": ratio, **(extra or {})}} if ratio is not None else {}
    if layer_phase:
        layer["phase"] = layer_phase
    sample = LayerSample("t", (np.zeros(shape),), layer=layer, phase=phase)
    return layer_db.build("Dropout", sample, dtype)


def _forward(net, x):
    net(b0=x)
    return net.blobs["t0"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ratio", [0.5, 0.3, 0.9])
def test_train_drops_ratio_and_scales_survivors_by_1_over_1_minus_ratio(dtype, ratio):
    net = _net(ratio, dtype=dtype)
    x = torch.rand(N, dtype=getattr(torch, dtype)) + 1.0  # never 0, so zeros are drops
    torch.manual_seed(3)
    y = _forward(net, x)
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - ratio) < 0.006
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1.0 - ratio), rtol=1e-6 if dtype == "float32" else 1e-15, atol=0)


def test_default_ratio_is_0_5():
    net = _net()
    assert net.layer_dict()["L"].ratio == 0.5
    torch.manual_seed(0)
    y = _forward(net, torch.ones(N, dtype=torch.float64))
    assert abs((y == 0).double().mean().item() - 0.5) < 0.006
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}


def test_backward_uses_the_forward_mask():
    net = _net(0.25, shape=(1000,))
    x = torch.full((1000,), 3.0, dtype=torch.float64, requires_grad=True)
    y = _forward(net, x)
    dy = torch.arange(1000, dtype=torch.float64)
    (dx,) = torch.autograd.grad((y * dy).sum(), x)
    mask = (y != 0).double()
    torch.testing.assert_close(dx, dy * mask / 0.75, rtol=1e-15, atol=0)


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
def test_test_phase_is_the_identity(ratio):
    net = _net(ratio, phase="TEST", shape=(4, 3))
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.equal(_forward(net, x), x)


def test_ratio_0_in_train_is_the_identity():
    net = _net(0.0, shape=(50,))
    x = torch.randn(50, dtype=torch.float64)
    assert torch.equal(_forward(net, x), x)


def test_mode_comes_from_the_phase_not_from_module_train_or_eval():
    x = torch.ones(N, dtype=torch.float64)
    train_net = _net(0.5)
    train_net.eval()  # torch's flag must not matter
    assert (_forward(train_net, x) == 0).any()
    test_net = _net(0.5, phase="TEST")
    test_net.train()
    assert torch.equal(_forward(test_net, x), x)


def test_the_layer_phase_field_overrides_the_net_phase():
    x = torch.ones(N, dtype=torch.float64)
    net = _net(0.5, phase="TEST", layer_phase="TRAIN")
    assert net.layer_dict()["L"].phase == "TRAIN"
    assert (_forward(net, x) == 0).any()


def test_torch_seed_reproduces_the_mask():
    net = _net(0.5, shape=(500,))
    x = torch.ones(500, dtype=torch.float64)
    torch.manual_seed(11)
    a = _forward(net, x).clone()
    torch.manual_seed(11)
    b = _forward(net, x).clone()
    torch.manual_seed(12)
    c = _forward(net, x).clone()
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1])
def test_ratio_outside_0_1_is_refused_naming_the_layer(ratio):
    with pytest.raises(SpecError, match=r"dropout_ratio must be in \[0, 1\)") as info:
        _net(ratio)
    assert "'L'" in str(info.value) and "Dropout" in str(info.value)


def _no_scale_train_net(ratio, phase):
    """A net with scale_train: false (a Caffe-fork field the schema carries as an extension)."""
    return _net(ratio, phase=phase, extra={"scale_train": False})


def test_scale_train_false_scales_at_test_time_instead():
    x = torch.full((N,), 2.0, dtype=torch.float64)
    torch.manual_seed(5)
    y = _forward(_no_scale_train_net(0.25, "TRAIN"), x)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}  # survivors unscaled
    assert abs((y == 0).double().mean().item() - 0.25) < 0.006
    y_test = _forward(_no_scale_train_net(0.25, "TEST"), x)
    torch.testing.assert_close(y_test, x * 0.75, rtol=1e-15, atol=0)


def test_scale_train_through_the_schema():
    assert DropoutParameter().scale_train is True
    net = _net(0.5, phase="TEST", shape=(3,), extra={"scale_train": False})
    assert torch.equal(_forward(net, torch.ones(3, dtype=torch.float64)), torch.full((3,), 0.5, dtype=torch.float64))


def test_in_place_dropout_does_not_mutate_the_bottom():
    net = caffe_like.Net({"name": "t", "layer": [
        {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [100]}}},
        {"name": "drop", "type": "Dropout", "bottom": "x", "top": "x"}]}, phase="TRAIN")
    x = torch.ones(100)
    out = net(x=x)["x"]
    assert torch.equal(x, torch.ones(100)) and (out == 0).any()


def test_two_tops_are_refused():
    with pytest.raises(CaffeLikeError, match="1 top"):
        layer_db.build("Dropout", LayerSample("t", (np.zeros(3),), n_tops=2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_train_statistics_and_mask_reuse(dtype):
    net = _net(0.3, dtype=dtype).cuda()
    x = (torch.rand(N, dtype=getattr(torch, dtype)) + 1.0).cuda().requires_grad_(True)
    y = _forward(net, x)
    assert y.is_cuda and abs((y == 0).double().mean().item() - 0.3) < 0.006
    (dx,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(dx, (y != 0).to(y.dtype) / 0.7)
