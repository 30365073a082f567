"""Convolution and Deconvolution: Caffe's (transposed) cross-correlation over 0 to 3 spatial axes.

Convolution, per group g and output channel o in that group:
    y[n, o, p] = b[o] + Σ_{c in group g} Σ_{j} W[o, c, j] · x_pad[n, c, p·stride + j·dilation]
(no kernel flip; x_pad is x with ``pad`` zeros on both sides of every spatial axis).  Deconvolution is
the transpose of that map (Caffe runs the convolution's backward-data pass, col2im) plus the bias.

Shape: the bottom is (d0, ..., d_{axis-1}, C, s1, ..., sk) where ``axis`` (default 1) is the channel
axis, the axes before it are flattened into the batch and the k = 0..3 axes after it are spatial.  The
top is (d0, ..., d_{axis-1}, num_output, o1, ..., ok) with, per spatial axis, in integer arithmetic
    ext = dilation·(kernel − 1) + 1
    Convolution:   o = (s + 2·pad − ext) / stride + 1
    Deconvolution: o = stride·(s − 1) + ext − 2·pad           (no output_padding in Caffe)
Blobs, in Caffe's order and layout:
    Convolution:   W [num_output, C/group, k1, ..., kk], b [num_output] (when ``bias_term``, default true)
    Deconvolution: W [C, num_output/group, k1, ..., kk],  b [num_output]
(the Deconvolution layout is also PyTorch's ConvTranspose weight layout).  Several bottoms are allowed:
bottom i gives top i with the same blobs, and all bottoms must have the same shape.

Parameters: kernel/stride/pad/dilation are given once for every spatial axis or once per axis; the
``kernel_h/_w``, ``stride_h/_w``, ``pad_h/_w`` forms are for 2-D only and cannot be mixed with the
repeated form (as Caffe checks).  ``group`` must divide both C and num_output.

NOTE: unlike PyTorch's Conv layers, no ``weight_filler`` (or ``bias_filler``) means constant 0: an
un-filled Convolution starts with all-zero weights, as in Caffe.
NOTE: Caffe computes a Convolution output size of (s + 2·pad − ext) / stride + 1 with C++ truncation, so
a kernel larger than the padded input can yield one output with the window hanging off the input;
caffe_like rejects that configuration (a ShapeError naming the layer and the shapes) instead.
NOTE: Caffe's N-D convolution accepts any number of spatial axes; caffe_like supports 0 to 3
(torch's conv1d/2d/3d) and rejects more with a clear error.
See: Caffe base_conv_layer.cpp, conv_layer.cpp, deconv_layer.cpp.
"""

from __future__ import annotations

import math

import torch.nn.functional as F

from ..spec.schema import has
from .base import Layer, canonical_axis
from .registry import register_layer

