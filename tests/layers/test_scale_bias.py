"""Scale / Bias: the learned blob's shape from axis/num_axes, default fillers 1 and 0, blob order with
bias_term, the two-bottom form (bottom 1's shape decides the axes; it receives the reduced gradient), the
scalar case, and shape errors.

Hand-computed values are exact in float64 (small integers and halves), so they are compared with
rtol 1e-15; the gradient check uses torch.autograd.gradcheck in float64 (eps 1e-6, atol 1e-5, rtol 1e-3).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import ShapeError, SpecError

import layer_db
from layer_db import LayerSample

EXACT = dict(rtol=1e-15, atol=0)
X = np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 10.0


def _net(type_name, bottoms, param=None, blobs=None, dtype="float64"):
    block = "scale_param" if type_name == "Scale" else "bias_param"
    sample = LayerSample("t", tuple(np.asarray(b, dtype=np.float64) for b in bottoms),
                         layer={block: param} if param else {}, blobs=blobs)
    return layer_db.build(type_name, sample, dtype), sample


def _run(type_name, bottoms, param=None, blobs=None, top_diff=None):
    """(top, [bottom grads], [blob grads]) for the objective sum(top * top_diff) (default 1)."""
    net, sample = _net(type_name, bottoms, param, blobs)
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample).items()}
    net(**inputs)
    top = net.blobs["t0"]
    diff = torch.ones_like(top) if top_diff is None else torch.as_tensor(top_diff, dtype=top.dtype)
    blobs = list(net.layer_dict()["L"].blobs)
    leaves = [inputs[f"b{i}"] for i in range(len(bottoms))] + blobs
    grads = torch.autograd.grad((top * diff).sum(), leaves)
    return top.detach().numpy(), [g.numpy() for g in grads[:len(bottoms)]], [g.numpy() for g in grads[len(bottoms):]]


# -- blobs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["Scale", "Bias"])
@pytest.mark.parametrize("param,shape", [
    ({}, (3,)),
    ({"axis": -2}, (4,)),
    ({"axis": 2}, (4,)),
    ({"num_axes": -1}, (3, 4, 5)),
    ({"num_axes": 0}, ()),
    ({"axis": 0, "num_axes": 2}, (2, 3)),
    ({"axis": -1, "num_axes": -1}, (5,)),
])
def test_learned_blob_shape_follows_axis_and_num_axes(type_name, param, shape):
    net, _ = _net(type_name, [np.zeros((2, 3, 4, 5))], param)
    assert tuple(net.params["L"][0].shape) == shape


def test_default_fillers_scale_1_bias_0_and_blob_order():
    scale, _ = _net("Scale", [X], {"bias_term": True})
    s, b = scale.params["L"]
    assert torch.equal(s, torch.ones(3, dtype=torch.float64)) and torch.equal(b, torch.zeros(3, dtype=torch.float64))
    bias, _ = _net("Bias", [X])
    assert torch.equal(bias.params["L"][0], torch.zeros(3, dtype=torch.float64))
    filled, _ = _net("Scale", [X], {"bias_term": True, "filler": {"type": "constant", "value": 2.0},
                                    "bias_filler": {"type": "constant", "value": -1.0}})
    assert filled.params["L"][0].tolist() == [2.0] * 3 and filled.params["L"][1].tolist() == [-1.0] * 3


def test_two_bottoms_with_bias_term_have_only_the_bias_blob():
    net, _ = _net("Scale", [X, np.ones((3, 4))], {"bias_term": True})
    assert [tuple(b.shape) for b in net.params["L"]] == [(3, 4)]
    assert all(not b.any() for b in net.params["L"])
    assert len(_net("Scale", [X, np.ones((3, 4))])[0].layer_dict()["L"].blobs) == 0


# -- forward / backward ------------------------------------------------------------------------------


def test_scale_broadcasts_over_outer_and_inner_axes_with_bias():
    # x (2, 3, 4), s = [2, -1, 0.5] on axis 1, b = [1, 0, -1]; dy = 1 everywhere
    s, b = np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, -1.0])
    top, (dx,), (ds, db) = _run("Scale", [X], {"bias_term": True}, blobs=(s, b))
    np.testing.assert_allclose(top, X * s[None, :, None] + b[None, :, None], **EXACT)
    np.testing.assert_allclose(dx, np.broadcast_to(s[None, :, None], X.shape), **EXACT)
    np.testing.assert_allclose(ds, X.sum(axis=(0, 2)), **EXACT)  # Σ over outer and inner of dy * x
    np.testing.assert_allclose(db, np.full(3, 8.0), **EXACT)  # Σ dy: 2 * 4 positions per channel


def test_two_bottom_scale_gradient_to_bottom_1_is_reduced():
    s = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5], [-1.0, 0.0, 1.0, 2.0]])
    dy = np.ones_like(X) * 2.0
    top, (dx, ds), _ = _run("Scale", [X, s], top_diff=dy)
    np.testing.assert_allclose(top, X * s[None], **EXACT)
    np.testing.assert_allclose(dx, 2.0 * np.broadcast_to(s[None], X.shape), **EXACT)
    np.testing.assert_allclose(ds, 2.0 * X.sum(axis=0), **EXACT)


def test_two_bottom_bias_gradient_to_bottom_1_is_reduced():
    b = np.array([10.0, 20.0, 30.0, 40.0])
    top, (dx, db), _ = _run("Bias", [X, b], {"axis": -1}, top_diff=np.full(X.shape, 0.5))
    np.testing.assert_allclose(top, X + b, **EXACT)
    np.testing.assert_allclose(dx, np.full(X.shape, 0.5), **EXACT)
    np.testing.assert_allclose(db, np.full(4, 0.5 * 6), **EXACT)  # 2 * 3 outer positions


@pytest.mark.parametrize("type_name,param", [("Scale", {}), ("Scale", {"bias_term": True}), ("Bias", {}),
                                             ("Scale", {"axis": 0}), ("Bias", {"axis": -2})])
def test_gradcheck_both_bottoms_of_the_two_bottom_form(type_name, param):
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    operand_shape = {0: (2, 3), -2: (3,)}.get(param.get("axis"), (3, 4))
    operand = torch.tensor(rng.standard_normal(operand_shape), requires_grad=True)
    net, _ = _net(type_name, [x.detach().numpy(), operand.detach().numpy()], param)

    def fn(a, b):
        net(b0=a, b1=b)
        return net.blobs["t0"]

    assert torch.autograd.gradcheck(fn, (x, operand), eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("type_name", ["Scale", "Bias"])
def test_scalar_bottom_1_ignores_axis(type_name):
    # Caffe sets axis 0 for a 0-axis operand, so even an out-of-range axis is fine
    top, (dx, dop), _ = _run(type_name, [X, np.array(2.0)], {"axis": 7})
    expected = X * 2.0 if type_name == "Scale" else X + 2.0
    np.testing.assert_allclose(top, expected, **EXACT)
    assert dop.shape == () and float(dop) == (X.sum() if type_name == "Scale" else X.size)


def test_in_place_scale_does_not_mutate_the_bottom():
    net = caffe_like.Net({"name": "t", "layer": [
        {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3]}}},
        {"name": "s", "type": "Scale", "bottom": "x", "top": "x",
         "scale_param": {"filler": {"type": "constant", "value": 3.0}, "bias_term": True}}]})
    x = torch.ones(2, 3)
    out = net(x=x)["x"]
    assert torch.equal(x, torch.ones(2, 3)) and torch.equal(out, torch.full((2, 3), 3.0))


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["Scale", "Bias"])
@pytest.mark.parametrize("operand,param,words", [
    ((3, 5), {}, "dimension mismatch"),
    ((4,), {}, "dimension mismatch"),
    ((3,), {"axis": 0}, "dimension mismatch"),
    ((3, 4, 1), {"axis": 1}, "extends past"),
    ((4, 2), {"axis": -1}, "extends past"),
])
def test_second_bottom_shape_mismatch_is_a_clear_error(type_name, operand, param, words):
    with pytest.raises(ShapeError, match=words) as info:
        _net(type_name, [X, np.zeros(operand)], param)
    message = str(info.value)
    assert "'L'" in message and type_name in message and "[2, 3, 4]" in message


@pytest.mark.parametrize("type_name", ["Scale", "Bias"])
@pytest.mark.parametrize("param,error,words", [
    ({"num_axes": 3}, ShapeError, "would cover"),
    ({"num_axes": -2}, SpecError, "num_axes must be non-negative"),
    ({"axis": 3}, ShapeError, "out of range"),
    ({"axis": -4}, ShapeError, "out of range"),
])
def test_bad_axis_or_num_axes_is_a_clear_error(type_name, param, error, words):
    with pytest.raises(error, match=words) as info:
        _net(type_name, [X], param)
    assert "'L'" in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu(dtype):
    s = np.random.default_rng(2).standard_normal((3, 4))
    sample = LayerSample("t", (X, s), layer={"scale_param": {"bias_term": True, "bias_filler": {"type": "gaussian"}}})
    cpu = layer_db.build("Scale", sample, dtype)
    gpu = layer_db.build("Scale", sample, dtype).cuda()
    want = layer_db.run(cpu, sample, dtype)[0]
    gpu(**{k: v.cuda() for k, v in layer_db.inputs_of(sample, dtype).items()})
    got = gpu.blobs["t0"]
    assert got.is_cuda
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
