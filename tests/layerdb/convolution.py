"""LayerInfo entries: Convolution and Deconvolution, with NumPy references written from the definitions
(cross-correlation over zero-padded input; its transpose as a scatter-add), loops over positions."""

from __future__ import annotations

import itertools

import numpy as np

from layer_db import LayerInfo, LayerSample

_FILLERS = {"weight_filler": {"type": "gaussian", "std": 0.5}, "bias_filler": {"type": "gaussian"}}


def _spatial(p, n_spatial):
    """kernel, stride, pad, dilation per spatial axis, as Caffe reads them."""

    def read(name, prefix, default):
        if prefix + "_h" in p or prefix + "_w" in p:
            return (p.get(prefix + "_h", 0), p.get(prefix + "_w", 0))
        values = p.get(name, [])
        values = values if isinstance(values, list) else [values]
        if not values:
            return (default,) * n_spatial
        return tuple(values[0 if len(values) == 1 else i] for i in range(n_spatial))

    return (read("kernel_size", "kernel", None), read("stride", "stride", 1), read("pad", "pad", 0),
            read("dilation", "dilation", 1))


def _as_batched(x, axis):
    """(lead..., C, spatial...) -> (prod(lead), C, spatial...), and the lead shape."""
    lead = x.shape[:axis]
    return x.reshape((int(np.prod(lead)),) + x.shape[axis:]), lead


def conv_reference(sample, bottoms, blobs):
    p = sample.layer["convolution_param"]
    tops = []
    for x in bottoms:
        axis = p.get("axis", 1) % x.ndim
        xb, lead = _as_batched(x, axis)
        n_spatial = xb.ndim - 2
        kernel, stride, pad, dilation = _spatial(p, n_spatial)
        group = p.get("group", 1)
        w = blobs[0]
        num_output, cg = w.shape[0], w.shape[1]
        og = num_output // group
        sizes = xb.shape[2:]
        out = tuple((s + 2 * pd - (d * (k - 1) + 1)) // st + 1
                    for s, k, st, pd, d in zip(sizes, kernel, stride, pad, dilation))
        y = np.zeros((xb.shape[0], num_output) + out)
        for n in range(xb.shape[0]):
            for o in range(num_output):
                g = o // og
                for pos in itertools.product(*[range(v) for v in out]):
                    acc = 0.0
                    for c in range(cg):
                        for off in itertools.product(*[range(k) for k in kernel]):
                            src = [q * st - pd + j * d for q, st, pd, j, d in zip(pos, stride, pad, off, dilation)]
                            if all(0 <= v < s for v, s in zip(src, sizes)):
                                acc += xb[(n, g * cg + c) + tuple(src)] * w[(o, c) + off]
                    y[(n, o) + pos] = acc
        if p.get("bias_term", True):
            y += blobs[1].reshape((1, -1) + (1,) * n_spatial)
        tops.append(y.reshape(lead + y.shape[1:]))
    return tops


def deconv_reference(sample, bottoms, blobs):
    p = sample.layer["convolution_param"]
    tops = []
    for x in bottoms:
        axis = p.get("axis", 1) % x.ndim
        xb, lead = _as_batched(x, axis)
        n_spatial = xb.ndim - 2
        kernel, stride, pad, dilation = _spatial(p, n_spatial)
        group = p.get("group", 1)
        w = blobs[0]  # [C, num_output/group, k...]
        channels, og = w.shape[0], w.shape[1]
        cg = channels // group
        num_output = og * group
        sizes = xb.shape[2:]
        out = tuple(st * (s - 1) + d * (k - 1) + 1 - 2 * pd
                    for s, k, st, pd, d in zip(sizes, kernel, stride, pad, dilation))
        y = np.zeros((xb.shape[0], num_output) + out)
        for n in range(xb.shape[0]):
            for c in range(channels):
                g = c // cg
                for pos in itertools.product(*[range(v) for v in sizes]):
                    for o in range(og):
                        for off in itertools.product(*[range(k) for k in kernel]):
                            dst = [q * st - pd + j * d for q, st, pd, j, d in zip(pos, stride, pad, off, dilation)]
                            if all(0 <= v < s for v, s in zip(dst, out)):
                                y[(n, g * og + o) + tuple(dst)] += xb[(n, c) + pos] * w[(c, o) + off]
        if p.get("bias_term", True):
            y += blobs[1].reshape((1, -1) + (1,) * n_spatial)
        tops.append(y.reshape(lead + y.shape[1:]))
    return tops


def _conv(**fields):
    return {"convolution_param": {**_FILLERS, **fields}}


