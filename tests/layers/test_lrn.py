"""LRN: the Caffe semantics a naive port gets wrong (caffe_semantics.md §2.11 and lrn_layer.cpp): alpha is
divided by the window size (n across channels, n² within a channel), the window is zero-padded and its
divisor does not shrink at the borders, WITHIN_CHANNEL ignores k; plus bad input.

Unless a test says otherwise: float64 on CPU, tolerance 1e-15 absolute (the hand values are exact)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import ShapeError, SpecError

EXACT = dict(rtol=0.0, atol=1e-15)


def _net(lrn_param, shape, *, dtype=torch.float64, device="cpu"):
    layer = {"name": "norm", "type": "LRN", "bottom": "x", "top": "y"}
    if lrn_param is not None:
        layer["lrn_param"] = lrn_param
    return caffe_like.Net({"name": "lrn", "layer": [
        {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": list(shape)}}}, layer,
    ]}, phase="TEST", dtype=dtype).to(device)


def _lrn(x, lrn_param, *, dtype=torch.float64, device="cpu"):
    x = np.asarray(x, dtype=np.float64)
    net = _net(lrn_param, x.shape, dtype=dtype, device=device)
    net(x=torch.tensor(x, dtype=dtype, device=device))
    return net.blobs["y"].detach().cpu().double().numpy()


def test_across_channels_alpha_over_n_and_zero_padding():
    # n = 3, alpha = 3 (alpha/n = 1), beta = 1, k = 1; one position with channels [1, 2, 3]:
    #   c0: window {-1, 0, 1} -> 0 + 1 + 4 = 5  -> scale 1 + 5  = 6  -> 1/6
    #   c1: window {0, 1, 2}  -> 1 + 4 + 9 = 14 -> scale 15          -> 2/15
    #   c2: window {1, 2, 3}  -> 4 + 9 + 0 = 13 -> scale 14          -> 3/14
    # (alpha undivided would give 1/16; a divisor shrinking at the border, 1 + 5/2 at c0.)
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    y = _lrn(x, {"local_size": 3, "alpha": 3.0, "beta": 1.0, "k": 1.0})
    np.testing.assert_allclose(y.ravel(), [1 / 6, 2 / 15, 3 / 14], **EXACT)


def test_across_channels_equals_torch_local_response_norm():
    # PyTorch's F.local_response_norm has Caffe's ACROSS_CHANNELS semantics (it computes x / scale^beta,
    # Caffe x * scale^-beta: equal up to rounding), for odd sizes, windows wider than C, and batches
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 2))
    for size in (1, 3, 5, 9):
        param = {"local_size": size, "alpha": 0.9, "beta": 0.6, "k": 1.5}
        y = _lrn(x, param)
        torch_y = torch.nn.functional.local_response_norm(torch.tensor(x), size, alpha=0.9, beta=0.6, k=1.5)
        np.testing.assert_allclose(y, torch_y.numpy(), rtol=1e-14, atol=0)


def test_across_channels_k_and_beta():
    # n = 1: scale = k + alpha * x^2 ; x = 2, k = 2, alpha = 0.5, beta = 0.5 -> 2 / sqrt(2 + 2) = 1
    y = _lrn(np.full((1, 1, 1, 1), 2.0), {"local_size": 1, "alpha": 0.5, "beta": 0.5, "k": 2.0})
    np.testing.assert_allclose(y.ravel(), [1.0], **EXACT)


def test_defaults_are_local_size_5_alpha_1_beta_0_75_k_1():
    # channels [0, 0, 2, 0, 0]: the window of every channel holds the 2 -> scale 1 + 4/5 = 1.8
    x = np.array([0.0, 0.0, 2.0, 0.0, 0.0]).reshape(1, 5, 1, 1)
    y = _lrn(x, None)
    np.testing.assert_allclose(y.ravel(), [0, 0, 2.0 * 1.8 ** -0.75, 0, 0], rtol=1e-15, atol=0)
    # a channel 3 away from the 2 is outside the 5-window: scale exactly k = 1
    x = np.array([2.0, 0.0, 0.0, 1.0]).reshape(1, 4, 1, 1)
    y = _lrn(x, None)
    np.testing.assert_allclose(y.ravel()[3], 1.0 * (1 + 1 / 5) ** -0.75, rtol=1e-15)


def test_within_channel_divides_by_n_squared_with_padding_and_ignores_k():
    # 3x3 plane of 3s (x^2 = 9), n = 3, alpha = 9, beta = 1, k = 5 (ignored):
    # scale = 1 + 9/9 * (sum of x^2 over the in-image cells of the 3x3 window)
    #   corner: 4 cells -> 1 + 36 = 37 ; edge: 6 cells -> 55 ; centre: 9 cells -> 82
    y = _lrn(np.full((1, 1, 3, 3), 3.0), {"norm_region": "WITHIN_CHANNEL", "local_size": 3, "alpha": 9.0,
                                          "beta": 1.0, "k": 5.0})
    expected = 3.0 / np.array([[37, 55, 37], [55, 82, 55], [37, 55, 37]])
    np.testing.assert_allclose(y[0, 0], expected, **EXACT)


def test_within_channel_channels_are_independent():
    x = np.zeros((1, 2, 3, 3))
    x[0, 0, 1, 1] = 2.0  # only channel 0 has energy; channel 1 must be unaffected (scale 1)
    x[0, 1] = 1.0
    y = _lrn(x, {"norm_region": "WITHIN_CHANNEL", "local_size": 3, "alpha": 9.0, "beta": 1.0})
    assert y[0, 0, 1, 1] == pytest.approx(2.0 / (1 + 4.0), abs=1e-15)
    # channel 1 of ones: centre window holds 9 ones -> 1 + 9 = 10
    assert y[0, 1, 1, 1] == pytest.approx(1.0 / 10.0, abs=1e-15)


def test_gradient_matches_the_closed_form():
    # y_c = x_c * s_c^-beta with s_c = k + alpha/n * sum_{c' in w(c)} x_c'^2:
    # dy_c/dx_j = [c == j] s_c^-beta - 2 beta alpha/n x_c x_j s_c^(-beta-1) [j in w(c)]
    rng = np.random.default_rng(0)
    n, alpha, beta, k = 3, 0.7, 0.75, 1.3
    x = rng.standard_normal(4)
    leaf = torch.tensor(x.reshape(1, 4, 1, 1), requires_grad=True)
    net = _net({"local_size": n, "alpha": alpha, "beta": beta, "k": k}, (1, 4, 1, 1))
    net(x=leaf)
    (grad,) = torch.autograd.grad(net.blobs["y"].sum(), leaf)
    s = np.array([k + alpha / n * sum(x[j] ** 2 for j in range(c - 1, c + 2) if 0 <= j < 4) for c in range(4)])
    expected = np.zeros(4)
    for c in range(4):
        for j in range(4):
            if c == j:
                expected[j] += s[c] ** -beta
            if abs(c - j) <= 1:
                expected[j] -= 2 * beta * alpha / n * x[c] * x[j] * s[c] ** (-beta - 1)
    np.testing.assert_allclose(grad.numpy().ravel(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("lrn_param,shape,error,words", [
    ({"local_size": 4}, (1, 3, 2, 2), SpecError, "odd"),
    ({"local_size": 0}, (1, 3, 2, 2), SpecError, "odd"),
    ({}, (2, 3, 4), ShapeError, "4 axes"),
])
def test_bad_input(lrn_param, shape, error, words):
    with pytest.raises(error) as info:
        _net(lrn_param, shape)
    assert "layer 'norm' (LRN)" in str(info.value) and words in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_cuda_matches_cpu(region):
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 7))
    param = {"norm_region": region, "local_size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0}
    np.testing.assert_allclose(_lrn(x, param, device="cuda"), _lrn(x, param), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_lrn(x, param, dtype=torch.float32, device="cuda"), _lrn(x, param), rtol=1e-5,
                               atol=1e-6)
