"""LayerInfo entry: Accuracy (BVLC master: ties count against the true class; 0 when nothing is counted)."""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def _labels(rng, shape, classes):
    return rng.integers(0, classes, size=shape).astype(np.float64)


def _samples(rng):
    scores = rng.standard_normal((8, 5))
    labels = _labels(rng, (8,), 5)
    # sample 0: the true class 1 ties class 3 for the maximum -> wrong with top_k 1, right with top_k 2
    # sample 1: true class 0 is the unique maximum -> right
    # sample 2: true class 2 is third -> right only with top_k 3
    tie_scores = np.array([[0.1, 0.9, 0.2, 0.9], [0.8, 0.1, 0.2, 0.3], [0.5, 0.2, 0.3, 0.6]])
    tie_labels = np.array([1.0, 0.0, 2.0])
    spatial = rng.standard_normal((2, 3, 2, 2))
    return [
        LayerSample("top1", (scores, labels), check_grad=False),
        LayerSample("top2", (scores, labels), layer={"accuracy_param": {"top_k": 2}}, check_grad=False),
        LayerSample("ties_count_against_top1", (tie_scores, tie_labels), check_grad=False,
                    expected=(np.array(1.0 / 3.0),)),
        LayerSample("ties_top2", (tie_scores, tie_labels), layer={"accuracy_param": {"top_k": 2}}, check_grad=False,
                    expected=(np.array(2.0 / 3.0),)),
        LayerSample("ties_top3_per_class", (tie_scores, tie_labels), layer={"accuracy_param": {"top_k": 3}},
                    n_tops=2, check_grad=False, expected=(np.array(1.0), np.array([1.0, 1.0, 1.0, 0.0]))),
        LayerSample("ignore_label", (scores, np.where(np.arange(8) % 3 == 0, 4.0, labels)),
                    layer={"accuracy_param": {"ignore_label": 4}}, n_tops=2, check_grad=False),
        LayerSample("all_ignored_is_0", (tie_scores, np.array([-1.0, -1.0, -1.0])),
                    layer={"accuracy_param": {"ignore_label": -1}}, n_tops=2, check_grad=False,
                    expected=(np.array(0.0), np.zeros(4))),
        LayerSample("spatial_labels_n1hw", (spatial, _labels(rng, (2, 1, 2, 2), 3)), n_tops=2, check_grad=False),
        LayerSample("spatial_labels_nhw", (spatial, _labels(rng, (2, 2, 2), 3)), check_grad=False),
        LayerSample("axis_negative", (rng.standard_normal((2, 3, 4)), _labels(rng, (2, 3), 4)),
                    layer={"accuracy_param": {"axis": -1, "top_k": 2}}, n_tops=2, check_grad=False),
        LayerSample("float_labels_truncate", (tie_scores, np.array([1.7, 0.2, 2.99])), check_grad=False,
                    expected=(np.array(1.0 / 3.0),)),
    ]


def _reference(sample, bottoms, blobs):
    """BVLC master's loop: count the classes scoring >= the true class (itself included)."""
    p = sample.layer.get("accuracy_param", {})
    scores, labels = bottoms
    axis = p.get("axis", 1) % scores.ndim
    top_k = p.get("top_k", 1)
    ignore = p.get("ignore_label")
    outer = int(np.prod(scores.shape[:axis]))
    classes = scores.shape[axis]
    inner = int(np.prod(scores.shape[axis + 1:]))
    data = scores.reshape(-1)
    label = labels.reshape(-1)
    dim = classes * inner
    correct, count = 0, 0
    hits, nums = np.zeros(classes), np.zeros(classes)
    for i in range(outer):
        for j in range(inner):
            y = int(label[i * inner + j])
            if ignore is not None and y == ignore:
                continue
            nums[y] += 1
            true_score = data[i * dim + y * inner + j]
            better = -1
            for k in range(classes):
                if data[i * dim + k * inner + j] >= true_score:
                    better += 1
            if better < top_k:
                correct += 1
                hits[y] += 1
            count += 1
    accuracy = np.array(0.0 if count == 0 else correct / count)
    per_class = np.array([0.0 if nums[c] == 0 else hits[c] / nums[c] for c in range(classes)])
    return [accuracy, per_class][: sample.n_tops]


INFOS = [
    LayerInfo("Accuracy", _samples, reference=_reference, grad_bottoms=(), onnx=False),
]
