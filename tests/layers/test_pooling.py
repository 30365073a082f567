"""Pooling: the Caffe semantics a naive port gets wrong (caffe_semantics.md §2.3, §9), with hand-computed
numbers, the original Caffe's own numbers (../shared/caffe_cases/layers/pool_max_ceil), and bad input.

Unless a test says otherwise: float64 on CPU, tolerance 1e-15 absolute (the hand values are exact)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import caffe_like
from caffe_like.errors import CaffeLikeError, ShapeError, SpecError
from caffe_like.layers.pooling import FLT_MAX

EXACT = dict(rtol=0.0, atol=1e-15)


def _net(pooling_param, shape, *, n_tops=1, phase="TEST", dtype=torch.float64):
    tops = ["y", "mask"][:n_tops]
    return caffe_like.Net({"name": "pool", "layer": [
        {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": list(shape)}}},
        {"name": "pool", "type": "Pooling", "bottom": "x", "top": tops, "pooling_param": pooling_param},
    ]}, phase=phase, dtype=dtype)


def _pool(x, pooling_param, *, n_tops=1, phase="TEST", dtype=torch.float64, device="cpu"):
    """Forward x (array) through one Pooling layer; returns the tops as float64 arrays and the net."""
    x = torch.as_tensor(np.asarray(x), dtype=dtype)
    net = _net(pooling_param, tuple(x.shape), n_tops=n_tops, phase=phase, dtype=dtype).to(device)
    net(x=x.to(device))
    tops = [net.blobs[name] for name in ["y", "mask"][:n_tops]]
    return [t.detach().cpu().double().numpy() for t in tops], net


def _input_grad(x, pooling_param, top_diff=None, **kwargs):
    """d(Σ top·top_diff)/dx through one Pooling layer (top_diff: ones by default)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64).requires_grad_(True)
    net = _net(pooling_param, tuple(x.shape), **kwargs)
    net(x=x)
    y = net.blobs["y"]
    diff = torch.ones_like(y) if top_diff is None else torch.as_tensor(top_diff, dtype=y.dtype)
    (grad,) = torch.autograd.grad((y * diff).sum(), x)
    return grad.numpy()


def _plane(h, w):
    """1 + row-major index: distinct, increasing values (shape 1x1xHxW)."""
    return (1.0 + np.arange(h * w, dtype=np.float64)).reshape(1, 1, h, w)


# -- output size: Caffe's ceil with the pad-only clip ----------------------------------------------

@pytest.mark.parametrize("size,kernel,stride,pad,round_mode,expected,torch_gives", [
    (6, 3, 2, 0, "CEIL", 3, 3),   # ceil((6-3)/2)+1 = 3 (floor would give 2)
    (7, 2, 2, 0, "CEIL", 4, 4),   # ceil(5/2)+1 = 4: the last window overhangs the input by one cell
    (5, 2, 2, 1, "CEIL", 3, 3),   # ceil(5/2)+1 = 4, clipped: (4-1)*2 = 6 >= 5+1 -> 3
    (6, 3, 2, 1, "CEIL", 4, 4),   # ceil(5/2)+1 = 4; (4-1)*2 = 6 < 6+1: kept
    (3, 3, 2, 2, "CEIL", 3, None),  # ceil(4/2)+1 = 3; (3-1)*2 = 4 < 3+2: kept (PyTorch refuses pad > k/2)
    (4, 1, 2, 0, "CEIL", 3, 2),   # ceil(3/2)+1 = 3 and no clip without padding; PyTorch clips to 2
    (6, 3, 2, 0, "FLOOR", 2, 2),  # floor(3/2)+1 = 2
    (7, 3, 2, 2, "FLOOR", 5, None),  # floor(8/2)+1 = 5
])
def test_output_size(size, kernel, stride, pad, round_mode, expected, torch_gives):
    param = {"kernel_size": kernel, "stride": stride, "pad": pad, "round_mode": round_mode}
    net = _net(param, (1, 1, size, size))
    assert net.blob_shapes["y"] == (1, 1, expected, expected)
    (y,), _ = _pool(_plane(size, size), param)
    assert y.shape == (1, 1, expected, expected)
    if torch_gives is not None:  # what a naive port with ceil_mode=True would produce
        naive = F.max_pool2d(torch.zeros(1, 1, size, size), kernel, stride, pad, ceil_mode=round_mode == "CEIL")
        assert naive.shape[-1] == torch_gives


