"""Accuracy reference: BVLC master's tie rule, top_k, ignore_label, per-class recall."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_like.reference import accuracy

SCORES = np.array(
    [
        [0.1, 0.7, 0.2],  # label 1: best -> right
        [0.5, 0.5, 0.0],  # label 0: tied with class 1 -> the tie counts against it (wrong at top 1)
        [0.2, 0.3, 0.5],  # label 0: worst -> right only at top 3
        [0.9, 0.05, 0.05],  # label 0: best -> right
    ]
)
LABEL = np.array([1.0, 0.0, 0.0, 0.0])


def loop_oracle(scores, label, top_k, ignore_label=None):
    """Independent oracle with loops: correct iff fewer than top_k other classes score >= the true one."""
    right = counted = 0
    for row, y in zip(scores, label.astype(int)):
        if ignore_label is not None and y == ignore_label:
            continue
        better = sum(1 for k, v in enumerate(row) if k != y and v >= row[y])
        right += better < top_k
        counted += 1
    return right / counted if counted else 0.0


@pytest.mark.parametrize(("top_k", "expected"), [(1, 2 / 4), (2, 3 / 4), (3, 4 / 4)])
def test_ties_count_against_and_top_k(top_k, expected):
    (acc,) = accuracy.forward(SCORES, LABEL, top_k=top_k)
    assert acc.shape == () and float(acc) == expected == loop_oracle(SCORES, LABEL, top_k)


def test_ignore_label():
    label = LABEL.copy()
    label[1] = 9.0
    (acc,) = accuracy.forward(SCORES, label, ignore_label=9)
    assert float(acc) == 2 / 3


def test_per_class_recall_with_absent_class():
    acc, per_class = accuracy.forward(SCORES, LABEL, per_class_top=True)
    assert float(acc) == 0.5
    np.testing.assert_array_equal(per_class, [1 / 3, 1.0, 0.0])  # class 2 never occurs -> 0


def test_nothing_counted_gives_zero_not_nan():
    acc, per_class = accuracy.forward(SCORES, np.full(4, 5.0), ignore_label=5, per_class_top=True)
    assert float(acc) == 0.0 and np.all(per_class == 0.0)


def test_spatial_axis_matches_the_loop_oracle():
    rng = np.random.default_rng(30)
    scores = rng.integers(0, 3, size=(3, 4, 2, 2)).astype(np.float64)  # small integers: many ties
    label = rng.integers(0, 4, size=(3, 1, 2, 2)).astype(np.float64)
    flat_scores = np.moveaxis(scores, 1, -1).reshape(-1, 4)
    for k in (1, 2, 3):
        (acc,) = accuracy.forward(scores, label, top_k=k)
        assert float(acc) == pytest.approx(loop_oracle(flat_scores, label.reshape(-1), k), abs=1e-15)
    (last,) = accuracy.forward(np.moveaxis(scores, 1, -1), label.reshape(3, 2, 2), axis=-1)
    assert float(last) == float(accuracy.forward(scores, label)[0])


def test_no_backward():
    with pytest.raises(NotImplementedError, match="no backward"):
        accuracy.backward(SCORES, LABEL, top_diffs=(1.0,))


def test_invalid_inputs():
    with pytest.raises(ValueError, match="top_k"):
        accuracy.forward(SCORES, LABEL, top_k=4)
    with pytest.raises(ValueError, match="out of range"):
        accuracy.forward(SCORES, np.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="label blob has 3"):
        accuracy.forward(SCORES, np.zeros(3))
