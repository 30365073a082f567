"""BatchNorm (no affine part; follow it with ``Scale { bias_term: true }``): y = (x - mean) / sqrt(var + eps).

Statistics are per channel (axis 1) over every other axis: m = count / C values each (N for an (N, C)
input, N*H*W for (N, C, H, W)).

* TRAIN (``use_global_stats`` false): mean and **biased** variance of the batch; every forward then
  updates the three blobs (without gradient), as Caffe does even when no backward follows::

      blob2 = maf * blob2 + 1
      blob0 = maf * blob0 + mean
      blob1 = maf * blob1 + m / (m - 1) * var      (factor 1 when m == 1)

  The gradient is the batch-norm one with the biased variance:
  dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps).
* Global stats (``use_global_stats`` true): s = 0 if blob2 == 0 else 1 / blob2, mean = s * blob0,
  var = s * blob1, and dx = dy / sqrt(var + eps).  Untrained blobs (all 0) thus give y = x / sqrt(eps).

``use_global_stats`` unset means (phase == TEST).  ``moving_average_fraction`` (maf) 0.999, ``eps`` 1e-5.

Shape: bottom (N, C, ...) with at least 2 axes; top = bottom.  Blobs (all zero-initialised, never learned:
FROZEN_BLOBS makes the builder force lr_mult 0 and keep them from the solver): [0] running sum of means
[C], [1] running sum of unbiased variances [C], [2] the normalising factor [1].  True statistics =
blob / blob[2].

NOTE: unlike ``torch.nn.BatchNorm*``, there is no affine part, the running statistics are sums normalised
by blob2 (a bias-corrected EMA) rather than an EMA with momentum, and the mode comes from the layer's phase
(or ``use_global_stats``), not from ``module.train()``/``eval()``.
NOTE: as Caffe's Reshape, a 1-axis bottom is refused (Caffe dies on ``shape(1)``).
NOTE: with batch statistics, the net runs this layer and a following per-channel ``Scale`` that rebinds its
top in one ``torch.batch_norm`` call with the scale and bias as its affine part (:meth:`forward_scaled`,
see :mod:`caffe_like.net`): the same values up to rounding, the same statistics blobs, one pass less over
the data forward and backward.
See: Caffe batch_norm_layer.cpp (BVLC master).
"""

from __future__ import annotations

import torch

from ..spec.schema import has
from .base import Layer
from .registry import register_layer


@register_layer
class BatchNorm(Layer):
    TYPE = "BatchNorm"
    FROZEN_BLOBS = True

    def setup(self, bottom_shapes):
        p = self.param("batch_norm_param")
        shape = bottom_shapes[0]
        if len(shape) < 2:
            raise self.fail(f"BatchNorm needs a bottom with at least 2 axes (channels on axis 1), got {list(shape)}",
                            fix="reshape the input to (N, C) or (N, C, ...)")
        self.channels = shape[1]
        self.use_global_stats = bool(p.use_global_stats) if has(p, "use_global_stats") else self.phase == "TEST"
        self.moving_average_fraction = float(p.moving_average_fraction)
        self.eps = float(p.eps)
        for blob_shape in ((self.channels,), (self.channels,), (1,)):
            self.add_blob(blob_shape, None, default_value=0.0, trainable=False)

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) < 2 or shape[1] != self.channels:
            raise self.fail(f"bottom shape {list(shape)} does not have the {self.channels} channels on axis 1 "
                            "the layer was set up for")
        return [shape]

    def onnx_unsupported(self) -> str | None:
        """Why this layer cannot be exported (the ONNX exporter's hook), or None."""
        if not self.use_global_stats:
            return ("BatchNorm with batch statistics (TRAIN, or use_global_stats: false) updates its moving "
                    "averages as it runs; export the TEST phase with the stored statistics")
        return None

    def forward(self, x):
        mean_sum, var_sum, factor = self.blobs
        if self.use_global_stats:
            scale = torch.where(factor == 0, torch.zeros_like(factor), 1.0 / factor)
            mean = (mean_sum * scale).to(x.dtype)
            var = (var_sum * scale).to(x.dtype)
            return (torch.batch_norm(x, None, None, mean, var, False, 0.0, self.eps,
                                     torch.backends.cudnn.enabled),)
        return self._batch_statistics(x, None, None)

    def forward_scaled(self, x, scale, bias):
        """This layer followed by Caffe's ``Scale`` with one value per channel: y = BN(x) * scale + bias
        (``bias`` None = no bias) in one ``torch.batch_norm`` with ``scale``/``bias`` as its affine part;
        the statistics blobs are updated exactly as :meth:`forward` does.  Returns None (run the two
        layers one after the other) with ``use_global_stats`` or a single value per channel."""
        if self.use_global_stats or x.numel() == self.channels:
            return None
        return self._batch_statistics(x, scale, bias)

    def _batch_statistics(self, x, weight, bias):
        m = x.numel() // self.channels
        # the batch statistics in the affine part's dtype when there is one (float32 beside a float16
        # input under autocast, as torch's batch norm wants them), else in the input's
        stats_dtype = x.dtype if weight is None else weight.dtype
        batch_var = x.new_zeros(self.channels, dtype=stats_dtype)
        if m == 1:
            # one value per channel: Caffe's x - mean is exactly 0 (torch's fused x*invstd - mean*invstd is
            # not), the gradient is 0, and the stored variance gets factor 1 instead of m/(m-1)
            batch_mean = x.detach().reshape(self.channels)
            y = torch.where(torch.zeros_like(x, dtype=torch.bool), x, torch.zeros_like(x))
        else:
            # torch's training-mode batch norm normalises with the biased variance (Caffe's), and with
            # momentum 1 leaves the batch mean and the unbiased (m/(m-1)) variance in the buffers
            batch_mean = x.new_zeros(self.channels, dtype=stats_dtype)
            y = torch.batch_norm(x, weight, bias, batch_mean, batch_var, True, 1.0, self.eps,
                                 torch.backends.cudnn.enabled)
        mean_sum, var_sum, factor = self.blobs
        with torch.no_grad():
            maf = self.moving_average_fraction
            factor.mul_(maf).add_(1.0)
            mean_sum.mul_(maf).add_(batch_mean.to(mean_sum.dtype))
            var_sum.mul_(maf).add_(batch_var.to(var_sum.dtype))
        return (y,)