def test_clip_applies_to_both_axes_when_either_pad_is_set():
    # H: 3, kernel_h 2, pad_h 1, stride 2: ceil(3/2)+1 = 3, clipped (4 >= 3+1) -> 2.
    # W: 4, kernel_w 1, pad_w 0, stride 2: ceil(3/2)+1 = 3; the clip runs because pad_h != 0 (Caffe tests
    # `pad_h_ || pad_w_`): (3-1)*2 = 4 >= 4+0 -> 2.  Without any pad W gives 3.
    padded = _net({"kernel_h": 2, "kernel_w": 1, "stride": 2, "pad_h": 1, "pad_w": 0}, (1, 1, 3, 4))
    assert padded.blob_shapes["y"] == (1, 1, 2, 2)
    unpadded = _net({"kernel_h": 2, "kernel_w": 1, "stride": 2}, (1, 1, 3, 4))
    assert unpadded.blob_shapes["y"] == (1, 1, 2, 3)


# -- AVE: the divisor counts padding but not the ceil overhang ---------------------------------------

def test_ave_twos_k3_s1_p1():
    # every window holds 9 cells with padding, so out = 2 * (in-image cells) / 9
    (y,), _ = _pool(np.full((1, 1, 3, 3), 2.0), {"pool": "AVE", "kernel_size": 3, "stride": 1, "pad": 1})
    expected = np.array([[8 / 9, 4 / 3, 8 / 9], [4 / 3, 2.0, 4 / 3], [8 / 9, 4 / 3, 8 / 9]])
    np.testing.assert_allclose(y[0, 0], expected, **EXACT)


def test_ave_5x5_k2_s2_pad1_corners():
    # x = 1..25 row-major.  Rows of the windows: [-1,1) -> {0}, [1,3) -> {1,2}, [3,5) -> {3,4}; the same for
    # columns.  pool_size = 2*2 = 4 everywhere (the padding row/column counts).
    x = _plane(5, 5)
    (y,), _ = _pool(x, {"pool": "AVE", "kernel_size": 2, "stride": 2, "pad": 1})
    expected = np.array([
        [1 / 4, (2 + 3) / 4, (4 + 5) / 4],
        [(6 + 11) / 4, (7 + 8 + 12 + 13) / 4, (9 + 10 + 14 + 15) / 4],
        [(16 + 21) / 4, (17 + 18 + 22 + 23) / 4, (19 + 20 + 24 + 25) / 4],
    ])
    np.testing.assert_allclose(y[0, 0], expected, **EXACT)


def test_ave_ceil_overhang_is_not_counted():
    # 6x6, k3 s2, no pad: windows start at 0, 2, 4; the last one [4,7) is cut to [4,6) and pool_size uses
    # min(start+k, H+pad) = 6, so the corner divides by 2*2 = 4 (not 9).  x = 1..36 row-major.
    (y,), _ = _pool(_plane(6, 6), {"pool": "AVE", "kernel_size": 3, "stride": 2})
    assert y[0, 0, 2, 2] == pytest.approx((29 + 30 + 35 + 36) / 4, abs=1e-15)
    assert y[0, 0, 0, 2] == pytest.approx((5 + 6 + 11 + 12 + 17 + 18) / 6, abs=1e-15)
    assert y[0, 0, 0, 0] == pytest.approx((1 + 2 + 3 + 7 + 8 + 9 + 13 + 14 + 15) / 9, abs=1e-15)


