"""CenterLoss (Caffe-face), torch layer: value, feature gradient, the centers' update rule, default weight 0.

reference backward == finite differences (features) is tests/reference/test_center_loss.py; here torch ==
the reference (float64 rtol 1e-10/atol 1e-12; float32 see paper_helpers), autograd.gradcheck on the features
(the centers' "gradient" is an update rule, not a derivative), and Caffe-face's conventions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import CaffeLikeError
from caffe_like.reference import center_loss as ref

from paper_helpers import F32_BWD, F32_FWD, F64, build, rounded, run


def fields(n=4, weight=0.01, **extra):
    return {"center_loss_param": {"num_output": n, **extra}, "loss_weight": weight}


def data(seed, shape=(9, 3), classes=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y = np.array([0, 0, 1, 1, 1, 3, 3, 0, 1][: shape[0]], dtype=np.float64)  # class 2 absent, none once
    return x, y, rng.standard_normal((classes, int(np.prod(shape[1:]))))


def compare(x, y, C, weight, *, dtype="float64", fwd_tol=F64, bwd_tol=F64):
    net = build("CenterLoss", (x, y), fields(C.shape[0], weight), blobs=(C,), dtype=dtype)
    tops, (dx, dlabel), (dC,) = run(net, (x, y), top_diffs=(np.asarray(weight),), dtype=dtype)
    xr, Cr = rounded((x, C), dtype)
    (want,) = ref.forward(xr, y, Cr)
    want_dx, _, want_dC = ref.backward(xr, y, Cr, top_diffs=(weight,))
    np.testing.assert_allclose(tops[0], want, **fwd_tol)
    np.testing.assert_allclose(dx, want_dx, **bwd_tol)
    np.testing.assert_allclose(dC, want_dC, **bwd_tol)
    assert dlabel is None
    return tops[0], dx, dC


@pytest.mark.parametrize("weight", [0.01, 0.5, 2.5])
def test_equals_the_reference_float64(weight):
    compare(*data(1), weight)


@pytest.mark.parametrize("weight", [0.01, 2.5])
def test_equals_the_reference_float32(weight):
    compare(*data(2), weight, dtype="float32", fwd_tol=F32_FWD, bwd_tol=F32_BWD)


def test_center_update_ignores_the_loss_weight_and_the_batch_size():
    x, y, C = data(3)
    _, dx_small, dC_small = compare(x, y, C, 0.01)
    _, dx_big, dC_big = compare(x, y, C, 2.5)
    np.testing.assert_array_equal(dC_small, dC_big)
    np.testing.assert_allclose(dx_big, dx_small * 250, rtol=1e-12)
    # the update is Σ(c_j − x_i)/(1 + n_j), not divided by N: class 0 has samples 0, 1, 7
    np.testing.assert_allclose(dC_small[0], (3 * C[0] - x[[0, 1, 7]].sum(axis=0)) / 4, rtol=1e-12)


def test_absent_class_gets_zero_and_a_singleton_half_the_difference():
    x, y, C = data(4)
    y = y.copy()
    y[0] = 2.0  # class 2 now seen once (sample 0); class 0 keeps samples 1, 7
    _, _, dC = compare(x, y, C, 0.01)
    np.testing.assert_allclose(dC[2], (C[2] - x[0]) / 2, rtol=1e-12)
    x2, y2, C2 = data(5)
    _, _, dC2 = compare(x2, y2, C2, 0.01)
    assert np.all(dC2[2] == 0.0)  # absent


def test_the_update_accumulates_across_passes():
    """Caffe-face's CPU backward adds (+=) to the centers' diff; torch's gradient accumulation does the same."""
    x, y, C = data(6)
    net = build("CenterLoss", (x, y), fields(4, 0.5), blobs=(C,))
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y)
    for _ in range(2):
        net(b0=xt, b1=yt)
        net.loss.backward()
    _, _, once = ref.backward(x, y, C, top_diffs=(0.5,))
    np.testing.assert_allclose(net.params["L"][0].grad.numpy(), 2 * once, **F64)


def test_autograd_gradcheck_on_the_features():
    x, y, C = data(7)
    net = build("CenterLoss", (x, y), fields(4, 0.01), blobs=(C,))
    layer = net.layer_dict()["L"]
    label = torch.tensor(y)
    assert torch.autograd.gradcheck(lambda xt: layer(xt, label)[0], (torch.tensor(x, requires_grad=True),),
                                    eps=1e-6, atol=1e-5, rtol=1e-3)


def test_the_centers_update_is_not_the_derivative():
    """The reason gradcheck excludes the centers: the true derivative is −Σ(x_i − c_j)/N, a different number."""
    x, y, C = data(8)
    net = build("CenterLoss", (x, y), fields(4, 1.0), blobs=(C,))
    _, _, (dC,) = run(net, (x, y), top_diffs=(np.asarray(1.0),))
    true = np.zeros_like(C)
    np.add.at(true, y.astype(int), -(x - C[y.astype(int)]) / len(y))
    assert not np.allclose(dC, true)


def test_spatial_features_are_flattened_from_axis_1():
    x, y, C = data(9, shape=(5, 2, 2, 2), classes=4)
    compare(x, y[:5], C, 0.25)


def test_loss_weight_enters_the_net_objective():
    x, y, C = data(10)
    net = build("CenterLoss", (x, y), fields(4, 0.5), blobs=(C,))
    net(b0=torch.tensor(x), b1=torch.tensor(y))
    assert float(net.loss.detach()) == pytest.approx(0.5 * float(ref.forward(x, y, C)[0]), rel=1e-14)


def test_default_loss_weight_is_0_with_a_warning_naming_the_layer():
    """Caffe-face's CenterLoss overrides LossLayer's setup, so without a loss_weight it has weight 0."""
    x, y, C = data(11)
    plain = {"center_loss_param": {"num_output": 4}}
    with pytest.warns(UserWarning, match=r"layer 'L' \(CenterLoss\) has no loss_weight"):
        net = build("CenterLoss", (x, y), plain, blobs=(C,))
    assert net.layer_dict()["L"].IS_LOSS is False
    out = net(b0=torch.tensor(x, requires_grad=True), b1=torch.tensor(y))
    assert float(out["t0"].detach()) > 0 and float(net.loss) == 0.0 and not net.loss.requires_grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build("CenterLoss", (x, y), fields(4, 0.01), blobs=(C,))  # an explicit weight: no warning


@pytest.mark.parametrize("bad", [4.0, -1.0])
def test_labels_out_of_range_name_the_layer(bad):
    x, y, C = data(12)
    y = y.copy()
    y[2] = bad
    net = build("CenterLoss", (x, y), fields(), blobs=(C,))
    with pytest.raises(CaffeLikeError) as err:
        run(net, (x, y))
    assert "layer 'L' (CenterLoss)" in str(err.value) and "out of range" in str(err.value)


def test_label_count_is_checked_at_build_time():
    x, _, _ = data(13)
    with pytest.raises(CaffeLikeError, match="label"):
        caffe_like.Net({"name": "n", "layer": [
            {"name": "x", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [9, 3]}}},
            {"name": "y", "type": "Input", "top": "y", "input_param": {"shape": {"dim": [8]}}},
            {"name": "L", "type": "CenterLoss", "bottom": ["x", "y"], "top": "l", "loss_weight": 0.1,
             "center_loss_param": {"num_output": 4}}]}, phase="TRAIN")
