"""InnerProduct (fully connected): y = x·Wᵀ + b over the axes from ``axis`` on.

Shape: bottom (d0, ..., d_{axis-1}, ...) is flattened from ``axis`` into K = count(axis..end);
top is (d0, ..., d_{axis-1}, num_output).  Blobs: W [num_output, K] ([K, num_output] with
``transpose: true``) and b [num_output] when ``bias_term`` (default true).
NOTE: as in Caffe, no ``weight_filler`` means all-zero weights.  See: Caffe inner_product_layer.cpp.
"""

from __future__ import annotations

import math

import torch.nn.functional as F

from .base import Layer, canonical_axis
from .registry import register_layer


@register_layer
class InnerProduct(Layer):
    TYPE = "InnerProduct"

    def setup(self, bottom_shapes):
        p = self.param("inner_product_param")
        shape = bottom_shapes[0]
        self.axis = canonical_axis(p.axis, len(shape), self)
        self.num_output = p.num_output
        self.transpose = p.transpose
        self.k = math.prod(shape[self.axis:])
        weight_shape = (self.k, self.num_output) if self.transpose else (self.num_output, self.k)
        self.add_blob(weight_shape, p.weight_filler)
        self.bias_term = p.bias_term
        if self.bias_term:
            self.add_blob((self.num_output,), p.bias_filler)

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        k = math.prod(shape[self.axis:])
        if k != self.k:
            raise self.fail(f"input has {k} features from axis {self.axis} but the layer was set up for {self.k}")
        return [shape[: self.axis] + (self.num_output,)]

    def forward(self, x):
        flat = x.reshape(x.shape[: self.axis] + (-1,))
        weight = self.blobs[0].t() if self.transpose else self.blobs[0]
        bias = self.blobs[1] if self.bias_term else None
        return (F.linear(flat, weight, bias),)
