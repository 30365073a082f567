"""LRN: local response normalisation, across channels or within each channel (AlexNet's "norm").

ACROSS_CHANNELS (the default), with n = local_size and the channel window centred on c:
    y[n, c, h, w] = x[n, c, h, w] · (k + alpha/n · Σ_{c' = c-(n-1)/2}^{c+(n-1)/2} x[n, c', h, w]²) ^ (−beta)
    (channels outside 0..C-1 count as zeros; the divisor is always n, also at the borders).
WITHIN_CHANNEL, with the n×n window centred on (h, w):
    y = x · (1 + alpha/n² · Σ_{n×n window} x²) ^ (−beta)
    (Caffe builds it from AVE pooling with kernel n, stride 1 and pad (n-1)/2, whose divisor counts the
    zero padding, so it is always n²; ``k`` is ignored: the constant is 1.)
Defaults: local_size 5 (must be odd), alpha 1, beta 0.75, k 1.

Shape: bottom (N, C, H, W) -> top of the same shape (Caffe requires 4 axes).
NOTE: ACROSS_CHANNELS has the semantics of ``torch.nn.functional.local_response_norm`` (the same alpha/n
scaling and zero padding), computed here as Caffe does, x · scale^−beta, with one ``avg_pool2d`` over the
channel axis (faster than PyTorch's padded ``avg_pool3d``).  PyTorch has no WITHIN_CHANNEL mode: it is an
``avg_pool2d`` with count_include_pad, whose divisor is n² everywhere for these windows.
See: Caffe lrn_layer.cpp.
"""

from __future__ import annotations

import torch.nn.functional as F

from .base import Layer
from .registry import register_layer

__all__ = ["LRN"]


@register_layer
class LRN(Layer):
    TYPE = "LRN"

    def setup(self, bottom_shapes):
        p = self.param("lrn_param")
        self.size = int(p.local_size)
        if self.size <= 0 or self.size % 2 == 0:
            raise self.fail(f"local_size must be a positive odd number, got {self.size}", shape=False,
                            fix="use an odd local_size such as 3 or 5")
        self.alpha = float(p.alpha)
        self.beta = float(p.beta)
        self.k = float(p.k)
        self.region = p.norm_region
        self.infer_shapes(bottom_shapes)

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise self.fail(f"the bottom must have 4 axes (N, C, H, W), got shape {list(shape)}",
                            fix="reshape the input to N x C x H x W")
        return [shape]

    def forward(self, x):
        pad = (self.size - 1) // 2
        square = x * x
        if self.region == "ACROSS_CHANNELS":
            # the channel axis as the height of a 1-channel image: a (n x 1) zero-padded window mean
            n, c, h, w = x.shape
            mean_square = F.avg_pool2d(square.reshape(n, 1, c, h * w), (self.size, 1), stride=1, padding=(pad, 0),
                                       count_include_pad=True).reshape(n, c, h, w)
            return (x * (self.k + self.alpha * mean_square).pow(-self.beta),)
        mean_square = F.avg_pool2d(square, self.size, stride=1, padding=pad, count_include_pad=True)
        return (x * (1.0 + self.alpha * mean_square).pow(-self.beta),)

    def extra_repr(self) -> str:
        if "region" not in self.__dict__:  # setup failed
            return super().extra_repr()
        return (f"{super().extra_repr()}, {self.region}, local_size={self.size}, alpha={self.alpha}, "
                f"beta={self.beta}, k={self.k}")
