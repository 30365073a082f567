"""ReciprocalNormLoss reference: the paper's Eq. 8 feature incay term and its normalisations."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_like.reference import reciprocal_norm_loss

from ._helpers import assert_grad

EPS = 1e-5
F = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])  # |f|^2 = 25, 1, 4
SCORES = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])  # argmax 0, 1, 0 (a tie: the first maximum)
LABEL = np.array([0.0, 0.0, 0.0])  # h = 1, 0, 1
CORRECT_SUM = 1 / (25 + EPS) + 1 / (4 + EPS)


@pytest.mark.parametrize(
    ("normalization", "denominator"),
    [(None, 3), ("BATCH_SIZE", 3), ("FULL", 3), ("VALID", 2), ("NONE", 1)],
)
def test_loss_and_gradient_by_hand(normalization, denominator):
    (loss,) = reciprocal_norm_loss.forward(F, SCORES, LABEL, normalization=normalization)
    assert loss.shape == () and float(loss) == pytest.approx(CORRECT_SUM / denominator, rel=1e-15)
    df, dscores, dlabel = reciprocal_norm_loss.backward(
        F, SCORES, LABEL, top_diffs=(0.1,), normalization=normalization
    )
    assert dscores is None and dlabel is None
    expected = np.array([-2 * F[0] / (25 + EPS) ** 2, [0.0, 0.0], -2 * F[2] / (4 + EPS) ** 2]) * (
        0.1 / denominator
    )
    np.testing.assert_allclose(df, expected, rtol=1e-14)


def test_default_is_the_papers_batch_size_normalisation():
    (a,) = reciprocal_norm_loss.forward(F, SCORES, LABEL)
    (b,) = reciprocal_norm_loss.forward(F, SCORES, LABEL, normalization="BATCH_SIZE")
    assert float(a) == float(b)


def test_misclassified_rows_get_zero_gradient():
    df, _, _ = reciprocal_norm_loss.backward(F, SCORES, np.array([1.0, 0.0, 1.0]), top_diffs=(1.0,))
    # h = [0, 0, 0]: argmax 0 != 1, argmax 1 != 0, tie -> 0 != 1
    assert np.all(df == 0.0)
    (loss,) = reciprocal_norm_loss.forward(F, SCORES, np.array([1.0, 0.0, 1.0]), normalization="VALID")
    assert float(loss) == 0.0  # nothing correct: the VALID normaliser is clamped at 1


def test_argmax_ties_resolve_to_the_first_maximum():
    f = np.array([[1.0, 1.0]])
    scores = np.array([[2.0, 2.0, 1.0]])
    assert float(reciprocal_norm_loss.forward(f, scores, np.array([0.0]))[0]) == pytest.approx(1 / (2 + EPS))
    assert float(reciprocal_norm_loss.forward(f, scores, np.array([1.0]))[0]) == 0.0


def test_epsilon_bounds_the_zero_feature():
    f = np.zeros((1, 3))
    scores, label = np.array([[1.0, 0.0]]), np.array([0.0])
    (loss,) = reciprocal_norm_loss.forward(f, scores, label, epsilon=1e-3)
    assert float(loss) == pytest.approx(1e3)
    df, _, _ = reciprocal_norm_loss.backward(f, scores, label, top_diffs=(1.0,), epsilon=1e-3)
    assert np.all(df == 0.0)
    small, _, _ = reciprocal_norm_loss.backward(F, SCORES, LABEL, top_diffs=(1.0,), epsilon=0.0)
    big, _, _ = reciprocal_norm_loss.backward(F, SCORES, LABEL, top_diffs=(1.0,), epsilon=10.0)
    assert np.all(np.abs(big) <= np.abs(small))  # a larger epsilon damps the push on small norms


def test_four_d_features_are_flattened():
    rng = np.random.default_rng(80)
    f = rng.normal(size=(4, 2, 3, 3))
    scores = rng.normal(size=(4, 5, 1, 1))
    label = np.argmax(scores.reshape(4, 5), axis=1).astype(np.float64)
    label[1] = (label[1] + 1) % 5
    (a,) = reciprocal_norm_loss.forward(f, scores, label)
    (b,) = reciprocal_norm_loss.forward(f.reshape(4, 18), scores.reshape(4, 5), label)
    assert float(a) == float(b) and float(a) > 0
    df, _, _ = reciprocal_norm_loss.backward(f, scores, label, top_diffs=(1.0,))
    assert df.shape == f.shape and np.all(df[1] == 0.0)


@pytest.mark.parametrize("normalization", ["BATCH_SIZE", "VALID", "FULL", "NONE"])
def test_gradient_matches_finite_differences(normalization):
    rng = np.random.default_rng(81)
    f, scores = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    label = rng.integers(0, 4, size=6).astype(np.float64)
    label[:3] = np.argmax(scores[:3], axis=1)  # at least three correct rows
    assert_grad(reciprocal_norm_loss, [f, scores, label], {"normalization": normalization, "epsilon": 0.1})


def test_random_directions_on_a_bigger_input():
    rng = np.random.default_rng(82)
    f, scores = rng.normal(size=(64, 32)), rng.normal(size=(64, 10))
    label = np.argmax(scores, axis=1).astype(np.float64)
    label[::3] = (label[::3] + 1) % 10
    assert_grad(reciprocal_norm_loss, [f, scores, label], {}, mode="random")


def test_invalid_inputs():
    with pytest.raises(ValueError, match="batch axis"):
        reciprocal_norm_loss.forward(F, SCORES[:2], LABEL)
    with pytest.raises(ValueError, match="out of range"):
        reciprocal_norm_loss.forward(F, SCORES, np.array([0.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="unknown normalization"):
        reciprocal_norm_loss.forward(F, SCORES, LABEL, normalization="MEAN")
    with pytest.raises(ValueError, match="epsilon"):
        reciprocal_norm_loss.forward(F, SCORES, LABEL, epsilon=-1.0)
