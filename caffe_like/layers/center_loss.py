r"""CenterLoss (Wen et al., ECCV 2016) as Caffe-face implements it: learned class centers and their update rule.

With features ``x`` flattened from ``axis`` into ``(M, K)``, centers ``C`` ``(num_output, K)`` (the layer's one
blob, ``center_filler``), ``d_i = x_i − c_{y_i}`` and ``n_j`` the number of samples of class j in the batch::

    top   = Σ_i ‖d_i‖² / (2M)                               (the unweighted loss; the objective adds loss_weight·top)
    dx_i  = loss_weight · d_i / M                           (the true derivative)
    dC_j  = Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)          (0 for a class absent from the batch)

``dC`` is **not** the derivative of the loss: it is Caffe-face's center update written into the centers' diff,
scaled neither by ``loss_weight`` nor by ``M``, so that the solver's ``lr·lr_mult`` plays the paper's α (and decays
with the lr policy).  A custom ``torch.autograd.Function`` returns it whatever the incoming gradient (the loss
weight) is; torch's gradient accumulation adds it to ``.grad`` across passes (``iter_size``), as Caffe-face's CPU
backward adds (``caffe_axpy``) to the diff.  The label gets no gradient.

Loss weight: CenterLoss is not one of Caffe's LossLayers here (``IS_LOSS = False``): Caffe-face's layer
overrides ``LayerSetUp`` without calling ``LossLayer::LayerSetUp``, so without an explicit ``loss_weight`` its
weight is 0 and it does nothing for training.  caffe_like keeps that and warns (``UserWarning`` naming the layer)
when a CenterLoss has no ``loss_weight``.  Every original example sets one (MNIST 0.01, faces 0.008).

Shape:
    x ``(M, ...)`` flattened from ``axis``; label with M entries; centers ``(num_output, K)``; top ``()``.

NOTE: unlike the original, M is ``count(0, axis)`` (as InnerProduct), not ``shape(0)``; they agree for the
default ``axis: 1``, the only value the original's K = count(axis) is consistent with.
NOTE: unlike the original, labels outside [0, num_output) are an error naming the layer (the original reads
out of bounds).
NOTE: unlike the original GPU backward (which overwrites the centers' diff), the update accumulates, as the
CPU backward does; this only matters with ``iter_size > 1``.

See: ydwen/caffe-face ``src/caffe/layers/center_loss_layer.cpp``; ``reference/loss_layers.md`` §2 and §7.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.autograd.function import once_differentiable

from .base import Layer, canonical_axis
from .loss_common import labels_as_index
from .registry import register_layer


class _CenterLoss(torch.autograd.Function):
    """``Σ‖x_i − c_{y_i}‖² / (2M)``; backward: the true feature gradient and Caffe-face's center update."""

    @staticmethod
    def forward(ctx, x2, centers, label):
        diff = x2 - centers.index_select(0, label)
        ctx.save_for_backward(diff, label)
        ctx.n_centers = centers.shape[0]
        return (diff * diff).sum() / x2.shape[0] / 2

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        diff, label = ctx.saved_tensors
        dx = dc = None
        if ctx.needs_input_grad[0]:
            dx = diff * (grad / diff.shape[0])
        if ctx.needs_input_grad[1]:
            # Caffe-face ignores the top diff (the loss weight) for the centers: the update rule, not a gradient
            counts = torch.bincount(label, minlength=ctx.n_centers).to(diff.dtype)
            dc = torch.zeros((ctx.n_centers, diff.shape[1]), dtype=diff.dtype, device=diff.device)
            dc.index_add_(0, label, diff, alpha=-1)
            dc /= (1 + counts).unsqueeze(1)
        return dx, dc, None


@register_layer
class CenterLoss(Layer):
    """Caffe-face's center loss (see the module docstring for the formulas, the update rule and deviations)."""

    TYPE = "CenterLoss"
    BOTTOMS = (2, 2)
    TOPS = (1, 1)
    IS_LOSS = False  # Caffe-face's default loss_weight is 0 (see the module docstring)
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        p = self.param("center_loss_param")
        shape, labels = bottom_shapes
        if p.num_output <= 0:
            raise self.fail("center_loss_param.num_output must be given and positive", shape=False)
        self.axis = canonical_axis(p.axis, len(shape), self)
        self.num_output = int(p.num_output)
        self.k = math.prod(shape[self.axis:])
        rows = math.prod(shape[: self.axis])
        if math.prod(labels) != rows:
            raise self.fail(f"features {list(shape)} have {rows} samples (axes before {self.axis}) but the label "
                            f"blob {list(labels)} has {math.prod(labels)} entries", fix="give one label per sample")
        self.add_blob((self.num_output, self.k), p.center_filler)
        if not self.spec.loss_weight:
            warnings.warn(
                f"layer '{self.layer_name}' (CenterLoss) has no loss_weight, so its weight is 0, as in Caffe-face: "
                "it does nothing for training (set e.g. loss_weight: 0.01)",
                UserWarning,
                stacklevel=2,
            )

    def infer_shapes(self, bottom_shapes):
        k = math.prod(bottom_shapes[0][self.axis:])
        if k != self.k:
            raise self.fail(f"input has {k} features from axis {self.axis} but the layer was set up for {self.k}")
        return [()]

    def forward(self, x, label):
        flat = x.reshape(math.prod(x.shape[: self.axis]), -1)
        index = labels_as_index(label, flat.shape[0], self, n_classes=self.num_output, ignore_label=None)
        return (_CenterLoss.apply(flat, self.blobs[0], index.to(flat.device)),)
