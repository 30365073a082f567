"""BlobList: the fast ``layer.blobs[i]`` must always answer what nn.ParameterList answers.

The speed-up reads Parameters straight from ``_parameters``; these tests pin that it never serves a stale
object: after sharing (``blobs[i] = p``), ``net.to(...)`` (in place, and with torch's "overwrite on
conversion" future flag that makes new Parameter objects), ``load_state_dict`` (copy and ``assign``),
``load_weights`` and deep copies.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import caffe_like
from caffe_like.layers.base import BlobList


def _pair(*shapes):
    params = [nn.Parameter(torch.randn(s)) for s in shapes]
    return BlobList(params), nn.ParameterList(params)


def _same(fast, slow):
    assert len(fast) == len(slow)
    for i in range(-len(slow), len(slow)):
        assert fast[i] is slow[i]
    assert [id(p) for p in fast] == [id(p) for p in slow]


def test_indexing_and_iteration_match_parameter_list():
    fast, slow = _pair((2,), (3, 4), ())
    _same(fast, slow)
    assert isinstance(fast, nn.ParameterList)
    sliced = fast[1:]
    assert type(sliced) is BlobList and [p.shape for p in sliced] == [(3, 4), ()]
    for bad in (3, -4, 17):
        with pytest.raises(IndexError):
            fast[bad]
    with pytest.raises(IndexError):
        slow[3]


def test_more_than_sixteen_blobs_and_replacement():
    params = [nn.Parameter(torch.full((1,), float(i))) for i in range(20)]
    fast = BlobList(params)
    assert [p.item() for p in fast] == [float(i) for i in range(20)]
    assert fast[18] is params[18] and fast[-1] is params[19]
    other = nn.Parameter(torch.zeros(1))
    fast[17] = other
    assert fast[17] is other and list(fast)[17] is other
    fast[2] = torch.ones(1)  # a plain tensor is wrapped, as ParameterList does
    assert isinstance(fast[2], nn.Parameter) and fast[2].item() == 1.0


def test_unpacking_and_state_dict_keys_unchanged():
    fast, _ = _pair((2,), (3,))
    a, b = fast
    assert a.shape == (2,) and b.shape == (3,)
    assert list(fast.state_dict()) == ["0", "1"]


def _net():
    return caffe_like.Net({"name": "n", "layer": [
        {"name": "in", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [2, 3, 4, 4]}}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "convolution_param": {"num_output": 2, "kernel_size": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "conv2", "type": "Convolution", "bottom": "conv", "top": "conv2",
         "param": [{"name": "shared_w"}, {"name": "shared_b"}],
         "convolution_param": {"num_output": 2, "kernel_size": 1, "weight_filler": {"type": "xavier"}}},
        {"name": "conv3", "type": "Convolution", "bottom": "conv2", "top": "conv3",
         "param": [{"name": "shared_w"}, {"name": "shared_b"}],
         "convolution_param": {"num_output": 2, "kernel_size": 1, "weight_filler": {"type": "xavier"}}},
    ]}, phase="TRAIN", seed=1)


def test_layers_use_the_current_parameters_after_sharing_and_conversion():
    net = _net()
    layers = net.layer_dict()
    assert layers["conv3"].blobs[0] is layers["conv2"].blobs[0]  # sharing replaced the entry
    before = [id(p) for p in layers["conv"].blobs]
    net.to(torch.float64)
    assert [id(p) for p in layers["conv"].blobs] == before  # converted in place: same objects
    assert layers["conv"].blobs[0].dtype == torch.float64
    out = net(data=torch.randn(2, 3, 4, 4, dtype=torch.float64))["conv3"]
    assert out.dtype == torch.float64


def test_overwrite_on_conversion_serves_the_new_parameters():
    net = _net()
    old = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        net.to(torch.float64)
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(old)
    layer = net.layer_dict()["conv"]
    assert layer.blobs[0] is layer.blobs._parameters["0"] and layer.blobs[0].dtype == torch.float64
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    expected = torch.nn.functional.conv2d(x, layer.blobs._parameters["0"], layer.blobs._parameters["1"])
    net(data=x)
    torch.testing.assert_close(net.blobs["conv"], expected)


def test_load_state_dict_copy_and_assign_are_seen():
    net, other = _net(), _net()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    net.load_state_dict(other.state_dict())
    layer = net.layer_dict()["conv"]
    torch.testing.assert_close(layer.blobs[0], other.layer_dict()["conv"].blobs[0])
    replacement = {k: v.clone() * 2 for k, v in other.state_dict().items()}
    net.load_state_dict(replacement, assign=True)
    assert layer.blobs[0] is layer.blobs._parameters["0"]
    torch.testing.assert_close(layer.blobs[0], replacement["layers.1.blobs.0"])


def test_deepcopy_keeps_working_blob_lists(tmp_path):
    net = _net()
    clone = copy.deepcopy(net)
    for a, b in zip(net.parameters(), clone.parameters()):
        assert a is not b
        torch.testing.assert_close(a, b)
    path = tmp_path / "w.caffemodel"
    net.save_weights(path)
    with torch.no_grad():
        for p in clone.parameters():
            p.zero_()
    clone.load_weights(path)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(clone(data=x)["conv3"], net(data=x)["conv3"])
