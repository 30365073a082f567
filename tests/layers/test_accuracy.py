"""Accuracy (BVLC master): ties count against the true class, 0 (not NaN) when nothing is counted,
per-class recall, spatial labels, no gradient, and clear errors for bad labels.

Expected numbers are hand-computed and compared exactly (they are ratios of small integers computed the
same way), in float64 and float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.errors import CaffeLikeError, ShapeError, SpecError
from caffe_like.reference import accuracy as reference_accuracy

import layer_db
from layer_db import LayerSample

DTYPES = ["float64", "float32"]

# row 0: label 1 ties class 3 for the maximum; row 1: label 0 is the unique maximum;
# row 2: label 2 is the third best; row 3: label 3 is the worst
SCORES = np.array([[0.1, 0.9, 0.2, 0.9], [0.8, 0.1, 0.2, 0.3], [0.5, 0.25, 0.375, 0.625], [1.0, 2.0, 3.0, 0.0]])
LABELS = np.array([1.0, 0.0, 2.0, 3.0])


def _net(scores, labels, param=None, n_tops=1, dtype="float64"):
    sample = LayerSample("t", (np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)),
                         layer={"accuracy_param": param} if param else {}, n_tops=n_tops)
    return layer_db.build("Accuracy", sample, dtype), sample


def _tops(scores, labels, param=None, n_tops=1, dtype="float64"):
    net, sample = _net(scores, labels, param, n_tops, dtype)
    return [t.double().numpy() for t in layer_db.run(net, sample, dtype)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("top_k,expected", [(1, 1 / 4), (2, 2 / 4), (3, 3 / 4), (4, 1.0)])
def test_ties_count_against_the_true_class(dtype, top_k, expected):
    # a sort-based top-1 (torch.topk / the SSD fork) could rank class 1 first in row 0 and count it
    (acc,) = _tops(SCORES, LABELS, {"top_k": top_k}, dtype=dtype)
    assert acc.shape == () and acc == np.float64(np.array(expected, dtype=dtype))


def test_per_class_accuracy_is_recall_and_0_for_an_absent_class():
    labels = np.array([1.0, 0.0, 2.0, 1.0])
    scores = SCORES.copy()
    scores[3] = [0.0, 5.0, 1.0, 2.0]  # label 1 is right here
    acc, per_class = _tops(scores, labels, {"top_k": 1}, n_tops=2)
    assert acc == 0.5
    assert per_class.tolist() == [1.0, 0.5, 0.0, 0.0]  # class 3 never occurs -> 0


def test_ignore_label_is_not_counted_and_all_ignored_gives_0():
    acc, per_class = _tops(SCORES, [1.0, 0.0, 255.0, 255.0], {"ignore_label": 255}, n_tops=2)
    assert acc == 0.5 and per_class.tolist() == [1.0, 0.0, 0.0, 0.0]
    acc, per_class = _tops(SCORES, [255.0] * 4, {"ignore_label": 255}, n_tops=2)
    assert acc == 0.0 and not np.isnan(acc) and per_class.tolist() == [0.0] * 4


def test_ignore_label_0_is_honoured_when_given():
    # the schema default of ignore_label is 0, but only a given field ignores anything
    (acc,) = _tops(SCORES, LABELS)
    (acc_ignoring_0,) = _tops(SCORES, LABELS, {"ignore_label": 0})
    assert acc == 1 / 4 and acc_ignoring_0 == 0.0


def test_spatial_scores_with_n1hw_or_nhw_labels():
    # scores (N=1, C=2, H=1, W=3); label per position
    scores = np.array([[[[0.9, 0.1, 0.5]], [[0.1, 0.9, 0.5]]]])
    for labels in (np.array([[[[0.0, 1.0, 1.0]]]]), np.array([[[0.0, 1.0, 1.0]]]), np.array([0.0, 1.0, 1.0])):
        (acc,) = _tops(scores, labels)
        assert acc == 2 / 3  # the third position is a tie -> wrong


def test_class_axis_can_be_last():
    scores = np.array([[[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]])  # (1, 3 positions, 2 classes)
    (acc,) = _tops(scores, [[1.0, 1.0, 0.0]], {"axis": -1})
    assert acc == 1 / 3


def test_float_labels_are_truncated_like_static_cast():
    (acc,) = _tops(SCORES, [1.9, 0.99, 2.5, 3.0001], {"top_k": 3})
    assert acc == 3 / 4


def test_nan_true_score_counts_as_correct_as_in_caffe():
    # every comparison with NaN is false, so no class is ">=" the true one: better = -1 < top_k
    scores = np.array([[np.nan, 1.0], [0.0, 1.0]])
    (acc,) = _tops(scores, [0.0, 0.0])
    assert acc == 0.5


def test_matches_the_numpy_reference_module():
    rng = np.random.default_rng(7)
    scores = np.round(rng.standard_normal((3, 5, 2, 4)), 1)  # rounding creates ties
    labels = rng.integers(0, 5, (3, 1, 2, 4)).astype(np.float64)
    labels[0, 0, 0] = 4.0
    for top_k in (1, 2, 5):
        got = _tops(scores, labels, {"top_k": top_k, "ignore_label": 4}, n_tops=2)
        want = reference_accuracy.forward(scores, labels, top_k=top_k, ignore_label=4, per_class_top=True)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-15, atol=0)


def test_no_gradient():
    net, sample = _net(SCORES, LABELS, n_tops=2)
    inputs = {k: v.requires_grad_(True) for k, v in layer_db.inputs_of(sample).items()}
    net(**inputs)
    assert not net.blobs["t0"].requires_grad and not net.blobs["t1"].requires_grad
    spec = layer_db.layer_net_dict("Accuracy", sample)
    spec["layer"][-1]["propagate_down"] = [True, False]
    with pytest.raises(SpecError, match="propagate_down"):
        caffe_like.Net(spec)


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [4.0, -1.0])
def test_out_of_range_label_is_an_error(label):
    net, _ = _net(SCORES, LABELS)
    with pytest.raises(CaffeLikeError) as err:
        net(b0=torch.tensor(SCORES), b1=torch.tensor([0.0, 1.0, label, 2.0], dtype=torch.float64))
    text = str(err.value)
    assert "layer 'L' (Accuracy)" in text and f"label {int(label)} is out of range for 4 classes" in text


def test_an_ignored_label_may_be_out_of_range():
    (acc,) = _tops(SCORES, [1.0, 0.0, -1.0, 3.0], {"ignore_label": -1})
    assert acc == 1 / 3


def test_label_count_mismatch_is_an_error_naming_the_shapes():
    with pytest.raises(ShapeError) as err:
        _net(np.zeros((2, 3, 4, 4)), np.zeros((2, 5)))
    text = str(err.value)
    assert "layer 'L' (Accuracy)" in text and "[2, 5]" in text and "[2, 3, 4, 4]" in text and "need 32" in text


def test_only_the_label_count_matters_as_in_caffe():
    # Caffe checks outer*inner == label count, not the label shape
    net, sample = _net(np.zeros((2, 3, 4, 4)), np.zeros((2, 4, 4, 1)))
    (acc,) = layer_db.run(net, sample)
    assert acc.item() == 0.0  # all scores tie -> every position is wrong


def test_top_k_larger_than_the_classes_is_an_error():
    with pytest.raises(ShapeError, match="top_k 5 is larger than the number of classes 4"):
        _net(SCORES, LABELS, {"top_k": 5})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    cpu = _tops(SCORES, LABELS, {"top_k": 2}, n_tops=2)
    net, sample = _net(SCORES, LABELS, {"top_k": 2}, n_tops=2)
    net.to("cuda")
    net(**{k: v.cuda() for k, v in layer_db.inputs_of(sample).items()})
    for i, want in enumerate(cpu):
        np.testing.assert_array_equal(net.blobs[f"t{i}"].cpu().numpy(), want)


def test_accuracy_is_not_a_loss_by_default():
    # only LossLayers default to loss_weight 1 on their first top; Accuracy's weight is 0
    net, sample = _net(SCORES, LABELS)
    layer_db.run(net, sample)
    assert net.loss.item() == 0.0 and net.blobs["t0"].item() == 0.25
