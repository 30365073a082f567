"""The ``BN`` layer of the L-Softmax fork (wy1iu/LargeMargin_Softmax_Loss), as a caffe_like plugin layer.

Load it with ``caffe-like --plugin fork_bn ...`` (this folder on PYTHONPATH) or ``import fork_bn``.  It reads
the fork's own ``bn_param`` block (declared in ``EXTRA_PARAM_BLOCKS``) and keeps the fork's four blobs in
their order and layout, so weights trained by the fork load as they are:

=====  ========  =====================================================================================
blob   shape     meaning
=====  ========  =====================================================================================
0      [1, C]    slope (gamma), filled by ``slope_filler`` (Caffe's default filler: constant 0)
1      [1, C]    bias (beta), filled by ``bias_filler``
2      [1, C]    moving average of the batch means, starts at 0
3      [1, C]    moving average of the batch **inverse standard deviations** 1/sqrt(var + eps), starts at 1
=====  ========  =====================================================================================

``bn_param`` (the fork's ``BNParameter``): ``slope_filler`` (1), ``bias_filler`` (2), ``momentum`` (3,
default 0.9), ``eps`` (4, default 1e-5), ``frozen`` (5, default false), ``engine`` (6, ignored).

* TRAIN (not frozen): per channel, over the batch and the spatial axes, mean m and the **biased** variance v;
  y = (x - m) / sqrt(v + eps) * slope + bias; then, without gradient,
  blob2 = momentum * blob2 + (1 - momentum) * m and blob3 = momentum * blob3 + (1 - momentum) / sqrt(v + eps).
  The gradient is the batch-norm one through m and v.
* TEST, or ``frozen: true``: y = (x - blob2) * blob3 * slope + bias.  Frozen, slope and bias get no gradient
  (the fork's backward returns after the bottom's diff).
* Blobs 2 and 3 never receive a gradient, but they are ordinary learnable blobs of the net, as in the fork:
  with the example's two ``param`` blocks they get lr_mult 1 and decay_mult 1, so the solver's weight decay
  (and momentum) moves them slightly every iteration, exactly as in Caffe.

Compare with BVLC's BatchNorm (+ Scale): BatchNorm keeps running *sums* normalised by a third blob
(moving_average_fraction, default 0.999) and the unbiased variance, and the solver never touches them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import caffe_like
from caffe_like.spec.params import ENGINE, FillerParameter
from caffe_like.spec.schema import Message, enum, message, scalar


@dataclass
class BNParameter(Message):
    """The fork's ``bn_param`` block (field numbers as in its caffe.proto)."""

    slope_filler: FillerParameter | None = message(1, FillerParameter, "filler of the slope blob; default constant 0")
    bias_filler: FillerParameter | None = message(2, FillerParameter, "filler of the bias blob; default constant 0")
    momentum: float = scalar(3, "float", 0.9, "weight of the old value in the moving averages; default 0.9")
    eps: float = scalar(4, "float", 1e-5, "added to the variance; default 1e-5")
    frozen: bool = scalar(5, "bool", False, "use the moving averages in TRAIN too, and learn nothing; default false")
    engine: str = enum(6, ENGINE, "DEFAULT", "the fork's CUDNN switch; ignored by caffe_like; default DEFAULT")


@caffe_like.register_layer
class BN(caffe_like.Layer):
    """The fork's batch normalisation with learned slope and bias (see the module docstring)."""

    TYPE = "BN"
    EXTRA_PARAM_BLOCKS = {"bn_param": BNParameter}

    def setup(self, bottom_shapes):
        p = self.param("bn_param")
        shape = bottom_shapes[0]
        if len(shape) < 2:
            raise self.fail(f"BN needs a bottom with channels on axis 1, got {list(shape)}")
        self.channels = shape[1]
        self.momentum = float(p.momentum)
        self.eps = float(p.eps)
        self.frozen = bool(p.frozen)
        blob = (1, self.channels)
        self.add_blob(blob, p.slope_filler)
        self.add_blob(blob, p.bias_filler)
        self.add_blob(blob, None, default_value=0.0)
        self.add_blob(blob, None, default_value=1.0)

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) < 2 or shape[1] != self.channels:
            raise self.fail(f"bottom shape {list(shape)} does not have the {self.channels} channels the layer "
                            "was set up for")
        return [shape]

    def _view(self, blob: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return blob.reshape((1, self.channels) + (1,) * (x.dim() - 2))

    def forward(self, x):
        slope, bias, mean_avg, inv_std_avg = self.blobs
        if self.frozen or not self.training_phase:
            if self.frozen:
                slope, bias = slope.detach(), bias.detach()
            mean, inv_std = mean_avg.detach(), inv_std_avg.detach()
        else:
            axes = [0, *range(2, x.dim())]
            mean = x.mean(dim=axes, keepdim=True)
            var = ((x - mean) ** 2).mean(dim=axes, keepdim=True)
            inv_std = (var + self.eps).rsqrt()
            with torch.no_grad():
                m = self.momentum
                mean_avg.mul_(m).add_(mean.reshape(mean_avg.shape).to(mean_avg.dtype), alpha=1 - m)
                inv_std_avg.mul_(m).add_(inv_std.reshape(inv_std_avg.shape).to(inv_std_avg.dtype), alpha=1 - m)
            return ((x - mean) * inv_std * self._view(slope, x) + self._view(bias, x),)
        return ((x - self._view(mean, x)) * self._view(inv_std, x) * self._view(slope, x) + self._view(bias, x),)

    def onnx_unsupported(self) -> str | None:
        """Why this layer cannot be exported (the ONNX exporter's hook), or None."""
        if self.training_phase and not self.frozen:
            return "BN in TRAIN updates its moving averages as it runs; export the TEST phase"
        return None
