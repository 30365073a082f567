"""EuclideanLoss, HingeLoss, SigmoidCrossEntropyLoss and MultinomialLogisticLoss references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caffe_like.reference import (
    euclidean_loss,
    hinge_loss,
    multinomial_logistic_loss,
    sigmoid_cross_entropy_loss,
    softmax,
)

from ._helpers import assert_grad

RNG_SEED = 20


# ---- EuclideanLoss -------------------------------------------------------------------------------------


def test_euclidean_by_hand():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[[0.0, 2.0]], [[5.0, 1.0]]])  # another shape with the same count(1) is fine
    (loss,) = euclidean_loss.forward(a, b)
    assert float(loss) == (1 + 0 + 4 + 9) / (2 * 2)
    da, db = euclidean_loss.backward(a, b, top_diffs=(2.0,))
    np.testing.assert_array_equal(da, 2.0 * np.array([[1.0, 0.0], [-2.0, 3.0]]) / 2)
    np.testing.assert_array_equal(db, -da.reshape(b.shape))
    assert db.shape == b.shape


def test_euclidean_gradient_to_both_bottoms():
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 8))
    assert_grad(euclidean_loss, [a, b])
    report_inputs = euclidean_loss.backward(a, b, top_diffs=(1.0,))
    assert all(g is not None for g in report_inputs)


def test_euclidean_mismatch():
    with pytest.raises(ValueError, match="first axes"):
        euclidean_loss.forward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="counts"):
        euclidean_loss.forward(np.zeros((2, 3)), np.zeros((2, 4)))


# ---- HingeLoss -----------------------------------------------------------------------------------------


def test_hinge_by_hand():
    x = np.array([[0.5, -2.0, 1.5]])
    label = np.array([0.0])
    # t = [+1, -1, -1]; h = max(0, 1 - t x) = [0.5, 0, 2.5]
    assert float(hinge_loss.forward(x, label)[0]) == 3.0
    assert float(hinge_loss.forward(x, label, norm="L2")[0]) == 0.25 + 6.25
    np.testing.assert_array_equal(hinge_loss.backward(x, label, top_diffs=(1.0,))[0], [[-1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(
        hinge_loss.backward(x, label, top_diffs=(1.0,), norm="L2")[0], [[-1.0, 0.0, 5.0]]
    )


def test_hinge_gradients():
    rng = np.random.default_rng(RNG_SEED + 1)
    x = 2 * rng.normal(size=(5, 4, 1, 2))
    label = rng.integers(0, 8, size=5).astype(np.float64)
    # L1 has kinks at t x = 1, i.e. |x| = 1: Caffe's test skips them with kink 1, kink_range 0.01
    assert_grad(hinge_loss, [x, label], {"norm": "L1"}, kink=1.0, kink_range=0.01)
    assert_grad(hinge_loss, [x, label], {"norm": "L2"})


def test_hinge_bad_norm():
    with pytest.raises(ValueError, match="unknown norm"):
        hinge_loss.forward(np.zeros((1, 2)), np.zeros(1), norm="L3")


# ---- SigmoidCrossEntropyLoss ---------------------------------------------------------------------------


def textbook_bce(x, t):
    s = 1 / (1 + math.exp(-x))
    return -(t * math.log(s) + (1 - t) * math.log(1 - s))


def test_sigmoid_cross_entropy_by_hand():
    x = np.array([[0.0, 2.0], [-3.0, 1.0], [0.5, -0.25]])
    t = np.array([[1.0, 0.0], [0.3, 1.0], [0.0, 1.0]])
    total = sum(textbook_bce(a, b) for a, b in zip(x.ravel(), t.ravel()))
    (loss,) = sigmoid_cross_entropy_loss.forward(x, t)
    assert float(loss) == pytest.approx(total / 3, rel=1e-14)  # BATCH_SIZE by default
    (dx, dt) = sigmoid_cross_entropy_loss.backward(x, t, top_diffs=(1.0,))
    assert dt is None
    np.testing.assert_allclose(dx, (1 / (1 + np.exp(-x)) - t) / 3, rtol=1e-14)


@pytest.mark.parametrize(
    ("params", "denominator"),
    [
        ({}, 4),  # BATCH_SIZE when neither normalization nor normalize is set
        ({"normalize": False}, 4),
        ({"normalize": True}, "valid"),
        ({"normalization": "VALID"}, "valid"),
        ({"normalization": "FULL"}, 24),
        ({"normalization": "NONE"}, 1),
        ({"normalization": "BATCH_SIZE"}, 4),
    ],
)
def test_sigmoid_cross_entropy_normalizations_and_ignore(params, denominator):
    rng = np.random.default_rng(RNG_SEED + 2)
    x = 3 * rng.normal(size=(4, 3, 2))
    t = rng.integers(0, 2, size=x.shape).astype(np.float64)
    t[0, 1, 1] = t[2, 0, 0] = t[3, 2, 1] = -1.0
    keep = t != -1
    total = sum(textbook_bce(a, b) for a, b in zip(x[keep], t[keep]))
    d = int(keep.sum()) if denominator == "valid" else denominator
    (loss,) = sigmoid_cross_entropy_loss.forward(x, t, ignore_label=-1, **params)
    assert float(loss) == pytest.approx(total / d, rel=1e-13)
    (dx, _) = sigmoid_cross_entropy_loss.backward(x, t, top_diffs=(1.0,), ignore_label=-1, **params)
    assert np.all(dx[~keep] == 0.0)
    assert_grad(sigmoid_cross_entropy_loss, [x, t], {"ignore_label": -1, **params})


def test_sigmoid_cross_entropy_is_stable_for_large_inputs():
    x = np.array([[800.0, -800.0]])
    t = np.array([[0.0, 1.0]])
    (loss,) = sigmoid_cross_entropy_loss.forward(x, t, normalization="NONE")
    assert float(loss) == pytest.approx(1600.0, rel=1e-15)  # each costs |x|
    (dx, _) = sigmoid_cross_entropy_loss.backward(x, t, top_diffs=(1.0,))
    np.testing.assert_allclose(dx, [[1.0, -1.0]], rtol=1e-15)


def test_sigmoid_cross_entropy_soft_targets_gradient_on_a_bigger_input():
    rng = np.random.default_rng(RNG_SEED + 3)
    x, t = rng.normal(size=(32, 64)), rng.uniform(size=(32, 64))
    assert_grad(sigmoid_cross_entropy_loss, [x, t], {}, mode="random")


def test_sigmoid_cross_entropy_count_mismatch():
    with pytest.raises(ValueError, match="same count"):
        sigmoid_cross_entropy_loss.forward(np.zeros((2, 3)), np.zeros((2, 2)))


# ---- MultinomialLogisticLoss ---------------------------------------------------------------------------


def test_multinomial_logistic_by_hand():
    prob = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    label = np.array([1.0, 2.0])
    (loss,) = multinomial_logistic_loss.forward(prob, label)
    assert float(loss) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, rel=1e-15)
    (dprob, dlabel) = multinomial_logistic_loss.backward(prob, label, top_diffs=(1.0,))
    assert dlabel is None
    np.testing.assert_allclose(dprob, [[0, -1 / (2 * 0.5), 0], [0, 0, -1 / (2 * 0.8)]], rtol=1e-15)


def test_multinomial_logistic_threshold_is_float32_1e_minus_20():
    assert multinomial_logistic_loss.KLOG_THRESHOLD == float(np.float32(1e-20))
    prob = np.array([[0.0, 1.0]])
    (loss,) = multinomial_logistic_loss.forward(prob, np.array([0.0]))
    assert float(loss) == pytest.approx(-math.log(float(np.float32(1e-20))), rel=1e-15)
    assert float(loss) == pytest.approx(46.0517, abs=1e-4)
    (dprob, _) = multinomial_logistic_loss.backward(prob, np.array([0.0]), top_diffs=(1.0,))
    assert dprob[0, 0] == pytest.approx(-1 / float(np.float32(1e-20)), rel=1e-15)


def test_multinomial_logistic_gradient():
    rng = np.random.default_rng(RNG_SEED + 4)
    (prob,) = softmax.forward(rng.normal(size=(5, 4, 1, 1)))
    label = rng.integers(0, 4, size=(5, 1, 1, 1)).astype(np.float64)
    assert_grad(multinomial_logistic_loss, [prob, label])


def test_multinomial_logistic_label_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        multinomial_logistic_loss.forward(np.full((1, 3), 1 / 3), np.array([3.0]))
