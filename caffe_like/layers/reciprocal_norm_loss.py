r"""ReciprocalNormLoss: the paper's feature incay term (Yuan, Yang, Zhang, "Feature Incay", Eq. 8).

With features ``f`` flattened from axis 1 into ``(N, K)``, scores ``(N, C)`` (e.g. the classifier's logits),
``h_i = [argmax_j scores_ij == label_i]`` (an indicator, not differentiated; ties resolve to the first maximum,
as ``torch.argmax``), ``ε = reciprocal_norm_loss_param.epsilon`` (default 1e-5) and ``D`` the normaliser::

    top   = Σ_i h_i / (‖f_i‖² + ε) / D
    df_i  = loss_weight · (−2 h_i f_i / (‖f_i‖² + ε)²) / D          (autograd of the above)

The net objective adds ``loss_weight · top``: ``loss_weight`` is the paper's λ (1, 0.1 or 0.01).  Only correctly
classified samples contribute (and get a gradient); the scores and the label get none.

``loss_param.normalization`` (or the legacy ``normalize`` flag, as Caffe's loss layers) chooses ``D``:
``BATCH_SIZE`` = N (the paper's 1/N), ``FULL`` = N as well (one element per sample), ``VALID`` = the number of
correctly classified samples (clamped at 1, so a batch with none gives 0), ``NONE`` = 1 (the plain sum, what one
early third-party Caffe layer's gradient effectively computed).  ``loss_param.ignore_label`` is not supported.

Shape:
    feature ``(N, K)`` or ``(N, C, H, W)`` (flattened from axis 1); scores ``(N, C)`` (trailing axes flattened
    from axis 1); label with N entries (float integers, Caffe's habit); top ``()``.

NOTE: unlike Caffe's loss layers, whose unset ``normalization`` means VALID, this layer's default is
BATCH_SIZE (Eq. 8's 1/N over the whole batch); VALID here counts correctly classified samples, not
non-ignored labels.
NOTE: this layer has no original Caffe implementation (the paper's authors released no code); it follows the
paper's Eq. 8.  loss_layers.md §3 lists third-party variants (mean over the batch, no 1/N in the gradient, ...).

See: ``paper.md`` ("The loss (paper's Eq. 8)"); :mod:`caffe_like.reference.reciprocal_norm_loss`.
"""

from __future__ import annotations

import math

from ..spec.schema import has
from .base import Layer
from .loss_common import labels_as_index, normalization_mode, normalizer
from .registry import register_layer


@register_layer
class ReciprocalNormLoss(Layer):
    """Feature incay (see the module docstring for the formula, the normalisation and the default)."""

    TYPE = "ReciprocalNormLoss"
    BOTTOMS = (3, 3)
    TOPS = (1, 1)
    IS_LOSS = True
    NO_GRAD_BOTTOMS = (1, 2)  # the indicator h has no gradient: scores and label get none

    def setup(self, bottom_shapes):
        feature, scores, labels = bottom_shapes
        self.epsilon = float(self.param("reciprocal_norm_loss_param").epsilon)
        if not self.epsilon >= 0:
            raise self.fail(f"reciprocal_norm_loss_param.epsilon must be >= 0, got {self.epsilon}", shape=False)
        loss_param = self.param("loss_param")
        if has(loss_param, "ignore_label"):
            raise self.fail("loss_param.ignore_label is not supported by ReciprocalNormLoss", shape=False,
                            fix="remove ignore_label (every sample's correctness counts)")
        self.mode = normalization_mode(loss_param, default="BATCH_SIZE")
        if len(feature) < 1 or len(scores) < 1:
            raise self.fail("the feature and scores blobs need a batch axis")
        if scores[0] != feature[0]:
            raise self.fail(f"scores {list(scores)} and features {list(feature)} differ in the batch axis")
        if math.prod(labels) != feature[0]:
            raise self.fail(f"features {list(feature)} have {feature[0]} samples but the label blob {list(labels)} "
                            f"has {math.prod(labels)} entries", fix="give one label per sample")

    def infer_shapes(self, bottom_shapes):
        return [()]

    def forward(self, feature, scores, label):
        n = feature.shape[0]
        flat = feature.reshape(n, -1)
        flat_scores = scores.reshape(n, -1)
        index = labels_as_index(label, n, self, n_classes=flat_scores.shape[1], ignore_label=None)
        correct = flat_scores.argmax(dim=1) == index.to(flat_scores.device)
        squared = (flat * flat).sum(dim=1) + self.epsilon
        hits = correct.to(flat.dtype)
        total = (hits / squared).sum()
        return (total / normalizer(self.mode, outer=n, inner=1, valid=hits.sum()),)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, epsilon={self.epsilon:g}, normalization={self.mode}"
