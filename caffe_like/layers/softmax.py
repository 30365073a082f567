"""Softmax along one axis: y_c = exp(x_c - max_c' x_c') / Σ_c'' exp(x_c'' - max_c' x_c').

Every (outer, inner) position is an independent softmax over ``axis`` (default 1, negative counts from
the end), with its own maximum subtracted first, so large scores do not overflow.
Backward: dx = (dy - Σ_c dy_c · y_c) · y, the sum taken over ``axis`` at each position.

Shape: top = bottom, any number of axes >= 1.
NOTE: as ``torch.softmax`` (which computes exactly this), not as ``torch.nn.Softmax()`` without ``dim``,
whose implicit axis choice Caffe does not have.
See: Caffe softmax_layer.cpp.
"""

from __future__ import annotations

import torch

from .base import Layer, canonical_axis
from .registry import register_layer


@register_layer
class Softmax(Layer):
    TYPE = "Softmax"

    def setup(self, bottom_shapes):
        self.axis_param = self.param("softmax_param").axis
        self.axis = canonical_axis(self.axis_param, len(bottom_shapes[0]), self)

    def infer_shapes(self, bottom_shapes):
        self.axis = canonical_axis(self.axis_param, len(bottom_shapes[0]), self)
        return [bottom_shapes[0]]

    def forward(self, x):
        return (torch.softmax(x, dim=self.axis),)
