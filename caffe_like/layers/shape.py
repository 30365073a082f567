"""Shape layers: Concat, Slice, Split, Flatten, Reshape, Crop, Silence.

None of them computes anything: they move, cut, copy or rename data, and their gradients only route
the top gradients back (autograd does it exactly as Caffe's Backward does).

* Concat:  y = cat(x_0, ..., x_{n-1}) along ``axis`` (default 1; deprecated ``concat_dim``).
           Shape: every dim but ``axis`` must match; top[axis] = Σ bottom_i[axis].  One bottom = identity.
* Slice:   tops = consecutive pieces of x along ``axis`` (default 1; deprecated ``slice_dim``), cut at
           ``slice_point`` p_1 < p_2 < ... (#tops-1 values): [0, p_1), [p_1, p_2), ..., [p_last, dim);
           without slice_point, #tops equal pieces (must divide).  One top = identity.
* Split:   every top is the bottom; the gradients of all tops add up in the bottom.  No in-place.
* Flatten: axes ``axis`` (1) .. ``end_axis`` (-1) merged into one: (N, C·H·W) by default.  No in-place.
* Reshape: ``shape.dim`` replaces the axes [axis, axis+num_axes) (default: all); a 0 copies the bottom
           dim at the same position (counted from ``axis``), one -1 is inferred from the count.  A
           negative ``axis`` counts insertion points from the end (-1 = after the last axis).  No in-place.
* Crop:    y = x_0[..., o_a : o_a + s_a, ...] for every axis a >= ``axis`` (default 2), s = shape of
           x_1, o = ``offset`` (0; given once for all cropped axes or once per cropped axis).  x_1 only
           gives the shape: it gets no gradient.
* Silence: any number of bottoms, no tops (their gradient is zero).

See: Caffe concat_layer.cpp, slice_layer.cpp, split_layer.cpp, flatten_layer.cpp, reshape_layer.cpp,
crop_layer.cpp, silence_layer.cpp.
NOTE: unlike Caffe, which checks shapes at every Reshape, the shapes here are checked at build time and
recomputed from the tensors at every forward (so the batch size may change as in Caffe); tops that
Caffe shares with the bottom (one-bottom Concat, one-top Slice, Split, Flatten, Reshape) are the
same tensor or a view of it, never a copy.
NOTE: unlike ``torch.nn.Flatten``, ``end_axis`` may be ``axis - 1`` (Caffe's count(a, a) = 1), which
inserts an axis of size 1.
"""

from __future__ import annotations

import math

import torch

from ..spec.schema import has
from .base import Layer, canonical_axis
from .registry import register_layer


def _deprecated_axis(layer: Layer, p, legacy: str, ndim: int) -> int:
    """``axis`` or the deprecated uint ``legacy`` field (Concat's concat_dim, Slice's slice_dim)."""
    if has(p, "axis") and has(p, legacy):
        raise layer.fail(f"give either axis or {legacy}, not both", shape=False,
                         fix=f"remove the deprecated {legacy}")
    if has(p, legacy):
        value = int(getattr(p, legacy))
        if not 0 <= value < ndim:
            raise layer.fail(f"{legacy} {value} is out of range for a blob with {ndim} axes",
                             fix=f"use 0 <= {legacy} < {ndim}")
        return value
    return canonical_axis(p.axis, ndim, layer)


def _no_in_place(layer: Layer) -> None:
    for top in layer.spec.top:
        if top in layer.spec.bottom:
            raise layer.fail(f"{layer.TYPE} cannot run in place (top '{top}' is also a bottom)", shape=False,
                             fix="give the top a new name")


@register_layer
class Concat(Layer):
    TYPE = "Concat"
    BOTTOMS = (1, None)

    def setup(self, bottom_shapes):
        self.axis = _deprecated_axis(self, self.param("concat_param"), "concat_dim", len(bottom_shapes[0]))

    def infer_shapes(self, bottom_shapes):
        first = bottom_shapes[0]
        total = first[self.axis]
        for i, shape in enumerate(bottom_shapes[1:], start=1):
            if len(shape) != len(first):
                raise self.fail(f"bottom {i} has {len(shape)} axes {list(shape)} but bottom 0 has {len(first)} "
                                f"{list(first)}", fix="all bottoms must have the same number of axes")
            bad = [a for a in range(len(first)) if a != self.axis and shape[a] != first[a]]
            if bad:
                raise self.fail(f"bottom {i} has shape {list(shape)} and bottom 0 {list(first)}: they differ at "
                                f"axis {bad[0]}, but only the concat axis {self.axis} may differ",
                                fix="make every other dim match, or concatenate along another axis")
            total += shape[self.axis]
        return [first[: self.axis] + (total,) + first[self.axis + 1:]]

    def forward(self, *xs):
        if len(xs) == 1:
            return (xs[0],)
        return (torch.cat(xs, dim=self.axis),)


