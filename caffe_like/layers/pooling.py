"""Pooling: Caffe's MAX, AVE and STOCHASTIC pooling over H×W windows (BVLC master).

Windows, per spatial axis (size s, kernel k, stride t, pad p), for output index o:
    start = o·t − p,   values: [max(start, 0), min(start + k, s))
    MAX:  y = the largest value in the window; padding is never a candidate; the first maximum in
          row-major order wins ties (it gets the gradient); a window with no input cell gives −FLT_MAX.
    AVE:  y = Σ window / pool_size,  pool_size = (min(start + k, s + p) − start) per axis, multiplied:
          padding cells count in the divisor, cells past the padded border (ceil overhang) do not.
    STOCHASTIC (no padding; inputs assumed ≥ 0):
          TRAIN: y = x at one cell drawn with probability x/Σ window; the gradient goes to that cell;
          TEST:  y = Σ x² / Σ x, and 0 when Σ x ≤ 0 (BVLC master).
Output size (``round_mode`` CEIL, the default; FLOOR uses floor):
    o = ceil((s + 2p − k) / t) + 1, then, **only if some pad (pad_h or pad_w) is non-zero**, o −= 1 when
    (o − 1)·t ≥ s + p (the last window must start inside the image or its top/left padding).
``global_pooling``: k = (H, W), pad 0, stride 1, so the top is (N, C, 1, 1).

Shape: bottom (N, C, H, W) -> top (N, C, oH, oW); an optional second top (MAX only) is the "mask": the
flat index h·W + w of each maximum within its plane, as a float (−1 for an empty window).

NOTE: unlike PyTorch's ``ceil_mode``, Caffe clips the last window only when there is padding: without
it, in=4, k=1, s=2 gives 3 outputs (PyTorch 2), the last window lying wholly past the input (MAX gives
−FLT_MAX there; AVE gives 0/0 = NaN, as Caffe does, with a warning when the layer is built).
NOTE: unlike PyTorch, Caffe allows any pad < kernel (PyTorch: pad ≤ kernel/2).  Where PyTorch's windows
and output size coincide with Caffe's (the common case), ``max_pool2d``/``avg_pool2d`` run directly;
otherwise the input is padded explicitly (−inf for MAX, 0 for AVE with PyTorch's in-bounds divisor,
which then equals Caffe's pool_size) and the output is cut or completed to Caffe's size.
NOTE: Caffe runs STOCHASTIC on the GPU only and draws with its own generator; caffe_like runs it on any
device with torch's generator (so the draws differ from Caffe's), and back-propagates a TEST forward
through its formula (Caffe's TEST backward reuses the last TRAIN draw).
See: Caffe pooling_layer.cpp, pooling_layer.cu.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..spec.schema import has
from .base import Layer
from .registry import register_layer

__all__ = ["Pooling", "FLT_MAX", "pooled_size"]

#: Caffe's FLT_MAX: MAX pooling starts from −FLT_MAX, the value of a window with no input cell
FLT_MAX = 3.4028234663852886e38


def pooled_size(size: int, kernel: int, stride: int, pad: int, *, ceil: bool, clip: bool) -> int:
    """Caffe's pooled size on one axis (``clip``: some pad of the layer is non-zero)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if clip and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _torch_pooled_size(size: int, kernel: int, stride: int, pad: int, *, ceil: bool) -> int:
    """PyTorch's pooled size (``pooling_output_shape``): ceil mode always clips."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@dataclass(frozen=True)
class _Geometry:
    """Windows of one input plane size: everything forward needs, computed once per (H, W)."""

    size: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]
    #: PyTorch's own op (with its padding and ceil_mode) computes exactly Caffe's windows
    direct: bool
    #: output cells (per axis) whose window holds no input cell: the last ones past the input
    empty: tuple[int, int]
    #: pool sizes per axis (Caffe's formula, possibly <= 0 for empty windows)
    pool_sizes: tuple[tuple[int, ...], tuple[int, ...]]


@register_layer
class Pooling(Layer):
    TYPE = "Pooling"
    TOPS = (1, 2)

    def setup(self, bottom_shapes):
        p = self.param("pooling_param")
        self.pool = p.pool
        self.ceil = p.round_mode == "CEIL"
        self.global_pooling = bool(p.global_pooling)
        given = {name: has(p, name) for name in ("kernel_size", "kernel_h", "kernel_w", "pad", "pad_h", "pad_w",
                                                  "stride", "stride_h", "stride_w")}
        if self.global_pooling:
            if given["kernel_size"] or given["kernel_h"] or given["kernel_w"]:
                raise self.fail("with global_pooling: true the kernel size cannot be given (it is H x W)",
                                fix="remove kernel_size/kernel_h/kernel_w", shape=False)
        else:
            if given["kernel_size"] == (given["kernel_h"] and given["kernel_w"]) or (
                    given["kernel_size"] and (given["kernel_h"] or given["kernel_w"])):
                raise self.fail("give the window as kernel_size OR as both kernel_h and kernel_w", shape=False,
                                fix="set kernel_size, or kernel_h and kernel_w")
        for name in ("pad", "stride"):
            h, w = given[f"{name}_h"], given[f"{name}_w"]
            if (h or w) and not (h and w and not given[name]):
                raise self.fail(f"give {name} OR both {name}_h and {name}_w", shape=False,
                                fix=f"set {name}, or {name}_h and {name}_w")
        if self.global_pooling:
            self.kernel = None
        elif given["kernel_size"]:
            self.kernel = (int(p.kernel_size),) * 2
        else:
            self.kernel = (int(p.kernel_h), int(p.kernel_w))
        self.pad = (int(p.pad_h), int(p.pad_w)) if given["pad_h"] else (int(p.pad),) * 2
        self.stride = (int(p.stride_h), int(p.stride_w)) if given["stride_h"] else (int(p.stride),) * 2
        if self.kernel is not None and min(self.kernel) <= 0:
            raise self.fail(f"the kernel size must be > 0, got {list(self.kernel)}", shape=False)
        if min(self.stride) <= 0:
            raise self.fail(f"the stride must be > 0, got {list(self.stride)}", shape=False)
        if self.global_pooling and (self.pad != (0, 0) or self.stride != (1, 1)):
            raise self.fail(f"with global_pooling: true only pad 0 and stride 1 are allowed, got pad "
                            f"{list(self.pad)} and stride {list(self.stride)}", shape=False,
                            fix="remove pad and stride")
        if self.pad != (0, 0):
            if self.pool not in ("MAX", "AVE"):
                raise self.fail(f"padding is implemented only for MAX and AVE pooling, not {self.pool}",
                                shape=False, fix="remove pad")
            if self.kernel is not None and not (self.pad[0] < self.kernel[0] and self.pad[1] < self.kernel[1]):
                raise self.fail(f"pad {list(self.pad)} must be smaller than the kernel {list(self.kernel)}",
                                shape=False, fix="reduce the padding")
        if len(self.spec.top) == 2 and self.pool != "MAX":
            raise self.fail(f"a second top (the argmax mask) exists only for MAX pooling, not {self.pool}",
                            fix="remove the second top", shape=False)
        self._geometries: dict[tuple[int, int], _Geometry] = {}
        self._constants: dict = {}
        self.infer_shapes(bottom_shapes)
        geometry = self._geometry(bottom_shapes[0][2], bottom_shapes[0][3])
        if self.pool == "AVE" and any(geometry.empty):
            warnings.warn(f"layer '{self.layer_name}' (Pooling): AVE windows past the input give 0/0 = NaN, as in "
                          f"Caffe (bottom {list(bottom_shapes[0])}, kernel {list(geometry.kernel)}, stride "
                          f"{list(geometry.stride)}, no pad, round_mode CEIL)", stacklevel=2)

    # -- shapes --------------------------------------------------------------------------------------

    def _geometry(self, height: int, width: int) -> _Geometry:
        cached = self._geometries.get((height, width))
        if cached is not None:
            return cached
        kernel = (height, width) if self.global_pooling else self.kernel
        clip = self.pad != (0, 0)
        out, empty, sizes, direct = [], [], [], True
        for size, k, s, p in zip((height, width), kernel, self.stride, self.pad):
            o = pooled_size(size, k, s, p, ceil=self.ceil, clip=clip)
            if o <= 0:
                raise self.fail(f"the {k}-wide window (stride {s}, pad {p}) gives no output for an input of size "
                                f"{size}: the kernel is larger than the padded input {size + 2 * p}",
                                fix="use a smaller kernel, more padding or a larger input")
            starts = [i * s - p for i in range(o)]
            out.append(o)
            empty.append(sum(1 for start in starts if start >= size))
            sizes.append(tuple(min(start + k, size + p) - start for start in starts))
            direct &= 2 * p <= k and _torch_pooled_size(size, k, s, p, ceil=self.ceil) == o
        geometry = _Geometry((height, width), tuple(kernel), self.stride, self.pad, tuple(out), direct, tuple(empty),
                             tuple(sizes))
        self._geometries[(height, width)] = geometry
        return geometry

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise self.fail(f"the bottom must have 4 axes (N, C, H, W), got shape {list(shape)}",
                            fix="reshape the input to N x C x H x W")
        geometry = self._geometry(shape[2], shape[3])
        top = shape[:2] + geometry.out
        return [top] * len(self.spec.top)

    # -- forward -------------------------------------------------------------------------------------

    def forward(self, x):
        # plain ints: the window geometry is Python arithmetic, never traced (ONNX export, torch.export)
        g = self._geometry(int(x.shape[2]), int(x.shape[3]))
        if self.pool == "MAX":
            return self._max(x, g, with_mask=len(self.spec.top) == 2)
        if self.pool == "AVE":
            return (self._ave(x, g),)
        return (self._stochastic(x, g),)

    def _constant(self, key, make, like):
        """A small constant tensor, built once per (key, dtype, device)."""
        full_key = (key, like.dtype, like.device)
        value = self._constants.get(full_key)
        if value is None:
            value = make().to(dtype=like.dtype, device=like.device)
            self._constants[full_key] = value
        return value

    @staticmethod
    def _explicit_pad(x, g, value):
        ph, pw = g.pad
        return F.pad(x, (pw, pw, ph, ph), value=value) if (ph or pw) else x

    @staticmethod
    def _fit(y, g, value):
        """Cut PyTorch's output to Caffe's size, or complete it with the windows past the input."""
        oh, ow = g.out
        y = y[..., :oh, :ow]
        missing_h, missing_w = oh - y.shape[-2], ow - y.shape[-1]
        if missing_h or missing_w:
            y = F.pad(y, (0, missing_w, 0, missing_h), value=value)
        return y

    def _max(self, x, g, with_mask):
        if g.direct:
            if not with_mask:
                return (F.max_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil),)
            y, index = F.max_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil, return_indices=True)
            return y, index.to(x.dtype)
        xp = self._explicit_pad(x, g, float("-inf"))
        y, index = F.max_pool2d(xp, g.kernel, g.stride, 0, ceil_mode=self.ceil, return_indices=True)
        y = self._fit(y, g, -FLT_MAX)
        if not with_mask:
            return (y,)
        ph, pw = g.pad
        if ph or pw:  # index in the padded plane -> index in the input plane
            width = g.size[1]
            index = (index // (width + 2 * pw) - ph) * width + (index % (width + 2 * pw) - pw)
        return y, self._fit(index.to(x.dtype), g, -1.0)

    def _ave(self, x, g):
        if g.direct:
            return F.avg_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil, count_include_pad=True)
        # explicit zero padding: PyTorch's in-bounds divisor (count_include_pad=False) is Caffe's pool_size
        xp = self._explicit_pad(x, g, 0.0)
        y = F.avg_pool2d(xp, g.kernel, g.stride, 0, ceil_mode=self.ceil, count_include_pad=False)
        y = self._fit(y, g, 0.0)
        if any(g.empty):  # Caffe: 0 / pool_size for windows past the input (NaN or ±0)
            def make():
                sizes_h = torch.tensor(g.pool_sizes[0], dtype=torch.float64)
                sizes_w = torch.tensor(g.pool_sizes[1], dtype=torch.float64)
                empty = torch.zeros(g.out, dtype=torch.bool)
                empty[g.out[0] - g.empty[0]:, :] = True
                empty[:, g.out[1] - g.empty[1]:] = True
                values = torch.zeros(g.out, dtype=torch.float64) / (sizes_h[:, None] * sizes_w[None, :])
                return torch.stack([empty.to(torch.float64), values])

            empty_and_values = self._constant(("ave_empty", g.size), make, x)
            y = torch.where(empty_and_values[0].bool(), empty_and_values[1], y)
        return y

    def _windows_padded(self, x, g):
        """x with zeros on the bottom/right so that Caffe's windows tile it exactly (no padding here)."""
        extra = [(o - 1) * s + k - size for o, s, k, size in zip(g.out, g.stride, g.kernel, g.size)]
        if extra == [0, 0]:
            return x
        xp = F.pad(x, (0, max(extra[1], 0), 0, max(extra[0], 0))) if max(extra) > 0 else x
        return xp[..., : g.size[0] + extra[0], : g.size[1] + extra[1]]

    def _stochastic(self, x, g):
        xp = self._windows_padded(x, g)
        if not self.training_phase:
            total = F.avg_pool2d(xp, g.kernel, g.stride)  # both means share the divisor k_h * k_w
            squares = F.avg_pool2d(xp * xp, g.kernel, g.stride)
            positive = total > 0
            return torch.where(positive, squares / torch.where(positive, total, torch.ones_like(total)),
                               torch.zeros_like(total))
        planes = xp.reshape(-1, 1, xp.shape[2], xp.shape[3])
        cols = F.unfold(planes, g.kernel, stride=g.stride)  # (N*C, kh*kw, L), windows in row-major order

        def make():
            inside = torch.zeros((1, 1) + tuple(xp.shape[2:]), dtype=torch.float64)
            inside[..., : g.size[0], : g.size[1]] = 1.0
            return F.unfold(inside, g.kernel, stride=g.stride)

        inside = self._constant(("inside", g.size), make, x).bool()
        cumsum = cols.cumsum(1)
        # drawn in float32 whatever the dtype, so that float32 and float64 nets with one seed draw alike
        uniform = torch.rand(cols.shape[0], 1, cols.shape[2], dtype=torch.float32, device=x.device)
        threshold = uniform.to(x.dtype) * cumsum[:, -1:]
        hit = (cumsum >= threshold) & inside
        first = hit.to(torch.uint8).argmax(1, keepdim=True)  # the first cell where the cumsum passes
        picked = cols.gather(1, first)
        picked = torch.where(hit.any(1, keepdim=True), picked, torch.zeros_like(picked))
        return picked.reshape(x.shape[0], x.shape[1], g.out[0], g.out[1])

    def extra_repr(self) -> str:
        if "stride" not in self.__dict__:  # setup failed
            return super().extra_repr()
        window = "global" if self.global_pooling else f"kernel={self.kernel}"
        return (f"{super().extra_repr()}, pool={self.pool}, {window}, stride={self.stride}, pad={self.pad}, "
                f"round_mode={'CEIL' if self.ceil else 'FLOOR'}")
