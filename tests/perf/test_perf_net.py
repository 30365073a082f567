"""The builder's speed paths compute what the plain paths compute.

* BatchNorm (batch statistics) + per-channel Scale run as one ``torch.batch_norm``: same tops, gradients
  and statistics blobs as the two layers one after the other (``net.fusion = False``), up to rounding;
  pairs that must not fuse are left alone; hooks see the layers run apart.
* ``net.blobs`` of the last forward is released when the next forward starts.
* ``net.to_channels_last()`` changes memory order only.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.layers.scale_bias import Scale


def _spec(*, scale_top="conv", scale_param=None, bn_param=None, extra=(), bias_term=True, bn_top="conv",
          relu_bottom="conv"):
    layers = [
        {"name": "in", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [4, 3, 5, 5]}, {"dim": [4]}]}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "convolution_param": {"num_output": 6, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "xavier"},
                               "bias_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "bn", "type": "BatchNorm", "bottom": "conv", "top": bn_top, **({"batch_norm_param": bn_param}
                                                                              if bn_param else {})},
        {"name": "scale", "type": "Scale", "bottom": bn_top, "top": scale_top,
         "scale_param": {"bias_term": bias_term, "filler": {"type": "uniform", "min": 0.5, "max": 1.5},
                         "bias_filler": {"type": "gaussian", "std": 0.5}, **(scale_param or {})}},
        *extra,
        {"name": "relu", "type": "ReLU", "bottom": relu_bottom, "top": "relu"},
        {"name": "ip", "type": "InnerProduct", "bottom": "relu", "top": "ip",
         "inner_product_param": {"num_output": 5, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]
    return {"name": "fusion", "layer": layers}


def _run(spec, *, fusion, dtype=torch.float32, phase="TRAIN", steps=2, batch=4):
    net = caffe_like.Net(spec, phase=phase, seed=3, dtype=dtype)
    net.fusion = fusion
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(steps):
        x = torch.tensor(rng.standard_normal((batch, 3, 5, 5)) * 2 + 0.5, dtype=dtype)
        y = torch.tensor(rng.integers(0, 5, batch), dtype=dtype)
        for p in net.parameters():
            p.grad = None
        net(data=x, label=y)
        if net.loss.requires_grad:
            net.loss.backward()
        outs.append({
            "blobs": {k: v.detach().clone() for k, v in net.blobs.items()},
            "grads": {f"{n}.{i}": (b.grad.clone() if b.grad is not None else None)
                      for n, bs in net.params.items() for i, b in enumerate(bs)},
            "params": {f"{n}.{i}": b.detach().clone() for n, bs in net.params.items() for i, b in enumerate(bs)},
            "loss": float(net.loss.detach()),
        })
    return net, outs


def _compare(a, b, rtol, atol):
    for step_a, step_b in zip(a, b):
        assert step_a["blobs"].keys() == step_b["blobs"].keys()
        for key in step_a["blobs"]:
            torch.testing.assert_close(step_a["blobs"][key], step_b["blobs"][key], rtol=rtol, atol=atol, msg=key)
        for key, grad in step_a["grads"].items():
            other = step_b["grads"][key]
            assert (grad is None) == (other is None), key
            if grad is not None:
                torch.testing.assert_close(grad, other, rtol=rtol, atol=atol, msg=key)
        for key in step_a["params"]:  # the BatchNorm statistics blobs (and the untouched weights)
            torch.testing.assert_close(step_a["params"][key], step_b["params"][key], rtol=rtol, atol=atol, msg=key)


def _fused_pairs(net):
    return [(r.layer.layer_name, r.fused_scale.layer.layer_name) for r in net._records if r.fused_scale is not None]


@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float64, 1e-12, 1e-12), (torch.float32, 1e-5, 1e-6)])
@pytest.mark.parametrize("bias_term", [True, False])
def test_fused_batchnorm_scale_matches_the_two_layers(dtype, rtol, atol, bias_term):
    spec = _spec(bias_term=bias_term)
    fused_net, fused = _run(spec, fusion=True, dtype=dtype)
    plain_net, plain = _run(spec, fusion=False, dtype=dtype)
    assert _fused_pairs(fused_net) == [("bn", "scale")]
    _compare(fused, plain, rtol, atol)


def test_fused_pair_does_not_call_the_scale_layer(monkeypatch):
    calls = []
    original = Scale.forward
    monkeypatch.setattr(Scale, "forward", lambda self, *a: calls.append(1) or original(self, *a))
    net, _ = _run(_spec(), fusion=True, steps=1)
    assert calls == []
    net.fusion = False
    net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
    assert calls == [1]


def test_not_in_place_batchnorm_top_is_fused_and_kept():
    spec = _spec(bn_top="normed", scale_top="normed", relu_bottom="normed")
    net, fused = _run(spec, fusion=True)
    _, plain = _run(spec, fusion=False)
    assert _fused_pairs(net) == [("bn", "scale")]
    assert {"conv", "normed"} <= set(fused[0]["blobs"])
    _compare(fused, plain, 1e-5, 1e-6)


@pytest.mark.parametrize("case", ["other_top", "whole_blob_scale", "axis_0", "bn_top_used_twice",
                                  "propagate_down_false", "scale_loss_weight"])
def test_pairs_that_must_run_apart(case):
    if case == "other_top":  # the BatchNorm output would vanish from net.blobs
        spec = _spec(scale_top="scaled", relu_bottom="scaled")
    elif case == "whole_blob_scale":  # a scale per (C, H, W), not per channel
        spec = _spec(scale_param={"num_axes": -1})
    elif case == "axis_0":
        spec = _spec(scale_param={"axis": 0, "num_axes": 1})
        spec["layer"][0]["input_param"]["shape"][0]["dim"] = [6, 6, 5, 5]
        spec["layer"][0]["input_param"]["shape"][1]["dim"] = [6]
    elif case == "bn_top_used_twice":
        spec = _spec(bn_top="normed", scale_top="normed2", relu_bottom="normed2",
                     extra=({"name": "copy", "type": "Power", "bottom": "normed", "top": "normed_copy"},))
    elif case == "propagate_down_false":
        spec = _spec()
        spec["layer"][3]["propagate_down"] = [False]
    else:  # the Scale's top is also a loss term: its record must run
        spec = _spec()
        spec["layer"][3]["loss_weight"] = [0.5]
    net = caffe_like.Net(spec, phase="TRAIN", seed=3)
    assert _fused_pairs(net) == []
    if case == "scale_loss_weight":
        net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
        assert net.loss_weights == {"conv": 0.5, "loss": 1.0}


def test_global_statistics_and_single_values_run_apart_and_agree():
    spec = _spec()
    # TEST phase: use_global_stats -> forward_scaled declines; the two layers run
    net, test_fused = _run(spec, fusion=True, phase="TEST", steps=1)
    _, test_plain = _run(spec, fusion=False, phase="TEST", steps=1)
    assert _fused_pairs(net) == [("bn", "scale")]
    _compare(test_fused, test_plain, 0, 0)
    # one value per channel (batch 1 of a 1x1 map): BatchNorm's special case, fusion declines
    one = {"name": "one", "layer": [
        {"name": "in", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [1, 3, 1, 1]}}},
        {"name": "bn", "type": "BatchNorm", "bottom": "data", "top": "data"},
        {"name": "scale", "type": "Scale", "bottom": "data", "top": "data",
         "scale_param": {"bias_term": True, "bias_filler": {"type": "constant", "value": 0.5}}}]}
    results, x = [], torch.randn(1, 3, 1, 1)
    for fusion in (True, False):
        net = caffe_like.Net(one, phase="TRAIN")
        net.fusion = fusion
        results.append((net(data=x)["data"], [b.detach().clone() for b in net.params["bn"]]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    torch.testing.assert_close(results[0][0], torch.full((1, 3, 1, 1), 0.5))
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_hooks_see_the_layers_run_apart():
    net = caffe_like.Net(_spec(), phase="TRAIN", seed=3)
    seen = []
    handle = net.layer_dict()["scale"].register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
    assert seen == [torch.Size([4, 6, 5, 5])]
    handle.remove()
    global_handle = torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: seen.append(type(m)))
    try:
        net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
    finally:
        global_handle.remove()
    assert Scale in seen


def test_last_forward_blobs_are_released_when_the_next_starts():
    net = caffe_like.Net(_spec(), phase="TRAIN", seed=3)
    net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
    old = weakref.ref(net.blobs["relu"])
    seen_alive = []
    def check(module, args):
        gc.collect()
        seen_alive.append(old() is not None)

    handle = net.layer_dict()["ip"].register_forward_pre_hook(check)
    net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
    handle.remove()
    assert seen_alive == [False]
    assert set(net.blobs) == {"data", "label", "conv", "relu", "ip", "loss"}
    assert net.loss is not None


def test_blobs_computed_before_an_error_are_kept():
    net = caffe_like.Net(_spec(), phase="TRAIN", seed=3)
    with pytest.raises(caffe_like.CaffeLikeError, match="out of range"):
        net(data=torch.randn(4, 3, 5, 5), label=torch.full((4,), 7.0))
    assert {"data", "conv", "relu", "ip"} <= set(net.blobs) and "loss" not in net.blobs
    assert net.loss is None
    net(data=torch.randn(4, 3, 5, 5), label=torch.zeros(4))
    assert net.loss is not None


def _conv_net():
    return {"name": "cl", "layer": [
        {"name": "in", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [4, 2, 9, 9]}, {"dim": [4]}]}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "convolution_param": {"num_output": 5, "kernel_size": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "pool", "type": "Pooling", "bottom": "conv", "top": "pool",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "bn", "type": "BatchNorm", "bottom": "pool", "top": "pool"},
        {"name": "scale", "type": "Scale", "bottom": "pool", "top": "pool", "scale_param": {"bias_term": True}},
        {"name": "prelu", "type": "PReLU", "bottom": "pool", "top": "pool"},
        {"name": "ip", "type": "InnerProduct", "bottom": "pool", "top": "ip",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}


def test_channels_last_changes_memory_order_only(tmp_path):
    plain = caffe_like.Net(_conv_net(), phase="TRAIN", seed=5, dtype=torch.float64)
    fast = caffe_like.Net(_conv_net(), phase="TRAIN", seed=5, dtype=torch.float64)
    ids = [id(p) for p in fast.parameters()]
    assert fast.to_channels_last() is fast
    assert [id(p) for p in fast.parameters()] == ids  # same Parameter objects
    weight = fast.params["conv"][0]
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    # the .caffemodel is written in Caffe's layout whatever the memory order
    plain.save_weights(tmp_path / "plain.caffemodel")
    fast.save_weights(tmp_path / "fast.caffemodel")
    assert (tmp_path / "plain.caffemodel").read_bytes() == (tmp_path / "fast.caffemodel").read_bytes()
    saved = plain.params["conv"][0].detach().clone()
    x = torch.randn(4, 2, 9, 9, dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 2.0, 1.0], dtype=torch.float64)
    for net in (plain, fast):
        net(data=x, label=y)
        net.loss.backward()
    assert fast.blobs["data"].is_contiguous(memory_format=torch.channels_last)
    assert fast.blobs["conv"].is_contiguous(memory_format=torch.channels_last)
    for name in plain.blobs:
        torch.testing.assert_close(fast.blobs[name], plain.blobs[name], rtol=1e-12, atol=1e-12)
    for a, b in zip(fast.parameters(), plain.parameters()):  # (BatchNorm's statistics are updated)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        if b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)
    fast.load_weights(tmp_path / "plain.caffemodel")
    assert fast.params["conv"][0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast.params["conv"][0], saved, rtol=0, atol=0)
