"""Caffe's fillers (``include/caffe/filler.hpp``, BVLC master), which initialise learnable blobs.

NOTE: unlike PyTorch's initialisers, Caffe's defaults are a trap worth knowing:

* no filler at all means ``constant`` 0, so a Convolution/InnerProduct without ``weight_filler`` starts
  with **all-zero weights**;
* ``gaussian`` has ``std`` 1 by default;
* ``xavier`` is U[-sqrt(3/n), +sqrt(3/n)] with n = fan_in by default (``variance_norm: FAN_IN``), not
  ``torch.nn.init.xavier_uniform_`` (which uses the average of the fans); ``msra`` is N(0, sqrt(2/n)).

Fans of a blob of shape [d0, d1, ...]: fan_in = count/d0, fan_out = count/d1 (count for a 1-D blob).
Random draws come from a ``torch.Generator`` so that nets are reproducible from a seed; they cannot
equal Caffe's own draws (Boost mt19937), so compare with Caffe through fixed weights.
"""

from __future__ import annotations

import math

import torch

from .errors import SpecError
from .spec.params import FillerParameter
from .spec.schema import has

__all__ = ["fill", "FILLER_TYPES", "fans"]

FILLER_TYPES = ("constant", "uniform", "gaussian", "positive_unitball", "xavier", "msra", "bilinear")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a blob as Caffe computes them (count/shape[0], count/shape[1])."""
    count = math.prod(shape)
    fan_in = count // shape[0] if shape and shape[0] else count
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else count
    return fan_in, fan_out


def _scale_n(filler: FillerParameter, shape: tuple[int, ...]) -> float:
    fan_in, fan_out = fans(shape)
    return {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2.0}[filler.variance_norm]


def _bilinear(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if len(shape) != 4 or shape[2] != shape[3]:
        raise SpecError(f"the bilinear filler needs a 4-D blob with a square kernel, got shape {list(shape)}",
                        fix="use it for a Deconvolution with kernel_size K (and group = channels)")
    k = shape[3]
    f = math.ceil(k / 2.0)
    c = (k - 1) / (2.0 * f)
    coords = torch.arange(k, dtype=torch.float64)
    profile = 1.0 - torch.abs(coords / f - c)
    kernel = profile[:, None] * profile[None, :]
    return kernel.expand(shape).to(dtype).clone()


def fill(filler: FillerParameter | None, shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32,
         generator: torch.Generator | None = None, default_value: float = 0.0,
         device: torch.device | str | None = None) -> torch.Tensor:
    """A new tensor of ``shape`` filled as Caffe's ``filler`` would fill it.

    Args:
        filler: the FillerParameter, or None for the layer's default (constant ``default_value``).
        shape: the blob shape, e.g. (num_output, C/group, kH, kW).
        dtype: tensor dtype.
        generator: random source, e.g. seeded from the solver's random_seed; it must live on ``device``.
        default_value: the constant used when ``filler`` is None (PReLU uses 0.25, Scale 1).
        device: where to create the tensor (default CPU).
    """
    shape = tuple(int(d) for d in shape)
    if filler is None:
        return torch.full(shape, float(default_value), dtype=dtype, device=device)
    kind = filler.type
    if kind not in FILLER_TYPES:
        from .errors import did_you_mean

        raise SpecError(f"unknown filler type '{kind}'",
                        fix=did_you_mean(kind, FILLER_TYPES) or f"use one of {', '.join(FILLER_TYPES)}")
    if kind != "gaussian" and has(filler, "sparse") and filler.sparse != -1:
        raise SpecError(f"sparse filling is only supported by the gaussian filler, not '{kind}'",
                        fix="remove 'sparse' or use type: gaussian")
    out = torch.empty(shape, dtype=dtype, device=device)
    if kind == "constant":
        return out.fill_(filler.value)
    if kind == "uniform":
        return out.uniform_(filler.min, filler.max, generator=generator)
    if kind == "gaussian":
        out.normal_(filler.mean, filler.std, generator=generator)
        if filler.sparse >= 0:
            if not shape:
                raise SpecError("sparse gaussian filling needs a blob with at least one axis")
            keep = min(1.0, filler.sparse / shape[0])
            mask = torch.empty(shape, dtype=dtype, device=device).bernoulli_(keep, generator=generator)
            out.mul_(mask)
        return out
    if kind == "positive_unitball":
        out.uniform_(0.0, 1.0, generator=generator)
        if out.dim() >= 1 and out.numel():
            flat = out.reshape(shape[0], -1)
            flat.div_(flat.sum(dim=1, keepdim=True))
        return out
    if kind == "xavier":
        bound = math.sqrt(3.0 / _scale_n(filler, shape))
        return out.uniform_(-bound, bound, generator=generator)
    if kind == "msra":
        return out.normal_(0.0, math.sqrt(2.0 / _scale_n(filler, shape)), generator=generator)
    return _bilinear(shape, dtype).to(device)