def test_ave_pad_over_half_kernel():
    # 3x3 of ones, k3 s2 p2 -> 3x3 (PyTorch cannot pad more than k/2).  Rows: [-2,1) -> 1 cell,
    # [0,3) -> 3 cells, [2,5) -> 1 cell; pool_size = 3*3 = 9 everywhere (the padding counts).
    (y,), _ = _pool(np.ones((1, 1, 3, 3)), {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 2})
    expected = np.array([[1, 3, 1], [3, 9, 3], [1, 3, 1]]) / 9
    np.testing.assert_allclose(y[0, 0], expected, **EXACT)
    # backward: each in-image cell gets top_diff / 9 from every window that covers it
    grad = _input_grad(np.ones((1, 1, 3, 3)), {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 2})
    covering = np.array([[4, 2, 4], [2, 1, 2], [4, 2, 4]])  # corners lie in 4 windows, the centre in 1
    np.testing.assert_allclose(grad[0, 0], covering / 9, **EXACT)


def test_ave_window_past_the_input_is_nan_as_caffe():
    # in=4, k=1, s=2, no pad: 3 outputs; the last window starts at 4 and holds no cell: pool_size =
    # min(5, 4) - 4 = 0, so Caffe computes 0/0.
    with pytest.warns(UserWarning, match="NaN"):
        (y,), _ = _pool(_plane(4, 4), {"pool": "AVE", "kernel_size": 1, "stride": 2})
    np.testing.assert_array_equal(y[0, 0, :2, :2], [[1.0, 3.0], [9.0, 11.0]])
    assert np.isnan(y[0, 0, 2, :]).all() and np.isnan(y[0, 0, :, 2]).all()


# -- MAX: padding is never a candidate, first maximum wins, empty windows ---------------------------

def test_max_window_past_the_input_gives_minus_flt_max():
    # in=4, k=1, s=2 (no padding): 3x3 outputs (PyTorch: 2x2); row/column 2 lie wholly past the input
    x = _plane(4, 4)
    (y, mask), _ = _pool(x, {"kernel_size": 1, "stride": 2}, n_tops=2)
    expected = np.array([[1.0, 3.0, -FLT_MAX], [9.0, 11.0, -FLT_MAX], [-FLT_MAX, -FLT_MAX, -FLT_MAX]])
    np.testing.assert_array_equal(y[0, 0], expected)
    np.testing.assert_array_equal(mask[0, 0], [[0, 2, -1], [8, 10, -1], [-1, -1, -1]])
    grad = _input_grad(x, {"kernel_size": 1, "stride": 2})
    expected_grad = np.zeros((4, 4))
    expected_grad[[0, 0, 2, 2], [0, 2, 0, 2]] = 1.0
    np.testing.assert_array_equal(grad[0, 0], expected_grad)
    assert FLT_MAX == float(np.finfo(np.float32).max)


def test_max_padding_is_never_a_candidate():
    # all-negative input with pad 2 (> k/2): padding zeros must not win
    x = -_plane(3, 3)
    (y, mask), _ = _pool(x, {"kernel_size": 3, "stride": 2, "pad": 2}, n_tops=2)
    # rows [-2,1) -> {0}, [0,3) -> {0,1,2}, [2,5) -> {2}: the max of each window is its top-left in-image cell
    np.testing.assert_array_equal(y[0, 0], [[-1, -1, -3], [-1, -1, -3], [-7, -7, -9]])
    np.testing.assert_array_equal(mask[0, 0], [[0, 0, 2], [0, 0, 2], [6, 6, 8]])


def test_max_first_maximum_wins_ties():
    ties = np.array([[[[1, 5, 5, 0],
                       [5, 2, 0, 5],
                       [3, 3, 3, 3],
                       [3, 3, 4, 4]]]], dtype=np.float64)
    (y, mask), _ = _pool(ties, {"kernel_size": 2, "stride": 2}, n_tops=2)
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [3, 4]])
    np.testing.assert_array_equal(mask[0, 0], [[1, 2], [8, 14]])  # h*W + w of the first maximum
    grad = _input_grad(ties, {"kernel_size": 2, "stride": 2})
    np.testing.assert_array_equal(grad[0, 0], [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]])


