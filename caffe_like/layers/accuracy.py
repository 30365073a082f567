"""Accuracy: the fraction of positions whose label is among the top_k scores (BVLC master).

With scores viewed as (outer, C, inner) around ``axis`` and y the label of position (n, i):

    better(n, i) = #{k : s[n, k, i] >= s[n, y, i]} - 1        (classes that tie or beat the true one)
    correct(n, i) = better(n, i) < top_k
    accuracy = #correct / #counted                            (0 when nothing is counted)
    per_class[c] = #correct with label c / #counted with label c    (0 for an absent class)

Positions whose label equals ``ignore_label`` (when given) are not counted.  Labels may be floats;
they are truncated to integers as Caffe's ``static_cast<int>``.

Shape: scores (d_0, ..., C at axis, ...); labels with outer·inner elements in any shape (N, N×1×H×W or
N×H×W for scores N×C×H×W); top 0 is a scalar (); the optional top 1 is (C,).

See: Caffe accuracy_layer.cpp (BVLC master).
NOTE: unlike a sort-based top-k (``torch.topk``, or the SSD fork's partial sort), a class whose score
*equals* the true class's ranks above it, so a tie with top_k = 1 is wrong.
NOTE: unlike Caffe, which only DCHECKs it, a label outside [0, C) that is not ignored is an error here.
No gradient (Caffe: NOT_IMPLEMENTED); the tops are detached.
"""

from __future__ import annotations

import math

import torch

from ..spec.schema import has
from .base import Layer, canonical_axis
from .registry import register_layer


@register_layer
class Accuracy(Layer):
    TYPE = "Accuracy"
    BOTTOMS = (2, 2)
    TOPS = (1, 2)
    NO_GRAD_BOTTOMS = (0, 1)

    def setup(self, bottom_shapes):
        p = self.param("accuracy_param")
        scores, labels = bottom_shapes
        self.top_k = int(p.top_k)
        self.ignore_label = int(p.ignore_label) if has(p, "ignore_label") else None
        if not scores:
            raise self.fail("the scores (bottom 0) must have at least one axis, got a scalar")
        self.axis = canonical_axis(p.axis, len(scores), self)
        self._check(tuple(scores), tuple(labels))

    def _check(self, scores, labels):
        classes = scores[self.axis]
        outer, inner = math.prod(scores[: self.axis]), math.prod(scores[self.axis + 1:])
        if self.top_k > classes:
            raise self.fail(f"top_k {self.top_k} is larger than the number of classes {classes} "
                            f"(scores {list(scores)}, axis {self.axis})", fix=f"use top_k <= {classes}")
        if math.prod(labels) != outer * inner:
            raise self.fail(f"the labels {list(labels)} have {math.prod(labels)} elements, but the scores "
                            f"{list(scores)} with class axis {self.axis} need {outer * inner} (one per position)",
                            fix="give one label per sample and spatial position, e.g. N or N×1×H×W labels "
                            "for N×C×H×W scores")
        return outer, classes, inner

    def infer_shapes(self, bottom_shapes):
        scores = tuple(bottom_shapes[0])
        self._check(scores, tuple(bottom_shapes[1]))
        return [(), (scores[self.axis],)][: len(self.spec.top)]

    @torch.no_grad()
    def forward(self, scores, labels):
        outer, classes, inner = self._check(tuple(scores.shape), tuple(labels.shape))
        s = scores.detach().reshape(outer, classes, inner)
        label = labels.detach().reshape(outer, inner).long()
        valid = torch.ones_like(label, dtype=torch.bool) if self.ignore_label is None else label != self.ignore_label
        out_of_range = valid & ((label < 0) | (label >= classes))
        if bool(out_of_range.any()):
            bad = label[out_of_range][0].item()
            raise self.fail(f"label {bad} is out of range for {classes} classes (scores {list(scores.shape)})",
                            fix=f"labels must be integers in [0, {classes - 1}] or the ignore_label")
        safe = torch.where(valid, label, 0)
        true_score = s.gather(1, safe[:, None, :])
        better = (s >= true_score).sum(dim=1) - 1
        correct = valid & (better < self.top_k)
        dtype = scores.dtype
        counted = valid.sum().to(dtype)
        accuracy = torch.where(counted > 0, correct.sum().to(dtype) / counted.clamp(min=1), counted.new_zeros(()))
        if len(self.spec.top) == 1:
            return (accuracy,)
        flat = safe.reshape(-1)
        seen = torch.zeros(classes, dtype=dtype, device=scores.device).index_add_(0, flat, valid.reshape(-1).to(dtype))
        hits = torch.zeros(classes, dtype=dtype, device=scores.device).index_add_(0, flat, correct.reshape(-1).to(dtype))
        per_class = torch.where(seen > 0, hits / seen.clamp(min=1), torch.zeros_like(seen))
        return accuracy, per_class
