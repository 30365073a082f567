"""EuclideanLoss: loss = Σ (a − b)² / (2N), N = the first dimension of bottom 0.

Both bottoms receive gradients (±(a − b)·loss_weight/N), unlike other losses.  Shape: the bottoms need
the same count from axis 1 on (their shapes may differ, e.g. N×1 and N); the top is a scalar ``[]``.
See: Caffe euclidean_loss_layer.cpp.
"""

from __future__ import annotations

import math

from .base import Layer
from .registry import register_layer


@register_layer
class EuclideanLoss(Layer):
    TYPE = "EuclideanLoss"
    BOTTOMS = (2, 2)
    IS_LOSS = True

    def setup(self, bottom_shapes):
        a, b = bottom_shapes
        if math.prod(a[1:]) != math.prod(b[1:]) or a[:1] != b[:1]:
            raise self.fail(f"the bottoms must have the same number and size of samples, got {list(a)} and {list(b)}",
                            fix="give both bottoms shape N×... with equal counts per sample")

    def infer_shapes(self, bottom_shapes):
        return [()]

    def forward(self, a, b):
        diff = a - b.reshape(a.shape)
        return ((diff * diff).sum() / (2.0 * a.shape[0]),)
