"""The net builder's Caffe semantics (DESIGN §3, caffe_semantics.md §1.4–1.8), on small nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import ShapeError, SpecError, WeightsError
from caffe_like.spec.params import LOSS_LAYER_TYPES


def _ip(name, bottom, n, top=None, **extra):
    layer = {"name": name, "type": "InnerProduct", "bottom": bottom, "top": top or name,
             "inner_product_param": {"num_output": n, "weight_filler": {"type": "gaussian", "std": 0.3},
                                     "bias_filler": {"type": "gaussian", "std": 0.3}}}
    layer.update(extra)
    return layer


def _input(shapes):
    return {"name": "input", "type": "Input", "top": list(shapes),
            "input_param": {"shape": [{"dim": list(s)} for s in shapes.values()]}}


def _net(layers, phase="TRAIN", **kw):
    return caffe_like.Net({"name": "t", "layer": layers}, phase=phase, seed=3, **kw)


def test_outputs_are_unconsumed_blobs_in_alphabetical_order():
    net = _net([_input({"x": (2, 3)}), _ip("zeta", "x", 2), _ip("alpha", "x", 2), _ip("mid", "alpha", 2)])
    out = net(x=torch.randn(2, 3))
    assert list(out) == ["mid", "zeta"] == net.output_names


def test_loss_is_weighted_sum_and_only_loss_layers_default_to_weight_one():
    label = {"name": "label_in", "type": "Input", "top": "y", "input_param": {"shape": {"dim": [2, 2]}}}
    net = _net([_input({"x": (2, 3)}), label, _ip("a", "x", 2),
                {"name": "euc", "type": "EuclideanLoss", "bottom": ["a", "y"], "top": "euc"},
                _ip("b", "x", 2, loss_weight=0.5)])
    x, y = torch.randn(2, 3), torch.randn(2, 2)
    net(x=x, y=y)
    expected = net.blobs["euc"] + 0.5 * net.blobs["b"].sum()
    assert torch.allclose(net.loss, expected)
    assert "EuclideanLoss" in LOSS_LAYER_TYPES and "InnerProduct" not in LOSS_LAYER_TYPES


def test_loss_is_taken_when_the_top_is_produced_not_after_a_later_in_place_layer():
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 2, loss_weight=1.0),
                _ip("again", "a", 2, top="a")])
    net(x=torch.randn(2, 3))
    first = net.layer_dict()["a"]
    with torch.no_grad():
        expected = first(torch.as_tensor(net.blobs["x"]))[0].sum()
    assert torch.allclose(net.loss, expected)


def test_in_place_rebinds_without_mutating():
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 3), _ip("b", "a", 3, top="a")])
    x = torch.randn(2, 3)
    x_copy = x.clone()
    net(x=x)
    assert torch.equal(x, x_copy)
    assert net.blob_shapes["a"] == (2, 3) and net.output_names == ["a"]


def test_fan_out_accumulates_gradients_like_split():
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 2, loss_weight=1.0), _ip("b", "x", 2, loss_weight=2.0)],
               )
    x = torch.randn(2, 3, requires_grad=True)
    net(x=x)
    net.loss.backward()
    wa, wb = net.params["a"][0].detach(), net.params["b"][0].detach()
    expected = torch.ones(2, 2) @ wa + 2.0 * torch.ones(2, 2) @ wb
    assert torch.allclose(x.grad, expected)


def test_propagate_down_false_stops_the_gradient():
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 2),
                _ip("b", "a", 2, loss_weight=1.0, propagate_down=[False])])
    net(x=torch.randn(2, 3))
    net.loss.backward()
    assert net.params["a"][0].grad is None
    assert net.params["b"][0].grad is not None


def test_lr_mult_zero_means_no_gradient_unless_force_backward():
    layers = [_input({"x": (2, 3)}), _ip("a", "x", 2, loss_weight=1.0, param=[{"lr_mult": 0}, {"lr_mult": 2}])]
    net = _net(layers)
    net(x=torch.randn(2, 3))
    net.loss.backward()
    assert net.params["a"][0].grad is None and net.params["a"][1].grad is not None
    forced = caffe_like.Net({"name": "t", "force_backward": True, "layer": layers}, phase="TRAIN")
    forced(x=torch.randn(2, 3))
    forced.loss.backward()
    assert forced.params["a"][0].grad is not None
    assert forced.blobs["x"].grad is not None  # force_backward gives inputs a gradient too


def test_learnable_params_carry_lr_and_decay_mults():
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 2, param=[{"lr_mult": 1, "decay_mult": 1},
                                                               {"lr_mult": 2, "decay_mult": 0}])])
    assert [(p.layer, p.index, p.lr_mult, p.decay_mult) for p in net.learnable_params()] == [
        ("a", 0, 1.0, 1.0), ("a", 1, 2.0, 0.0)]


def test_param_sharing_by_name():
    shared = [{"name": "w"}, {"name": "b"}]
    net = _net([_input({"x": (2, 3), "z": (2, 3)}), _ip("a", "x", 2, param=shared), _ip("c", "z", 2, param=shared)])
    assert net.params["a"][0] is net.params["c"][0] and net.params["a"][1] is net.params["c"][1]
    assert len(net.learnable_params()) == 2  # sharers are not learnable params
    x, z = torch.randn(2, 3), torch.randn(2, 3)
    out = net(x=x, z=z)
    (out["a"].sum() + out["c"].sum()).backward()
    assert torch.allclose(net.params["a"][0].grad, torch.ones(2, 2).T @ x + torch.ones(2, 2).T @ z)


def test_param_sharing_shape_mismatch():
    shared = [{"name": "w"}]
    with pytest.raises(ShapeError, match="shared param 'w'") as info:
        _net([_input({"x": (2, 3)}), _ip("a", "x", 2, param=shared), _ip("c", "x", 4, param=shared)])
    assert info.value.layer == "c"


def test_too_many_param_specs():
    with pytest.raises(SpecError, match="3 param blocks") as info:
        _net([_input({"x": (2, 3)}), _ip("a", "x", 2, param=[{}, {}, {}])])
    assert info.value.layer == "a"


def test_label_bottom_never_gets_a_gradient_and_propagate_down_true_is_refused():
    layers = [_input({"x": (4, 3), "y": (4,)}), _ip("s", "x", 3),
              {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["s", "y"], "top": "loss"}]
    net = _net(layers)
    y = torch.tensor([0.0, 1.0, 2.0, 1.0], requires_grad=True)
    net(x=torch.randn(4, 3), y=y)
    net.loss.backward()
    assert y.grad is None
    layers[-1]["propagate_down"] = [True, True]
    with pytest.raises(SpecError, match="label"):
        _net(layers)


def test_phase_filtering_and_layer_phase():
    layers = [_input({"x": (2, 3)}), _ip("train_only", "x", 2, include={"phase": "TRAIN"}),
              _ip("test_only", "x", 2, include={"phase": "TEST"})]
    assert _net(layers, phase="TRAIN").layer_names == ["input", "train_only"]
    test_net = _net(layers, phase="TEST")
    assert test_net.layer_names == ["input", "test_only"]
    assert all(layer.phase == "TEST" for layer in test_net.layers)
    default = caffe_like.Net({"name": "t", "layer": layers})
    assert default.phase == "TEST"  # Caffe's NetState.phase defaults to TEST


def test_float64_and_float_labels():
    net = _net([_input({"x": (4, 3), "y": (4,)}), _ip("s", "x", 3),
                {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["s", "y"], "top": "loss"}],
               dtype=torch.float64)
    net(x=np.random.default_rng(0).standard_normal((4, 3)), y=np.array([0.0, 2.0, 1.0, 1.0]))
    assert net.loss.dtype == torch.float64 and net.params["s"][0].dtype == torch.float64


def test_inputs_errors():
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 2)])
    with pytest.raises(SpecError, match="unknown net input"):
        net(x=torch.randn(2, 3), nope=torch.zeros(1))
    with pytest.raises(SpecError, match="not given"):
        net()
    with pytest.raises(ShapeError, match=r"expects \[2, 3\]"):
        net(x=torch.randn(2, 4))
    out = net(x=torch.randn(5, 3))  # any batch size
    assert out["a"].shape == (5, 2)


def test_unknown_fork_param_block_fails_only_when_built(recwarn):
    spec = {"name": "t", "layer": [_input({"x": (2, 3)}),
                                   dict(_ip("a", "x", 2), fancy_fork_param={"alpha": 1})]}
    loaded = caffe_like.NetSpec.load(spec)  # loads with a warning
    assert any("fancy_fork_param" in str(w.message) for w in recwarn)
    assert "fancy_fork_param" in loaded.to_yaml()
    with pytest.raises(SpecError, match="fancy_fork_param") as info:
        caffe_like.Net(spec)
    assert info.value.layer == "a"


def test_save_and_load_weights_round_trip(tmp_path):
    layers = [_input({"x": (2, 3)}), _ip("a", "x", 4), _ip("b", "a", 2)]
    net = _net(layers)
    path = tmp_path / "w.caffemodel"
    net.save_weights(path)
    other = caffe_like.Net({"name": "t", "layer": layers}, phase="TRAIN", seed=99)
    assert not torch.equal(other.params["a"][0], net.params["a"][0])
    other.load_weights(path)
    for name in ("a", "b"):
        for mine, theirs in zip(other.params[name], net.params[name]):
            assert torch.equal(mine, theirs)


def test_load_weights_shape_mismatch_names_layer_and_shapes(tmp_path):
    path = tmp_path / "w.caffemodel"
    _net([_input({"x": (2, 3)}), _ip("a", "x", 4)]).save_weights(path)
    wrong = _net([_input({"x": (2, 3)}), _ip("a", "x", 5)])
    with pytest.raises(WeightsError) as info:
        wrong.load_weights(path)
    text = str(info.value)
    assert "'a'" in text and "4" in text and "5" in text and str(path) in text


def test_load_weights_skips_layers_the_net_lacks(tmp_path):
    path = tmp_path / "w.caffemodel"
    _net([_input({"x": (2, 3)}), _ip("a", "x", 4), _ip("extra", "a", 2)]).save_weights(path)
    net = _net([_input({"x": (2, 3)}), _ip("a", "x", 4)])
    with pytest.warns(UserWarning, match="extra"):
        skipped = net.load_weights(path)
    assert "extra" in skipped


def test_summary_counts_and_shapes():
    net = _net([_input({"x": (2, 3, 4)}), _ip("a", "x", 5), _ip("b", "a", 2, inner_product_param={"num_output": 2, "bias_term": False})])
    summary = net.summary()
    assert [layer["params"] for layer in summary["layers"]] == [0, 5 * 12 + 5, 2 * 5]
    assert summary["total_params"] == 75
    assert summary["outputs"] == {"b": [2, 2]}
    assert summary["layers"][1]["top_shapes"] == {"a": [2, 5]}


def test_time_reports_every_layer(capsys):
    from caffe_like.timing import time_net

    net = _net([_input({"x": (4, 3), "y": (4,)}), _ip("s", "x", 3),
                {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["s", "y"], "top": "loss"}])
    report = time_net(net, 2)
    assert [layer.name for layer in report.layers] == ["input", "s", "loss"]
    assert all(layer.forward_ms >= 0 for layer in report.layers)
    assert report.layers[1].backward_ms > 0 and report.forward_backward_ms > 0
    text = report.format()
    assert "Average Forward-Backward" in text and "s\tbackward" in text
