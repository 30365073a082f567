"""Eltwise: the Caffe semantics a naive port gets wrong (MAX tie rule, PROD gradients with zeros,
stable_prod_grad false, SUM coefficients) and the errors for bad input.

Expected numbers are hand-computed; tolerances are stated per test (exact where the arithmetic is).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caffe_like.errors import CaffeLikeError, ShapeError, SpecError

import layer_db
from layer_db import LayerSample

DTYPES = ["float64", "float32"]


def _net(bottoms, param=None, dtype="float64"):
    sample = LayerSample("t", tuple(np.asarray(b, dtype=np.float64) for b in bottoms),
                         layer={"eltwise_param": param} if param else {})
    return layer_db.build("Eltwise", sample, dtype), sample


def _forward_backward(bottoms, param=None, dtype="float64", top_diff=None):
    """(top, [gradient of every bottom]) for the objective sum(top * top_diff) (top_diff default 1)."""
    net, sample = _net(bottoms, param, dtype)
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample, dtype).items()}
    net(**inputs)
    top = net.blobs["t0"]
    diff = torch.ones_like(top) if top_diff is None else torch.as_tensor(top_diff, dtype=top.dtype)
    grads = torch.autograd.grad((top * diff).sum(), [inputs[f"b{i}"] for i in range(len(bottoms))],
                                allow_unused=True)
    return top.detach(), [torch.zeros_like(top) if g is None else g for g in grads]


# -- MAX --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_tie_between_bottoms_0_and_1_goes_to_bottom_1(dtype):
    # Caffe: `a > b ? a : b`, so equal values pick bottom 1; torch.maximum would give 0.5 to each.
    top, (da, db) = _forward_backward([[1.0, 2.0, -3.0], [1.0, 0.0, -3.0]], {"operation": "MAX"}, dtype)
    np.testing.assert_array_equal(top.numpy(), [1.0, 2.0, -3.0])  # exact (a selection)
    np.testing.assert_array_equal(da.numpy(), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(db.numpy(), [1.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_later_bottoms_must_be_strictly_greater(dtype):
    # position 0: bottoms 0 and 2 tie at 3 -> bottom 0 (the earlier winner keeps the tie)
    # position 1: bottoms 1 and 2 tie at 3 -> bottom 1
    # position 2: all three tie -> bottom 1 (won the 0/1 tie, then keeps it against bottom 2)
    # position 3: bottom 2 strictly greater -> bottom 2
    a, b, c = [3.0, 1.0, 2.0, 0.0], [1.0, 3.0, 2.0, 0.0], [3.0, 3.0, 2.0, 0.5]
    top, grads = _forward_backward([a, b, c], {"operation": "MAX"}, dtype, top_diff=[10.0, 20.0, 30.0, 40.0])
    np.testing.assert_array_equal(top.numpy(), [3.0, 3.0, 2.0, 0.5])
    np.testing.assert_array_equal(grads[0].numpy(), [10.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grads[1].numpy(), [0.0, 20.0, 30.0, 0.0])
    np.testing.assert_array_equal(grads[2].numpy(), [0.0, 0.0, 0.0, 40.0])


def test_max_gradient_is_never_split_unlike_torch_maximum():
    x = [np.full((2, 3), 0.5)] * 4  # a four-way tie everywhere
    _, grads = _forward_backward(x, {"operation": "MAX"})
    np.testing.assert_array_equal(grads[1].numpy(), np.ones((2, 3)))
    for i in (0, 2, 3):
        np.testing.assert_array_equal(grads[i].numpy(), np.zeros((2, 3)))
    a = torch.full((2,), 0.5, requires_grad=True)
    b = torch.full((2,), 0.5, requires_grad=True)
    torch.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.5]  # what the naive port would have given


def test_max_signed_zero_and_nan_follow_caffe_comparisons():
    # -0.0 > +0.0 is false, so bottom 1's zero (with its sign) is the output; NaN compares false:
    # NaN in bottom 0 loses to bottom 1, NaN in bottom 1 wins against bottom 0, a later NaN never wins.
    nan = float("nan")
    top, _ = _forward_backward([[-0.0, 0.0, nan, 1.0, 2.0], [0.0, -0.0, 1.0, nan, 1.0], [-1.0, -1.0, 0.0, 0.0, nan]],
                               {"operation": "MAX"})
    out = top.numpy()
    assert not np.signbit(out[0]) and np.signbit(out[1])
    assert out[2] == 1.0 and np.isnan(out[3]) and out[4] == 2.0


def test_max_gradcheck_two_bottoms():
    # float64; the generic gradcheck covers 3 bottoms (its grad_bottoms are per entry)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    b = a + np.where(rng.random((3, 4)) > 0.5, 0.3, -0.3)  # never within 0.3 of a tie
    net, sample = _net([a, b], {"operation": "MAX"})
    inputs = layer_db.inputs_of(sample)

    def fn(x0, x1):
        net(b0=x0, b1=x1)
        return net.blobs["t0"]

    leaves = tuple(inputs[k].requires_grad_(True) for k in ("b0", "b1"))
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-8, rtol=1e-6)


# -- PROD -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_prod_gradient_is_product_of_the_others_even_with_zeros(dtype):
    # stable_prod_grad (default): dx_i = dy * prod_{j != i} x_j -- no division, so zeros are fine
    x0, x1, x2 = [0.0, 2.0, 0.0], [3.0, 0.0, 0.0], [4.0, 5.0, 6.0]
    top, (d0, d1, d2) = _forward_backward([x0, x1, x2], {"operation": "PROD"}, dtype)
    np.testing.assert_array_equal(top.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(d0.numpy(), [12.0, 0.0, 0.0])
    np.testing.assert_array_equal(d1.numpy(), [0.0, 10.0, 0.0])
    np.testing.assert_array_equal(d2.numpy(), [0.0, 0.0, 0.0])


def test_prod_unstable_grad_divides_by_the_input():
    # stable_prod_grad: false -> dx_i = dy * y / x_i: 0/0 = NaN where x_i is 0 (as Caffe)
    top, (d0, d1) = _forward_backward([[2.0, 0.0, -1.5], [3.0, 4.0, 2.0]],
                                      {"operation": "PROD", "stable_prod_grad": False}, top_diff=[1.0, 1.0, 2.0])
    np.testing.assert_array_equal(top.numpy(), [6.0, 0.0, -3.0])
    assert d0[0].item() == 3.0 and np.isnan(d0[1].item()) and d0[2].item() == 4.0
    np.testing.assert_array_equal(d1.numpy(), [2.0, 0.0, -3.0])


def test_prod_unstable_equals_stable_away_from_zero():
    rng = np.random.default_rng(1)
    xs = [np.sign(v) * (0.5 + np.abs(v)) for v in rng.standard_normal((3, 2, 5))]
    _, stable = _forward_backward(xs, {"operation": "PROD"})
    _, unstable = _forward_backward(xs, {"operation": "PROD", "stable_prod_grad": False})
    for s, u in zip(stable, unstable):
        np.testing.assert_allclose(u.numpy(), s.numpy(), rtol=1e-13, atol=0)


# -- SUM --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_with_coefficients(dtype):
    top, grads = _forward_backward([[1.0, 2.0], [4.0, -2.0], [0.5, 0.25]],
                                   {"operation": "SUM", "coeff": [1.0, -0.5, 2.0]}, dtype, top_diff=[1.0, 3.0])
    np.testing.assert_array_equal(top.numpy(), [1.0 - 2.0 + 1.0, 2.0 + 1.0 + 0.5])  # exact in binary
    for g, c in zip(grads, [1.0, -0.5, 2.0]):
        np.testing.assert_array_equal(g.numpy(), [c, 3.0 * c])


def test_sum_is_the_default_operation():
    top, _ = _forward_backward([[1.0], [2.0]])
    assert top.tolist() == [3.0]


def test_forward_does_not_modify_the_bottoms():
    a, b = torch.tensor([1.0, 5.0], dtype=torch.float64), torch.tensor([2.0, 3.0], dtype=torch.float64)
    for param in ({"operation": "SUM", "coeff": [2.0, 3.0]}, {"operation": "PROD"}, {"operation": "MAX"}):
        net, _ = _net([a.numpy(), b.numpy()], param)
        net(b0=a, b1=b)
        assert a.tolist() == [1.0, 5.0] and b.tolist() == [2.0, 3.0]


# -- errors -----------------------------------------------------------------------------------------


def test_different_shapes_are_an_error_naming_the_layer_and_shapes():
    with pytest.raises(ShapeError) as err:
        _net([np.zeros((2, 3)), np.zeros((2, 4))], {"operation": "SUM"})
    text = str(err.value)
    assert "layer 'L' (Eltwise)" in text and "[2, 3]" in text and "[2, 4]" in text


def test_runtime_batch_mismatch_is_an_error_not_a_broadcast():
    net, _ = _net([np.zeros((2, 3)), np.zeros((2, 3))], {"operation": "MAX"})
    with pytest.raises(CaffeLikeError) as err:
        net(b0=torch.zeros(2, 3, dtype=torch.float64), b1=torch.zeros(1, 3, dtype=torch.float64))
    assert "Eltwise" in str(err.value) and "[1, 3]" in str(err.value)


@pytest.mark.parametrize("param,words", [
    ({"operation": "SUM", "coeff": [1.0]}, "1 coeff values for 2 bottoms"),
    ({"operation": "PROD", "coeff": [1.0, 2.0]}, "only for operation SUM"),
    ({"operation": "MAX", "coeff": [1.0, 2.0]}, "only for operation SUM"),
])
def test_bad_coefficients(param, words):
    with pytest.raises(SpecError) as err:
        _net([np.zeros(2), np.zeros(2)], param)
    assert words in str(err.value) and "Eltwise" in str(err.value)


def test_one_bottom_is_an_error():
    with pytest.raises(SpecError, match="at least 2 bottom"):
        _net([np.zeros(2)])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("op", ["SUM", "PROD", "MAX"])
def test_cuda_matches_cpu(op):
    xs = [[1.0, 2.0, 2.0], [1.0, 0.0, 3.0], [1.0, 2.0, 3.0]]
    cpu_top, cpu_grads = _forward_backward(xs, {"operation": op})
    net, sample = _net(xs, {"operation": op})
    net.to("cuda")
    inputs = {k: v.cuda().requires_grad_(True) for k, v in layer_db.inputs_of(sample).items()}
    net(**inputs)
    grads = torch.autograd.grad(net.blobs["t0"].sum(), [inputs[f"b{i}"] for i in range(3)])
    np.testing.assert_array_equal(net.blobs["t0"].detach().cpu().numpy(), cpu_top.numpy())
    for g, c in zip(grads, cpu_grads):
        np.testing.assert_array_equal(g.cpu().numpy(), c.numpy())
