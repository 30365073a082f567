"""The gradient checker itself: it must pass right gradients, catch wrong ones and follow Caffe's rules."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_like.reference import center_loss, softmax_with_loss
from caffe_like.reference.gradcheck import GradCheckReport, check_gradient, check_layer

MODES = ["exhaustive", "objective", "random"]


def cube(inputs):  # tops: x^3 elementwise and sum(x * w)
    x, w = inputs
    return [x**3, np.asarray(np.sum(x * w))]


def cube_backward(inputs, diffs, wrong=1.0):
    x, w = inputs
    return [3 * x**2 * diffs[0] * wrong + w * diffs[1], x * diffs[1]]


@pytest.fixture
def point():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(3, 4)), rng.normal(size=(3, 4))]


@pytest.mark.parametrize("mode", MODES)
def test_right_gradient_passes(point, mode):
    report = check_gradient(cube, cube_backward, point, mode=mode, stepsize=1e-6, threshold=1e-8)
    report.assert_ok()
    assert isinstance(report, GradCheckReport) and report.passed and report.mode == mode
    assert report.max_rel_error < 1e-8 and report.n_failed == 0 and report.n_skipped == 0
    expected = {"exhaustive": 2 * 12 * 13, "objective": 24, "random": 2 * 10}[mode]
    assert report.n_checked == expected


@pytest.mark.parametrize("mode", MODES)
def test_wrong_gradient_fails_and_names_the_worst_element(point, mode):
    report = check_gradient(
        cube,
        lambda xs, ds: cube_backward(xs, ds, wrong=1.01),
        point,
        mode=mode,
        stepsize=1e-6,
        threshold=1e-6,
    )
    assert not report.passed and report.n_failed > 0
    assert report.worst.input_index == 0  # only x's gradient is wrong
    assert report.max_rel_error == pytest.approx(
        abs(report.worst.analytic - report.worst.numeric)
        / max(abs(report.worst.analytic), abs(report.worst.numeric), 1.0)
    )
    with pytest.raises(AssertionError, match="worst: input 0"):
        report.assert_ok()
    assert "FAILED" in str(report)


def test_inputs_are_not_modified(point):
    before = [p.copy() for p in point]
    check_gradient(cube, cube_backward, point, stepsize=1e-3)
    for a, b in zip(point, before):
        np.testing.assert_array_equal(a, b)


def test_objective_mode_uses_caffes_half_sum_of_squares():
    """CheckGradient: F = 1/2 sum y^2 over all tops, so backward receives the top data as diffs."""
    seen = []
    x = np.array([1.5, -2.0])

    def fwd(xs):
        return [2 * xs[0], np.asarray(xs[0].sum())]

    def bwd(xs, diffs):
        seen.append([d.copy() for d in diffs])
        return [2 * diffs[0] + diffs[1]]

    check_gradient(fwd, bwd, [x], mode="objective", stepsize=1e-6, threshold=1e-8).assert_ok()
    np.testing.assert_array_equal(seen[0][0], 2 * x)
    np.testing.assert_array_equal(seen[0][1], x.sum())


def test_exhaustive_mode_seeds_one_top_element_with_two():
    seen = []

    def fwd(xs):
        return [xs[0] * 1.0]

    def bwd(xs, diffs):
        seen.append(diffs[0].copy())
        return [diffs[0]]

    check_gradient(fwd, bwd, [np.zeros((2, 2))], stepsize=1e-6, threshold=1e-8).assert_ok()
    assert len(seen) == 4
    for j, diff in enumerate(seen):
        expected = np.zeros(4)
        expected[j] = 2.0
        np.testing.assert_array_equal(diff.reshape(-1), expected)


def relu(xs):
    return [np.maximum(xs[0], 0.0)]


def relu_backward(xs, diffs):
    return [diffs[0] * (xs[0] > 0)]


def test_kink_elements_are_skipped_as_in_caffe():
    x = np.array([-0.5, 1e-9, 0.7])  # 1e-9 sits on ReLU's kink: the central difference gives ~1/2
    assert not check_gradient(relu, relu_backward, [x], stepsize=1e-6, threshold=1e-3).passed
    report = check_gradient(
        relu, relu_backward, [x], stepsize=1e-6, threshold=1e-3, kink=0.0, kink_range=0.01
    )
    report.assert_ok()
    assert report.n_skipped == 1 and report.n_checked == 2 * 3  # 2 unskipped inputs x 3 top elements


def test_none_gradients_are_not_checked_and_cannot_be_requested():
    labels = np.array([0.0, 1.0])

    def fwd(xs):
        return [xs[0] * 2.0]

    def bwd(xs, diffs):
        return [2.0 * diffs[0], None]

    report = check_gradient(fwd, bwd, [np.ones(2), labels], stepsize=1e-6, threshold=1e-8)
    report.assert_ok()
    assert report.n_checked == 4  # only input 0: 2 elements x 2 top elements
    with pytest.raises(ValueError, match="backward returns None"):
        check_gradient(fwd, bwd, [np.ones(2), labels], check=[1])


def test_top_selection_leaves_out_tops_whose_diff_is_ignored():
    """SoftmaxWithLoss ignores the prob top's diff, as Caffe does, so only the loss top can be checked."""
    rng = np.random.default_rng(1)
    scores, label = rng.normal(size=(3, 4)), np.array([0.0, 3.0, 1.0])
    params = {"prob_top": True}
    assert not check_layer(softmax_with_loss, [scores, label], params, stepsize=1e-6, threshold=1e-6).passed
    check_layer(
        softmax_with_loss, [scores, label], params, tops=[0], stepsize=1e-6, threshold=1e-8
    ).assert_ok()