@pytest.mark.parametrize("param", [
    {"kernel_size": 3, "stride": 1},                   # PyTorch's own kernel
    {"kernel_size": 3, "stride": 1, "pad": 1},         # with implicit padding
    {"kernel_size": 3, "stride": 1, "pad": 2},         # explicit padding (pad > k/2)
], ids=["direct", "direct_padded", "explicit_padded"])
def test_max_ties_overlapping_windows_accumulate_on_the_first_cell(param):
    x = np.full((1, 1, 4, 4), 7.0)
    (y, mask), _ = _pool(x, param, n_tops=2)
    grad = _input_grad(x, param)
    # every window's first in-image cell (row-major) receives the gradient, and the gradients add up
    expected = np.zeros(16)
    np.add.at(expected, mask.astype(int).ravel(), 1.0)
    np.testing.assert_array_equal(grad.ravel(), expected)
    assert grad.sum() == y.size
    if param.get("pad", 0) == 0:
        np.testing.assert_array_equal(mask[0, 0], [[0, 1], [4, 5]])
    else:  # windows starting in the padding: the first in-image cell is (max(hstart,0), max(wstart,0))
        hstarts = np.maximum(np.arange(y.shape[2]) - param["pad"], 0)
        np.testing.assert_array_equal(mask[0, 0], hstarts[:, None] * 4 + hstarts[None, :])


def test_max_3x3_k3_s2_p2():
    x = _plane(3, 3)
    (y,), _ = _pool(x, {"kernel_size": 3, "stride": 2, "pad": 2})
    # rows {0}, {0,1,2}, {2}; columns the same: the max is the bottom-right in-image cell of each window
    np.testing.assert_array_equal(y[0, 0], [[1, 3, 3], [7, 9, 9], [7, 9, 9]])


