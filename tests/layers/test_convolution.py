"""Convolution and Deconvolution: the Caffe semantics a naive port gets wrong (caffe_semantics.md §2.1,
§2.2, §9), with hand-computed numbers, the original Caffe's numbers (../shared/caffe_cases/layers/
conv_basic), and bad input.

Unless a test says otherwise: float64 on CPU, tolerance 1e-12 absolute."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import CaffeLikeError, ShapeError, SpecError

TOL = dict(rtol=0.0, atol=1e-12)


def _net(type_name, param, shapes, *, n_tops=None, dtype=torch.float64, name="conv"):
    shapes = [shapes] if isinstance(shapes[0], int) else shapes
    layers = [{"name": f"in{i}", "type": "Input", "top": f"x{i}", "input_param": {"shape": {"dim": list(s)}}}
              for i, s in enumerate(shapes)]
    n_tops = len(shapes) if n_tops is None else n_tops
    layers.append({"name": name, "type": type_name, "bottom": [f"x{i}" for i in range(len(shapes))],
                   "top": [f"y{i}" for i in range(n_tops)], "convolution_param": param})
    return caffe_like.Net({"name": "t", "layer": layers}, phase="TEST", dtype=dtype, seed=0)


def _set_blobs(net, *values, name="conv"):
    with torch.no_grad():
        for blob, value in zip(net.params[name], values):
            blob.copy_(torch.as_tensor(np.asarray(value, dtype=np.float64)))


def _run(net, *xs):
    net(**{f"x{i}": torch.as_tensor(np.asarray(x, dtype=np.float64)) for i, x in enumerate(xs)})
    return [net.blobs[f"y{i}"].detach().numpy() for i in range(len(xs))]


# -- defaults and layouts ----------------------------------------------------------------------------

@pytest.mark.parametrize("type_name", ["Convolution", "Deconvolution"])
def test_no_filler_means_all_zero_weights_and_bias(type_name):
    net = _net(type_name, {"num_output": 4, "kernel_size": 3}, (2, 3, 5, 5))
    weight, bias = net.params["conv"]
    assert torch.count_nonzero(weight) == 0 and torch.count_nonzero(bias) == 0
    (y,) = _run(net, np.random.default_rng(0).standard_normal((2, 3, 5, 5)))
    assert not y.any()


def test_blob_layouts():
    conv = _net("Convolution", {"num_output": 6, "kernel_h": 3, "kernel_w": 2, "group": 3}, (1, 9, 7, 7))
    assert [tuple(b.shape) for b in conv.params["conv"]] == [(6, 3, 3, 2), (6,)]
    deconv = _net("Deconvolution", {"num_output": 6, "kernel_h": 3, "kernel_w": 2, "group": 3}, (1, 9, 7, 7))
    assert [tuple(b.shape) for b in deconv.params["conv"]] == [(9, 2, 3, 2), (6,)]
    no_bias = _net("Convolution", {"num_output": 2, "kernel_size": 1, "bias_term": False}, (1, 3, 2, 2))
    assert [tuple(b.shape) for b in no_bias.params["conv"]] == [(2, 3, 1, 1)]
    conv3d = _net("Convolution", {"num_output": 2, "kernel_size": [1, 2, 3]}, (1, 4, 3, 3, 3))
    assert tuple(conv3d.params["conv"][0].shape) == (2, 4, 1, 2, 3)


# -- computation -------------------------------------------------------------------------------------

def test_cross_correlation_without_kernel_flip_plus_bias():
    # W picks the top-left cell of each 2x2 window: a true convolution (flipped kernel) would pick the
    # bottom-right one and give [[5, 6], [8, 9]].
    net = _net("Convolution", {"num_output": 1, "kernel_size": 2}, (1, 1, 3, 3))
    _set_blobs(net, [[[[1.0, 0.0], [0.0, 0.0]]]], [0.5])
    (y,) = _run(net, np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    np.testing.assert_allclose(y[0, 0], [[1.5, 2.5], [4.5, 5.5]], **TOL)


def test_zero_padding_stride_and_group():
    # 2 groups of 1 channel; kernel of ones (3x3), pad 1, stride 2 on a 3x3 input of 1..9 (channel 0) and
    # 10 * (1..9) (channel 1).  Output 2x2 per channel, windows rows/cols [-1,2) and [1,4):
    #   (0,0): 1+2+4+5 = 12, (0,1): 2+3+5+6 = 16, (1,0): 4+5+7+8 = 24, (1,1): 5+6+8+9 = 28.
    net = _net("Convolution", {"num_output": 2, "kernel_size": 3, "pad": 1, "stride": 2, "group": 2},
               (1, 2, 3, 3))
    _set_blobs(net, np.ones((2, 1, 3, 3)), [0.0, 1.0])
    plane = np.arange(1.0, 10.0).reshape(3, 3)
    (y,) = _run(net, np.stack([plane, 10 * plane])[None])
    np.testing.assert_allclose(y[0, 0], [[12, 16], [24, 28]], **TOL)
    np.testing.assert_allclose(y[0, 1], [[121, 161], [241, 281]], **TOL)


@pytest.mark.parametrize("size,kernel,stride,pad,dilation,expected", [
    (7, 3, 2, 0, 1, 3),    # (7 - 3) / 2 + 1 = 3
    (8, 3, 2, 1, 1, 4),    # (8 + 2 - 3) / 2 + 1 = 3 + 1 (integer division)
    (9, 3, 1, 0, 2, 5),    # extent 2*(3-1)+1 = 5: (9 - 5) / 1 + 1
    (4, 5, 3, 1, 1, 1),    # kernel = padded input: one output
    (11, 2, 3, 2, 1, 5),   # (11 + 4 - 2) / 3 + 1 = 4 + 1
])
def test_convolution_output_size(size, kernel, stride, pad, dilation, expected):
    param = {"num_output": 1, "kernel_size": kernel, "stride": stride, "pad": pad, "dilation": dilation}
    net = _net("Convolution", param, (1, 1, size, size))
    assert net.blob_shapes["y0"] == (1, 1, expected, expected)


@pytest.mark.parametrize("size,kernel,stride,pad,dilation,expected", [
    (3, 4, 2, 1, 1, 6),    # 2*(3-1) + 4 - 2 = 6 (no output_padding in Caffe)
    (5, 3, 1, 1, 1, 5),    # 1*4 + 3 - 2 = 5
    (4, 3, 2, 0, 2, 11),   # 2*3 + (2*(3-1) + 1) - 0 = 11
    (3, 3, 3, 2, 1, 5),    # 3*2 + 3 - 4 = 5 (pad larger than the kernel's reach is fine)
])
def test_deconvolution_output_size(size, kernel, stride, pad, dilation, expected):
    # out = stride*(in-1) + dilation*(k-1) + 1 - 2*pad
    param = {"num_output": 1, "kernel_size": kernel, "stride": stride, "pad": pad, "dilation": dilation}
    net = _net("Deconvolution", param, (1, 1, size, size))
    assert net.blob_shapes["y0"] == (1, 1, expected, expected)


def test_bilinear_deconvolution_upsamples_by_two():
    # The FCN upsampling: factor f=2, kernel 2f - f%2 = 4, stride 2, pad ceil((f-1)/2) = 1, group = C,
    # bias_term false.  The bilinear filler gives the 1-D profile 1 - |x/2 - 3/4| = [.25, .75, .75, .25].
    # Input cell p of an axis feeds output cells 2p - 1 + j (j = 0..3), so with pad 1 the 4 outputs get
    #   from p=0: [.75, .75, .25, 0]  (j = 1, 2, 3)      from p=1: [0, .25, .75, .75]  (j = 0, 1, 2)
    # and in 2-D out = U^T X U with U = the two rows above.
    param = {"num_output": 2, "kernel_size": 4, "stride": 2, "pad": 1, "group": 2, "bias_term": False,
             "weight_filler": {"type": "bilinear"}}
    net = _net("Deconvolution", param, (1, 2, 2, 2))
    weight = net.params["conv"][0].detach().numpy()
    profile = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(weight, np.broadcast_to(np.outer(profile, profile), (2, 1, 4, 4)), **TOL)
    x = np.array([[[[1.0, 3.0], [5.0, 7.0]], [[2.0, 2.0], [2.0, 2.0]]]])
    (y,) = _run(net, x)
    expected = np.array([
        [0.5625, 1.125, 1.875, 1.6875],   # .75*.75*1 ; .75*.75*1 + .75*.25*3 ; ...
        [1.5, 2.5, 3.5, 3.0],             # (1,1): .5625*1 + .1875*3 + .1875*5 + .0625*7 = 2.5
        [3.0, 4.5, 5.5, 4.5],
        [2.8125, 4.125, 4.875, 3.9375],
    ])
    np.testing.assert_allclose(y[0, 0], expected, **TOL)
    # a constant plane stays constant inside; the border rows/columns see only .75 of the weight
    border = np.array([0.75, 1.0, 1.0, 0.75])
    np.testing.assert_allclose(y[0, 1], 2.0 * np.outer(border, border), **TOL)


def test_deconvolution_is_the_transpose_of_convolution():
    # <conv(x), y> == <x, deconv(y)> for the same weights (Caffe's deconv forward = conv backward-data)
    rng = np.random.default_rng(1)
    param = {"num_output": 6, "kernel_size": 3, "stride": 2, "pad": 1, "dilation": 1, "group": 2,
             "bias_term": False}
    # sizes with (in + 2*pad - k) divisible by the stride, so that the deconv output is the conv input size
    conv = _net("Convolution", param, (2, 4, 7, 5))
    weight = rng.standard_normal((6, 2, 3, 3))
    _set_blobs(conv, weight)
    x = rng.standard_normal((2, 4, 7, 5))
    (cx,) = _run(conv, x)
    deconv = _net("Deconvolution", {**param, "num_output": 4}, cx.shape)
    _set_blobs(deconv, weight)  # [C_in=6, num_output/group=2, 3, 3]: the conv weight read as ConvTranspose
    y = rng.standard_normal(cx.shape)
    (dy,) = _run(deconv, y)
    assert dy.shape == x.shape  # conv 7x5 -> 4x3; deconv: 2*(4-1)+3-2 = 7 by 2*(3-1)+3-2 = 5
    np.testing.assert_allclose((cx * y).sum(), (x * dy).sum(), rtol=1e-12)


def test_two_bottoms_share_the_blobs_and_sum_their_gradients():
    rng = np.random.default_rng(2)
    param = {"num_output": 3, "kernel_size": 3, "stride": 2, "weight_filler": {"type": "gaussian"},
             "bias_filler": {"type": "gaussian"}}
    shape = (2, 2, 5, 5)
    both = _net("Convolution", param, [shape, shape])
    single = _net("Convolution", param, shape)
    _set_blobs(single, *[b.detach().numpy() for b in both.params["conv"]])
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    ya, yb = _run(both, a, b)
    np.testing.assert_allclose(ya, _run(single, a)[0], **TOL)
    np.testing.assert_allclose(yb, _run(single, b)[0], **TOL)
    both(x0=torch.tensor(a), x1=torch.tensor(b))
    grads = torch.autograd.grad((both.blobs["y0"].sum() + both.blobs["y1"].sum()), list(both.params["conv"]))
    per_bottom = []
    for x in (a, b):
        single(x0=torch.tensor(x))
        per_bottom.append(torch.autograd.grad(single.blobs["y0"].sum(), list(single.params["conv"])))
    for total, ga, gb in zip(grads, *per_bottom):
        np.testing.assert_allclose(total.numpy(), (ga + gb).numpy(), **TOL)


def test_channel_axis_and_leading_axes():
    # axis 2: axes 0 and 1 form the batch, the last two are spatial
    rng = np.random.default_rng(3)
    param = {"num_output": 2, "kernel_size": 2, "axis": 2, "weight_filler": {"type": "gaussian"}}
    net = _net("Convolution", param, (2, 3, 4, 5, 5))
    x = rng.standard_normal((2, 3, 4, 5, 5))
    (y,) = _run(net, x)
    assert y.shape == (2, 3, 2, 4, 4)
    flat = _net("Convolution", {**param, "axis": 1}, (6, 4, 5, 5))
    _set_blobs(flat, *[b.detach().numpy() for b in net.params["conv"]])
    np.testing.assert_allclose(y.reshape(6, 2, 4, 4), _run(flat, x.reshape(6, 4, 5, 5))[0], **TOL)


def test_float32_runs_in_float32():
    net = _net("Convolution", {"num_output": 2, "kernel_size": 3, "weight_filler": {"type": "xavier"}},
               (1, 2, 5, 5), dtype=torch.float32)
    net(x0=torch.randn(1, 2, 5, 5))
    assert net.blobs["y0"].dtype == torch.float32


# -- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_name,param,shapes,error,words", [
    ("Convolution", {"num_output": 2, "kernel_size": 5}, (1, 1, 3, 3), ShapeError,
     "kernel is larger than the padded input"),
    ("Convolution", {"num_output": 2, "kernel_size": 3, "dilation": 2}, (1, 1, 5, 4), ShapeError,
     "kernel extent 5"),
    ("Convolution", {"num_output": 2, "kernel_size": 3, "group": 2}, (1, 3, 5, 5), ShapeError,
     "not divisible by group 2"),
    ("Convolution", {"num_output": 3, "kernel_size": 3, "group": 2}, (1, 4, 5, 5), SpecError,
     "num_output 3 is not divisible by group 2"),
    ("Convolution", {"num_output": 2, "kernel_h": 3, "kernel_w": 3}, (1, 1, 5, 5, 5), SpecError,
     "only be used for 2-D"),
    ("Convolution", {"num_output": 2, "kernel_size": 3, "kernel_h": 3, "kernel_w": 3}, (1, 1, 5, 5), SpecError,
     "not both"),
    ("Convolution", {"num_output": 2, "kernel_size": 3, "pad": [1, 1, 1]}, (1, 1, 5, 5), SpecError,
     "once or once per spatial axis"),
    ("Convolution", {"num_output": 2}, (1, 1, 5, 5), SpecError, "'kernel_size' is required"),
    ("Convolution", {"num_output": 2, "kernel_h": 3}, (1, 1, 5, 5), SpecError, "kernel size must be > 0"),
    ("Convolution", {"num_output": 2, "kernel_size": 3, "stride_h": 2}, (1, 1, 5, 5), SpecError,
     "stride must be > 0"),
    ("Convolution", {"num_output": 0, "kernel_size": 3}, (1, 1, 5, 5), SpecError, "num_output must be > 0"),
    ("Convolution", {"num_output": 2, "kernel_size": 1}, (1, 1, 2, 2, 2, 2), ShapeError, "supports 0 to 3"),
    ("Convolution", {"num_output": 2, "kernel_size": 1, "axis": 4}, (1, 1, 2, 2), ShapeError, "out of range"),
    ("Convolution", {"num_output": 2, "kernel_size": 3}, [(1, 1, 5, 5), (1, 1, 6, 5)], ShapeError,
     "all bottoms must have the same shape"),
    ("Deconvolution", {"num_output": 2, "kernel_size": 2, "pad": 2}, (1, 1, 2, 2), ShapeError,
     "output would be empty"),
])
def test_bad_parameters_and_shapes(type_name, param, shapes, error, words):
    with pytest.raises(error) as info:
        _net(type_name, param, shapes)
    message = str(info.value)
    assert f"layer 'conv' ({type_name})" in message and words in message


def test_bad_input_names_the_shapes():
    with pytest.raises(ShapeError) as info:
        _net("Convolution", {"num_output": 2, "kernel_size": [3, 7], "pad": 1}, (2, 1, 6, 4))
    message = str(info.value)
    assert "[2, 1, 6, 4]" in message and "spatial axis 1" in message and "kernel extent 7" in message


def test_one_top_per_bottom():
    with pytest.raises(CaffeLikeError, match="bottom i to top i"):
        _net("Convolution", {"num_output": 2, "kernel_size": 1}, [(1, 1, 2, 2), (1, 1, 2, 2)], n_tops=1)


# -- the original Caffe's numbers ----------------------------------------------------------------------

@pytest.mark.caffe_cases
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_caffe_case_conv_basic(caffe_cases, dtype):
    """Forward within 1e-6 relative to the largest value (float32 sums in another order), parameter and
    input gradients within 1e-6 of Caffe's (float32)."""
    folder = caffe_cases / "layers" / "conv_basic"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    case = json.loads((folder / "case.json").read_text())
    inputs = dict(np.load(folder / "inputs.npz"))
    forward = dict(np.load(folder / "forward.npz"))
    backward = dict(np.load(folder / "backward.npz"))
    top_diff = dict(np.load(folder / "topdiff.npz"))
    net = caffe_like.Net(str(folder / "net.prototxt"), phase=case["phase"], dtype=dtype)
    net.load_weights(folder / "weights.caffemodel")
    net(**{name: torch.tensor(inputs[name], dtype=dtype) for name in case["inputs"]})
    for name in case["blob_order"]:
        got = net.blobs[name].detach().double().numpy()
        np.testing.assert_allclose(got, forward[name], rtol=0, atol=1e-6 * np.abs(forward[name]).max(),
                                   err_msg=name)
    objective = sum((net.blobs[name] * torch.tensor(top_diff[name], dtype=dtype)).sum() for name in top_diff)
    names = [f"in/{name}" for name in case["inputs"]]
    leaves = [net.blobs[name] for name in case["inputs"]]
    for layer in case["layers"]:
        for index, _ in enumerate(layer["param_shapes"]):
            names.append(f"param/{layer['name']}/{index}")
            leaves.append(net.params[layer["name"]][index])
    grads = torch.autograd.grad(objective, leaves)
    for name, grad in zip(names, grads):
        want = backward[name]
        np.testing.assert_allclose(grad.double().numpy(), want, rtol=0, atol=1e-6 * max(1.0, np.abs(want).max()),
                                   err_msg=name)


# -- CUDA ---------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("type_name", ["Convolution", "Deconvolution"])
@pytest.mark.parametrize("param,shape", [
    ({"kernel_size": 3, "stride": 2, "pad": 1, "group": 2}, (2, 4, 9, 7)),
    ({"kernel_size": [2, 3, 2], "dilation": 2}, (2, 2, 5, 6, 5)),
    ({"kernel_size": 3, "axis": 2}, (2, 3, 2, 6, 6)),
    ({}, (5, 4)),
])
def test_cuda_matches_cpu(type_name, param, shape):
    param = {"num_output": 4, **param, "weight_filler": {"type": "gaussian"}, "bias_filler": {"type": "gaussian"}}
    x = torch.tensor(np.random.default_rng(0).standard_normal(shape))
    results = []
    for device in ("cpu", "cuda"):
        net = _net(type_name, param, shape).to(device)
        leaf = x.to(device).requires_grad_(True)
        net(x0=leaf)
        y = net.blobs["y0"]
        grads = torch.autograd.grad((y * y).sum(), [leaf, *net.params["conv"]])
        results.append([y.detach().cpu().numpy()] + [g.cpu().numpy() for g in grads])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-9)
