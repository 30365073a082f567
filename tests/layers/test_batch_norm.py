"""BatchNorm (BVLC master): batch vs stored statistics, the blob updates of every TRAIN forward, the
normalised EMA (blob / blob2), untrained TEST giving x / sqrt(eps), the m == 1 rule, Caffe's backward
formulas, frozen blobs, and the original Caffe's numbers (../shared/caffe_cases/layers/batchnorm_train).

Hand-computed values are compared in float64 with rtol 1e-12 unless stated; the Caffe case in float32 with
rtol 1e-5 / atol 1e-6 (Caffe ran in float32).
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

EPS = 1e-5
TIGHT = dict(rtol=1e-12, atol=1e-12)


def _net(x_shape, phase="TRAIN", param=None, blobs=None, dtype="float64"):
    sample = LayerSample("t", (np.zeros(x_shape),), layer={"batch_norm_param": param} if param else {},
                         phase=phase, blobs=blobs)
    return layer_db.build("BatchNorm", sample, dtype)


def _blobs(net):
    return [b.detach().numpy().copy() for b in net.layer_dict()["L"].blobs]


def _forward(net, x, requires_grad=False):
    x = torch.as_tensor(np.asarray(x, dtype=np.float64)).requires_grad_(requires_grad)
    net(b0=x)
    return x, net.blobs["t0"]


# -- TRAIN ------------------------------------------------------------------------------------------


def test_train_uses_biased_batch_variance_and_updates_the_blobs():
    # one channel, m = 4 values 1, 2, 3, 6: mean 3, biased var 14/4 = 3.5, unbiased 14/3
    net = _net((4, 1))
    _, y = _forward(net, [[1.0], [2.0], [3.0], [6.0]])
    np.testing.assert_allclose(y.detach().numpy()[:, 0], (np.array([1, 2, 3, 6]) - 3.0) / math.sqrt(3.5 + EPS), **TIGHT)
    mean_sum, var_sum, factor = _blobs(net)
    np.testing.assert_allclose(mean_sum, [3.0], **TIGHT)
    np.testing.assert_allclose(var_sum, [14.0 / 3.0], **TIGHT)  # m/(m-1) * biased
    np.testing.assert_allclose(factor, [1.0], **TIGHT)
    # second forward (values 0, 0, 0, 4: mean 1, unbiased var 4), maf 0.999
    _forward(net, [[0.0], [0.0], [0.0], [4.0]])
    mean_sum, var_sum, factor = _blobs(net)
    np.testing.assert_allclose(factor, [0.999 + 1.0], **TIGHT)
    np.testing.assert_allclose(mean_sum, [0.999 * 3.0 + 1.0], **TIGHT)
    np.testing.assert_allclose(var_sum, [0.999 * 14.0 / 3.0 + 4.0], **TIGHT)


def test_statistics_are_over_every_axis_but_axis_1():
    # (N=2, C=2, 2): channel 0 holds 0, 2, 4, 6 (mean 3, biased var 5), channel 1 holds 1, 1, 1, 1
    x = np.array([[[0.0, 2.0], [1.0, 1.0]], [[4.0, 6.0], [1.0, 1.0]]])
    net = _net(x.shape)
    _, y = _forward(net, x)
    y = y.detach().numpy()
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 3.0) / math.sqrt(5.0 + EPS), **TIGHT)
    np.testing.assert_allclose(y[:, 1], np.zeros((2, 2)), **TIGHT)
    mean_sum, var_sum, _ = _blobs(net)
    np.testing.assert_allclose(mean_sum, [3.0, 1.0], **TIGHT)
    np.testing.assert_allclose(var_sum, [20.0 / 3.0, 0.0], **TIGHT)


def test_m_equals_1_keeps_factor_1_and_gives_exact_zeros():
    net = _net((1, 2))
    x, y = _forward(net, [[5.0, -2.0]], requires_grad=True)
    assert torch.equal(y, torch.zeros(1, 2, dtype=torch.float64))  # Caffe: x - mean is exactly 0
    (dx,) = torch.autograd.grad((y * torch.tensor([[3.0, 4.0]], dtype=torch.float64)).sum(), x)
    assert torch.equal(dx, torch.zeros(1, 2, dtype=torch.float64))
    mean_sum, var_sum, factor = _blobs(net)
    np.testing.assert_array_equal(mean_sum, [5.0, -2.0])
    np.testing.assert_array_equal(var_sum, [0.0, 0.0])  # factor 1, not m/(m-1) = 1/0
    np.testing.assert_array_equal(factor, [1.0])


def test_blobs_update_on_every_train_forward_even_without_backward():
    net = _net((3, 2), param={"moving_average_fraction": 0.5})
    with torch.no_grad():
        for _ in range(3):
            _forward(net, np.ones((3, 2)))
    np.testing.assert_allclose(_blobs(net)[2], [1.0 + 0.5 + 0.25], **TIGHT)
    np.testing.assert_allclose(_blobs(net)[0], [1.75, 1.75], **TIGHT)


def test_train_backward_is_caffes_formula():
    # dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps), means per channel over N, H, W
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    net = _net(x.shape)
    xt, y = _forward(net, x, requires_grad=True)
    (dx,) = torch.autograd.grad((y * torch.as_tensor(dy)).sum(), xt)
    expected = np.empty_like(x)
    for c in range(2):
        xc, dyc = x[:, c], dy[:, c]
        std = math.sqrt(xc.var() + EPS)
        yc = (xc - xc.mean()) / std
        expected[:, c] = (dyc - dyc.mean() - (dyc * yc).mean() * yc) / std
    np.testing.assert_allclose(dx.numpy(), expected, rtol=1e-10, atol=1e-12)


# -- global statistics -------------------------------------------------------------------------------


def test_test_phase_uses_blob_over_blob2():
    # stored sums 6 and 9 with factor 2: mean 3, var 4.5
    net = _net((2, 1), phase="TEST", blobs=(np.array([6.0]), np.array([9.0]), np.array([2.0])))
    x, y = _forward(net, [[3.0], [7.0]], requires_grad=True)
    np.testing.assert_allclose(y.detach().numpy()[:, 0], [0.0, 4.0 / math.sqrt(4.5 + EPS)], **TIGHT)
    (dx,) = torch.autograd.grad((y * torch.tensor([[2.0], [-1.0]], dtype=torch.float64)).sum(), x)
    np.testing.assert_allclose(dx.numpy()[:, 0], np.array([2.0, -1.0]) / math.sqrt(4.5 + EPS), **TIGHT)
    np.testing.assert_array_equal(_blobs(net)[2], [2.0])  # TEST never updates


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_untrained_stats_in_test_give_x_over_sqrt_eps(dtype):
    net = _net((1, 3), phase="TEST", dtype=dtype)
    net(b0=torch.tensor([[1.0, -2.0, 0.5]], dtype=getattr(torch, dtype)))
    y = net.blobs["t0"].numpy()
    np.testing.assert_allclose(y[0], np.array([1.0, -2.0, 0.5]) / math.sqrt(EPS), rtol=1e-6 if dtype == "float32" else 1e-12)
    assert abs(y[0, 0] - 316.2277) < 1e-3  # the x316 trap of Caffe's iteration-0 test pass


def test_zero_factor_means_zero_statistics_even_with_nonzero_sums():
    net = _net((1, 2), phase="TEST", blobs=(np.array([5.0, 5.0]), np.array([9.0, 9.0]), np.array([0.0])))
    _, y = _forward(net, [[1.0, 2.0]])
    np.testing.assert_allclose(y.numpy(), [[1.0 / math.sqrt(EPS), 2.0 / math.sqrt(EPS)]], **TIGHT)


def test_use_global_stats_overrides_the_phase():
    stats = (np.array([4.0]), np.array([8.0]), np.array([4.0]))  # mean 1, var 2
    train_global = _net((2, 1), param={"use_global_stats": True}, blobs=stats)
    _, y = _forward(train_global, [[1.0], [3.0]])
    np.testing.assert_allclose(y.numpy()[:, 0], [0.0, 2.0 / math.sqrt(2.0 + EPS)], **TIGHT)
    np.testing.assert_array_equal(_blobs(train_global)[2], [4.0])  # no update with global stats
    test_batch = _net((2, 1), phase="TEST", param={"use_global_stats": False}, blobs=stats)
    _, y = _forward(test_batch, [[1.0], [3.0]])
    np.testing.assert_allclose(y.numpy()[:, 0], [-1.0 / math.sqrt(1.0 + EPS), 1.0 / math.sqrt(1.0 + EPS)], **TIGHT)
    np.testing.assert_allclose(_blobs(test_batch)[2], [0.999 * 4.0 + 1.0], **TIGHT)  # batch stats update


# -- blobs, parameters, errors ---------------------------------------------------------------------------


def test_blobs_are_zero_frozen_and_lr_mult_0():
    net = _net((2, 3, 4))
    assert [tuple(b.shape) for b in net.params["L"]] == [(3,), (3,), (1,)]
    assert all(not b.requires_grad for b in net.params["L"])
    assert all(float(b.abs().sum()) == 0.0 for b in net.params["L"])
    # the builder forces lr_mult 0 on all three (BVLC master's LayerSetUp), so a solver never moves them
    assert all(p.lr_mult == 0.0 for p in net.learnable_params() if p.layer == "L")
    assert net.summary()["total_params"] == 7  # Caffe counts the statistics


def test_three_lr_mult_0_specs_are_accepted_and_nonzero_is_refused():
    base = layer_db.layer_net_dict("BatchNorm", LayerSample("t", (np.zeros((2, 3)),)))
    base["layer"][-1]["param"] = [{"lr_mult": 0}, {"lr_mult": 0}, {"lr_mult": 0}]
    caffe_like.Net(base)
    base["layer"][-1]["param"] = [{"lr_mult": 1}]
    with pytest.raises(SpecError, match="lr_mult"):
        caffe_like.Net(base)


def test_one_axis_bottom_is_refused_naming_the_layer():
    with pytest.raises(ShapeError, match="at least 2 axes") as info:
        _net((5,))
    assert "'L'" in str(info.value) and "BatchNorm" in str(info.value)


def test_solver_never_updates_the_statistics_and_the_test_net_shares_them():
    # SGD with momentum and weight decay: the blobs only change by the forward's moving averages
    net = {"name": "bn_solver", "layer": [
        {"name": "data", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [4, 3]}}},
        {"name": "bn", "type": "BatchNorm", "bottom": "x", "top": "x"},
        {"name": "sc", "type": "Scale", "bottom": "x", "top": "y", "loss_weight": 1.0,
         "scale_param": {"bias_term": True}},
    ]}
    solver = caffe_like.Solver({"net_param": net, "base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.5,
                                "lr_policy": "fixed", "max_iter": 10, "solver_mode": "CPU", "random_seed": 1,
                                "test_iter": [1], "test_interval": 100, "test_initialization": False},
                               log=False, quiet=True)
    x = torch.tensor([[1.0, 2.0, 0.0], [3.0, 2.0, 1.0], [5.0, 2.0, 2.0], [7.0, 2.0, 3.0]])
    solver.step(2, x=x)
    # per channel: means 4, 2, 1.5; unbiased variances 20/3, 0, 5/3; two forwards: factor 0.999 + 1
    factor = 0.999 + 1.0
    mean_sum, var_sum, scale = (b.detach().double().numpy() for b in solver.net.params["bn"])
    tol = dict(rtol=1e-6, atol=1e-6)  # float32 net
    np.testing.assert_allclose(mean_sum, factor * np.array([4.0, 2.0, 1.5]), **tol)
    np.testing.assert_allclose(var_sum, factor * np.array([20.0 / 3.0, 0.0, 5.0 / 3.0]), **tol)
    np.testing.assert_allclose(scale, [factor], **tol)
    test_net = solver.test_nets[0]
    for shared, own in zip(test_net.params["bn"], solver.net.params["bn"]):
        assert torch.equal(shared, own)
    test_net(x=x)
    normalised = (x.double().numpy() - [4.0, 2.0, 1.5]) / np.sqrt(np.array([20.0 / 3.0, 0.0, 5.0 / 3.0]) + EPS)
    np.testing.assert_allclose(test_net.blobs["x"].detach().double().numpy(), normalised, rtol=1e-5, atol=1e-5)


def _bn_scale_net(bn_param=None):
    bn = {"name": "bn", "type": "BatchNorm", "bottom": "x", "top": "x"}
    if bn_param:
        bn["batch_norm_param"] = bn_param
    return caffe_like.Net({"name": "bn_scale", "layer": [
        {"name": "data", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3, 4, 4]}}},
        bn,
        {"name": "sc", "type": "Scale", "bottom": "x", "top": "y",
         "scale_param": {"bias_term": True, "filler": {"type": "gaussian"}, "bias_filler": {"type": "gaussian"}}},
    ]}, phase="TEST", seed=0)


def test_onnx_export_of_the_stored_statistics_matches(tmp_path):
    pytest.importorskip("onnxruntime")
    from caffe_like.export import export_onnx

    net = _bn_scale_net()
    with torch.no_grad():
        for blob, value in zip(net.params["bn"], ([1.0, -2.0, 0.5], [4.0, 1.0, 9.0], [2.0])):
            blob.copy_(torch.tensor(value))
    result = export_onnx(net, tmp_path / "bn.onnx")  # verifies against onnxruntime (batch 1 and 3)
    assert result.verify_max_abs is not None and result.verify_max_abs < 1e-5


def test_onnx_export_refuses_batch_statistics(tmp_path):
    from caffe_like.errors import ExportError
    from caffe_like.export import export_onnx

    with pytest.raises(ExportError, match="moving averages") as info:
        export_onnx(_bn_scale_net({"use_global_stats": False}), tmp_path / "bn.onnx")
    assert "'bn'" in str(info.value)


# -- the original Caffe's numbers ---------------------------------------------------------------------------


@pytest.mark.caffe_cases
def test_matches_original_caffe_batchnorm_train(caffe_cases):
    case = caffe_cases / "layers" / "batchnorm_train"
    if not case.is_dir():
        pytest.skip(f"{case} is missing")
    net = caffe_like.Net(str(case / "net.prototxt"), phase="TRAIN")
    net.load_weights(str(case / "weights.caffemodel"))  # the stats before the forward (and Scale's blob)
    inputs = {k: torch.from_numpy(v) for k, v in np.load(case / "inputs.npz").items()}
    forward, backward = np.load(case / "forward.npz"), np.load(case / "backward.npz")
    topdiff, after = np.load(case / "topdiff.npz"), np.load(case / "after_forward_params.npz")
    tol = dict(rtol=1e-5, atol=1e-6)

    outputs = net(**inputs)
    for blob in ("bn", "bn2d", "scale"):
        np.testing.assert_allclose(net.blobs[blob].detach().numpy(), forward[blob], **tol, err_msg=blob)
    for layer in ("bn", "bn2d"):
        for i in range(3):
            np.testing.assert_allclose(net.params[layer][i].detach().numpy(), after[f"param/{layer}/{i}"], **tol,
                                       err_msg=f"{layer} blob {i} after one forward")
    objective = sum((outputs[name] * torch.from_numpy(topdiff[name])).sum() for name in topdiff.files)
    objective.backward()
    for name in ("data", "data2d"):
        np.testing.assert_allclose(net.blobs[name].grad.numpy(), backward[f"in/{name}"], **tol, err_msg=name)
    np.testing.assert_allclose(net.params["scale"][0].grad.numpy(), backward["param/scale/0"], **tol)
    for layer in ("bn", "bn2d"):  # Caffe's statistics never get a gradient
        assert all(b.grad is None for b in net.params[layer])
        assert all(not backward[f"param/{layer}/{i}"].any() for i in range(3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu_including_blob_updates(dtype):
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((4, 3, 5, 2)), rng.standard_normal((4, 3, 5, 2))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    results = []
    for device in ("cpu", "cuda"):
        net = _net(x.shape, dtype=dtype).to(device)
        xt = torch.tensor(x, dtype=getattr(torch, dtype), device=device, requires_grad=True)
        net(b0=xt)
        y = net.blobs["t0"]
        (dx,) = torch.autograd.grad((y * torch.tensor(dy, dtype=y.dtype, device=device)).sum(), xt)
        blobs = [b.detach().cpu().numpy() for b in net.layer_dict()["L"].blobs]
        results.append([y.detach().cpu().numpy(), dx.cpu().numpy(), *blobs])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, **tol)