def _conv_samples(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    x_odd = rng.standard_normal((2, 6, 5, 5))
    return [
        LayerSample("k3s2p1_two_bottoms", (x, rng.standard_normal(x.shape)),
                    _conv(num_output=4, kernel_size=3, stride=2, pad=1), n_tops=2),
        LayerSample("odd_sizes_k3s2", (x_odd,), _conv(num_output=2, kernel_size=3, stride=2)),
        LayerSample("dilation2", (x_odd,), _conv(num_output=3, kernel_size=3, dilation=2, pad=1)),
        LayerSample("group3", (x_odd,), _conv(num_output=6, kernel_size=2, group=3)),
        LayerSample("depthwise_group6", (x_odd,), _conv(num_output=6, kernel_size=3, group=6, pad=1)),
        LayerSample("1x1_no_bias", (x,), _conv(num_output=3, kernel_size=1, bias_term=False)),
        LayerSample("hw_forms", (x_odd,), _conv(num_output=2, kernel_h=3, kernel_w=2, stride_h=2, stride_w=3,
                                                pad_h=1, pad_w=0)),
        LayerSample("per_axis_lists", (x_odd,), _conv(num_output=2, kernel_size=[3, 2], stride=[1, 2], pad=[0, 1],
                                                      dilation=[1, 2])),
        LayerSample("kernel_equals_padded_input", (rng.standard_normal((1, 2, 3, 2)),),
                    _conv(num_output=2, kernel_size=[5, 4], pad=1)),
        LayerSample("conv1d", (rng.standard_normal((2, 3, 11)),), _conv(num_output=4, kernel_size=3, stride=2,
                                                                        pad=2, group=1)),
        LayerSample("conv3d", (rng.standard_normal((2, 2, 4, 5, 4)),), _conv(num_output=3, kernel_size=[2, 3, 2],
                                                                             stride=[1, 2, 1], pad=[1, 0, 0])),
        LayerSample("axis2_leading_axes", (rng.standard_normal((2, 2, 3, 5, 4)),),
                    _conv(num_output=2, kernel_size=2, axis=2)),
        LayerSample("negative_axis", (rng.standard_normal((2, 2, 4, 5, 4)),),
                    _conv(num_output=2, kernel_size=2, axis=-3, group=2)),
        LayerSample("no_spatial_axes", (rng.standard_normal((3, 4)),), _conv(num_output=6, group=2)),
        LayerSample("no_filler_is_zero", (x,), {"convolution_param": {"num_output": 2, "kernel_size": 3}},
                    expected=(np.zeros((2, 2, 4, 3)),)),
    ]


def _deconv_samples(rng):
    x = rng.standard_normal((2, 4, 3, 4))
    return [
        LayerSample("k3s2p1_two_bottoms", (x, rng.standard_normal(x.shape)),
                    _conv(num_output=3, kernel_size=3, stride=2, pad=1), n_tops=2),
        LayerSample("k4s2p1_group2", (x,), _conv(num_output=6, kernel_size=4, stride=2, pad=1, group=2)),
        LayerSample("dilation2_no_bias", (x,), _conv(num_output=2, kernel_size=3, dilation=2, bias_term=False)),
        LayerSample("pad_over_kernel", (x,), _conv(num_output=2, kernel_size=3, stride=3, pad=2)),
        LayerSample("hw_forms", (x,), _conv(num_output=2, kernel_h=2, kernel_w=3, stride_h=1, stride_w=2, pad_h=1,
                                            pad_w=0)),
        LayerSample("bilinear_upsample_x2", (x,),
                    {"convolution_param": {"num_output": 4, "kernel_size": 4, "stride": 2, "pad": 1, "group": 4,
                                           "bias_term": False, "weight_filler": {"type": "bilinear"}}}),
        LayerSample("deconv1d", (rng.standard_normal((2, 3, 5)),), _conv(num_output=2, kernel_size=3, stride=2)),
        LayerSample("deconv3d", (rng.standard_normal((1, 2, 2, 3, 2)),), _conv(num_output=2, kernel_size=2,
                                                                               stride=[1, 2, 2])),
        LayerSample("axis2_leading_axes", (rng.standard_normal((2, 2, 3, 2, 3)),),
                    _conv(num_output=2, kernel_size=2, stride=2, axis=2)),
        LayerSample("no_filler_is_zero", (x,), {"convolution_param": {"num_output": 2, "kernel_size": 2}},
                    expected=(np.zeros((2, 2, 4, 5)),)),
    ]


INFOS = [
    LayerInfo("Convolution", _conv_samples, reference=conv_reference, grad_bottoms=(0,)),
    LayerInfo("Deconvolution", _deconv_samples, reference=deconv_reference, grad_bottoms=(0,)),
]
