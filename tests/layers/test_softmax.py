"""Softmax: one softmax per (outer, inner) position along ``axis`` (negative allowed), per-position max
subtraction (no overflow), Caffe's backward (dy - Σ dy·y)·y, errors, and the original Caffe's numbers
(../shared/caffe_cases/layers/softmax_losses: the ``prob`` and ``prob_ax3`` blobs).

Hand-computed values in float64 with rtol 1e-12 unless stated; the Caffe case in float32 with rtol 1e-5 /
atol 1e-6 (Caffe ran in float32).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import ShapeError, SpecError

import layer_db
from layer_db import LayerSample

TIGHT = dict(rtol=1e-12, atol=1e-15)


def _run(x, axis=None, dtype="float64", top_diff=None):
    sample = LayerSample("t", (np.asarray(x, dtype=np.float64),),
                         layer={"softmax_param": {"axis": axis}} if axis is not None else {})
    net = layer_db.build("Softmax", sample, dtype)
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample, dtype).items()}
    net(**inputs)
    top = net.blobs["t0"]
    diff = torch.ones_like(top) if top_diff is None else torch.as_tensor(top_diff, dtype=top.dtype)
    (dx,) = torch.autograd.grad((top * diff).sum(), inputs["b0"])
    return top.detach().numpy(), dx.numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_max_subtraction_keeps_huge_scores_finite(dtype):
    y, _ = _run([[1000.0, 1001.0], [-1000.0, -1001.0]], dtype=dtype)
    e = math.e
    np.testing.assert_allclose(y, [[1 / (1 + e), e / (1 + e)], [e / (1 + e), 1 / (1 + e)]],
                               rtol=1e-6 if dtype == "float32" else 1e-12)


def test_backward_is_dy_minus_sum_dy_y_times_y():
    # y = [0.25, 0.75]; dy = [1, 0]: Σ dy·y = 0.25 -> dx = [0.75 * 0.25, -0.25 * 0.75]
    y, dx = _run([[0.0, math.log(3.0)]], top_diff=[[1.0, 0.0]])
    np.testing.assert_allclose(y, [[0.25, 0.75]], **TIGHT)
    np.testing.assert_allclose(dx, [[0.1875, -0.1875]], **TIGHT)


def test_axis_1_is_independent_per_spatial_position():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))
    y, _ = _run(x)
    np.testing.assert_allclose(y.sum(axis=1), np.ones((2, 4, 5)), **TIGHT)
    # shifting one position's scores by a constant leaves it (and every other position) unchanged
    shifted = x.copy()
    shifted[1, :, 2, 3] += 50.0
    y2, _ = _run(shifted)
    np.testing.assert_allclose(y2, y, rtol=1e-12, atol=1e-15)
    e = np.exp(x[0, :, 1, 2])
    np.testing.assert_allclose(y[0, :, 1, 2], e / e.sum(), **TIGHT)


@pytest.mark.parametrize("axis,positive", [(-1, 3), (-3, 1), (-4, 0)])
def test_negative_axis_counts_from_the_end(axis, positive):
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 4))
    y_neg, _ = _run(x, axis)
    y_pos, _ = _run(x, positive)
    np.testing.assert_array_equal(y_neg, y_pos)
    np.testing.assert_allclose(y_neg.sum(axis=positive), 1.0, rtol=1e-12)


@pytest.mark.parametrize("axis", [4, -5])
def test_axis_out_of_range_is_a_clear_error(axis):
    with pytest.raises(ShapeError, match="out of range") as info:
        _run(np.zeros((2, 3, 2, 4)), axis)
    assert "'L'" in str(info.value) and "Softmax" in str(info.value)


def test_two_bottoms_are_refused():
    with pytest.raises(SpecError, match="1 bottom"):
        layer_db.build("Softmax", LayerSample("t", (np.zeros((2, 3)), np.zeros((2, 3)))))


@pytest.mark.caffe_cases
def test_matches_original_caffe_prob_blobs(caffe_cases):
    case = caffe_cases / "layers" / "softmax_losses"
    if not case.is_dir():
        pytest.skip(f"{case} is missing")
    inputs, forward = np.load(case / "inputs.npz"), np.load(case / "forward.npz")
    backward, topdiff = np.load(case / "backward.npz"), np.load(case / "topdiff.npz")
    # only the Softmax layers of the case's net.prototxt (the loss layers are tested elsewhere)
    net = caffe_like.Net({"name": "softmax_only", "force_backward": True, "layer": [
        {"name": "s_soft", "type": "Input", "top": "s_soft", "input_param": {"shape": {"dim": [2, 5, 3, 4]}}},
        {"name": "prob", "type": "Softmax", "bottom": "s_soft", "top": "prob", "softmax_param": {"axis": 1}},
        {"name": "s_soft_ax3", "type": "Input", "top": "s_soft_ax3", "input_param": {"shape": {"dim": [2, 3, 4, 5]}}},
        {"name": "prob_ax3", "type": "Softmax", "bottom": "s_soft_ax3", "top": "prob_ax3",
         "softmax_param": {"axis": 3}},
    ]}, phase="TRAIN")
    out = net(s_soft=torch.from_numpy(inputs["s_soft"]), s_soft_ax3=torch.from_numpy(inputs["s_soft_ax3"]))
    tol = dict(rtol=1e-5, atol=1e-6)
    for name in ("prob", "prob_ax3"):
        np.testing.assert_allclose(out[name].detach().numpy(), forward[name], **tol, err_msg=name)
    objective = sum((out[name] * torch.from_numpy(topdiff[name])).sum() for name in ("prob", "prob_ax3"))
    objective.backward()
    for name in ("s_soft", "s_soft_ax3"):
        np.testing.assert_allclose(net.blobs[name].grad.numpy(), backward[f"in/{name}"], **tol, err_msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu(dtype):
    x = np.random.default_rng(3).standard_normal((2, 5, 3, 4)) * 10
    sample = LayerSample("t", (x,), layer={"softmax_param": {"axis": -3}})
    cpu = layer_db.build("Softmax", sample, dtype)
    gpu = layer_db.build("Softmax", sample, dtype).cuda()
    want = layer_db.run(cpu, sample, dtype)[0]
    gpu(**{k: v.cuda() for k, v in layer_db.inputs_of(sample, dtype).items()})
    np.testing.assert_allclose(gpu.blobs["t0"].cpu().numpy(), want.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_with_loss_cap_survives_huge_scores(dtype):
    """A score gap of 1e20 makes −log p = 1e20; Caffe reports −ln(FLT_MIN) = 87.3365 (its cap) and back-
    propagates p − onehot.  The capped value must not cancel to 0 (1e20 + (87.3 − 1e20) rounds to 0).
    Exact comparison of the value against the cap in ``dtype``; the gradient to 1e-12 (float64 math)."""
    net = caffe_like.Net({"layer": [
        {"name": "s", "type": "Input", "top": "s", "input_param": {"shape": {"dim": [1, 2]}}},
        {"name": "y", "type": "Input", "top": "y", "input_param": {"shape": {"dim": [1]}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["s", "y"], "top": "loss"}]}, dtype=dtype)
    scores = torch.tensor([[1e20, 0.0]], dtype=dtype, requires_grad=True)
    net(s=scores, y=torch.tensor([1.0], dtype=dtype))
    cap = torch.tensor(-math.log(1.17549435e-38), dtype=dtype)
    assert net.loss.item() == cap.item()
    (grad,) = torch.autograd.grad(net.loss, scores)
    np.testing.assert_allclose(grad.numpy(), [[1.0, -1.0]], rtol=0, atol=1e-12)
