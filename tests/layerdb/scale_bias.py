"""LayerInfo entries: Scale and Bias.

The reference broadcasts with explicit index arithmetic (outer, dim, inner), as Caffe's loops do.  The
generic gradcheck covers bottom 0 and the learned blobs; the gradient to bottom 1 (two-bottom form) is
checked in tests/layers/test_scale_bias.py, because ``grad_bottoms`` applies to every sample and the
one-bottom samples have no bottom 1.
"""

from __future__ import annotations

import math

import numpy as np

from layer_db import LayerInfo, LayerSample

_G = {"type": "gaussian", "std": 1.0, "mean": 0.5}


def _broadcast(x, operand, axis):
    """``operand`` repeated over the outer and inner axes of ``x`` (axis = first covered axis of x)."""
    if operand.ndim == 0:
        return np.full_like(x, float(operand))
    outer = math.prod(x.shape[:axis])
    dim = operand.size
    inner = x.size // (outer * dim)
    flat = np.empty((outer, dim, inner))
    for o in range(outer):
        for d in range(dim):
            flat[o, d, :] = operand.reshape(-1)[d]
    return flat.reshape(x.shape)


def _axis(sample, block, x, operand):
    return 0 if operand.ndim == 0 else sample.layer.get(block, {}).get("axis", 1) % x.ndim


def _scale_reference(sample, bottoms, blobs):
    x = bottoms[0]
    blobs = list(blobs)
    scale = bottoms[1] if len(bottoms) > 1 else blobs.pop(0)
    y = x * _broadcast(x, scale, _axis(sample, "scale_param", x, scale))
    if sample.layer.get("scale_param", {}).get("bias_term", False):
        bias = blobs.pop(0)
        y = y + _broadcast(x, bias, _axis(sample, "scale_param", x, bias))
    return [y]


def _bias_reference(sample, bottoms, blobs):
    x = bottoms[0]
    bias = bottoms[1] if len(bottoms) > 1 else blobs[0]
    return [x + _broadcast(x, bias, _axis(sample, "bias_param", x, bias))]


def _scale_samples(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    return [
        LayerSample("default_filler_identity", (x,), expected=(x,)),
        LayerSample("axis1_bias_term", (x,), layer={"scale_param": {"filler": _G, "bias_term": True,
                                                                   "bias_filler": _G}}),
        LayerSample("axis_neg2", (x,), layer={"scale_param": {"axis": -2, "filler": _G}}),
        LayerSample("num_axes_minus1", (x,), layer={"scale_param": {"num_axes": -1, "filler": _G}}),
        LayerSample("num_axes_0_scalar", (x,), layer={"scale_param": {"num_axes": 0, "filler": _G,
                                                                     "bias_term": True, "bias_filler": _G}}),
        LayerSample("axis0_num_axes2", (x,), layer={"scale_param": {"axis": 0, "num_axes": 2, "filler": _G}}),
        LayerSample("2d_input", (rng.standard_normal((6, 5)),), layer={"scale_param": {"filler": _G}}),
        LayerSample("two_bottoms_3x4", (x, rng.standard_normal((3, 4)))),
        LayerSample("two_bottoms_axis_neg1", (x, rng.standard_normal(5)), layer={"scale_param": {"axis": -1}}),
        LayerSample("two_bottoms_scalar", (x, np.array(1.7))),
        LayerSample("two_bottoms_bias_term", (x, rng.standard_normal((3,))),
                    layer={"scale_param": {"bias_term": True, "bias_filler": _G}}),
        LayerSample("hand_computed", (np.array([[1.0, 2.0], [3.0, 4.0]]),), blobs=(np.array([2.0, -1.0]), np.array([0.5, 1.0])),
                    layer={"scale_param": {"axis": -1, "bias_term": True}},
                    expected=(np.array([[2.5, -1.0], [6.5, -3.0]]),)),
    ]


def _bias_samples(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    return [
        LayerSample("default_filler_zero", (x,), expected=(x,)),
        LayerSample("axis1", (x,), layer={"bias_param": {"filler": _G}}),
        LayerSample("axis_neg1", (x,), layer={"bias_param": {"axis": -1, "filler": _G}}),
        LayerSample("num_axes_minus1_axis2", (x,), layer={"bias_param": {"axis": 2, "num_axes": -1, "filler": _G}}),
        LayerSample("num_axes_0_scalar", (x,), layer={"bias_param": {"num_axes": 0, "filler": _G}}),
        LayerSample("two_bottoms_3x4", (x, rng.standard_normal((3, 4)))),
        LayerSample("two_bottoms_scalar", (x, np.array(-0.3))),
        LayerSample("hand_computed", (np.array([[1.0, 2.0], [3.0, 4.0]]),), blobs=(np.array([10.0, 20.0]),),
                    layer={"bias_param": {"axis": 0}}, expected=(np.array([[11.0, 12.0], [23.0, 24.0]]),)),
    ]


INFOS = [
    LayerInfo("Scale", _scale_samples, reference=_scale_reference),
    LayerInfo("Bias", _bias_samples, reference=_bias_reference),
]
