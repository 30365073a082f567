"""Pieces shared by the loss layers: Caffe's normalisation and label handling.

See: Caffe loss_layer.cpp (GetNormalizer) and softmax_loss_layer.cpp.
"""

from __future__ import annotations

import torch

from ..spec.schema import has

__all__ = ["normalization_mode", "normalizer", "labels_as_index", "value_with_gradient_of"]


def normalization_mode(loss_param, default: str = "VALID") -> str:
    """The LossParameter's mode: ``normalization`` when given, else the legacy ``normalize`` flag
    (true -> VALID, false -> BATCH_SIZE), else ``default``."""
    if has(loss_param, "normalization"):
        return loss_param.normalization
    if has(loss_param, "normalize"):
        return "VALID" if loss_param.normalize else "BATCH_SIZE"
    return default


def normalizer(mode: str, *, outer: int, inner: int, valid: torch.Tensor | int) -> torch.Tensor | float:
    """Caffe's GetNormalizer, clamped at 1: FULL = outer·inner, VALID = number of valid positions,
    BATCH_SIZE = outer, NONE = 1.  ``valid`` may be a tensor (counted on the device)."""
    if mode == "FULL":
        return float(max(outer * inner, 1))
    if mode == "VALID":
        if isinstance(valid, torch.Tensor):
            return valid.clamp_min(1)
        return float(max(valid, 1))
    if mode == "BATCH_SIZE":
        return float(max(outer, 1))
    return 1.0


def labels_as_index(labels: torch.Tensor, count: int, layer, *, n_classes: int,
                    ignore_label: int | None) -> torch.Tensor:
    """Labels (float as Caffe feeds them, truncated like static_cast<int>) as a flat int64 tensor of
    ``count`` entries; a label outside [0, n_classes) that is not ``ignore_label`` is an error."""
    if labels.numel() != count:
        raise layer.fail(f"the label blob has {labels.numel()} entries but the scores need {count} "
                         f"(one per position); label shape {list(labels.shape)}")
    index = labels.reshape(-1).long()
    if not index.numel():
        return index
    low, high = torch.stack(torch.aminmax(index)).tolist()  # one reduction, one read
    if low >= 0 and high < n_classes:
        return index
    bad = (index < 0) | (index >= n_classes)
    if ignore_label is not None:
        bad &= index != ignore_label
    if bool(bad.any()):
        value = index[bad][0].item()
        raise layer.fail(f"label {value} is out of range for {n_classes} classes",
                         fix="labels must be in [0, num_classes) or equal ignore_label")
    return index


def value_with_gradient_of(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """A tensor equal to ``value`` whose gradient is that of ``surrogate`` (same shape).

    Caffe sometimes reports a clipped value but back-propagates the unclipped formula (the 87.34 cap of
    SoftmaxWithLoss, the 1e-20 floor of MultinomialLogisticLoss); this reproduces both at once.  The value
    is ``value`` exactly (``surrogate - surrogate.detach()`` is 0), also where ``surrogate`` is so large
    that ``surrogate + (value - surrogate)`` would round to 0 (a loss of 1e20 capped at 87.34).
    """
    return value.detach() + (surrogate - surrogate.detach())
