"""HingeLoss (one-vs-all): h_nk = max(0, 1 − t_nk·x_nk) with t = +1 for the true class, −1 otherwise.

    L1 (default): loss = Σ h / N        L2: loss = Σ h² / N

Shape: scores N×... (C = count/N classes), labels N (float, truncated); top a scalar ``[]``.  The label
gets no gradient; at the hinge (h = 0) the L1 gradient is 0, as Caffe's sign(0).
See: Caffe hinge_loss_layer.cpp.
"""

from __future__ import annotations

import math

import torch

from .base import Layer
from .loss_common import labels_as_index
from .registry import register_layer


@register_layer
class HingeLoss(Layer):
    TYPE = "HingeLoss"
    BOTTOMS = (2, 2)
    IS_LOSS = True
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        scores, labels = bottom_shapes
        self.norm = self.param("hinge_loss_param").norm
        if math.prod(labels) != scores[0]:
            raise self.fail(f"scores {list(scores)} need {scores[0]} labels, got label shape {list(labels)}")

    def infer_shapes(self, bottom_shapes):
        return [()]

    def forward(self, scores, labels):
        n = scores.shape[0]
        flat = scores.reshape(n, -1)
        index = labels_as_index(labels, n, self, n_classes=flat.shape[1], ignore_label=None)
        sign = torch.full_like(flat, -1.0).scatter_(1, index[:, None], 1.0)
        margin = torch.relu(1.0 - sign * flat)
        if self.norm == "L2":
            margin = margin * margin
        return (margin.sum() / n,)