def test_mask_top_is_float_and_has_no_gradient():
    x = torch.tensor(_plane(5, 5), requires_grad=True)
    net = _net({"kernel_size": 3, "stride": 2, "pad": 1}, (1, 1, 5, 5), n_tops=2)
    net(x=x)
    mask = net.blobs["mask"]
    assert mask.dtype == torch.float64 and not mask.requires_grad
    np.testing.assert_array_equal(mask[0, 0].numpy(), [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


def test_global_pooling():
    x = _plane(3, 5)
    (y_max, mask), _ = _pool(x, {"global_pooling": True}, n_tops=2)
    (y_ave,), _ = _pool(x, {"pool": "AVE", "global_pooling": True})
    assert y_max.shape == (1, 1, 1, 1) and y_max.item() == 15.0 and mask.item() == 14.0
    assert y_ave.item() == pytest.approx(8.0, abs=1e-15)  # mean of 1..15


# -- STOCHASTIC ---------------------------------------------------------------------------------------

def test_stochastic_test_phase():
    # windows [1, 3] -> (1 + 9) / (1 + 3) = 2.5 ; [0, 0] -> 0 (BVLC master: 0 when the sum is 0)
    x = np.array([[[[1.0, 3.0, 0.0, 0.0]]]])
    (y,), _ = _pool(x, {"pool": "STOCHASTIC", "kernel_h": 1, "kernel_w": 2, "stride": 2})
    np.testing.assert_allclose(y[0, 0], [[2.5, 0.0]], **EXACT)


def test_stochastic_train_samples_in_proportion_and_routes_the_gradient():
    # 20000 independent windows [1, 3]: 3 is drawn with probability 3/4 (binomial sd 0.003)
    torch.manual_seed(0)
    count = 20000
    x = torch.tensor([1.0, 3.0], dtype=torch.float64).repeat(count, 1, 1, 1).requires_grad_(True)
    net = _net({"pool": "STOCHASTIC", "kernel_h": 1, "kernel_w": 2}, (count, 1, 1, 2), phase="TRAIN")
    net(x=x)
    y = net.blobs["y"]
    assert y.shape == (count, 1, 1, 1)
    assert set(np.unique(y.detach().numpy())) <= {1.0, 3.0}
    assert abs((y == 3.0).double().mean().item() - 0.75) < 0.015
    (grad,) = torch.autograd.grad(y.sum(), x)
    picked_three = (y == 3.0).reshape(-1)
    np.testing.assert_array_equal(grad[:, 0, 0, 1].numpy(), picked_three.double().numpy())
    np.testing.assert_array_equal(grad[:, 0, 0, 0].numpy(), (~picked_three).double().numpy())


def test_stochastic_train_zero_window_gives_zero():
    (y,), _ = _pool(np.zeros((1, 1, 2, 2)), {"pool": "STOCHASTIC", "kernel_size": 2}, phase="TRAIN")
    assert y.item() == 0.0


# -- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("param,shape,error,words", [
    ({"kernel_size": 3, "pad": 3}, (1, 1, 6, 6), SpecError, "smaller than the kernel"),
    ({"pool": "STOCHASTIC", "kernel_size": 3, "pad": 1}, (1, 1, 6, 6), SpecError, "only for MAX and AVE"),
    ({"kernel_size": 3, "kernel_h": 3, "kernel_w": 2}, (1, 1, 6, 6), SpecError, "kernel_size OR"),
    ({"kernel_h": 3}, (1, 1, 6, 6), SpecError, "kernel_size OR"),
    ({"stride": 2}, (1, 1, 6, 6), SpecError, "kernel_size OR"),
    ({"kernel_size": 2, "pad_h": 1}, (1, 1, 6, 6), SpecError, "pad OR both pad_h and pad_w"),
    ({"kernel_size": 2, "stride": 2, "stride_h": 1, "stride_w": 1}, (1, 1, 6, 6), SpecError, "stride OR"),
    ({"global_pooling": True, "kernel_size": 2}, (1, 1, 6, 6), SpecError, "global_pooling"),
    ({"global_pooling": True, "stride": 2}, (1, 1, 6, 6), SpecError, "only pad 0 and stride 1"),
    ({"kernel_size": 2, "stride": 0}, (1, 1, 6, 6), SpecError, "stride must be > 0"),
    ({"kernel_size": 2}, (1, 6, 6), ShapeError, "4 axes"),
    ({"kernel_size": 7, "round_mode": "FLOOR"}, (1, 1, 5, 5), ShapeError, "larger than the padded input"),
    ({"kernel_size": 4, "stride": 1}, (1, 1, 2, 2), ShapeError, "larger than the padded input"),
])
def test_bad_parameters_and_shapes(param, shape, error, words):
    with pytest.raises(error) as info:
        _net(param, shape)
    message = str(info.value)
    assert "layer 'pool' (Pooling)" in message and words in message


