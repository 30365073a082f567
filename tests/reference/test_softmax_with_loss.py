"""Softmax and SoftmaxWithLoss references: hand-computed values, every normalisation, Caffe's edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caffe_like.reference import softmax, softmax_with_loss

from ._helpers import assert_grad

FLT_MIN = 1.17549435e-38


def per_position_loss_loops(scores, label, ignore_label=None):
    """Independent oracle: explicit loops over (n, h, w) for an (N, C, H, W) blob; returns (sum, count)."""
    total, valid = 0.0, 0
    n_, c_, h_, w_ = scores.shape
    for n in range(n_):
        for h in range(h_):
            for w in range(w_):
                y = int(label[n, 0, h, w])
                if ignore_label is not None and y == ignore_label:
                    continue
                column = [scores[n, c, h, w] for c in range(c_)]
                top = max(column)
                log_z = top + math.log(sum(math.exp(v - top) for v in column))
                total += min(log_z - column[y], -math.log(FLT_MIN))
                valid += 1
    return total, valid


@pytest.fixture
def spatial():
    rng = np.random.default_rng(10)
    scores = 3 * rng.normal(size=(2, 4, 2, 3))
    label = rng.integers(0, 4, size=(2, 1, 2, 3)).astype(np.float64)
    label[0, 0, 1, 2] = label[1, 0, 0, 0] = label[1, 0, 1, 1] = 255.0  # three ignored positions
    return scores, label


# ---- Softmax ------------------------------------------------------------------------------------------


def test_softmax_hand_values():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    (y,) = softmax.forward(x)
    z = math.exp(1) + math.exp(2) + math.exp(3)
    np.testing.assert_allclose(y[0], [math.exp(1) / z, math.exp(2) / z, math.exp(3) / z], rtol=1e-15)
    np.testing.assert_allclose(y[1], [1 / 3] * 3, rtol=1e-15)


def test_softmax_subtracts_the_max_so_large_inputs_do_not_overflow():
    (y,) = softmax.forward(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0]], atol=1e-300)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_axis_and_gradient(axis):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 4))
    (y,) = softmax.forward(x, axis=axis)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)
    dy = rng.normal(size=x.shape)
    (dx,) = softmax.backward(x, top_diffs=(dy,), axis=axis)
    np.testing.assert_allclose(dx, (dy - (dy * y).sum(axis=axis, keepdims=True)) * y, rtol=1e-14)
    assert_grad(softmax, [x], {"axis": axis})


# ---- SoftmaxWithLoss: values ----------------------------------------------------------------------------


def test_two_by_three_by_hand():
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    label = np.array([2.0, 0.0])
    log_z0 = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    expected = ((log_z0 - 3.0) + math.log(3.0)) / 2  # VALID: 2 positions
    (loss,) = softmax_with_loss.forward(scores, label)
    assert loss.shape == () and loss.dtype == np.float64
    assert float(loss) == pytest.approx(expected, rel=1e-15)
    p0 = [math.exp(k - log_z0) for k in (1, 2, 3)]
    dscores, dlabel = softmax_with_loss.backward(scores, label, top_diffs=(1.0,))
    assert dlabel is None
    np.testing.assert_allclose(
        dscores, [[p0[0] / 2, p0[1] / 2, (p0[2] - 1) / 2], [1 / 6 - 1 / 2, 1 / 6, 1 / 6]], rtol=1e-14
    )


@pytest.mark.parametrize(
    ("params", "denominator"),
    [
        ({}, "valid"),
        ({"normalization": "VALID"}, "valid"),
        ({"normalization": "FULL"}, "full"),
        ({"normalization": "BATCH_SIZE"}, "batch"),
        ({"normalization": "NONE"}, "none"),
        ({"normalize": True}, "valid"),  # legacy flag, used only when normalization is unset
        ({"normalize": False}, "batch"),
        ({"normalization": "FULL", "normalize": False}, "full"),  # normalization wins
    ],
)
def test_every_normalization_with_ignore_label(spatial, params, denominator):
    scores, label = spatial
    total, valid = per_position_loss_loops(scores, label, ignore_label=255)
    d = {"valid": valid, "full": 2 * 2 * 3, "batch": 2, "none": 1}[denominator]
    (loss,) = softmax_with_loss.forward(scores, label, ignore_label=255, **params)
    assert float(loss) == pytest.approx(total / d, rel=1e-13)
    assert_grad(softmax_with_loss, [scores, label], {"ignore_label": 255, **params})


def test_valid_without_ignore_label_is_full(spatial):
    scores, label = spatial
    label = np.where(label == 255, 1.0, label)
    total, valid = per_position_loss_loops(scores, label)
    assert valid == 12
    for mode in ("VALID", "FULL"):
        (loss,) = softmax_with_loss.forward(scores, label, normalization=mode)
        assert float(loss) == pytest.approx(total / 12, rel=1e-13)


def test_ignored_positions_get_zero_gradient(spatial):
    scores, label = spatial
    (dscores, _) = softmax_with_loss.backward(scores, label, top_diffs=(1.0,), ignore_label=255)
    ignored = np.broadcast_to(label == 255, scores.shape)
    assert np.all(dscores[ignored] == 0.0) and np.all(dscores[~ignored] != 0.0)
    # the valid columns sum to zero over the classes: p - onehot
    np.testing.assert_allclose(dscores.sum(axis=1), 0.0, atol=1e-16)


@pytest.mark.parametrize("mode", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
def test_all_labels_ignored_gives_zero_not_nan(mode):
    scores = np.random.default_rng(12).normal(size=(2, 3, 2))
    label = np.full((2, 2), 7.0)
    (loss,) = softmax_with_loss.forward(scores, label, ignore_label=7, normalization=mode)
    (dscores, _) = softmax_with_loss.backward(
        scores, label, top_diffs=(1.0,), ignore_label=7, normalization=mode
    )
    assert float(loss) == 0.0 and np.all(dscores == 0.0)


def test_loss_is_capped_at_minus_log_flt_min():
    """A probability that underflows below FLT_MIN costs -ln(FLT_MIN) = 87.3365, not inf."""
    scores = np.array([[0.0, 200.0], [0.0, 0.0]])  # p(class 0) = e^-200 ~ 1e-87 < FLT_MIN
    label = np.array([0.0, 0.0])
    (loss,) = softmax_with_loss.forward(scores, label, normalization="NONE")
    assert float(loss) == pytest.approx(-math.log(FLT_MIN) + math.log(2.0), rel=1e-15)
    assert -math.log(FLT_MIN) == pytest.approx(87.3365, abs=5e-5)
    # the gradient is not capped: still p - onehot
    (dscores, _) = softmax_with_loss.backward(scores, label, top_diffs=(1.0,), normalization="NONE")
    np.testing.assert_allclose(dscores[0], [math.exp(-200) - 1, 1 - math.exp(-200)], rtol=1e-15)


def test_loss_weight_scales_the_gradient_not_the_loss(spatial):
    scores, label = spatial
    params = {"ignore_label": 255}
    (d1, _) = softmax_with_loss.backward(scores, label, top_diffs=(1.0,), **params)
    (d3, _) = softmax_with_loss.backward(scores, label, top_diffs=(np.array(3.0),), **params)
    np.testing.assert_allclose(d3, 3 * d1, rtol=1e-15)
    assert_grad(softmax_with_loss, [scores, label], params)  # the checker feeds arbitrary top diffs too


@pytest.mark.parametrize("axis", [2, -1])
def test_axis_is_the_class_axis(axis):
    rng = np.random.default_rng(13)
    scores = rng.normal(size=(2, 3, 5))  # classes on the last axis
    label = rng.integers(0, 5, size=(2, 3)).astype(np.float64)
    (loss,) = softmax_with_loss.forward(scores, label, axis=axis)
    (expected,) = softmax_with_loss.forward(np.moveaxis(scores, 2, 1), label)
    assert float(loss) == pytest.approx(float(expected), rel=1e-14)
    assert_grad(softmax_with_loss, [scores, label], {"axis": axis})


def test_float_labels_are_truncated_like_static_cast():
    scores = np.random.default_rng(14).normal(size=(3, 4))
    (a,) = softmax_with_loss.forward(scores, np.array([1.7, 0.2, 3.99]))
    (b,) = softmax_with_loss.forward(scores, np.array([1, 0, 3]))
    assert float(a) == float(b)


def test_prob_top_is_the_softmax_and_its_diff_is_ignored():
    rng = np.random.default_rng(15)
    scores, label = rng.normal(size=(3, 4)), np.array([0.0, 1.0, 2.0])
    loss, prob = softmax_with_loss.forward(scores, label, prob_top=True)
    np.testing.assert_allclose(prob, softmax.forward(scores)[0], rtol=1e-15)
    a, _ = softmax_with_loss.backward(scores, label, top_diffs=(1.0, rng.normal(size=(3, 4))), prob_top=True)
    b, _ = softmax_with_loss.backward(scores, label, top_diffs=(1.0,))
    np.testing.assert_array_equal(a, b)


def test_random_directions_on_a_bigger_input():
    rng = np.random.default_rng(16)
    scores = 4 * rng.normal(size=(16, 10, 6, 6))
    label = rng.integers(0, 10, size=(16, 1, 6, 6)).astype(np.float64)
    label[label == 3] = -1.0
    assert_grad(softmax_with_loss, [scores, label], {"ignore_label": -1}, mode="random", n_directions=8)


def test_float32_input_stays_float32():
    scores = np.random.default_rng(17).normal(size=(2, 3)).astype(np.float32)
    (loss,) = softmax_with_loss.forward(scores, np.array([0, 1]))
    assert loss.dtype == np.float32


@pytest.mark.parametrize(
    ("label", "params", "message"),
    [
        (np.array([0.0, 3.0]), {}, "out of range"),
        (np.array([0.0, -1.0]), {}, "out of range"),
        (np.array([0.0, 1.0, 2.0]), {}, "label blob has 3 elements"),
        (np.array([0.0, 1.0]), {"normalization": "MEAN"}, "unknown normalization"),
        (np.array([0.0, 1.0]), {"axis": 2}, "axis 2 is out of range"),
    ],
)
def test_invalid_inputs_raise_value_error(label, params, message):
    with pytest.raises(ValueError, match=message):
        softmax_with_loss.forward(np.zeros((2, 3)), label, **params)


def test_missing_loss_weight_is_an_error():
    with pytest.raises(ValueError, match="top_diffs"):
        softmax_with_loss.backward(np.zeros((2, 3)), np.array([0, 1]), top_diffs=())
