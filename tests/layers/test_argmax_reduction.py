"""ArgMax and Reduction: Caffe's tie order and top layout for ArgMax, Reduction's gradients, errors.

Expected numbers are hand-computed; ArgMax outputs are exact (indices and selected values),
Reduction values are exact in binary unless a tolerance is stated.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caffe_like.errors import CaffeLikeError, SpecError

import layer_db
from layer_db import LayerSample

DTYPES = ["float64", "float32"]


def _net(type_name, x, param=None, dtype="float64"):
    block = "argmax_param" if type_name == "ArgMax" else "reduction_param"
    sample = LayerSample("t", (np.asarray(x, dtype=np.float64),), layer={block: param} if param else {})
    return layer_db.build(type_name, sample, dtype), sample


def _top(type_name, x, param=None, dtype="float64"):
    net, sample = _net(type_name, x, param, dtype)
    return layer_db.run(net, sample, dtype)[0]


# -- ArgMax -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax_tie_returns_the_last_index(dtype):
    # std::greater on (value, index) pairs: (3, 2) > (3, 0), so Caffe answers 2 where torch.argmax says 0
    x = [[3.0, 1.0, 3.0], [0.0, 0.0, 0.0]]
    top = _top("ArgMax", x, dtype=dtype)
    assert tuple(top.shape) == (2, 1, 1) and top.dtype == getattr(torch, dtype)
    assert top.flatten().tolist() == [2.0, 2.0]
    assert torch.tensor(x).argmax(dim=1).tolist() == [0, 0]  # what a naive port would give


def test_argmax_top_k_orders_ties_by_larger_index_and_writes_indices_then_values():
    x = [[5.0, 7.0, 5.0, 7.0, 1.0]]
    top = _top("ArgMax", x, {"top_k": 4, "out_max_val": True})
    assert top.tolist() == [[[3.0, 1.0, 2.0, 0.0], [7.0, 7.0, 5.0, 5.0]]]


def test_argmax_with_axis_keeps_the_other_axes():
    x = np.array([[[1.0, 9.0], [4.0, 9.0], [4.0, 0.0]]])  # (1, 3, 2), maximise along axis 1
    top = _top("ArgMax", x, {"axis": 1, "top_k": 2})
    assert tuple(top.shape) == (1, 2, 2)
    assert top.tolist() == [[[2.0, 1.0], [1.0, 0.0]]]
    values = _top("ArgMax", x, {"axis": 1, "top_k": 2, "out_max_val": True})
    assert values.tolist() == [[[4.0, 9.0], [4.0, 9.0]]]  # with axis, out_max_val gives values only


@pytest.mark.parametrize("shape,param,top_shape", [
    ((2, 5), {}, (2, 1, 1)),
    ((2, 3, 4, 5), {"top_k": 3}, (2, 1, 3, 1)),
    ((2, 3, 4, 5), {"top_k": 3, "out_max_val": True}, (2, 2, 3, 1)),
    ((2, 3, 4, 5, 2), {"out_max_val": True}, (2, 2, 1, 1, 1)),
    ((2, 3, 4, 5), {"axis": -2, "top_k": 4}, (2, 3, 4, 5)),
    ((7,), {"axis": 0, "top_k": 2}, (2,)),
])
def test_argmax_top_shapes(shape, param, top_shape):
    net, sample = _net("ArgMax", np.random.default_rng(0).standard_normal(shape), param)
    assert net.blob_shapes["t0"] == top_shape
    assert tuple(layer_db.run(net, sample)[0].shape) == top_shape


def test_argmax_flattens_all_axes_but_the_first():
    x = np.zeros((2, 2, 3))
    x[0, 1, 2] = 1.0  # flat index 5
    x[1, 0, 1] = 2.0  # flat index 1
    assert _top("ArgMax", x).flatten().tolist() == [5.0, 1.0]


def test_argmax_top_is_detached():
    net, sample = _net("ArgMax", [[1.0, 2.0]], {"out_max_val": True})
    x = layer_db.inputs_of(sample)["b0"].requires_grad_(True)
    net(b0=x)
    assert not net.blobs["t0"].requires_grad


@pytest.mark.parametrize("param,words", [
    ({"top_k": 7}, "top_k 7 is larger than the 6"),
    ({"top_k": 4, "axis": 1}, "top_k 4 is larger than the 3"),
    ({"top_k": 0}, "top_k must be at least 1"),
    ({"axis": 3}, "out of range"),
])
def test_argmax_errors(param, words):
    with pytest.raises(CaffeLikeError) as err:
        _net("ArgMax", np.zeros((2, 3, 2)), param)
    assert words in str(err.value) and "layer 'L' (ArgMax)" in str(err.value)


# -- Reduction --------------------------------------------------------------------------------------


X = np.array([[1.0, -2.0, 0.0], [3.0, 0.5, -0.5]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,coeff,values,grad", [
    ("SUM", 1.0, [-1.0, 3.0], np.ones((2, 3))),
    ("ASUM", 2.0, [6.0, 8.0], 2.0 * np.array([[1, -1, 0], [1, 1, -1]])),  # sign(0) = 0
    ("SUMSQ", 0.5, [2.5, 4.75], X),                                        # 2 * coeff * x
    ("MEAN", 3.0, [-1.0, 3.0], np.ones((2, 3))),                           # coeff / 3 per element
])
def test_reduction_values_and_gradients(dtype, op, coeff, values, grad):
    net, sample = _net("Reduction", X, {"operation": op, "axis": 1, "coeff": coeff}, dtype)
    x = layer_db.inputs_of(sample, dtype)["b0"].requires_grad_(True)
    net(b0=x)
    top = net.blobs["t0"]
    tol = 1e-6 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(top.detach().double().numpy(), values, rtol=tol, atol=0)
    (dx,) = torch.autograd.grad(top.sum(), [x])
    np.testing.assert_allclose(dx.double().numpy(), grad, rtol=tol, atol=0)


def test_reduction_default_is_a_scalar_sum_of_everything():
    top = _top("Reduction", X)
    assert tuple(top.shape) == () and top.item() == 2.0


@pytest.mark.parametrize("axis,shape", [(0, ()), (1, (2,)), (2, (2, 3)), (-1, (2, 3)), (-3, ())])
def test_reduction_keeps_the_axes_before_axis(axis, shape):
    x = np.ones((2, 3, 4))
    top = _top("Reduction", x, {"axis": axis, "operation": "MEAN"})
    assert tuple(top.shape) == shape
    np.testing.assert_array_equal(top.numpy(), np.ones(shape))


def test_reduction_follows_the_runtime_batch():
    net, _ = _net("Reduction", np.ones((2, 3)), {"axis": 1})
    net(b0=torch.ones(5, 3, dtype=torch.float64))
    assert net.blobs["t0"].tolist() == [3.0] * 5


def test_loss_weight_on_a_non_scalar_reduction_top_sums_its_elements():
    # Caffe: loss = weight * sum(top) for any top with a weight (not the mean); Reduction is no LossLayer
    sample = LayerSample("t", (X,), layer={"reduction_param": {"axis": 1}, "loss_weight": 2.0})
    net = layer_db.build("Reduction", sample)
    layer_db.run(net, sample)
    assert net.loss.item() == 2.0 * (-1.0 + 3.0)
    plain = LayerSample("t", (X,), layer={"reduction_param": {"axis": 1}})
    net = layer_db.build("Reduction", plain)
    layer_db.run(net, plain)
    assert net.loss.item() == 0.0


def test_reduction_axis_out_of_range():
    with pytest.raises(CaffeLikeError, match="out of range"):
        _net("Reduction", np.zeros((2, 3)), {"axis": 2})


def test_reduction_unknown_operation():
    with pytest.raises(SpecError):
        _net("Reduction", np.zeros((2, 3)), {"operation": "MAX"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = np.array([[5.0, 7.0, 5.0, 7.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    for type_name, param in (("ArgMax", {"top_k": 4, "out_max_val": True}), ("ArgMax", {}),
                             ("ArgMax", {"axis": 1, "top_k": 2}), ("Reduction", {"operation": "SUMSQ", "axis": 1})):
        cpu = _top(type_name, x, param)
        net, sample = _net(type_name, x, param)
        net.to("cuda")
        net(b0=layer_db.inputs_of(sample)["b0"].cuda())
        np.testing.assert_array_equal(net.blobs["t0"].cpu().numpy(), cpu.numpy())
