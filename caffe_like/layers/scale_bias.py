"""Scale and Bias: y = x * s (+ b) and y = x + b, with s / b broadcast over the outer and inner axes.

s (or b) covers the axes ``axis .. axis + k - 1`` of bottom 0 and is repeated over the axes before them
(outer) and after them (inner); a 0-axis (scalar) s / b covers everything.

* One bottom: s (b) is a learned blob of shape ``bottom.shape[axis : axis + num_axes]`` (``num_axes`` -1 =
  to the end, 0 = a scalar).  Default fillers: Scale constant 1 (the identity), Bias constant 0.
* Two bottoms: bottom 1 is s (b); its shape decides the axes (``num_axes`` is ignored) and it receives the
  gradient Σ_outer,inner dy * x (Scale) or Σ dy (Bias).
* Scale's ``bias_term`` adds a learned bias of the same shape (filler ``bias_filler``, default constant 0),
  applied after the scale: y = x * s + b.  Blob order: [scale, bias], or just [bias] with two bottoms.

Shape: top = bottom 0.  ``axis`` (default 1) may be negative; bottom 0 must have the dims of s / b at
``axis``, which is checked (ShapeError naming both shapes).

NOTE: as in Caffe, a scalar s / b ignores ``axis`` at run time (it multiplies / adds everywhere).
See: Caffe scale_layer.cpp, bias_layer.cpp (BVLC master).
"""

from __future__ import annotations

import torch

from .base import Layer, Shape, canonical_axis
from .registry import register_layer


class _Broadcast(Layer):
    """Shared axis logic of Scale and Bias: a second operand covering some axes of bottom 0."""

    BOTTOMS = (1, 2)
    WHAT = ""

    def _learned_shape(self, x_shape: Shape, axis_param: int, num_axes: int) -> Shape:
        """Shape of a learned operand (one bottom): ``x_shape[axis : axis + num_axes]`` after Caffe's checks."""
        axis = canonical_axis(axis_param, len(x_shape), self)
        if num_axes < -1:
            raise self.fail(f"num_axes must be non-negative, or -1 to extend to the end of bottom 0; got {num_axes}",
                            shape=False, fix="use num_axes >= 0, or -1")
        if num_axes >= 0 and len(x_shape) < axis + num_axes:
            raise self.fail(f"the {self.WHAT} blob would cover axes {axis}..{axis + num_axes - 1} but bottom 0 "
                            f"{list(x_shape)} has {len(x_shape)} axes",
                            fix="lower num_axes or axis")
        return tuple(x_shape[axis:]) if num_axes == -1 else tuple(x_shape[axis:axis + num_axes])

    def _operand_axis(self, x_shape: Shape, operand_shape: Shape) -> int:
        """Caffe's Reshape: the first axis of bottom 0 the operand covers, checked against its shape."""
        axis = 0 if len(operand_shape) == 0 else canonical_axis(self.axis_param, len(x_shape), self)
        if len(x_shape) < axis + len(operand_shape):
            raise self.fail(f"the {self.WHAT} shape {list(operand_shape)} extends past bottom 0's shape "
                            f"{list(x_shape)} when applied from axis {axis}",
                            fix="check axis and the shape of the second bottom")
        covered = tuple(x_shape[axis:axis + len(operand_shape)])
        if covered != tuple(operand_shape):
            raise self.fail(f"dimension mismatch: bottom 0 has shape {list(x_shape)}, whose axes from {axis} are "
                            f"{list(covered)}, but the {self.WHAT} has shape {list(operand_shape)}",
                            fix=f"give the {self.WHAT} the dims of bottom 0 from axis {axis} on, or change axis")
        return axis

    def infer_shapes(self, bottom_shapes):
        x_shape = bottom_shapes[0]
        for operand in [tuple(s) for s in bottom_shapes[1:]] + [tuple(b.shape) for b in self.blobs]:
            self._operand_axis(x_shape, operand)
        return [x_shape]

    @staticmethod
    def _expand(operand: torch.Tensor, x: torch.Tensor, axis_param: int) -> torch.Tensor:
        """``operand`` viewed so that it broadcasts against x from its axis on (trailing 1s for inner axes)."""
        if operand.dim() == 0:
            return operand
        axis = axis_param % x.dim()
        inner = x.dim() - axis - operand.dim()
        return operand.reshape(operand.shape + (1,) * inner) if inner else operand


@register_layer
class Scale(_Broadcast):
    TYPE = "Scale"
    WHAT = "scale"

    def setup(self, bottom_shapes):
        p = self.param("scale_param")
        self.axis_param = p.axis
        x_shape = bottom_shapes[0]
        self.learned_scale = len(bottom_shapes) == 1
        if self.learned_scale:
            shape = self._learned_shape(x_shape, p.axis, p.num_axes)
            self.add_blob(shape, p.filler, default_value=1.0)
        else:
            shape = tuple(bottom_shapes[1])
            self._operand_axis(x_shape, shape)
        self.bias_term = p.bias_term
        if self.bias_term:
            # Caffe builds an internal Bias layer over the same axes: its blob has the scale's shape
            canonical_axis(p.axis, len(x_shape), self)
            self.add_blob(shape, p.bias_filler, default_value=0.0)

    def forward(self, x, scale=None):
        s = self._expand(self.blobs[0] if scale is None else scale, x, self.axis_param)
        if self.bias_term:
            b = self._expand(self.blobs[-1], x, self.axis_param)
            return (torch.addcmul(b, x, s),)
        return (x * s,)


@register_layer
class Bias(_Broadcast):
    TYPE = "Bias"
    WHAT = "bias"

    def setup(self, bottom_shapes):
        p = self.param("bias_param")
        self.axis_param = p.axis
        if len(bottom_shapes) == 1:
            self.add_blob(self._learned_shape(bottom_shapes[0], p.axis, p.num_axes), p.filler, default_value=0.0)

    def forward(self, x, bias=None):
        return (x + self._expand(self.blobs[0] if bias is None else bias, x, self.axis_param),)