def test_mask_top_only_for_max():
    with pytest.raises(SpecError, match="only for MAX"):
        _net({"pool": "AVE", "kernel_size": 2}, (1, 1, 4, 4), n_tops=2)
    with pytest.raises(CaffeLikeError, match="1 to 2 top"):
        caffe_like.Net({"name": "p", "layer": [
            {"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [1, 1, 4, 4]}}},
            {"name": "pool", "type": "Pooling", "bottom": "x", "top": ["a", "b", "c"],
             "pooling_param": {"kernel_size": 2}}]})


# -- the original Caffe's numbers ----------------------------------------------------------------------

@pytest.mark.caffe_cases
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_caffe_case_pool_max_ceil(caffe_cases, dtype):
    folder = caffe_cases / "layers" / "pool_max_ceil"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    case = json.loads((folder / "case.json").read_text())
    inputs = dict(np.load(folder / "inputs.npz"))
    forward = dict(np.load(folder / "forward.npz"))
    backward = dict(np.load(folder / "backward.npz"))
    top_diff = dict(np.load(folder / "topdiff.npz"))
    net = caffe_like.Net(str(folder / "net.prototxt"), phase=case["phase"], dtype=dtype)
    feeds = {name: torch.tensor(inputs[name], dtype=dtype, requires_grad=True) for name in case["inputs"]}
    net(**feeds)
    for name in case["outputs"]:
        got = net.blobs[name].detach()
        assert tuple(got.shape) == forward[name].shape, name
        if dtype == torch.float32:  # MAX pooling selects values: bit-for-bit equal in float32
            np.testing.assert_array_equal(got.numpy(), forward[name], err_msg=name)
        else:
            np.testing.assert_allclose(got.numpy(), forward[name], rtol=0, atol=0, err_msg=name)
    objective = sum((net.blobs[name] * torch.tensor(top_diff[name], dtype=dtype)).sum() for name in top_diff)
    grads = torch.autograd.grad(objective, [net.blobs[name] for name in case["inputs"]])
    for name, grad in zip(case["inputs"], grads):
        np.testing.assert_allclose(grad.double().numpy(), backward[f"in/{name}"], rtol=0, atol=1e-6, err_msg=name)


# -- CUDA ---------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("param,n_tops", [
    ({"kernel_size": 3, "stride": 2}, 2),
    ({"kernel_size": 3, "stride": 2, "pad": 2}, 2),
    ({"kernel_size": 1, "stride": 2}, 2),
    ({"kernel_h": 2, "kernel_w": 3, "stride_h": 1, "stride_w": 2, "pad_h": 1, "pad_w": 2}, 2),
    ({"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}, 1),
    ({"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 2}, 1),
    ({"pool": "AVE", "global_pooling": True}, 1),
    ({"pool": "STOCHASTIC", "kernel_size": 3, "stride": 2}, 1),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(param, n_tops, dtype):
    rng = np.random.default_rng(0)
    x = rng.permutation(np.linspace(0.1, 5.0, 2 * 3 * 7 * 9)).reshape(2, 3, 7, 9)
    cpu, _ = _pool(x, param, n_tops=n_tops, dtype=dtype)
    gpu, _ = _pool(x, param, n_tops=n_tops, dtype=dtype, device="cuda")
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=0)
    grad_param = dict(param)
    xt = torch.tensor(x, dtype=dtype)
    grads = []
    for device in ("cpu", "cuda"):
        leaf = xt.to(device).requires_grad_(True)
        net = _net(grad_param, x.shape, dtype=dtype).to(device)
        net(x=leaf)
        (g,) = torch.autograd.grad(net.blobs["y"].sum(), leaf)
        grads.append(g.cpu().double().numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_stochastic_train_runs_on_the_device():
    torch.manual_seed(0)
    count = 20000
    x = torch.tensor([1.0, 3.0], device="cuda").repeat(count, 1, 1, 1)
    net = _net({"pool": "STOCHASTIC", "kernel_h": 1, "kernel_w": 2}, (count, 1, 1, 2), phase="TRAIN",
               dtype=torch.float32).to("cuda")
    net(x=x)
    y = net.blobs["y"]
    assert y.is_cuda
    assert abs((y == 3.0).float().mean().item() - 0.75) < 0.015


# -- ONNX ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("param,shape,n_tops", [
    ({"kernel_size": 3, "stride": 2, "pad": 2}, (2, 3, 6, 7), 2),          # explicit padding, cut to size
    ({"kernel_size": 1, "stride": 2}, (2, 3, 4, 4), 2),                    # windows past the input
    ({"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 2}, (2, 3, 6, 7), 1),
], ids=["max_pad_over_half", "max_empty_windows", "ave_pad_over_half"])
def test_onnx_export_keeps_caffe_windows(tmp_path, param, shape, n_tops):
    """Exported (dynamo exporter) and run with onnxruntime: the verification inside export_onnx compares
    every output with PyTorch (float32, rtol 1e-4); the output shapes are Caffe's."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from caffe_like.export import export_onnx

    net = _net(param, shape, n_tops=n_tops, dtype=torch.float32)
    export_onnx(net, tmp_path / "pool.onnx", derive=False)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "pool.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0.1, 2.0, shape).astype(np.float32)
    names = [output.name for output in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))
    tops, _ = _pool(x, param, n_tops=n_tops, dtype=torch.float32)
    for name, top in zip(["y", "mask"], tops):
        assert outputs[name].shape == top.shape == net.blob_shapes[name]
        np.testing.assert_allclose(outputs[name], top, rtol=1e-6, atol=0, err_msg=name)
