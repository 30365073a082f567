"""ArgMax (the top_k largest entries) and Reduction (sum-like reductions of the trailing axes).

ArgMax, without ``axis``: each sample x_n is flattened (all axes but 0) and its top_k entries are
ranked; the top holds their indices, or with ``out_max_val`` the indices followed by the values.
With ``axis``: the top_k entries along that axis, as indices, or as values with ``out_max_val``.
Ranking is Caffe's ``std::partial_sort`` of (value, index) pairs with ``std::greater``: larger values
first, and among equal values the **larger index first**.  Indices are written as floats.

    Shape: without axis, (N, 1, top_k) — (N, 2, top_k) with out_max_val — padded with trailing 1s to
    the bottom's number of axes (at least 3): (N, C, H, W) -> (N, 1|2, top_k, 1).
    With axis: the bottom's shape with shape[axis] = top_k.

Reduction: y_i = coeff · op(x_i) for every index i of the axes before ``axis`` (default 0), where x_i
holds all the entries of the axes from ``axis`` to the end and op is

    SUM: Σ x    ASUM: Σ |x|    SUMSQ: Σ x²    MEAN: Σ x / count
    gradients: coeff·dy, coeff·sign(x)·dy (sign(0) = 0), 2·coeff·x·dy, coeff·dy/count.

    Shape: bottom (d_0, ..., d_{n-1}) -> top (d_0, ..., d_{axis-1}); axis 0 gives a scalar ().

See: Caffe argmax_layer.cpp, reduction_layer.cpp.
NOTE: unlike ``torch.argmax`` (first maximum) and ``torch.topk`` (unspecified tie order), ArgMax
returns the *last* index among tied maxima, as Caffe's pair comparison does.  ArgMax has no gradient
(Caffe: NOT_IMPLEMENTED); its top is detached.
"""

from __future__ import annotations

import math

import torch

from ..spec.schema import has
from .base import Layer, canonical_axis
from .registry import register_layer


def _caffe_top_k(x: torch.Tensor, k: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the k largest entries along ``dim``, ties ranked by larger index first.

    Flipping the axis turns "larger index first" into "first occurrence first", which ``argmax``, a
    stable descending sort and ONNX's TopK all guarantee.
    """
    size = x.shape[dim]
    flipped = x.flip(dim)
    if k == 1:
        index = flipped.argmax(dim=dim, keepdim=True)
        values = flipped.gather(dim, index)
    elif torch.onnx.is_in_onnx_export():
        # ONNX TopK (sorted) puts the lower index first among equal values; torch.topk does not promise it
        values, index = torch.topk(flipped, k, dim=dim, largest=True, sorted=True)
    else:
        values, index = torch.sort(flipped, dim=dim, descending=True, stable=True)
        values, index = values.narrow(dim, 0, k), index.narrow(dim, 0, k)
    return values, (size - 1) - index


@register_layer
class ArgMax(Layer):
    TYPE = "ArgMax"

    def setup(self, bottom_shapes):
        p = self.param("argmax_param")
        shape = bottom_shapes[0]
        self.out_max_val = p.out_max_val
        self.top_k = int(p.top_k)
        if self.top_k < 1:
            raise self.fail("top_k must be at least 1", shape=False)
        if not shape:
            raise self.fail("ArgMax needs a bottom with at least one axis, got a scalar")
        self.axis = canonical_axis(p.axis, len(shape), self) if has(p, "axis") else None
        size = shape[self.axis] if self.axis is not None else math.prod(shape[1:])
        where = f"axis {self.axis}" if self.axis is not None else "the flattened sample (all axes but 0)"
        if self.top_k > size:
            raise self.fail(f"top_k {self.top_k} is larger than the {size} entries of {where} "
                            f"(bottom {list(shape)})", fix=f"use top_k <= {size}")

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if self.axis is not None:
            return [shape[: self.axis] + (self.top_k,) + shape[self.axis + 1:]]
        top = [1] * max(len(shape), 3)
        top[0], top[1], top[2] = shape[0], 2 if self.out_max_val else 1, self.top_k
        return [tuple(top)]

    @torch.no_grad()
    def forward(self, x):
        x = x.detach()
        if self.axis is not None:
            values, index = _caffe_top_k(x, self.top_k, self.axis)
            return (values if self.out_max_val else index.to(x.dtype),)
        values, index = _caffe_top_k(x.reshape(x.shape[0], -1), self.top_k, 1)
        out = index.to(x.dtype)[:, None, :]
        if self.out_max_val:
            out = torch.cat((out, values[:, None, :]), dim=1)
        return (out.reshape(self.infer_shapes([tuple(x.shape)])[0]),)


@register_layer
class Reduction(Layer):
    TYPE = "Reduction"

    def setup(self, bottom_shapes):
        p = self.param("reduction_param")
        self.operation = p.operation
        self.coeff = float(p.coeff)
        self.axis = canonical_axis(p.axis, len(bottom_shapes[0]), self)

    def infer_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0][: self.axis])]

    def forward(self, x):
        flat = x.reshape(x.shape[: self.axis] + (-1,))
        if self.operation == "ASUM":
            y = flat.abs().sum(-1)
        elif self.operation == "SUMSQ":
            y = (flat * flat).sum(-1)
        else:  # SUM, MEAN
            y = flat.sum(-1)
        coeff = self.coeff
        if self.operation == "MEAN":  # Caffe: coeff / count (an empty reduction gives 0 * inf = NaN)
            coeff = coeff / flat.shape[-1] if flat.shape[-1] else math.inf
        return (y * coeff if coeff != 1.0 else y,)
