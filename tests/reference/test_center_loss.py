"""CenterLoss reference: the loss, the feature gradient and Caffe-face's center update (loss_layers.md §2)."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_like.reference import center_loss

from ._helpers import assert_grad

X = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
LABEL = np.array([0.0, 0.0, 2.0])
CENTERS = np.array([[1.0, 1.0], [5.0, 5.0], [-1.0, 1.0]])
# d = x - c_y = [[0, 1], [2, 3], [1, -1]];  sum |d|^2 = 1 + 13 + 2 = 16


def test_loss_by_hand():
    (loss,) = center_loss.forward(X, LABEL, CENTERS)
    assert loss.shape == () and float(loss) == 16 / (2 * 3)


def test_diffs_by_hand_absent_and_singleton_classes():
    dx, dlabel, dC = center_loss.backward(X, LABEL, CENTERS, top_diffs=(1.0,))
    assert dlabel is None
    np.testing.assert_allclose(dx, np.array([[0.0, 1.0], [2.0, 3.0], [1.0, -1.0]]) / 3, rtol=1e-15)
    # class 0 (two samples): ((c0 - x0) + (c0 - x1)) / (1 + 2); class 1 absent: 0; class 2 once: (c2 - x2) / 2
    np.testing.assert_allclose(dC, [[-2 / 3, -4 / 3], [0.0, 0.0], [-0.5, 0.5]], rtol=1e-15)


def test_loss_weight_scales_dx_but_not_the_center_update():
    dx1, _, dC1 = center_loss.backward(X, LABEL, CENTERS, top_diffs=(1.0,))
    dx3, _, dC3 = center_loss.backward(X, LABEL, CENTERS, top_diffs=(np.array(0.01),))
    np.testing.assert_allclose(dx3, 0.01 * dx1, rtol=1e-15)
    np.testing.assert_array_equal(dC3, dC1)


def test_center_update_is_not_the_derivative():
    """The true derivative of the loss w.r.t. c_j is -lw sum_{y_i=j} d_i / M; Caffe-face uses /(1 + n_j)."""
    _, _, dC = center_loss.backward(X, LABEL, CENTERS, top_diffs=(1.0,))
    true_derivative = -np.array([[2.0, 4.0], [0.0, 0.0], [1.0, -1.0]]) / 3
    np.testing.assert_allclose(dC[0], true_derivative[0])  # n_0 = 2: 1 + n_0 = M = 3, a coincidence
    assert not np.allclose(dC[2], true_derivative[2])  # the singleton class: /2 instead of /3


def test_feature_gradient_matches_finite_differences():
    rng = np.random.default_rng(70)
    x, centers = rng.normal(size=(8, 3)), rng.normal(size=(5, 3))
    label = rng.integers(0, 5, size=8).astype(np.float64)
    assert_grad(center_loss, [x, label], {}, blobs=[centers])  # x only: NON_GRADIENT_INPUTS excludes C
    assert center_loss.NON_GRADIENT_INPUTS == (2,)


def test_spatial_features_are_flattened_from_axis_1():
    rng = np.random.default_rng(71)
    x, centers = rng.normal(size=(4, 2, 2, 2)), rng.normal(size=(3, 8))
    label = np.array([0.0, 2.0, 2.0, 1.0])
    (a,) = center_loss.forward(x, label, centers)
    (b,) = center_loss.forward(x.reshape(4, 8), label, centers)
    assert float(a) == float(b)
    dx, _, _ = center_loss.backward(x, label, centers, top_diffs=(1.0,))
    assert dx.shape == x.shape
    assert_grad(center_loss, [x, label], {}, blobs=[centers], mode="random")


def test_invalid_inputs():
    with pytest.raises(ValueError, match="centers must have shape"):
        center_loss.forward(X, LABEL, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="out of range"):
        center_loss.forward(X, np.array([0.0, 3.0, 1.0]), CENTERS)
