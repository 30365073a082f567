"""LayerInfo entries: Concat, Slice, Split, Flatten, Reshape, Crop, Silence.

The references below re-derive each top shape from Caffe's rules with plain loops, then move the data
with NumPy indexing (no shared code with caffe_like/layers/shape.py).
"""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def _axis(p, name, legacy, ndim, default=1):
    if legacy in p:
        return p[legacy]
    axis = p.get(name, default)
    return axis + ndim if axis < 0 else axis


# -- Concat -----------------------------------------------------------------------------------------


def _concat_samples(rng):
    a, b, c = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 1, 2)), rng.standard_normal((2, 4, 2))
    return [
        LayerSample("axis1_default", (a, b, c)),
        LayerSample("axis_negative", (rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 5))),
                    layer={"concat_param": {"axis": -1}}),
        LayerSample("axis0", (rng.standard_normal((1, 3)), rng.standard_normal((4, 3))),
                    layer={"concat_param": {"axis": 0}}),
        LayerSample("concat_dim_legacy", (rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 2, 1))),
                    layer={"concat_param": {"concat_dim": 2}}),
        LayerSample("one_bottom_identity", (a,), check_grad=False),
    ]


def _concat_reference(sample, bottoms, blobs):
    p = sample.layer.get("concat_param", {})
    axis = _axis(p, "axis", "concat_dim", bottoms[0].ndim)
    shape = list(bottoms[0].shape)
    shape[axis] = sum(b.shape[axis] for b in bottoms)
    out = np.zeros(shape)
    start = 0
    for b in bottoms:
        index = [slice(None)] * len(shape)
        index[axis] = slice(start, start + b.shape[axis])
        out[tuple(index)] = b
        start += b.shape[axis]
    return [out]


# -- Slice ------------------------------------------------------------------------------------------


def _slice_samples(rng):
    x = rng.standard_normal((2, 6, 3))
    return [
        LayerSample("points_axis1", (x,), layer={"slice_param": {"slice_point": [1, 4]}}, n_tops=3),
        LayerSample("even_axis_negative", (x,), layer={"slice_param": {"axis": -2}}, n_tops=3),
        LayerSample("even_axis0", (x,), layer={"slice_param": {"axis": 0}}, n_tops=2),
        LayerSample("slice_dim_legacy", (x,), layer={"slice_param": {"slice_dim": 2, "slice_point": [2]}}, n_tops=2),
        LayerSample("one_top_identity", (x,)),
        # Caffe accepts a last slice point equal to the axis size: the last top is empty
        LayerSample("last_point_at_end", (x,), layer={"slice_param": {"slice_point": [2, 6]}}, n_tops=3,
                    check_grad=False),
    ]


