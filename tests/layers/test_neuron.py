"""Element-wise activations: the Caffe semantics a naive port gets wrong, and errors for bad input.

Covered: gradients at the kinks (ReLU/PReLU slope at x == 0, ELU alpha at 0, AbsVal 0 at 0, Clip inclusive
bounds, BNLL 0.5 at 0), PReLU's default 0.25 filler, blob shapes and slope gradient, Power's special cases,
Exp/Log base rules, Threshold's strict comparison and missing gradient, Clip with min > max, Swish's beta,
in-place nets leaving the bottom untouched, and float32/float64 (CUDA when available).
Expected numbers are hand-computed; each test states its tolerance (exact where the arithmetic is).
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

DTYPES = ["float64", "float32"]
TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-6, atol=1e-6)}


def _run(type_name, x, layer=None, dtype="float64", top_diff=None, blobs=None):
    """(top, dx, [blob grads]) of the one-layer net for the objective sum(top * top_diff) (default 1)."""
    sample = LayerSample("t", (np.asarray(x, dtype=np.float64),), layer=layer or {}, blobs=blobs)
    net = layer_db.build(type_name, sample, dtype)
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample, dtype).items()}
    net(**inputs)
    top = net.blobs["t0"]
    params = [b for b in net.layer_dict()["L"].blobs if b.requires_grad]
    if not top.requires_grad:
        return top.detach(), None, []
    diff = torch.ones_like(top) if top_diff is None else torch.as_tensor(top_diff, dtype=top.dtype)
    grads = torch.autograd.grad((top * diff).sum(), [inputs["b0"], *params], allow_unused=True)
    return top.detach(), grads[0], list(grads[1:])


# -- ReLU / PReLU -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.0, 0.1, -0.5])
def test_relu_gradient_at_zero_is_the_negative_slope(dtype, slope):
    # Caffe: dx = dy * (x > 0 ? 1 : negative_slope), so x == 0 (and -0.0) takes the slope (exact)
    top, dx, _ = _run("ReLU", [-2.0, -0.0, 0.0, 3.0], {"relu_param": {"negative_slope": slope}}, dtype)
    np.testing.assert_array_equal(top.numpy(), np.array([-2.0 * slope, 0.0, 0.0, 3.0], dtype=top.numpy().dtype))
    np.testing.assert_array_equal(dx.numpy(), np.array([slope, slope, slope, 1.0], dtype=dx.numpy().dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_default_filler_is_0_25_and_gradients_match_caffe(dtype):
    # x (N=1, C=2, 3); slopes default 0.25 each.  dx = dy*(x>0 ? 1 : a_c); da_c = Σ dy*x*[x<=0]
    x = [[[-2.0, 0.0, 1.0], [3.0, -1.0, -4.0]]]
    dy = [[[1.0, 5.0, 2.0], [1.0, 2.0, 0.5]]]
    top, dx, (da,) = _run("PReLU", x, dtype=dtype, top_diff=dy)
    np.testing.assert_allclose(top.numpy(), [[[-0.5, 0.0, 1.0], [3.0, -0.25, -1.0]]], **TOL[dtype])
    np.testing.assert_allclose(dx.numpy(), [[[0.25, 1.25, 2.0], [1.0, 0.5, 0.125]]], **TOL[dtype])
    np.testing.assert_allclose(da.numpy(), [-2.0, -4.0], **TOL[dtype])  # -2*1 + 0*5 ; -1*2 + -4*0.5


def test_prelu_blob_shapes_and_learnable_with_decay():
    x = np.ones((2, 3, 4))
    net = layer_db.build("PReLU", LayerSample("t", (x,)))
    assert tuple(net.params["L"][0].shape) == (3,)
    np.testing.assert_array_equal(net.params["L"][0].detach().numpy(), [0.25, 0.25, 0.25])
    (learnable,) = net.learnable_params()
    assert learnable.lr_mult == 1.0 and learnable.decay_mult == 1.0  # Caffe decays PReLU slopes by default
    shared = layer_db.build("PReLU", LayerSample("t", (x,), layer={"prelu_param": {"channel_shared": True}}))
    assert tuple(shared.params["L"][0].shape) == ()
    assert shared.summary()["total_params"] == 1


def test_prelu_channel_shared_gradient_sums_over_channels():
    x = [[-1.0, 2.0], [-3.0, 0.5]]  # (N=2, C=2)
    top, dx, (da,) = _run("PReLU", x, {"prelu_param": {"channel_shared": True}}, blobs=(np.array(0.5),))
    np.testing.assert_allclose(top.numpy(), [[-0.5, 2.0], [-1.5, 0.5]], rtol=0, atol=0)
    np.testing.assert_allclose(dx.numpy(), [[0.5, 1.0], [0.5, 1.0]], rtol=0, atol=0)
    assert da.shape == () and float(da) == -4.0


def test_prelu_needs_two_axes():
    with pytest.raises(ShapeError, match="at least 2 axes") as info:
        layer_db.build("PReLU", LayerSample("t", (np.ones(5),)))
    assert "'L'" in str(info.value)


# -- ELU, Sigmoid, TanH, AbsVal --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_elu_gradient_is_y_plus_alpha_on_the_negative_side_and_alpha_at_zero(dtype):
    alpha = 0.5
    top, dx, _ = _run("ELU", [-1.0, 0.0, 2.0], {"elu_param": {"alpha": alpha}}, dtype)
    y_neg = alpha * (math.exp(-1.0) - 1.0)
    np.testing.assert_allclose(top.numpy(), [y_neg, 0.0, 2.0], **TOL[dtype])
    np.testing.assert_allclose(dx.numpy(), [y_neg + alpha, alpha, 1.0], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_equals_bvlc_tanh_form_and_gradient_y_1_minus_y(dtype):
    x = np.array([-8.0, -1.0, 0.0, 0.5, 3.0])
    top, dx, _ = _run("Sigmoid", x, dtype=dtype)
    bvlc = 0.5 * np.tanh(0.5 * x) + 0.5  # BVLC master's formula, float64
    np.testing.assert_allclose(top.numpy(), bvlc, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-7)
    np.testing.assert_allclose(dx.numpy(), bvlc * (1 - bvlc), rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7)


def test_tanh_gradient_is_1_minus_y_squared():
    x = np.array([-2.0, 0.0, 0.7])
    top, dx, _ = _run("TanH", x)
    np.testing.assert_allclose(dx.numpy(), 1 - np.tanh(x) ** 2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_absval_gradient_is_sign_with_0_at_0(dtype):
    top, dx, _ = _run("AbsVal", [-2.0, 0.0, 3.0], dtype=dtype, top_diff=[2.0, 7.0, 3.0])
    np.testing.assert_array_equal(top.numpy(), [2.0, 0.0, 3.0])
    np.testing.assert_array_equal(dx.numpy(), [-2.0, 0.0, 3.0])  # exact


def test_absval_refuses_in_place_like_caffe():
    net = layer_db.layer_net_dict("AbsVal", LayerSample("t", (np.ones(3),)))
    net["layer"][-1]["top"] = ["b0"]
    with pytest.raises(SpecError, match="in-place") as info:
        caffe_like.Net(net)
    assert "'L'" in str(info.value)


# -- Power -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_square_with_scale_and_shift(dtype):
    # y = (1 + 0.5x)^2 ; dy/dx = 2*0.5*(1 + 0.5x)
    top, dx, _ = _run("Power", [-4.0, 0.0, 2.0], {"power_param": {"power": 2.0, "scale": 0.5, "shift": 1.0}}, dtype)
    np.testing.assert_allclose(top.numpy(), [1.0, 1.0, 4.0], **TOL[dtype])
    np.testing.assert_allclose(dx.numpy(), [-1.0, 1.0, 2.0], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("param,value", [({"power": 0.0, "scale": 3.0, "shift": -2.0}, 1.0),
                                         ({"power": -1.0, "scale": 0.0, "shift": 4.0}, 0.25),
                                         ({"power": 0.0, "scale": 0.0}, 1.0),
                                         ({"power": -1.0, "scale": 0.0}, float("inf")),  # std::pow(0, -1)
                                         ({"power": 0.5, "scale": 0.0, "shift": -4.0}, float("nan"))])
def test_power_ignores_the_input_when_power_or_scale_is_0(dtype, param, value):
    # Caffe's special case: diff_scale = power*scale == 0 -> y = (power == 0 ? 1 : shift^power), dx = 0,
    # even where the general formula would give inf/NaN (0^-1, inf input)
    x = [0.0, -3.0, 2.5, float("inf")]
    top, dx, _ = _run("Power", x, {"power_param": param}, dtype)
    np.testing.assert_array_equal(top.numpy(), [value] * 4)
    np.testing.assert_array_equal(dx.numpy(), [0.0] * 4)


def test_power_1_is_affine_with_gradient_scale():
    top, dx, _ = _run("Power", [0.0, 1.0, -2.0], {"power_param": {"scale": -3.0, "shift": 0.5}})
    np.testing.assert_array_equal(top.numpy(), [0.5, -2.5, 6.5])
    np.testing.assert_array_equal(dx.numpy(), [-3.0, -3.0, -3.0])


def test_power_general_and_cube_of_negative_base():
    # (2x)^3 at x = -1: -8, gradient 3*2*(2x)^2 = 24 ; (0.5 + x)^1.5 at x = 1.5: 2^1.5, grad 1.5*2^0.5
    top, dx, _ = _run("Power", [-1.0], {"power_param": {"power": 3.0, "scale": 2.0}})
    np.testing.assert_allclose([top.item(), dx.item()], [-8.0, 24.0], rtol=1e-14)
    top, dx, _ = _run("Power", [1.5], {"power_param": {"power": 1.5, "shift": 0.5}})
    np.testing.assert_allclose([top.item(), dx.item()], [2 ** 1.5, 1.5 * 2 ** 0.5], rtol=1e-14)


def test_power_gradient_at_zero_base_is_analytic_not_caffe_nan():
    # documented departure: Caffe computes power*y/x = 0/0 here
    top, dx, _ = _run("Power", [0.0], {"power_param": {"power": 3.0}})
    assert top.item() == 0.0 and dx.item() == 0.0


# -- Exp / Log --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_base_2_scale_shift(dtype):
    # y = 2^(1 + 0.5x) ; dy/dx = y * ln2 * 0.5
    top, dx, _ = _run("Exp", [-2.0, 0.0, 2.0], {"exp_param": {"base": 2.0, "scale": 0.5, "shift": 1.0}}, dtype)
    np.testing.assert_allclose(top.numpy(), [1.0, 2.0, 4.0], **TOL[dtype])
    np.testing.assert_allclose(dx.numpy(), np.array([1.0, 2.0, 4.0]) * math.log(2) * 0.5, **TOL[dtype])


def test_exp_default_base_is_e():
    top, dx, _ = _run("Exp", [0.0, 1.0])
    np.testing.assert_allclose(top.numpy(), [1.0, math.e], rtol=1e-15)
    np.testing.assert_allclose(dx.numpy(), [1.0, math.e], rtol=1e-15)


@pytest.mark.parametrize("type_name,block", [("Exp", "exp_param"), ("Log", "log_param")])
@pytest.mark.parametrize("base", [0.0, -2.0, -0.5])
def test_exp_and_log_base_must_be_positive_or_minus_1(type_name, block, base):
    with pytest.raises(SpecError, match="strictly positive") as info:
        layer_db.build(type_name, LayerSample("t", (np.ones(2),), layer={block: {"base": base}}))
    assert "'L'" in str(info.value) and type_name in str(info.value)


def test_log_base_1_is_refused_but_exp_base_1_is_the_constant_1():
    with pytest.raises(SpecError, match="base 1"):
        layer_db.build("Log", LayerSample("t", (np.ones(2),), layer={"log_param": {"base": 1.0}}))
    top, dx, _ = _run("Exp", [3.0, -2.0], {"exp_param": {"base": 1.0, "shift": 5.0}})
    np.testing.assert_array_equal(top.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(dx.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_base_2_scale_shift(dtype):
    # y = log2(2x + 1) ; dy/dx = 2 / ((2x + 1) ln 2)
    top, dx, _ = _run("Log", [0.0, 1.5, 3.5], {"log_param": {"base": 2.0, "scale": 2.0, "shift": 1.0}}, dtype)
    np.testing.assert_allclose(top.numpy(), [0.0, 2.0, 3.0], **TOL[dtype])
    np.testing.assert_allclose(dx.numpy(), 2.0 / (np.array([1.0, 4.0, 8.0]) * math.log(2)), **TOL[dtype])


# -- BNLL, Threshold, Clip, Swish --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_bnll_is_stable_and_its_gradient_is_sigmoid(dtype):
    x = [-1000.0, -60.0, 0.0, 60.0, 1000.0]
    top, dx, _ = _run("BNLL", x, dtype=dtype)
    assert torch.isfinite(top).all() and torch.isfinite(dx).all()
    np.testing.assert_allclose(top.numpy(), [0.0, math.exp(-60.0), math.log(2.0), 60.0, 1000.0],
                               rtol=1e-6 if dtype == "float32" else 1e-15, atol=0)
    # at 0 the gradient is sigmoid(0) = 0.5 (autograd of max(x,0) + log1p(exp(-|x|)) would give 0); 1 above 50
    np.testing.assert_allclose(dx.numpy(), [0.0, math.exp(-60.0), 0.5, 1.0, 1.0], rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_is_strict_and_sends_no_gradient(dtype):
    top, dx, _ = _run("Threshold", [0.2, 0.3, 0.31, -5.0], {"threshold_param": {"threshold": 0.3}}, dtype)
    np.testing.assert_array_equal(top.numpy(), [0.0, 0.0, 1.0, 0.0])
    assert top.dtype == getattr(torch, dtype)
    assert dx is None  # not differentiable (Caffe: NOT_IMPLEMENTED); the bottom gets nothing through it


def test_threshold_in_a_net_leaves_the_layers_below_without_gradient():
    net = caffe_like.Net({"name": "t", "layer": [
        {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3]}}},
        {"name": "ip", "type": "InnerProduct", "bottom": "x", "top": "h",
         "inner_product_param": {"num_output": 2, "weight_filler": {"type": "gaussian"}}},
        {"name": "th", "type": "Threshold", "bottom": "h", "top": "h"},
        {"name": "sum", "type": "Power", "bottom": "h", "top": "out", "loss_weight": 1.0,
         "power_param": {"scale": 2.0}},
    ]}, seed=1)
    net(x=torch.randn(2, 3))
    assert not net.loss.requires_grad  # nothing to back-propagate into: the step has derivative 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_passes_the_gradient_at_both_bounds(dtype):
    top, dx, _ = _run("Clip", [-1.0, -0.5, 0.0, 0.75, 2.0], {"clip_param": {"min": -0.5, "max": 0.75}}, dtype)
    np.testing.assert_array_equal(top.numpy(), [-0.5, -0.5, 0.0, 0.75, 0.75])
    np.testing.assert_array_equal(dx.numpy(), [0.0, 1.0, 1.0, 1.0, 0.0])  # Caffe: min <= x <= max


def test_clip_with_min_above_max_gives_min_unlike_torch_clamp():
    top, dx, _ = _run("Clip", [-3.0, 1.5, 3.0], {"clip_param": {"min": 2.0, "max": 1.0}})
    np.testing.assert_array_equal(top.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(dx.numpy(), [0.0, 0.0, 0.0])
    assert torch.clamp(torch.tensor([0.0]), 2.0, 1.0).item() == 1.0  # what the naive port would give


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [1.0, 0.5, -2.0])
def test_swish_forward_and_caffe_gradient(dtype, beta):
    x = np.array([-1.5, 0.0, 0.8, 3.0])
    s = 1.0 / (1.0 + np.exp(-beta * x))
    y = x * s
    top, dx, _ = _run("Swish", x, {"swish_param": {"beta": beta}}, dtype)
    tol = TOL[dtype] if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(top.numpy(), y, **tol)
    np.testing.assert_allclose(dx.numpy(), beta * y + s * (1.0 - beta * y), **tol)  # swish_layer.cpp


# -- in place, shapes, devices -----------------------------------------------------------------------------

_ALL = [("ReLU", {}), ("ReLU", {"relu_param": {"negative_slope": 0.2}}), ("PReLU", {}), ("ELU", {}),
        ("Sigmoid", {}), ("TanH", {}), ("Power", {"power_param": {"power": 2.0, "shift": 3.0}}), ("Exp", {}),
        ("BNLL", {}), ("Threshold", {}), ("Clip", {"clip_param": {"min": -0.5, "max": 0.5}}), ("Swish", {})]


@pytest.mark.parametrize("type_name,layer", _ALL, ids=[f"{t}{i}" for i, (t, _) in enumerate(_ALL)])
def test_in_place_rebinds_and_never_mutates_the_bottom(type_name, layer):
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    kept = x.clone()
    net = caffe_like.Net({"name": "t", "layer": [
        {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3, 5]}}},
        {"name": "L", "type": type_name, "bottom": "x", "top": "x", **layer}]}, dtype=torch.float64)
    out = net(x=x)["x"]
    assert torch.equal(x, kept)
    assert out.shape == x.shape and out.dtype == torch.float64


def test_shape_inference_keeps_odd_shapes():
    for shape in [(7,), (1, 1), (3, 1, 5), (2, 3, 1, 4, 3)]:
        net = layer_db.build("TanH", LayerSample("t", (np.zeros(shape),)))
        assert net.blob_shapes["t0"] == shape


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("type_name,layer", _ALL, ids=[f"{t}{i}" for i, (t, _) in enumerate(_ALL)])
def test_cuda_matches_cpu(type_name, layer):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    sample = LayerSample("t", (x,), layer=layer)
    for dtype in DTYPES:
        cpu = layer_db.build(type_name, sample, dtype)
        gpu = layer_db.build(type_name, sample, dtype).cuda()
        want = layer_db.run(cpu, sample, dtype)[0]
        inputs = {k: v.cuda() for k, v in layer_db.inputs_of(sample, dtype).items()}
        gpu(**inputs)
        got = gpu.blobs["t0"]
        assert got.is_cuda and got.dtype == want.dtype
        np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), **(TOL[dtype] if dtype == "float64" else
                                                                       dict(rtol=1e-5, atol=1e-6)))
