"""Concat, Slice, Split, Flatten, Reshape, Crop, Silence: Caffe's shape rules (with the cases of Caffe's
own test_reshape_layer.cpp), gradient routing, data sharing, and the errors for bad input.

All values are exact (data is only moved), so comparisons are exact, in float64 unless stated.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import CaffeLikeError, ShapeError, SpecError

import layer_db
from layer_db import LayerSample


def _net(type_name, bottoms, layer=None, n_tops=1, dtype="float64"):
    sample = LayerSample("t", tuple(np.asarray(b, dtype=np.float64) for b in bottoms), layer=layer or {},
                         n_tops=n_tops)
    return layer_db.build(type_name, sample, dtype), sample


def _run(type_name, bottoms, layer=None, n_tops=1):
    net, sample = _net(type_name, bottoms, layer, n_tops)
    return [t.detach().numpy() for t in layer_db.run(net, sample)], net


def _error(type_name, bottoms, layer=None, n_tops=1, cls=CaffeLikeError):
    with pytest.raises(cls) as err:
        _net(type_name, bottoms, layer, n_tops)
    text = str(err.value)
    assert f"layer 'L' ({type_name})" in text
    return text


def _arange(*shape):
    return np.arange(np.prod(shape), dtype=np.float64).reshape(shape)


# -- Concat -----------------------------------------------------------------------------------------


def test_concat_values_and_gradient_split():
    a, b = _arange(2, 1, 2), 100 + _arange(2, 2, 2)
    net, sample = _net("Concat", [a, b])
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample).items()}
    net(**inputs)
    top = net.blobs["t0"]
    np.testing.assert_array_equal(top.detach().numpy(), np.concatenate([a, b], axis=1))
    weights = torch.arange(top.numel(), dtype=torch.float64).reshape(top.shape)
    ga, gb = torch.autograd.grad((top * weights).sum(), [inputs["b0"], inputs["b1"]])
    np.testing.assert_array_equal(ga.numpy(), weights[:, :1].numpy())
    np.testing.assert_array_equal(gb.numpy(), weights[:, 1:].numpy())


def test_concat_one_bottom_shares_the_data():
    net, sample = _net("Concat", [_arange(2, 3)])
    x = torch.tensor(_arange(2, 3))
    net(b0=x)
    assert net.blobs["t0"] is x


def test_concat_mismatched_dims_error():
    text = _error("Concat", [np.zeros((2, 3, 4)), np.zeros((2, 5, 3))], cls=ShapeError)
    assert "[2, 3, 4]" in text and "[2, 5, 3]" in text and "axis 2" in text


def test_concat_different_number_of_axes_error():
    text = _error("Concat", [np.zeros((2, 3)), np.zeros((2, 3, 1))], cls=ShapeError)
    assert "axes" in text


def test_concat_axis_and_concat_dim_together_error():
    text = _error("Concat", [np.zeros((2, 3))] * 2, {"concat_param": {"axis": 1, "concat_dim": 1}}, cls=SpecError)
    assert "concat_dim" in text


@pytest.mark.parametrize("param", [{"axis": 2}, {"axis": -3}, {"concat_dim": 2}])
def test_concat_axis_out_of_range(param):
    _error("Concat", [np.zeros((2, 3))] * 2, {"concat_param": param})


def test_concat_negative_axis():
    (top,), _ = _run("Concat", [_arange(2, 1), _arange(2, 2)], {"concat_param": {"axis": -1}})
    np.testing.assert_array_equal(top, [[0, 0, 1], [1, 2, 3]])


# -- Slice ------------------------------------------------------------------------------------------


def test_slice_points_values():
    x = _arange(1, 5)
    tops, _ = _run("Slice", [x], {"slice_param": {"slice_point": [1, 3]}}, n_tops=3)
    assert [t.tolist() for t in tops] == [[[0.0]], [[1.0, 2.0]], [[3.0, 4.0]]]


def test_slice_gradient_of_an_unused_piece_is_zero():
    net, sample = _net("Slice", [_arange(2, 4)], {"slice_param": {"slice_point": [1]}}, n_tops=2)
    x = layer_db.inputs_of(sample)["b0"].requires_grad_(True)
    net(b0=x)
    (grad,) = torch.autograd.grad(3.0 * net.blobs["t1"].sum(), [x])
    np.testing.assert_array_equal(grad.numpy(), [[0, 3, 3, 3], [0, 3, 3, 3]])


def test_slice_one_top_shares_the_data():
    net, _ = _net("Slice", [_arange(2, 4)])
    x = torch.tensor(_arange(2, 4))
    net(b0=x)
    assert net.blobs["t0"] is x


@pytest.mark.parametrize("points,words", [
    ([3, 1], "strictly increasing"),
    ([2, 2], "strictly increasing"),
    ([0, 2], "strictly increasing"),
    ([1], "1 slice_point values for 3 tops"),
    ([1, 2, 3], "3 slice_point values for 3 tops"),
])
def test_slice_bad_points(points, words):
    text = _error("Slice", [np.zeros((2, 6))], {"slice_param": {"slice_point": points}}, n_tops=3, cls=SpecError)
    assert words in text


def test_slice_point_beyond_the_axis():
    text = _error("Slice", [np.zeros((2, 6))], {"slice_param": {"slice_point": [2, 7]}}, n_tops=3, cls=ShapeError)
    assert "slice_point 7" in text and "6" in text


def test_slice_uneven_split_error():
    text = _error("Slice", [np.zeros((2, 5))], n_tops=2, cls=ShapeError)
    assert "2 tops do not divide axis 1 of size 5" in text


def test_slice_axis_and_slice_dim_together_error():
    _error("Slice", [np.zeros((2, 6))], {"slice_param": {"axis": 1, "slice_dim": 1}}, n_tops=2, cls=SpecError)


def test_slice_even_split_follows_the_runtime_batch():
    net, _ = _net("Slice", [np.zeros((4, 1))], {"slice_param": {"axis": 0}}, n_tops=2)
    net(b0=torch.tensor(_arange(6, 1)))
    assert net.blobs["t0"].flatten().tolist() == [0, 1, 2] and net.blobs["t1"].flatten().tolist() == [3, 4, 5]


# -- Split ------------------------------------------------------------------------------------------


def test_split_gradients_add_up():
    net, sample = _net("Split", [_arange(2, 2)], n_tops=3)
    x = layer_db.inputs_of(sample)["b0"].requires_grad_(True)
    net(b0=x)
    loss = 2.0 * net.blobs["t0"].sum() + 3.0 * net.blobs["t1"].sum() + (net.blobs["t2"] * x.detach()).sum()
    (grad,) = torch.autograd.grad(loss, [x])
    np.testing.assert_array_equal(grad.numpy(), 5.0 + _arange(2, 2))
    assert all(net.blobs[f"t{i}"] is x for i in range(3))  # shared data, no copies


def test_split_in_place_is_an_error():
    spec = {"layer": [{"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2]}}},
                      {"name": "L", "type": "Split", "bottom": "x", "top": ["y", "x"]}]}
    with pytest.raises(SpecError, match="in place"):
        caffe_like.Net(spec)


# -- Flatten ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("param,shape", [
    ({}, (2, 60)),
    ({"axis": 2}, (2, 3, 20)),
    ({"axis": 0, "end_axis": 1}, (6, 4, 5)),
    ({"axis": -2}, (2, 3, 20)),
    ({"axis": 1, "end_axis": -2}, (2, 12, 5)),
    ({"axis": 2, "end_axis": 1}, (2, 3, 1, 4, 5)),  # Caffe's count(2, 2) = 1 inserts an axis
])
def test_flatten_shapes(param, shape):
    x = _arange(2, 3, 4, 5)
    (top,), net = _run("Flatten", [x], {"flatten_param": param})
    assert top.shape == shape and net.blob_shapes["t0"] == shape
    np.testing.assert_array_equal(top.reshape(-1), x.reshape(-1))


def test_flatten_end_axis_before_axis_error():
    text = _error("Flatten", [np.zeros((2, 3, 4))], {"flatten_param": {"axis": 2, "end_axis": 0}}, cls=SpecError)
    assert "end_axis" in text


def test_flatten_in_place_error():
    spec = {"layer": [{"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3]}}},
                      {"name": "L", "type": "Flatten", "bottom": "x", "top": "x"}]}
    with pytest.raises(SpecError, match="in place"):
        caffe_like.Net(spec)


# -- Reshape ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("param,shape", [
    # the cases of Caffe's test_reshape_layer.cpp on a 2x3x6x5 bottom
    ({"shape": {"dim": [0, -1]}}, (2, 90)),                                      # TestFlattenOutputSizes
    ({"shape": {"dim": [0, 3, 10, -1]}}, (2, 3, 10, 3)),                         # TestInferenceOfUnspecified
    ({"shape": {"dim": [3, 10, -1]}, "axis": 1}, (2, 3, 10, 3)),                 # ...WithStartAxis
    ({"shape": {"dim": [1, 1, 1]}, "axis": 0, "num_axes": 0}, (1, 1, 1, 2, 3, 6, 5)),   # InsertSingletonAxesStart
    ({"shape": {"dim": [1, 1, 1]}, "axis": 2, "num_axes": 0}, (2, 3, 1, 1, 1, 6, 5)),   # ...Middle
    ({"shape": {"dim": [1, 1, 1]}, "axis": -1, "num_axes": 0}, (2, 3, 6, 5, 1, 1, 1)),  # ...End
    ({"shape": {"dim": [-1]}, "axis": 1, "num_axes": 2}, (2, 18, 5)),           # TestFlattenMiddle
    ({"shape": {"dim": [0, 0, 0, 0]}}, (2, 3, 6, 5)),                            # TestCopyDimensions
    ({"shape": {"dim": [0, 2, -1]}, "axis": 1}, (2, 3, 2, 15)),                 # 0 copies relative to axis
    ({"shape": {"dim": [3, 2]}, "axis": -3, "num_axes": 1}, (2, 3, 3, 2, 5)),   # -3: insertion point before 6
])
def test_reshape_caffe_cases(param, shape):
    x = _arange(2, 3, 6, 5)
    (top,), net = _run("Reshape", [x], {"reshape_param": param})
    assert top.shape == shape and net.blob_shapes["t0"] == shape
    np.testing.assert_array_equal(top.reshape(-1), x.reshape(-1))


def test_reshape_follows_the_runtime_batch():
    net, _ = _net("Reshape", [np.zeros((2, 3, 4))], {"reshape_param": {"shape": {"dim": [0, -1]}}})
    net(b0=torch.zeros(5, 3, 4, dtype=torch.float64))
    assert tuple(net.blobs["t0"].shape) == (5, 12)


@pytest.mark.parametrize("param,words", [
    ({"shape": {"dim": [-1, -1]}}, "2 dims of -1"),
    ({"shape": {"dim": [2, -2]}}, "negative dim"),
    ({"shape": {"dim": [0, 0, 0, 0]}}, "no axis 3 to copy"),
    ({"shape": {"dim": [5, -1]}}, "not divisible"),
    ({"shape": {"dim": [7, 2]}}, "cannot reshape"),
    ({"shape": {"dim": [1]}, "axis": 4}, "axis 4 is out of range"),
    ({"shape": {"dim": [1]}, "axis": -5}, "axis -5 is out of range"),
    ({"shape": {"dim": [-1]}, "axis": 1, "num_axes": 3}, "beyond"),
    ({"shape": {"dim": [-1]}, "num_axes": -2}, "num_axes"),
])
def test_reshape_errors(param, words):
    text = _error("Reshape", [np.zeros((2, 3, 4))], {"reshape_param": param})
    assert words in text


def test_reshape_in_place_error():
    spec = {"layer": [{"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3]}}},
                      {"name": "L", "type": "Reshape", "bottom": "x", "top": "x",
                       "reshape_param": {"shape": {"dim": [-1]}}}]}
    with pytest.raises(SpecError, match="in place"):
        caffe_like.Net(spec)


# -- Crop -------------------------------------------------------------------------------------------


def test_crop_values_and_gradient_only_to_bottom_0():
    x = _arange(1, 1, 4, 5)
    net, sample = _net("Crop", [x, np.zeros((1, 1, 2, 3))], {"crop_param": {"offset": [1, 2]}})
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample).items()}
    net(**inputs)
    top = net.blobs["t0"]
    np.testing.assert_array_equal(top.detach().numpy()[0, 0], [[7, 8, 9], [12, 13, 14]])
    (grad,) = torch.autograd.grad(top.sum(), [inputs["b0"]])
    expected = np.zeros((4, 5))
    expected[1:3, 2:5] = 1.0
    np.testing.assert_array_equal(grad.numpy()[0, 0], expected)
    # bottom 1 only gives the shape: the net detaches it
    assert torch.autograd.grad(top.sum(), [inputs["b1"]], allow_unused=True) == (None,)


def test_crop_propagate_down_to_bottom_1_is_refused():
    spec = {"layer": [{"name": "a", "type": "Input", "top": "a", "input_param": {"shape": {"dim": [1, 1, 4, 4]}}},
                      {"name": "b", "type": "Input", "top": "b", "input_param": {"shape": {"dim": [1, 1, 2, 2]}}},
                      {"name": "L", "type": "Crop", "bottom": ["a", "b"], "top": "c", "propagate_down": [True, True]}]}
    with pytest.raises(SpecError, match="propagate_down"):
        caffe_like.Net(spec)


@pytest.mark.parametrize("shape1,param,words", [
    ((1, 1, 3, 3), {"offset": [2]}, "out of bounds"),
    ((1, 1, 5, 2), {}, "out of bounds"),
    ((1, 1, 2, 2), {"offset": [1, 1, 1]}, "3 offsets for the 2 cropped axes"),
    ((1, 1, 2), {}, "same number of axes"),
    ((1, 1, 2, 2), {"axis": 4}, "out of range"),
])
def test_crop_errors(shape1, param, words):
    text = _error("Crop", [np.zeros((1, 1, 4, 4)), np.zeros(shape1)], {"crop_param": param})
    assert words in text


def test_crop_follows_the_runtime_shape_of_bottom_1():
    net, _ = _net("Crop", [np.zeros((2, 3, 4)), np.zeros((2, 3, 2))], {"crop_param": {"axis": 0}})
    net(b0=torch.tensor(_arange(5, 3, 4)), b1=torch.zeros(3, 3, 2, dtype=torch.float64))
    assert tuple(net.blobs["t0"].shape) == (3, 3, 2)


# -- Silence ----------------------------------------------------------------------------------------


def test_silence_has_no_tops_and_hides_its_bottoms_from_the_outputs():
    spec = {"layer": [{"name": "a", "type": "Input", "top": ["a", "b"],
                       "input_param": {"shape": [{"dim": [2]}, {"dim": [3]}]}},
                      {"name": "s", "type": "Silence", "bottom": ["a", "b"]}]}
    net = caffe_like.Net(spec)
    assert net(a=torch.zeros(2), b=torch.zeros(3)) == {}
    assert net.layer_dict()["s"](torch.zeros(2)) == ()


def test_silence_sends_zero_gradient():
    spec = {"force_backward": True,
            "layer": [{"name": "a", "type": "Input", "top": "a", "input_param": {"shape": {"dim": [2]}}},
                      {"name": "e", "type": "Eltwise", "bottom": ["a", "a"], "top": "e"},
                      {"name": "s", "type": "Silence", "bottom": "e"},
                      {"name": "r", "type": "Reduction", "bottom": "a", "top": "r", "loss_weight": 1.0}]}
    net = caffe_like.Net(spec, dtype=torch.float64)
    net(a=torch.tensor([1.0, 2.0], dtype=torch.float64))
    (grad,) = torch.autograd.grad(net.loss, [net.blobs["a"]])  # force_backward makes the input a leaf
    assert grad.tolist() == [1.0, 1.0]  # only the Reduction's gradient; nothing comes through Silence


def test_silence_needs_a_bottom():
    spec = {"layer": [{"name": "s", "type": "Silence"}]}
    with pytest.raises(SpecError, match="at least 1 bottom"):
        caffe_like.Net(spec)


# -- devices ----------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("type_name,bottoms,layer,n_tops", [
    ("Concat", [_arange(2, 1), _arange(2, 3)], {}, 1),
    ("Slice", [_arange(2, 4)], {"slice_param": {"slice_point": [1]}}, 2),
    ("Crop", [_arange(1, 1, 4, 4), np.zeros((1, 1, 2, 3))], {"crop_param": {"offset": [1]}}, 1),
    ("Reshape", [_arange(2, 6)], {"reshape_param": {"shape": {"dim": [0, 2, -1]}}}, 1),
    ("Flatten", [_arange(2, 2, 3)], {}, 1),
])
def test_cuda_matches_cpu(type_name, bottoms, layer, n_tops):
    cpu, _ = _run(type_name, bottoms, layer, n_tops)
    net, sample = _net(type_name, bottoms, layer, n_tops)
    net.to("cuda")
    net(**{k: v.cuda() for k, v in layer_db.inputs_of(sample).items()})
    for i, want in enumerate(cpu):
        np.testing.assert_array_equal(net.blobs[f"t{i}"].cpu().numpy(), want)
