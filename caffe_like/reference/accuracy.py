r"""Reference for Caffe's ``Accuracy`` layer, BVLC master semantics (``accuracy_layer.cpp``).

With ``outer = count(0, axis)``, ``C = shape[axis]``, ``inner = count(axis+1)``, for every position
``(n, i)`` whose label ``y`` is not ``ignore_label``::

    better = #{k : score[n, k, i] >= score[n, y, i]} - 1     (the classes other than y that tie or beat it)
    correct  <=>  better < top_k

    accuracy = #correct / #counted       (0 when nothing is counted)
    per_class[c] = #correct with label c / #counted with label c   (0 for a class that never occurs)

Ties count *against* the sample: with ``top_k = 1`` a sample whose true score ties another class's is wrong.
(The SSD-flavoured fork described in the fact sheet sorts instead and gives NaN for an empty count;
caffe_like follows BVLC master.)

Accuracy is not a loss (loss_weight 0) and has no backward: :func:`backward` raises
``NotImplementedError``, as Caffe's ``Backward_cpu`` does (``NOT_IMPLEMENTED``) when asked to propagate.

Shape:
    scores: class axis at ``axis``; label: ``outer*inner`` elements; accuracy: ``()``; per_class: ``(C,)``.

See: Caffe ``AccuracyLayer`` (``accuracy_param``: top_k = 1, axis = 1, ignore_label).
NOTE: unlike Caffe, out-of-range labels raise ``ValueError`` (Caffe only ``DCHECK``s them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, canonical_axis, count, int_labels, scalar

TYPE = "Accuracy"


def forward(
    scores: np.ndarray,
    label: np.ndarray,
    *,
    top_k: int = 1,
    axis: int = 1,
    ignore_label: int | None = None,
    per_class_top: bool = False,
) -> tuple[np.ndarray, ...]:
    """Returns ``(accuracy,)``, or ``(accuracy, per_class)`` with ``per_class_top=True``."""
    (scores,) = as_float(scores)
    if scores.ndim < 1:
        raise ValueError(f"{TYPE}: scores must have at least one axis")
    ax = canonical_axis(axis, scores.ndim, TYPE)
    outer, classes, inner = count(scores.shape, 0, ax), scores.shape[ax], count(scores.shape, ax + 1)
    if int(top_k) != top_k or top_k < 0:
        raise ValueError(f"{TYPE}: top_k must be a non-negative integer, got {top_k!r}")
    if top_k > classes:
        raise ValueError(
            f"{TYPE}: top_k ({top_k}) must be less than or equal to the number of classes ({classes})"
        )
    lab, valid = int_labels(
        label, expected=outer * inner, num_classes=classes, layer=TYPE, ignore_label=ignore_label
    )
    s3 = scores.reshape(outer, classes, inner)
    lab2, valid2 = lab.reshape(outer, inner), valid.reshape(outer, inner)
    true_score = np.take_along_axis(s3, np.where(valid2, lab2, 0)[:, None, :], axis=1)
    better = np.sum(s3 >= true_score, axis=1) - 1
    correct = valid2 & (better < top_k)
    n_counted = int(valid2.sum())
    accuracy = scalar(correct.sum() / n_counted if n_counted else 0.0, scores.dtype)
    if not per_class_top:
        return (accuracy,)
    seen = np.bincount(lab2[valid2], minlength=classes)
    hits = np.bincount(lab2[correct], minlength=classes)
    per_class = np.where(seen > 0, hits / np.maximum(seen, 1), 0.0).astype(scores.dtype)
    return accuracy, per_class


def backward(*args: object, top_diffs: Sequence[object] | None = None, **params: object) -> tuple:
    """Always raises ``NotImplementedError``: Accuracy has no gradient (Caffe: ``NOT_IMPLEMENTED``)."""
    raise NotImplementedError(
        "Accuracy has no backward pass (Caffe's AccuracyLayer::Backward is NOT_IMPLEMENTED)"
    )
