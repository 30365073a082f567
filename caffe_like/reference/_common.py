"""Small helpers shared by the reference modules: dtypes, axes, labels, loss normalisation.

NumPy only.  Nothing here knows about a particular layer; each helper restates one piece of Caffe's
common loss-layer machinery (``LossLayer::GetNormalizer``, ``static_cast<int>`` of float labels, the
loss weight read from the top diff) so that the layer modules stay short.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: C's ``FLT_MIN`` (the smallest normal float32), Caffe's floor on probabilities before ``log``.
FLT_MIN = 1.17549435e-38

#: ``LossParameter.NormalizationMode`` values, spelled as in caffe.proto.
NORMALIZATION_MODES = ("FULL", "VALID", "BATCH_SIZE", "NONE")


def as_float(*arrays: object) -> tuple[np.ndarray, ...]:
    """Convert ``arrays`` to their common floating dtype (float64 when none of them is floating).

    float32 inputs stay float32 (the result type of float32 and float64 is float64), so a caller who wants
    reference-quality numbers passes float64, which is what every test of this package does.
    """
    arrs = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrs) if arrs else np.dtype(np.float64)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return tuple(a.astype(dtype, copy=False) for a in arrs)


def canonical_axis(axis: int, ndim: int, layer: str) -> int:
    """Caffe's ``CanonicalAxisIndex``: ``-ndim <= axis < ndim``, negative counts from the end."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ValueError(f"{layer}: axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{layer}: axis {axis} is out of range for a {ndim}-axis blob")
    return int(axis) % ndim


def count(shape: Sequence[int], start: int = 0, end: int | None = None) -> int:
    """Caffe's ``count(start, end)``: the product of ``shape[start:end]`` (1 for an empty range)."""
    return int(np.prod(shape[start:end], dtype=np.int64))


def int_labels(
    label: object,
    *,
    expected: int,
    num_classes: int,
    layer: str,
    ignore_label: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ``label`` and cast it to int the way Caffe does (``static_cast<int>``: truncation to zero).

    Returns ``(labels, valid)``: a flat int64 array of ``expected`` labels and a boolean mask that is False
    where the label equals ``ignore_label``.  Every non-ignored label must lie in ``[0, num_classes)``;
    Caffe only checks that in debug builds, the reference always raises ``ValueError``.
    """
    lab = np.asarray(label)
    if lab.size != expected:
        raise ValueError(
            f"{layer}: the label blob has {lab.size} elements (shape {lab.shape}) but the scores need "
            f"{expected} (one label per sample/position)"
        )
    lab = lab.reshape(-1)
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)):
            raise ValueError(f"{layer}: labels must be finite, got {lab[~np.isfinite(lab)][0]}")
        lab = np.trunc(lab)
    elif lab.dtype.kind not in "iub":
        raise ValueError(f"{layer}: labels must be numbers, got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    valid = np.ones(lab.shape, dtype=bool) if ignore_label is None else lab != int(ignore_label)
    bad = valid & ((lab < 0) | (lab >= num_classes))
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        extra = "" if ignore_label is None else f" and is not ignore_label ({ignore_label})"
        raise ValueError(
            f"{layer}: label {lab[pos]} at flat position {pos} is out of range [0, {num_classes}){extra}"
        )
    return lab, valid


def resolve_normalization(normalization: str | None, normalize: bool | None, default: str, layer: str) -> str:
    """Caffe's choice of ``LossParameter.normalization``.

    ``normalization`` wins when set; otherwise the legacy ``normalize`` flag maps True -> VALID and
    False -> BATCH_SIZE; with neither set the layer's own default applies (VALID for SoftmaxWithLoss,
    BATCH_SIZE for SigmoidCrossEntropyLoss).
    """
    if normalization is None:
        if normalize is None:
            return default
        return "VALID" if normalize else "BATCH_SIZE"
    mode = str(normalization).upper()
    if mode not in NORMALIZATION_MODES:
        raise ValueError(
            f"{layer}: unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATION_MODES)}"
        )
    return mode


def normalizer(mode: str, outer: int, inner: int, valid_count: int | None) -> float:
    """``LossLayer::GetNormalizer`` then ``max(1, .)``.

    FULL = outer*inner; VALID = ``valid_count`` (outer*inner when there is no ignore label, i.e.
    ``valid_count`` is None); BATCH_SIZE = outer; NONE = 1.  The clamp at 1 makes an all-ignored batch give a
    loss of 0 instead of NaN.
    """
    if mode == "FULL":
        value = outer * inner
    elif mode == "VALID":
        value = outer * inner if valid_count is None else valid_count
    elif mode == "BATCH_SIZE":
        value = outer
    elif mode == "NONE":
        value = 1
    else:  # pragma: no cover - resolve_normalization rejects these first
        raise ValueError(f"unknown normalization {mode!r}")
    return float(max(1.0, value))


def top_diff(top_diffs: Sequence[object], index: int, layer: str) -> np.ndarray | None:
    """``top_diffs[index]`` as an array, or None when the caller gave fewer diffs (or None there)."""
    if isinstance(top_diffs, np.ndarray) or not isinstance(top_diffs, Sequence):
        raise ValueError(
            f"{layer}: top_diffs must be a tuple with one diff per top, got {type(top_diffs).__name__}"
        )
    if index >= len(top_diffs) or top_diffs[index] is None:
        return None
    return np.asarray(top_diffs[index])


def loss_weight(top_diffs: Sequence[object], layer: str) -> float:
    """The diff of a scalar loss top, i.e. its loss weight (Caffe seeds loss tops' diff with it)."""
    diff = top_diff(top_diffs, 0, layer)
    if diff is None:
        raise ValueError(f"{layer}: top_diffs[0] (the loss top's diff = its loss weight) is required")
    if diff.size != 1:
        raise ValueError(
            f"{layer}: the loss top is a scalar, so its diff must have one element, got {diff.shape}"
        )
    return float(diff.reshape(-1)[0])


def scalar(value: float, dtype: np.dtype) -> np.ndarray:
    """A 0-d array, as Caffe's scalar loss top (shape ``[]``)."""
    return np.asarray(value, dtype=dtype).reshape(())
