"""SoftmaxWithLoss: softmax over ``softmax_param.axis`` followed by the multinomial logistic loss.

    loss = −Σ_{valid i} log(max(p_{i, y_i}, FLT_MIN)) / normalizer

* the per-position loss is capped at −ln(FLT_MIN) ≈ 87.3365 (a probability that underflows), but the
  gradient is Caffe's uncapped ``(softmax − onehot) · loss_weight / normalizer``;
* positions whose label equals ``loss_param.ignore_label`` count neither in the loss nor the gradient;
* normalizer (``loss_param.normalization``, default VALID; legacy ``normalize: false`` = BATCH_SIZE):
  FULL = outer·inner, VALID = non-ignored positions, BATCH_SIZE = outer, NONE = 1, clamped at 1;
* labels are floats (Caffe's habit) truncated to ints; the label gets no gradient.

Shape: scores (outer..., C, inner...) with C at ``axis``; labels with outer·inner entries; top 0 a
scalar ``[]``; optional top 1 the probabilities (same shape as the scores; then give one loss_weight
per top).  See: Caffe softmax_loss_layer.cpp, loss_layer.cpp.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..spec.schema import has
from .base import Layer, canonical_axis
from .loss_common import labels_as_index, normalization_mode, normalizer, value_with_gradient_of
from .registry import register_layer

#: −ln(FLT_MIN): the largest per-position loss Caffe can report
LOSS_CAP = -math.log(1.17549435e-38)


@register_layer
class SoftmaxWithLoss(Layer):
    TYPE = "SoftmaxWithLoss"
    BOTTOMS = (2, 2)
    TOPS = (1, 2)
    IS_LOSS = True
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        scores, labels = bottom_shapes
        self.axis = canonical_axis(self.param("softmax_param").axis, len(scores), self)
        loss_param = self.param("loss_param")
        self.ignore_label = loss_param.ignore_label if has(loss_param, "ignore_label") else None
        self.mode = normalization_mode(loss_param)
        outer, inner = math.prod(scores[: self.axis]), math.prod(scores[self.axis + 1:])
        if math.prod(labels) != outer * inner:
            raise self.fail(
                f"scores {list(scores)} need {outer * inner} labels (one per position outside axis "
                f"{self.axis}), got label shape {list(labels)}",
                fix="e.g. scores N×C need labels N; scores N×C×H×W need labels N×1×H×W",
            )

    def infer_shapes(self, bottom_shapes):
        return [()] + ([bottom_shapes[0]] if len(self.spec.top) > 1 else [])

    def forward(self, scores, labels):
        axis = self.axis
        n_classes = scores.shape[axis]
        outer, inner = math.prod(scores.shape[:axis]), math.prod(scores.shape[axis + 1:])
        log_prob = torch.log_softmax(scores, dim=axis)
        index = labels_as_index(labels, outer * inner, self, n_classes=n_classes, ignore_label=self.ignore_label)
        # nll_loss picks −log_prob[label] per position of an (outer, C[, inner]) view: one kernel each way,
        # the values of a gather (ignored positions give 0 and no gradient)
        if inner == 1:
            flat, index = log_prob.reshape(outer, n_classes), index.reshape(outer)
        else:
            flat, index = log_prob.reshape(outer, n_classes, inner), index.reshape(outer, inner)
        if self.ignore_label is not None:
            nll = F.nll_loss(flat, index, reduction="none", ignore_index=self.ignore_label)
            count = (index != self.ignore_label).sum()
        else:
            nll = F.nll_loss(flat, index, reduction="none")
            count = outer * inner
        capped = value_with_gradient_of(nll.clamp_max(LOSS_CAP), nll)
        loss = capped.sum() / normalizer(self.mode, outer=outer, inner=inner, valid=count)
        if len(self.spec.top) > 1:
            return loss, log_prob.exp()
        return (loss,)
