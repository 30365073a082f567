"""LayerInfo entries: the element-wise activations (ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, Power, Exp, Log,
BNLL, Threshold, Clip, Swish).

References are plain NumPy, written from Caffe's formulas (``*_layer.cpp``), not from the torch code.
Samples with ``check_grad`` keep their inputs at least 0.05 away from every kink.
"""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def away(x, kinks=(0.0,), margin=0.05):
    """``x`` with every value closer than ``margin`` to a kink pushed out to kink ± margin."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, margin, -margin)
    return x


# -- ReLU ---------------------------------------------------------------------------------------------


def _relu_samples(rng):
    x4 = away(rng.standard_normal((2, 3, 4, 5)))
    kink = np.array([[-2.0, -0.0, 0.0, 1.5], [0.0, -1.0, 3.0, -0.25]])
    return [
        LayerSample("default_4d", (x4,)),
        LayerSample("leaky_0.1_2d", (away(rng.standard_normal((5, 7))),), layer={"relu_param": {"negative_slope": 0.1}}),
        LayerSample("negative_slope_negative_3d", (away(rng.standard_normal((3, 2, 5))),),
                    layer={"relu_param": {"negative_slope": -0.5}}),
        LayerSample("1d", (away(rng.standard_normal(7)),)),
        LayerSample("exact_zeros", (kink,), layer={"relu_param": {"negative_slope": 0.2}}, check_grad=False,
                    expected=(np.array([[-0.4, 0.0, 0.0, 1.5], [0.0, -0.2, 3.0, -0.05]]),)),
    ]


def _relu_reference(sample, bottoms, blobs):
    slope = sample.layer.get("relu_param", {}).get("negative_slope", 0.0)
    x = bottoms[0]
    return [np.maximum(x, 0.0) + slope * np.minimum(x, 0.0)]


# -- PReLU --------------------------------------------------------------------------------------------


def _prelu_samples(rng):
    gaussian = {"filler": {"type": "gaussian", "std": 0.5}}
    return [
        LayerSample("default_filler_0.25", (away(rng.standard_normal((2, 3, 4))),)),
        LayerSample("gaussian_4d", (away(rng.standard_normal((2, 4, 3, 5))),), layer={"prelu_param": gaussian}),
        LayerSample("channel_shared", (away(rng.standard_normal((3, 2, 4))),),
                    layer={"prelu_param": {"channel_shared": True, **gaussian}}),
        LayerSample("2d_input", (away(rng.standard_normal((6, 5))),), layer={"prelu_param": gaussian}),
        LayerSample("given_slopes", (np.array([[[-2.0, 1.0], [-1.0, 0.0]], [[4.0, -4.0], [0.0, -0.5]]]),),
                    blobs=(np.array([0.5, -1.0]),), check_grad=False,
                    expected=(np.array([[[-1.0, 1.0], [1.0, 0.0]], [[4.0, -2.0], [0.0, 0.5]]]),)),
    ]


def _prelu_reference(sample, bottoms, blobs):
    x, a = bottoms[0], blobs[0]
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        slope = a if a.ndim == 0 else a[c]
        xc = x[:, c]
        out[:, c] = np.where(xc > 0, xc, slope * xc)
    return [out]


# -- ELU, Sigmoid, TanH, AbsVal ----------------------------------------------------------------------------


def _elu_samples(rng):
    return [
        LayerSample("default_alpha", (away(rng.standard_normal((2, 3, 4))),)),
        LayerSample("alpha_0.4_4d", (away(2 * rng.standard_normal((2, 2, 3, 3))),), layer={"elu_param": {"alpha": 0.4}}),
        LayerSample("at_zero", (np.array([-1.0, 0.0, 2.0]),), layer={"elu_param": {"alpha": 2.0}}, check_grad=False,
                    expected=(np.array([2.0 * (np.exp(-1.0) - 1.0), 0.0, 2.0]),)),
    ]


def _elu_reference(sample, bottoms, blobs):
    alpha = sample.layer.get("elu_param", {}).get("alpha", 1.0)
    x = bottoms[0]
    return [np.maximum(x, 0.0) + alpha * (np.exp(np.minimum(x, 0.0)) - 1.0)]


def _smooth_samples(rng):
    return [
        LayerSample("4d", (rng.standard_normal((2, 3, 4, 5)),)),
        LayerSample("wide_range_1d", (np.linspace(-30.0, 30.0, 13),)),
        LayerSample("2d", (3 * rng.standard_normal((5, 3)),)),
    ]


def _abs_samples(rng):
    return [
        LayerSample("4d", (away(rng.standard_normal((2, 3, 4, 5))),)),
        LayerSample("zeros", (np.array([-2.0, 0.0, 3.0]),), check_grad=False, expected=(np.array([2.0, 0.0, 3.0]),)),
    ]


# -- Power, Exp, Log -------------------------------------------------------------------------------------


def _power_samples(rng):
    x = rng.standard_normal((2, 3, 4))
    positive = rng.uniform(0.5, 3.0, (3, 4))
    return [
        LayerSample("default_identity", (x,)),
        LayerSample("square_scale_shift", (x,), layer={"power_param": {"power": 2.0, "scale": 0.5, "shift": 1.0}}),
        LayerSample("cube_no_shift_negative_base", (x,), layer={"power_param": {"power": 3.0, "scale": -2.0}}),
        LayerSample("sqrt", (positive,), layer={"power_param": {"power": 0.5}}),
        LayerSample("reciprocal_shift", (positive,), layer={"power_param": {"power": -1.0, "shift": 0.5}}),
        LayerSample("fractional_general", (positive,), layer={"power_param": {"power": 1.7, "scale": 2.0, "shift": -0.25}}),
        LayerSample("linear_power_1", (x,), layer={"power_param": {"scale": -3.0, "shift": 2.0}}),
        LayerSample("power_0_constant_1", (x,), layer={"power_param": {"power": 0.0, "scale": 2.0, "shift": 1.0}},
                    expected=(np.ones_like(x),)),
        LayerSample("scale_0_constant", (x,), layer={"power_param": {"power": 3.0, "scale": 0.0, "shift": 2.0}},
                    expected=(np.full_like(x, 8.0),)),
    ]


def _power_reference(sample, bottoms, blobs):
    p = sample.layer.get("power_param", {})
    power, scale, shift = p.get("power", 1.0), p.get("scale", 1.0), p.get("shift", 0.0)
    return [np.power(shift + scale * bottoms[0], power)]


def _exp_samples(rng):
    x = rng.standard_normal((2, 3, 4))
    return [
        LayerSample("default_base_e", (x,)),
        LayerSample("base_e_scale_shift", (x,), layer={"exp_param": {"scale": 0.5, "shift": -1.0}}),
        LayerSample("base_2", (x,), layer={"exp_param": {"base": 2.0, "scale": 1.5, "shift": 0.5}}),
        LayerSample("base_0.5_4d", (rng.standard_normal((2, 2, 2, 3)),), layer={"exp_param": {"base": 0.5}}),
        LayerSample("base_1_constant", (x,), layer={"exp_param": {"base": 1.0, "scale": 3.0, "shift": 2.0}},
                    expected=(np.ones_like(x),)),
    ]


def _exp_reference(sample, bottoms, blobs):
    p = sample.layer.get("exp_param", {})
    base, scale, shift = p.get("base", -1.0), p.get("scale", 1.0), p.get("shift", 0.0)
    z = shift + scale * bottoms[0]
    return [np.exp(z) if base == -1.0 else np.power(base, z)]


def _log_samples(rng):
    positive = rng.uniform(0.2, 4.0, (2, 3, 4))
    return [
        LayerSample("default_ln", (positive,)),
        LayerSample("base_10_scale_shift", (positive,), layer={"log_param": {"base": 10.0, "scale": 2.0, "shift": 0.5}}),
        LayerSample("base_0.5", (positive,), layer={"log_param": {"base": 0.5}}),
        LayerSample("negative_scale", (-positive,), layer={"log_param": {"scale": -1.0, "shift": 1.0}}),
        LayerSample("exact", (np.array([1.0, 8.0, 0.25]),), layer={"log_param": {"base": 2.0}}, check_grad=False,
                    expected=(np.array([0.0, 3.0, -2.0]),)),
    ]


def _log_reference(sample, bottoms, blobs):
    p = sample.layer.get("log_param", {})
    base, scale, shift = p.get("base", -1.0), p.get("scale", 1.0), p.get("shift", 0.0)
    y = np.log(shift + scale * bottoms[0])
    return [y if base == -1.0 else y / np.log(base)]


# -- BNLL, Threshold, Clip, Swish ----------------------------------------------------------------------------


def _bnll_samples(rng):
    return [
        LayerSample("4d", (3 * rng.standard_normal((2, 3, 4, 5)),)),
        LayerSample("wide_range", (np.array([-80.0, -51.0, -30.0, -1e-3, 0.0, 1e-3, 20.5, 49.0, 51.0, 80.0]),)),
    ]


def _bnll_reference(sample, bottoms, blobs):
    x = bottoms[0]
    out = np.empty_like(x)
    for i, v in np.ndenumerate(x):  # Caffe's two branches, literally
        out[i] = v + np.log(1.0 + np.exp(-v)) if v > 0 else np.log(1.0 + np.exp(v))
    return [out]


def _threshold_samples(rng):
    return [
        LayerSample("default_0", (rng.standard_normal((2, 3, 4)),), check_grad=False),
        LayerSample("strict_at_threshold", (np.array([[0.4, 0.5, 0.6], [-1.0, 0.5000001, 2.0]]),),
                    layer={"threshold_param": {"threshold": 0.5}}, check_grad=False,
                    expected=(np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),)),
    ]


def _threshold_reference(sample, bottoms, blobs):
    t = sample.layer.get("threshold_param", {}).get("threshold", 0.0)
    return [(bottoms[0] > t).astype(np.float64)]


def _clip_samples(rng):
    bounds = {"min": -0.5, "max": 0.7}
    return [
        LayerSample("4d", (away(rng.standard_normal((2, 3, 4, 5)), kinks=(-0.5, 0.7)),), layer={"clip_param": bounds}),
        LayerSample("at_bounds", (np.array([-1.0, -0.5, 0.0, 0.7, 2.0]),), layer={"clip_param": bounds},
                    check_grad=False, expected=(np.array([-0.5, -0.5, 0.0, 0.7, 0.7]),)),
        LayerSample("min_above_max_gives_min", (np.array([-3.0, 1.5, 3.0]),), layer={"clip_param": {"min": 2.0, "max": 1.0}},
                    expected=(np.array([2.0, 2.0, 2.0]),)),
    ]


def _clip_reference(sample, bottoms, blobs):
    p = sample.layer["clip_param"]
    return [np.maximum(p["min"], np.minimum(bottoms[0], p["max"]))]


def _swish_samples(rng):
    return [
        LayerSample("default_beta_1", (2 * rng.standard_normal((2, 3, 4)),)),
        LayerSample("beta_0.5_4d", (2 * rng.standard_normal((2, 2, 3, 3)),), layer={"swish_param": {"beta": 0.5}}),
        LayerSample("beta_negative", (2 * rng.standard_normal((4, 5)),), layer={"swish_param": {"beta": -1.5}}),
    ]


def _swish_reference(sample, bottoms, blobs):
    beta = sample.layer.get("swish_param", {}).get("beta", 1.0)
    x = bottoms[0]
    return [x / (1.0 + np.exp(-beta * x))]


INFOS = [
    LayerInfo("ReLU", _relu_samples, reference=_relu_reference),
    LayerInfo("PReLU", _prelu_samples, reference=_prelu_reference),
    LayerInfo("ELU", _elu_samples, reference=_elu_reference),
    LayerInfo("Sigmoid", _smooth_samples, reference=lambda s, b, w: [1.0 / (1.0 + np.exp(-b[0]))]),
    LayerInfo("TanH", _smooth_samples, reference=lambda s, b, w: [np.tanh(b[0])]),
    LayerInfo("AbsVal", _abs_samples, reference=lambda s, b, w: [np.abs(b[0])]),
    LayerInfo("Power", _power_samples, reference=_power_reference),
    LayerInfo("Exp", _exp_samples, reference=_exp_reference),
    LayerInfo("Log", _log_samples, reference=_log_reference),
    LayerInfo("BNLL", _bnll_samples, reference=_bnll_reference),
    LayerInfo("Threshold", _threshold_samples, reference=_threshold_reference, grad_bottoms=()),
    LayerInfo("Clip", _clip_samples, reference=_clip_reference),
    LayerInfo("Swish", _swish_samples, reference=_swish_reference),
]
