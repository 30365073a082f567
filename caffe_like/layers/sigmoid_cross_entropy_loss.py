"""SigmoidCrossEntropyLoss: cross-entropy of sigmoid(x) against targets t in [0, 1], computed stably.

    loss = −Σ_valid [ x·(t − [x ≥ 0]) − log(1 + exp(x − 2x·[x ≥ 0])) ] / normalizer

Gradient to x: (sigmoid(x) − t)·loss_weight/normalizer, 0 where t == ``ignore_label``; the targets get
no gradient.  Normalisation (BVLC master): ``loss_param.normalization`` if given, else the legacy
``normalize`` flag, else **BATCH_SIZE** (N = the first dimension) — "for historical reasons", unlike
the other losses' VALID.  Shape: x and t of the same count; top a scalar ``[]``.
See: Caffe sigmoid_cross_entropy_loss_layer.cpp.
"""

from __future__ import annotations

import math

import torch

from ..spec.schema import has
from .base import Layer
from .loss_common import normalization_mode, normalizer
from .registry import register_layer


@register_layer
class SigmoidCrossEntropyLoss(Layer):
    TYPE = "SigmoidCrossEntropyLoss"
    BOTTOMS = (2, 2)
    IS_LOSS = True
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        x, t = bottom_shapes
        if math.prod(x) != math.prod(t):
            raise self.fail(f"scores {list(x)} and targets {list(t)} must have the same count")
        loss_param = self.param("loss_param")
        self.mode = normalization_mode(loss_param, default="BATCH_SIZE")
        self.ignore_label = loss_param.ignore_label if has(loss_param, "ignore_label") else None

    def infer_shapes(self, bottom_shapes):
        return [()]

    def forward(self, x, target):
        target = target.reshape(x.shape).to(x.dtype)
        positive = (x >= 0).to(x.dtype)
        per_element = -(x * (target - positive) - torch.log1p(torch.exp(x - 2.0 * x * positive)))
        outer = x.shape[0]
        inner = x.numel() // max(outer, 1)
        if self.ignore_label is not None:
            valid = target != self.ignore_label
            per_element = per_element * valid
            count = valid.sum()
        else:
            count = x.numel()
        return (per_element.sum() / normalizer(self.mode, outer=outer, inner=inner, valid=count),)
