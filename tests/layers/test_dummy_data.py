"""DummyData: constant tops filled once, other fillers refilled every forward from torch's global
generator (reproducible with torch.manual_seed, identical in float32/float64), fillers see the top's
shape, no gradient, and the errors for bad shape/filler counts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import CaffeLikeError, SpecError
from caffe_like.fillers import fill
from caffe_like.spec.params import FillerParameter


def _net(param, n_tops=1, dtype=torch.float64, phase="TRAIN"):
    spec = {"layer": [{"name": "L", "type": "DummyData", "top": [f"t{i}" for i in range(n_tops)],
                       "dummy_data_param": param}]}
    return caffe_like.Net(spec, phase=phase, dtype=dtype)


def _tops(net, n_tops=1):
    net()
    return [net.blobs[f"t{i}"] for i in range(n_tops)]


def test_constant_top_is_filled_once_and_reused():
    net = _net({"shape": {"dim": [2, 3]}, "data_filler": {"type": "constant", "value": 1.5}})
    (first,) = _tops(net)
    (second,) = _tops(net)
    assert first.data_ptr() == second.data_ptr()  # no refill: the same storage every forward
    np.testing.assert_array_equal(second.numpy(), np.full((2, 3), 1.5))


def test_no_filler_means_constant_zero():
    net = _net({"shape": {"dim": [3]}})
    assert _tops(net)[0].tolist() == [0.0, 0.0, 0.0]


def test_random_top_is_refilled_every_forward_from_the_global_generator():
    net = _net({"shape": {"dim": [4, 5]}, "data_filler": {"type": "gaussian", "std": 2.0}})
    torch.manual_seed(11)
    (a,) = [t.clone() for t in _tops(net)]
    (b,) = _tops(net)
    assert not torch.equal(a, b)  # a new draw every forward
    torch.manual_seed(11)
    expected = fill(FillerParameter(type="gaussian", std=2.0), (4, 5), dtype=torch.float64)
    torch.manual_seed(11)
    (c,) = _tops(net)
    torch.testing.assert_close(c, expected, rtol=0, atol=0)
    torch.testing.assert_close(a, expected, rtol=0, atol=0)


def test_same_seed_same_data_in_float32_and_float64():
    param = {"shape": {"dim": [50]}, "data_filler": {"type": "uniform", "min": -3.0, "max": 3.0}}
    torch.manual_seed(0)
    (d64,) = _tops(_net(param, dtype=torch.float64))
    torch.manual_seed(0)
    (d32,) = _tops(_net(param, dtype=torch.float32))
    assert d32.dtype == torch.float32 and d64.dtype == torch.float64
    np.testing.assert_array_equal(d32.numpy(), d64.numpy().astype(np.float32))  # float32 rounding of the same draw


def test_one_filler_for_every_top_draws_separately():
    net = _net({"shape": {"dim": [100]}, "data_filler": {"type": "uniform"}}, n_tops=2)
    a, b = _tops(net, 2)
    assert not torch.equal(a, b)


def test_per_top_fillers_and_shapes():
    net = _net({"shape": [{"dim": [1000]}, {"dim": [2, 2]}],
                "data_filler": [{"type": "uniform", "min": 2.0, "max": 3.0}, {"type": "constant", "value": -1.0}]},
               n_tops=2)
    torch.manual_seed(1)
    a, b = _tops(net, 2)
    assert tuple(a.shape) == (1000,) and tuple(b.shape) == (2, 2)
    assert 2.0 <= a.min().item() and a.max().item() <= 3.0 and abs(a.mean().item() - 2.5) < 0.05
    assert b.tolist() == [[-1.0, -1.0], [-1.0, -1.0]]


def test_gaussian_statistics():
    net = _net({"shape": {"dim": [200, 100]}, "data_filler": {"type": "gaussian", "mean": 1.0, "std": 0.5}})
    torch.manual_seed(2)
    (x,) = _tops(net)
    # 20000 draws: standard errors 0.0035 (mean) and 0.0025 (std); 5 sigma bounds
    assert abs(x.mean().item() - 1.0) < 0.018 and abs(x.std().item() - 0.5) < 0.013


def test_xavier_uses_the_fan_in_of_the_top_shape():
    net = _net({"shape": {"dim": [400, 50]}, "data_filler": {"type": "xavier"}})
    torch.manual_seed(3)
    (x,) = _tops(net)
    bound = math.sqrt(3.0 / 50)  # fan_in = count / shape[0] = 50
    assert x.abs().max().item() <= bound and x.abs().max().item() > 0.99 * bound


def test_legacy_dims_once_or_per_top():
    net = _net({"num": [2], "channels": [3, 1], "height": [4], "width": [5]}, n_tops=2)
    assert net.blob_shapes["t0"] == (2, 3, 4, 5) and net.blob_shapes["t1"] == (2, 1, 4, 5)
    a, b = _tops(net, 2)
    assert tuple(a.shape) == (2, 3, 4, 5) and tuple(b.shape) == (2, 1, 4, 5)


def test_tops_carry_no_gradient():
    net = _net({"shape": {"dim": [3]}, "data_filler": {"type": "gaussian"}})
    assert not _tops(net)[0].requires_grad


def test_buffers_follow_the_module_dtype():
    net = _net({"shape": {"dim": [2]}, "data_filler": {"type": "constant", "value": 0.1}}, dtype=torch.float32)
    net.to(torch.float64)
    (x,) = _tops(net)
    assert x.dtype == torch.float64


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("param,n_tops,words", [
    ({"shape": {"dim": [2]}, "data_filler": [{"type": "constant"}] * 2}, 3, "2 data_filler blocks for 3 tops"),
    ({"shape": [{"dim": [2]}, {"dim": [3]}]}, 3, "2 shape blocks for 3 tops"),
    ({}, 1, "0 shape blocks for 1 tops"),
    ({"shape": {"dim": [2]}, "num": [1], "channels": [1], "height": [1], "width": [1]}, 1, "both shape and the legacy"),
    ({"num": [2]}, 1, "'channels' is given 0 times"),
    ({"num": [2, 2], "channels": [1], "height": [1], "width": [1]}, 3, "'num' is given 2 times for 3 tops"),
    ({"shape": {"dim": [2, -1]}}, 1, "dims must be >= 0"),
])
def test_bad_shapes_and_filler_counts(param, n_tops, words):
    with pytest.raises(SpecError) as err:
        _net(param, n_tops)
    assert words in str(err.value) and "layer 'L' (DummyData)" in str(err.value)


@pytest.mark.parametrize("filler,words", [({"type": "gausian"}, "gaussian"), ({"type": "uniform", "sparse": 2}, "sparse")])
def test_bad_filler_is_an_error_at_build_time(filler, words):
    with pytest.raises(CaffeLikeError) as err:
        _net({"shape": {"dim": [2]}, "data_filler": filler})
    assert words in str(err.value) and "layer 'L'" in str(err.value)


def test_bottoms_are_refused():
    spec = {"layer": [{"name": "in", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2]}}},
                      {"name": "L", "type": "DummyData", "bottom": "x", "top": "y",
                       "dummy_data_param": {"shape": {"dim": [2]}}}]}
    with pytest.raises(SpecError, match="DummyData takes 0 bottom"):
        caffe_like.Net(spec)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_same_data_as_cpu():
    param = {"shape": [{"dim": [3, 4]}, {"dim": [2]}],
             "data_filler": [{"type": "gaussian"}, {"type": "constant", "value": 2.0}]}
    torch.manual_seed(4)
    cpu = [t.clone() for t in _tops(_net(param, n_tops=2), 2)]
    net = _net(param, n_tops=2).to("cuda")
    torch.manual_seed(4)
    gpu = _tops(net, 2)
    for g, c in zip(gpu, cpu):
        assert g.device.type == "cuda"
        torch.testing.assert_close(g.cpu(), c, rtol=0, atol=0)
