r"""Reference for Caffe's ``SoftmaxWithLoss`` layer (``softmax_loss_layer.cpp`` + ``LossLayer``).

With ``outer = count(0, axis)``, ``C = shape[axis]``, ``inner = count(axis+1)`` and ``p = softmax(x, axis)``::

    loss = sum over valid positions (n, i) of -log(max(p[n, label[n,i], i], FLT_MIN)) / normalizer
    dx   = loss_weight / normalizer * (p - onehot(label))   at valid positions, 0 at ignored ones

* Labels are floats cast to int by truncation (``static_cast<int>``); a position is ignored when its label
  equals ``ignore_label``.  Other labels must lie in ``[0, C)`` (``ValueError`` otherwise).
* ``FLT_MIN = 1.17549435e-38`` caps the per-position loss at ``-ln(FLT_MIN) = 87.3365``.  The gradient is
  *not* capped (it stays ``p - 1``), so where the cap is active the gradient is Caffe's, not the derivative
  of the capped loss; finite-difference checks must avoid such positions.
* normalizer (then ``max(1, .)``): FULL = outer*inner (ignored positions still counted); VALID = number of
  non-ignored positions (= FULL without ``ignore_label``); BATCH_SIZE = outer; NONE = 1.
* ``normalization=None`` means "not set in the prototxt": then the legacy ``normalize`` flag decides
  (True -> VALID, False -> BATCH_SIZE) and with neither set the mode is VALID, as in caffe.proto.
* The optional second top ``prob`` (``prob_top=True``) is ``p``; like Caffe, ``backward`` ignores its diff.

Shape:
    scores: ``(d0, ..., C, ...)`` with the class axis at ``axis``; label: ``outer*inner`` elements (any
    shape, e.g. ``(N, 1, H, W)``); loss: ``()``; prob: scores' shape.

See: Caffe ``SoftmaxWithLossLayer`` and ``LossLayer::GetNormalizer`` (identical in BVLC master).
NOTE: unlike Caffe, out-of-range labels raise ``ValueError`` (Caffe only ``DCHECK``s them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import (
    FLT_MIN,
    as_float,
    canonical_axis,
    count,
    int_labels,
    loss_weight,
    normalizer,
    resolve_normalization,
    scalar,
)
from .softmax import softmax

TYPE = "SoftmaxWithLoss"


def _setup(scores, label, axis, normalization, normalize, ignore_label):
    (scores,) = as_float(scores)
    if scores.ndim < 1:
        raise ValueError(f"{TYPE}: scores must have at least one axis")
    ax = canonical_axis(axis, scores.ndim, TYPE)
    outer, classes, inner = count(scores.shape, 0, ax), scores.shape[ax], count(scores.shape, ax + 1)
    mode = resolve_normalization(normalization, normalize, "VALID", TYPE)
    lab, valid = int_labels(
        label, expected=outer * inner, num_classes=classes, layer=TYPE, ignore_label=ignore_label
    )
    prob = softmax(scores, ax)
    valid_count = None if ignore_label is None else int(valid.sum())
    norm = normalizer(mode, outer, inner, valid_count)
    return (
        scores,
        prob.reshape(outer, classes, inner),
        lab.reshape(outer, inner),
        valid.reshape(outer, inner),
        norm,
    )


def forward(
    scores: np.ndarray,
    label: np.ndarray,
    *,
    axis: int = 1,
    normalization: str | None = None,
    normalize: bool | None = None,
    ignore_label: int | None = None,
    prob_top: bool = False,
) -> tuple[np.ndarray, ...]:
    """Returns ``(loss,)``, or ``(loss, prob)`` with ``prob_top=True``; the loss is unweighted."""
    scores, p3, lab, valid, norm = _setup(scores, label, axis, normalization, normalize, ignore_label)
    safe = np.where(valid, lab, 0)
    p_label = np.take_along_axis(p3, safe[:, None, :], axis=1)[:, 0, :]
    per_position = -np.log(np.maximum(p_label, FLT_MIN))
    loss = scalar(np.sum(per_position[valid]) / norm, scores.dtype)
    if prob_top:
        return loss, p3.reshape(scores.shape)
    return (loss,)


def backward(
    scores: np.ndarray,
    label: np.ndarray,
    *,
    top_diffs: Sequence[object],
    axis: int = 1,
    normalization: str | None = None,
    normalize: bool | None = None,
    ignore_label: int | None = None,
    prob_top: bool = False,
) -> tuple[np.ndarray, None]:
    """Returns ``(dscores, None)``; ``top_diffs[0]`` is the loss weight, a ``prob`` diff is ignored."""
    del prob_top  # Caffe's backward never reads the prob top's diff
    lw = loss_weight(top_diffs, TYPE)
    scores, p3, lab, valid, norm = _setup(scores, label, axis, normalization, normalize, ignore_label)
    diff = p3.copy()
    n_idx, i_idx = np.nonzero(valid)
    diff[n_idx, lab[n_idx, i_idx], i_idx] -= 1.0
    diff *= valid[:, None, :]
    diff *= lw / norm
    return diff.reshape(scores.shape), None
