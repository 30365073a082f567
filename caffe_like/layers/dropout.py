"""Dropout: in TRAIN, y = x * mask / (1 - ratio) with mask ~ Bernoulli(1 - ratio); in TEST, y = x.

The gradient uses the same mask: dx = dy * mask / (1 - ratio) (identity in TEST).  The mask is drawn from
torch's random generator, so the solver's ``random_seed`` (``torch.manual_seed``) makes it reproducible; it
cannot equal Caffe's own draws.

Shape: top = bottom, any shape.  Parameters: ``dropout_ratio`` (default 0.5) in [0, 1).

``scale_train`` (an extension some Caffe forks add to DropoutParameter as field 3, default true; not in
BVLC master's caffe.proto): false keeps the surviving values unscaled in TRAIN and multiplies by
(1 - ratio) in TEST instead (classic, non-inverted dropout).  It is honoured when the schema carries it.

NOTE: unlike ``torch.nn.Dropout``, the mode comes from the layer's phase (its ``phase`` field, else the
net's), never from ``module.train()`` / ``module.eval()``.
NOTE: Caffe only DCHECKs 0 < ratio < 1 (debug builds); caffe_like accepts ratio 0 (the identity, as a
release build of Caffe computes) and refuses ratios outside [0, 1) with a clear error.
See: Caffe dropout_layer.cpp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Layer
from .registry import register_layer


@register_layer
class Dropout(Layer):
    TYPE = "Dropout"

    def setup(self, bottom_shapes):
        p = self.param("dropout_param")
        self.ratio = float(p.dropout_ratio)
        if not 0.0 <= self.ratio < 1.0:
            raise self.fail(f"dropout_ratio must be in [0, 1), got {self.ratio}", shape=False,
                            fix="use a ratio such as 0.5 (the probability of dropping a value)")
        self.scale_train = p.scale_train

    def infer_shapes(self, bottom_shapes):
        return [bottom_shapes[0]]

    def forward(self, x):
        if self.phase == "TRAIN":
            if self.scale_train:
                return (F.dropout(x, self.ratio, training=True),)
            mask = torch.empty_like(x).bernoulli_(1.0 - self.ratio)
            return (x * mask,)
        if self.scale_train or self.ratio == 0.0:
            return (x,)  # the identity: the top is the bottom's tensor, nothing is copied or mutated
        return (x * (1.0 - self.ratio),)