def test_nothing_compared_does_not_pass():
    report = check_gradient(relu, relu_backward, [np.array([0.0])], kink=0.0, kink_range=1.0)
    assert not report.passed and report.n_checked == 0 and report.worst is None
    assert "nothing compared" in str(report)


def test_nan_gradient_fails_with_infinite_error():
    def bwd(xs, diffs):
        return [np.full_like(xs[0], np.nan)]

    report = check_gradient(relu, bwd, [np.array([1.0, 2.0])])
    assert not report.passed and report.max_rel_error == np.inf


def test_random_mode_catches_a_single_wrong_element_of_a_big_input():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 50))

    def fwd(xs):
        return [np.sin(xs[0])]

    def bwd(xs, diffs, wrong=False):
        g = np.cos(xs[0]) * diffs[0]
        if wrong:
            g[7, 11] *= 2.0
        return [g]

    check_gradient(fwd, bwd, [x], mode="random", stepsize=1e-5, threshold=1e-7).assert_ok()
    report = check_gradient(
        fwd, lambda xs, ds: bwd(xs, ds, wrong=True), [x], mode="random", stepsize=1e-5, threshold=1e-7
    )
    assert not report.passed


def test_float32_layer_with_caffes_default_settings():
    """The checker keeps the inputs' dtype, so a float32 layer is checked as Caffe's float tests do."""
    rng = np.random.default_rng(3)
    scores = (10 * rng.normal(size=(4, 5, 2))).astype(np.float32)
    label = rng.integers(0, 5, size=(4, 1, 2)).astype(np.float32)
    report = check_layer(softmax_with_loss, [scores, label], {}, dtype=None)  # stepsize 1e-2, threshold 1e-2
    report.assert_ok()


def test_check_layer_skips_the_centers_update_rule():
    rng = np.random.default_rng(4)
    x, label, centers = rng.normal(size=(6, 3)), np.array([0, 1, 1, 2, 0, 0.0]), rng.normal(size=(4, 3))
    report = check_layer(center_loss, [x, label], {}, blobs=[centers], stepsize=1e-6, threshold=1e-8)
    report.assert_ok()
    assert report.n_checked == x.size  # x only
    forced = check_layer(
        center_loss, [x, label], {}, blobs=[centers], check=[0, 2], stepsize=1e-6, threshold=1e-6
    )
    assert not forced.passed and forced.worst.input_index == 2  # the update rule is not the derivative


def test_bad_arguments_are_reported():
    x = [np.ones(2)]
    with pytest.raises(ValueError, match="unknown mode"):
        check_gradient(relu, relu_backward, x, mode="sideways")
    with pytest.raises(ValueError, match="top index"):
        check_gradient(relu, relu_backward, x, tops=[3])
    with pytest.raises(ValueError, match="one gradient"):
        check_gradient(relu, lambda xs, ds: [], x)
    with pytest.raises(ValueError, match="shape"):
        check_gradient(relu, lambda xs, ds: [np.ones(3)], x)
    with pytest.raises(ValueError, match="floating"):
        check_gradient(lambda xs: [xs[0] * 1.0], lambda xs, ds: [ds[0]], [np.arange(3)])