def _slice_reference(sample, bottoms, blobs):
    p = sample.layer.get("slice_param", {})
    x = bottoms[0]
    axis = _axis(p, "axis", "slice_dim", x.ndim)
    dim = x.shape[axis]
    points = p.get("slice_point", [])
    if not points:
        points = [dim // sample.n_tops * k for k in range(1, sample.n_tops)]
    edges = [0, *points, dim]
    tops = []
    for lo, hi in zip(edges, edges[1:]):
        index = [slice(None)] * x.ndim
        index[axis] = slice(lo, hi)
        tops.append(x[tuple(index)].copy())
    return tops


# -- Split ------------------------------------------------------------------------------------------


def _split_samples(rng):
    return [
        LayerSample("three_tops", (rng.standard_normal((2, 3, 2)),), n_tops=3),
        LayerSample("one_top", (rng.standard_normal((4,)),)),
    ]


# -- Flatten ----------------------------------------------------------------------------------------


def _flatten_samples(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    return [
        LayerSample("default", (x,)),
        LayerSample("axis2", (x,), layer={"flatten_param": {"axis": 2}}),
        LayerSample("negative_axes", (x,), layer={"flatten_param": {"axis": -3, "end_axis": -2}}),
        LayerSample("axis0_all", (x,), layer={"flatten_param": {"axis": 0}}),
        # count(1, 1) = 1: end_axis = axis - 1 inserts an axis of size 1, as Caffe does
        LayerSample("end_before_axis_inserts_1", (x,), layer={"flatten_param": {"axis": 2, "end_axis": 1}}),
    ]


def _flatten_reference(sample, bottoms, blobs):
    p = sample.layer.get("flatten_param", {})
    x = bottoms[0]
    n = x.ndim
    start = p.get("axis", 1) % n
    end = p.get("end_axis", -1) % n
    merged = 1
    for a in range(start, end + 1):
        merged *= x.shape[a]
    shape = list(x.shape[:start]) + [merged] + list(x.shape[end + 1:])
    return [x.reshape(shape)]


# -- Reshape ----------------------------------------------------------------------------------------


def _reshape_samples(rng):
    x = rng.standard_normal((2, 6, 4))
    return [
        LayerSample("copy_and_infer", (x,), layer={"reshape_param": {"shape": {"dim": [0, -1]}}}),
        LayerSample("infer_all", (x,), layer={"reshape_param": {"shape": {"dim": [-1]}}}),
        LayerSample("explicit", (x,), layer={"reshape_param": {"shape": {"dim": [4, 3, 2, 2]}}}),
        LayerSample("copy_two_infer", (x,), layer={"reshape_param": {"shape": {"dim": [0, 0, 2, -1]}}}),
        LayerSample("axis1_num_axes1", (x,),
                    layer={"reshape_param": {"shape": {"dim": [3, -1]}, "axis": 1, "num_axes": 1}}),
        LayerSample("axis1_copy_relative", (x,),
                    layer={"reshape_param": {"shape": {"dim": [0, 2, 2]}, "axis": 1}}),
        LayerSample("append_axes", (x,),
                    layer={"reshape_param": {"shape": {"dim": [1, 1]}, "axis": -1, "num_axes": 0}}),
        LayerSample("prepend_axis", (x,), layer={"reshape_param": {"shape": {"dim": [1]}, "axis": 0, "num_axes": 0}}),
        LayerSample("negative_axis_replace_last", (x,),
                    layer={"reshape_param": {"shape": {"dim": [2, -1]}, "axis": -2}}),
    ]


def _reshape_reference(sample, bottoms, blobs):
    p = sample.layer["reshape_param"]
    x = bottoms[0]
    n = x.ndim
    axis = p.get("axis", 0)
    start = axis if axis >= 0 else n + axis + 1
    num_axes = p.get("num_axes", -1)
    end = n if num_axes == -1 else start + num_axes
    dims = list(p["shape"]["dim"])
    new = []
    for i, d in enumerate(dims):
        new.append(x.shape[start + i] if d == 0 else d)
    shape = list(x.shape[:start]) + new + list(x.shape[end:])
    if -1 in shape:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        shape[shape.index(-1)] = x.size // known
    return [x.reshape(shape)]


# -- Crop -------------------------------------------------------------------------------------------


def _crop_samples(rng):
    big = rng.standard_normal((2, 3, 6, 5))
    return [
        LayerSample("default_axis2_offset0", (big, np.zeros((2, 3, 3, 2)))),
        LayerSample("one_offset_for_all", (big, np.zeros((2, 3, 4, 4))), layer={"crop_param": {"offset": [1]}}),
        LayerSample("offset_per_axis", (big, np.zeros((2, 3, 3, 2))), layer={"crop_param": {"offset": [3, 2]}}),
        LayerSample("axis1", (big, np.zeros((7, 2, 3, 5))),
                    layer={"crop_param": {"axis": 1, "offset": [1, 2, 0]}}),
        LayerSample("axis_negative", (big, np.ones((1, 1, 1, 2))), layer={"crop_param": {"axis": -1, "offset": [3]}}),
        LayerSample("same_size", (big, np.zeros((2, 3, 6, 5)))),
    ]


def _crop_reference(sample, bottoms, blobs):
    p = sample.layer.get("crop_param", {})
    x, ref = bottoms
    n = x.ndim
    axis = p.get("axis", 2) % n
    offsets = p.get("offset", [])
    index = []
    for a in range(n):
        if a < axis:
            index.append(slice(None))
            continue
        o = 0 if not offsets else (offsets[0] if len(offsets) == 1 else offsets[a - axis])
        index.append(slice(o, o + ref.shape[a]))
    return [x[tuple(index)]]


# -- Silence ----------------------------------------------------------------------------------------


def _silence_samples(rng):
    return [
        LayerSample("one", (rng.standard_normal((2, 3)),), n_tops=0, check_grad=False),
        LayerSample("three", (rng.standard_normal((2,)), rng.standard_normal((1, 2, 3)), np.array([1.0, 0.0])),
                    n_tops=0, check_grad=False),
    ]


INFOS = [
    LayerInfo("Concat", _concat_samples, reference=_concat_reference, grad_bottoms=(0, 1)),
    LayerInfo("Slice", _slice_samples, reference=_slice_reference),
    LayerInfo("Split", _split_samples, reference=lambda s, b, w: [b[0].copy() for _ in range(s.n_tops)]),
    LayerInfo("Flatten", _flatten_samples, reference=_flatten_reference),
    LayerInfo("Reshape", _reshape_samples, reference=_reshape_reference),
    LayerInfo("Crop", _crop_samples, reference=_crop_reference),
    LayerInfo("Silence", _silence_samples, reference=lambda s, b, w: [], grad_bottoms=(), onnx=False),
]