__all__ = ["Convolution", "Deconvolution"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX_SPATIAL_AXES = 3


class _BaseConvolution(Layer):
    """What Convolution and Deconvolution share (Caffe's BaseConvolutionLayer)."""

    BOTTOMS = (1, None)
    TOPS = (1, None)
    #: Deconvolution swaps the roles of the input and output channels
    REVERSE = False

    # -- setup ---------------------------------------------------------------------------------------

    def setup(self, bottom_shapes):
        p = self.param("convolution_param")
        if len(bottom_shapes) != len(self.spec.top):
            raise self.fail(f"{self.TYPE} maps bottom i to top i, but it has {len(bottom_shapes)} bottom(s) and "
                            f"{len(self.spec.top)} top(s)", fix="list as many tops as bottoms", shape=False)
        shape = bottom_shapes[0]
        self.axis = canonical_axis(p.axis, len(shape), self)
        self.n_spatial = len(shape) - self.axis - 1
        if self.n_spatial > _MAX_SPATIAL_AXES:
            raise self.fail(f"bottom shape {list(shape)} has {self.n_spatial} spatial axes after the channel axis "
                            f"{self.axis}; caffe_like supports 0 to {_MAX_SPATIAL_AXES} (Caffe's N-D im2col is not "
                            "implemented)", fix="reshape the input to at most 3 spatial axes")
        self.kernel = self._per_axis(p, "kernel_size", "kernel_h", "kernel_w", default=None)
        self.stride = self._per_axis(p, "stride", "stride_h", "stride_w", default=1)
        self.pad = self._per_axis(p, "pad", "pad_h", "pad_w", default=0)
        self.dilation = self._per_axis(p, "dilation", None, None, default=1)
        for what, values, low in (("kernel size", self.kernel, 1), ("stride", self.stride, 1),
                                  ("dilation", self.dilation, 1)):
            if any(v < low for v in values):
                raise self.fail(f"every {what} must be > 0, got {list(values)}", shape=False,
                                fix=f"give a positive {what} for every spatial axis")
        self.num_output = int(p.num_output)
        if self.num_output <= 0:
            raise self.fail("num_output must be > 0", fix="set convolution_param.num_output", shape=False)
        self.group = int(p.group)
        self.channels = shape[self.axis]
        if self.group <= 0:
            raise self.fail(f"group must be > 0, got {self.group}", shape=False)
        if self.channels % self.group:
            raise self.fail(f"the {self.channels} input channels of bottom shape {list(shape)} (axis {self.axis}) "
                            f"are not divisible by group {self.group}",
                            fix="choose a group that divides the input channels")
        if self.num_output % self.group:
            raise self.fail(f"num_output {self.num_output} is not divisible by group {self.group}",
                            fix="choose a num_output that is a multiple of group", shape=False)
        if self.REVERSE:
            weight_shape = (self.channels, self.num_output // self.group) + self.kernel
        else:
            weight_shape = (self.num_output, self.channels // self.group) + self.kernel
        self.add_blob(weight_shape, p.weight_filler)
        self.bias_term = bool(p.bias_term)
        if self.bias_term:
            self.add_blob((self.num_output,), p.bias_filler)
        self._plain = self.axis == 1 and self.n_spatial > 0
        self._op = self._torch_op()
        self.infer_shapes(bottom_shapes)  # size checks at build time

    def _per_axis(self, p, name, name_h, name_w, default):
        """Caffe's reading of a spatial parameter: once, once per spatial axis, or as _h/_w (2-D)."""
        values = list(getattr(p, name))
        k = self.n_spatial
        if name_h is not None and (has(p, name_h) or has(p, name_w)):
            if k != 2:
                raise self.fail(f"{name_h}/{name_w} can only be used for 2-D convolution, but the bottom has {k} "
                                "spatial axes", fix=f"give '{name}' once or once per spatial axis", shape=False)
            if values:
                raise self.fail(f"give either '{name}' or {name_h}/{name_w}, not both", shape=False,
                                fix=f"remove '{name}' or {name_h}/{name_w}")
            return (int(getattr(p, name_h)), int(getattr(p, name_w)))
        if not values:
            if default is None and k > 0:
                raise self.fail(f"'{name}' is required", shape=False,
                                fix=f"give '{name}' (once, or once per spatial axis) or {name_h}/{name_w}")
            return (default,) * k
        if len(values) not in (1, k):
            raise self.fail(f"'{name}' must be given once or once per spatial axis ({k}), got {len(values)} values",
                            fix=f"give 1 or {k} values", shape=False)
        return tuple(int(values[0 if len(values) == 1 else i]) for i in range(k))

    # -- shapes --------------------------------------------------------------------------------------

    def _output_size(self, i, size, shape):
        """Top size on spatial axis i for an input of ``size`` (``shape``: the bottom, for messages)."""
        raise NotImplementedError

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        for index, other in enumerate(bottom_shapes[1:], start=1):
            if other != shape:
                raise self.fail(f"all bottoms must have the same shape, but bottom 0 is {list(shape)} and bottom "
                                f"{index} is {list(other)}", fix="use one layer per input shape")
        if len(shape) != self.axis + 1 + self.n_spatial:
            raise self.fail(f"the layer was set up for {self.axis + 1 + self.n_spatial}-axis bottoms, got shape "
                            f"{list(shape)}")
        if shape[self.axis] != self.channels:
            raise self.fail(f"bottom shape {list(shape)} has {shape[self.axis]} channels on axis {self.axis}, but "
                            f"the layer was set up for {self.channels}")
        spatial = tuple(self._output_size(i, shape[self.axis + 1 + i], shape) for i in range(self.n_spatial))
        top = shape[: self.axis] + (self.num_output,) + spatial
        return [top] * len(bottom_shapes)

    # -- forward -------------------------------------------------------------------------------------

    def _torch_op(self):
        """(torch function, its arguments after (input, weight, bias)) for (batch, C, spatial...) inputs."""
        raise NotImplementedError

    def forward(self, *bottoms):
        weight = self.blobs[0]
        bias = self.blobs[1] if self.bias_term else None
        op, args = self._op
        if self._plain:  # channel axis 1 and 1 to 3 spatial axes: the torch op as it is
            return tuple(op(x, weight, bias, *args) for x in bottoms)
        if self.n_spatial == 0:  # a 1x1 "convolution" of (..., C): one spatial axis of size 1 for torch
            weight = weight.unsqueeze(-1)
        tops = []
        for x in bottoms:
            lead = tuple(x.shape[: self.axis])
            batched = x.reshape((math.prod(lead),) + tuple(x.shape[self.axis:]))
            if self.n_spatial == 0:
                batched = batched.unsqueeze(-1)
            y = op(batched, weight, bias, *args)
            if self.n_spatial == 0:
                y = y.squeeze(-1)
            tops.append(y.reshape(lead + tuple(y.shape[1:])))
        return tuple(tops)

    def extra_repr(self) -> str:
        settings = ", ".join(f"{name}={self.__dict__[name]}" for name in
                             ("num_output", "kernel", "stride", "pad", "dilation", "group", "bias_term")
                             if name in self.__dict__)  # (all of them once set up)
        return f"{super().extra_repr()}, {settings}"


def _geometry_args(layer):
    """stride, padding, dilation as torch wants them (one spatial axis of size 1 when there is none)."""
    if layer.n_spatial == 0:
        return (1,), (0,), (1,)
    return layer.stride, layer.pad, layer.dilation


@register_layer
class Convolution(_BaseConvolution):
    TYPE = "Convolution"

    def _output_size(self, i, size, shape):
        ext = self.dilation[i] * (self.kernel[i] - 1) + 1
        padded = size + 2 * self.pad[i]
        if padded < ext:
            raise self.fail(
                f"the kernel is larger than the padded input on spatial axis {i}: kernel extent {ext} "
                f"(kernel {self.kernel[i]}, dilation {self.dilation[i]}) > input {size} + 2*pad {self.pad[i]} = "
                f"{padded} (bottom shape {list(shape)})",
                fix="use a smaller kernel or dilation, more padding, or a larger input")
        return (padded - ext) // self.stride[i] + 1

    def _torch_op(self):
        stride, pad, dilation = _geometry_args(self)
        return _CONV[max(self.n_spatial, 1)], (stride, pad, dilation, self.group)


@register_layer
class Deconvolution(_BaseConvolution):
    TYPE = "Deconvolution"
    REVERSE = True

    def _output_size(self, i, size, shape):
        ext = self.dilation[i] * (self.kernel[i] - 1) + 1
        out = self.stride[i] * (size - 1) + ext - 2 * self.pad[i]
        if out <= 0:
            raise self.fail(
                f"the output would be empty on spatial axis {i}: stride {self.stride[i]} * (input {size} - 1) + "
                f"kernel extent {ext} - 2*pad {self.pad[i]} = {out} (bottom shape {list(shape)})",
                fix="use less padding or a larger kernel/input")
        return out

    def _torch_op(self):
        stride, pad, dilation = _geometry_args(self)
        return _CONV_T[max(self.n_spatial, 1)], (stride, pad, 0, self.group, dilation)