@register_layer
class Slice(Layer):
    TYPE = "Slice"
    TOPS = (1, None)

    def setup(self, bottom_shapes):
        p = self.param("slice_param")
        self.axis = _deprecated_axis(self, p, "slice_dim", len(bottom_shapes[0]))
        self.points = [int(v) for v in p.slice_point]
        n_tops = len(self.spec.top)
        if self.points:
            if len(self.points) != n_tops - 1:
                raise self.fail(f"{len(self.points)} slice_point values for {n_tops} tops", shape=False,
                                fix="give one slice_point fewer than tops (or none for equal pieces)")
            prev = 0
            for point in self.points:
                if point <= prev:
                    raise self.fail(f"slice_point {self.points} must be strictly increasing and > 0", shape=False,
                                    fix="list the cut positions in increasing order")
                prev = point

    def _sizes(self, dim: int) -> list[int]:
        n_tops = len(self.spec.top)
        if self.points:
            if n_tops > dim:
                raise self.fail(f"cannot slice an axis of size {dim} into {n_tops} tops")
            if self.points[-1] > dim:
                raise self.fail(f"slice_point {self.points[-1]} is beyond the size {dim} of axis {self.axis}",
                                fix=f"use slice points <= {dim}")
            edges = [0, *self.points, dim]
            return [b - a for a, b in zip(edges, edges[1:])]
        if dim % n_tops:
            raise self.fail(f"{n_tops} tops do not divide axis {self.axis} of size {dim} evenly",
                            fix="give slice_point values, or a number of tops that divides the axis")
        return [dim // n_tops] * n_tops

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        return [shape[: self.axis] + (s,) + shape[self.axis + 1:] for s in self._sizes(shape[self.axis])]

    def forward(self, x):
        if len(self.spec.top) == 1:
            return (x,)
        return tuple(torch.split(x, self._sizes(x.shape[self.axis]), dim=self.axis))


@register_layer
class Split(Layer):
    TYPE = "Split"
    TOPS = (1, None)

    def setup(self, bottom_shapes):
        _no_in_place(self)

    def infer_shapes(self, bottom_shapes):
        return [bottom_shapes[0]] * len(self.spec.top)

    def forward(self, x):
        return (x,) * len(self.spec.top)


@register_layer
class Flatten(Layer):
    TYPE = "Flatten"

    def setup(self, bottom_shapes):
        _no_in_place(self)
        p = self.param("flatten_param")
        ndim = len(bottom_shapes[0])
        self.start = canonical_axis(p.axis, ndim, self)
        self.end = canonical_axis(p.end_axis, ndim, self, "end_axis")
        if self.end < self.start - 1:
            raise self.fail(f"end_axis {p.end_axis} (= {self.end}) comes before axis {p.axis} (= {self.start})",
                            shape=False, fix="give end_axis >= axis")

    def _shape(self, shape):
        return shape[: self.start] + (math.prod(shape[self.start: self.end + 1]),) + shape[self.end + 1:]

    def infer_shapes(self, bottom_shapes):
        return [self._shape(tuple(bottom_shapes[0]))]

    def forward(self, x):
        return (x.reshape(self._shape(tuple(x.shape))),)


@register_layer
class Reshape(Layer):
    TYPE = "Reshape"

    def setup(self, bottom_shapes):
        _no_in_place(self)
        p = self.param("reshape_param")
        self.dims = [int(d) for d in (p.shape.dim if p.shape is not None else [])]
        self.axis = int(p.axis)
        self.num_axes = int(p.num_axes)
        inferred = [i for i, d in enumerate(self.dims) if d == -1]
        if len(inferred) > 1:
            raise self.fail(f"shape {self.dims} has {len(inferred)} dims of -1; at most one can be inferred",
                            shape=False, fix="replace all but one -1 by explicit sizes (or 0 to copy)")
        if any(d < -1 for d in self.dims):
            raise self.fail(f"shape {self.dims} has a negative dim other than -1", shape=False,
                            fix="use sizes >= 1, 0 (copy) or a single -1 (infer)")
        if self.num_axes < -1:
            raise self.fail(f"num_axes {self.num_axes} must be >= 0, or -1 for all", shape=False)

    def _shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        ndim = len(shape)
        start = self.axis if self.axis >= 0 else ndim + self.axis + 1
        if not 0 <= start <= ndim:
            raise self.fail(f"axis {self.axis} is out of range for a bottom of shape {list(shape)}")
        end = ndim if self.num_axes == -1 else start + self.num_axes
        if end > ndim:
            raise self.fail(f"axis {self.axis} + num_axes {self.num_axes} = {end} is beyond the {ndim} axes of "
                            f"the bottom {list(shape)}")
        new = list(self.dims)
        for i, d in enumerate(new):
            if d == 0:
                if start + i >= ndim:
                    raise self.fail(f"shape dim {i} is 0 (copy), but the bottom {list(shape)} has no axis "
                                    f"{start + i} to copy", fix="give an explicit size")
                new[i] = shape[start + i]
        top = list(shape[:start]) + new + list(shape[end:])
        count = math.prod(shape)
        if -1 in new:
            known = math.prod(d for d in top if d != -1)
            if known == 0 or count % known:
                raise self.fail(f"cannot infer the -1 dim: the bottom count {count} ({list(shape)}) is not "
                                f"divisible by the product {known} of the other dims {top}")
            top[start + new.index(-1)] = count // known
        if math.prod(top) != count:
            raise self.fail(f"cannot reshape {list(shape)} ({count} elements) to {top} "
                            f"({math.prod(top)} elements)", fix="the counts must match")
        return tuple(top)

    def infer_shapes(self, bottom_shapes):
        return [self._shape(tuple(bottom_shapes[0]))]

    def forward(self, x):
        return (x.reshape(self._shape(tuple(x.shape))),)


@register_layer
class Crop(Layer):
    TYPE = "Crop"
    BOTTOMS = (2, 2)
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        p = self.param("crop_param")
        shape0, shape1 = bottom_shapes
        if len(shape0) != len(shape1):
            raise self.fail(f"bottom 0 {list(shape0)} and bottom 1 {list(shape1)} must have the same number of "
                            "axes", fix="crop a blob to one with the same number of axes")
        ndim = len(shape0)
        self.axis = canonical_axis(p.axis, ndim, self)
        self.offsets = [int(o) for o in p.offset]
        if len(self.offsets) > 1 and len(self.offsets) != ndim - self.axis:
            raise self.fail(f"{len(self.offsets)} offsets for the {ndim - self.axis} cropped axes "
                            f"{self.axis}..{ndim - 1}", shape=False,
                            fix="give one offset for all cropped axes or one per cropped axis")

    def _geometry(self, shape0, shape1):
        if len(shape0) != len(shape1):
            raise self.fail(f"bottom 0 {list(shape0)} and bottom 1 {list(shape1)} must have the same number of axes")
        starts = []
        for a in range(self.axis, len(shape0)):
            offset = 0 if not self.offsets else self.offsets[0 if len(self.offsets) == 1 else a - self.axis]
            if shape0[a] - offset < shape1[a]:
                raise self.fail(f"the crop of axis {a} is out of bounds: size {shape1[a]} at offset {offset} "
                                f"does not fit in {shape0[a]} (bottom 0 {list(shape0)}, bottom 1 {list(shape1)})",
                                fix="use a smaller offset or a larger bottom 0")
            starts.append(offset)
        return starts, tuple(shape0[: self.axis]) + tuple(shape1[self.axis:])

    def infer_shapes(self, bottom_shapes):
        return [self._geometry(*bottom_shapes)[1]]

    def forward(self, x, ref):
        starts, shape = self._geometry(tuple(x.shape), tuple(ref.shape))
        index = (slice(None),) * self.axis + tuple(slice(o, o + s) for o, s in zip(starts, shape[self.axis:]))
        return (x[index],)


@register_layer
class Silence(Layer):
    TYPE = "Silence"
    BOTTOMS = (1, None)
    TOPS = (0, 0)

    def infer_shapes(self, bottom_shapes):
        return []

    def forward(self, *xs):
        return ()
