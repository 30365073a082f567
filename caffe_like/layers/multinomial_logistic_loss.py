"""MultinomialLogisticLoss: loss = −Σ_n log(max(p_{n, y_n}, 1e-20)) / N, on probabilities p.

The gradient to p is Caffe's −loss_weight / (N · max(p, 1e-20)) at the label (also where the floor
applies); the label gets none.  Shape: p N×C×... (C = count/N), labels N; top a scalar ``[]``.
See: Caffe multinomial_logistic_loss_layer.cpp (kLOG_THRESHOLD = 1e-20).
"""

from __future__ import annotations

import math

import torch

from .base import Layer
from .loss_common import labels_as_index, value_with_gradient_of
from .registry import register_layer

LOG_THRESHOLD = 1e-20


@register_layer
class MultinomialLogisticLoss(Layer):
    TYPE = "MultinomialLogisticLoss"
    BOTTOMS = (2, 2)
    IS_LOSS = True
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        prob, labels = bottom_shapes
        if math.prod(labels) != prob[0]:
            raise self.fail(f"probabilities {list(prob)} need {prob[0]} labels, got label shape {list(labels)}")

    def infer_shapes(self, bottom_shapes):
        return [()]

    def forward(self, prob, labels):
        n = prob.shape[0]
        flat = prob.reshape(n, -1)
        index = labels_as_index(labels, n, self, n_classes=flat.shape[1], ignore_label=None)
        picked = flat.gather(1, index[:, None]).squeeze(1)
        floored = value_with_gradient_of(picked.clamp_min(LOG_THRESHOLD), picked)
        # d(−log floored)/dp = −1/floored: Caffe's gradient, also below the floor
        return (-torch.log(floored).sum() / n,)
