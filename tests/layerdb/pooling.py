"""LayerInfo entry: Pooling (MAX with and without the mask top, AVE, STOCHASTIC), with a NumPy reference
written from Caffe's loops (pooling_layer.cpp / .cu, BVLC master)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from layer_db import LayerInfo, LayerSample

FLT_MAX = 3.4028234663852886e38


def _distinct(rng, shape, low=-3.0, high=3.0):
    """Values with no ties (a shuffled grid with a gap of (high-low)/count between neighbours)."""
    count = int(np.prod(shape))
    values = np.linspace(low, high, count)
    return rng.permutation(values).reshape(shape)


def _settings(p, shape):
    """Caffe's LayerSetUp + Reshape, read from the sample's pooling_param dict."""
    height, width = shape[2], shape[3]
    if p.get("global_pooling", False):
        kh, kw = height, width
    elif "kernel_size" in p:
        kh = kw = p["kernel_size"]
    else:
        kh, kw = p["kernel_h"], p["kernel_w"]
    ph, pw = (p["pad_h"], p["pad_w"]) if "pad_h" in p else (p.get("pad", 0),) * 2
    sh, sw = (p["stride_h"], p["stride_w"]) if "stride_h" in p else (p.get("stride", 1),) * 2
    rounding = math.ceil if p.get("round_mode", "CEIL") == "CEIL" else math.floor
    oh = int(rounding(float(height + 2 * ph - kh) / sh)) + 1
    ow = int(rounding(float(width + 2 * pw - kw) / sw)) + 1
    if ph or pw:
        if (oh - 1) * sh >= height + ph:
            oh -= 1
        if (ow - 1) * sw >= width + pw:
            ow -= 1
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


def pooling_reference(sample, bottoms, blobs):
    """Caffe's forward, loop for loop (STOCHASTIC: the TEST formula only)."""
    p = sample.layer["pooling_param"]
    x = bottoms[0]
    n_, c_, height, width = x.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _settings(p, x.shape)
    pool = p.get("pool", "MAX")
    top = np.zeros((n_, c_, oh, ow))
    mask = np.full((n_, c_, oh, ow), -1.0)
    for n in range(n_):
        for c in range(c_):
            plane = x[n, c]
            for i in range(oh):
                for j in range(ow):
                    hstart, wstart = i * sh - ph, j * sw - pw
                    if pool == "MAX":
                        hend, wend = min(hstart + kh, height), min(wstart + kw, width)
                        best, where = -FLT_MAX, -1
                        for h in range(max(hstart, 0), hend):
                            for w in range(max(wstart, 0), wend):
                                if plane[h, w] > best:
                                    best, where = plane[h, w], h * width + w
                        top[n, c, i, j], mask[n, c, i, j] = best, where
                    elif pool == "AVE":
                        hend, wend = min(hstart + kh, height + ph), min(wstart + kw, width + pw)
                        pool_size = (hend - hstart) * (wend - wstart)
                        total = 0.0
                        for h in range(max(hstart, 0), min(hend, height)):
                            for w in range(max(wstart, 0), min(wend, width)):
                                total += plane[h, w]
                        with np.errstate(invalid="ignore", divide="ignore"):
                            top[n, c, i, j] = np.float64(total) / pool_size
                    else:  # STOCHASTIC, TEST phase (BVLC master: 0 when the sum is 0)
                        hend, wend = min(hstart + kh, height), min(wstart + kw, width)
                        window = plane[hstart:hend, wstart:wend]
                        total, squares = window.sum(), (window * window).sum()
                        top[n, c, i, j] = squares / total if total > 0 else 0.0
    return [top, mask][: sample.n_tops]


def _pool(**fields):
    return {"pooling_param": fields}


def _test_phase(sample):
    """MAX/AVE do not depend on the phase; TEST lets the generic forward test run with the entry marked
    non-deterministic (STOCHASTIC draws in TRAIN)."""
    return sample if sample.desc.startswith("stochastic_train") else dataclasses.replace(sample, phase="TEST")


def _samples(rng):
    x6 = _distinct(rng, (2, 3, 6, 6))
    x7 = _distinct(rng, (2, 2, 7, 7))
    x5 = _distinct(rng, (2, 3, 5, 5))
    x3 = _distinct(rng, (1, 2, 3, 3))
    x4 = _distinct(rng, (2, 1, 4, 4))
    x_rect = _distinct(rng, (2, 2, 5, 8))
    ties = np.array([[[[1.0, 5.0, 5.0, 0.0],
                       [5.0, 2.0, 0.0, 5.0],
                       [3.0, 3.0, 3.0, 3.0],
                       [3.0, 3.0, 4.0, 4.0]]]])
    positive = rng.uniform(0.1, 2.0, (2, 2, 5, 6))
    with_zero_window = positive.copy()
    with_zero_window[0, 0, :3, :3] = 0.0
    twos = np.full((1, 1, 3, 3), 2.0)
    return [_test_phase(s) for s in [
        # MAX: output sizes and windows (Caffe's ceil and its pad-only clip)
        LayerSample("max_6x6_k3s2_ceil", (x6,), _pool(pool="MAX", kernel_size=3, stride=2)),
        LayerSample("max_7x7_k2s2_overhang", (x7,), _pool(kernel_size=2, stride=2)),
        LayerSample("max_5x5_k2s2p1_clip", (x5,), _pool(kernel_size=2, stride=2, pad=1)),
        LayerSample("max_6x6_k3s2p1", (x6,), _pool(kernel_size=3, stride=2, pad=1)),
        LayerSample("max_3x3_k3s2p2_pad_over_half", (x3,), _pool(kernel_size=3, stride=2, pad=2)),
        LayerSample("max_4x4_k1s2_window_past_input", (x4,), _pool(kernel_size=1, stride=2)),
        LayerSample("max_rect_hw_pad_h_only", (x_rect,),
                    _pool(kernel_h=3, kernel_w=2, stride_h=2, stride_w=3, pad_h=1, pad_w=0)),
        LayerSample("max_floor", (x7,), _pool(kernel_size=3, stride=2, round_mode="FLOOR")),
        LayerSample("max_floor_pad_over_half", (x7,), _pool(kernel_size=3, stride=2, pad=2, round_mode="FLOOR"),
                    n_tops=2),
        LayerSample("max_global", (x_rect,), _pool(global_pooling=True)),
        LayerSample("max_kernel_over_input_ceil", (x4,), _pool(kernel_size=5, stride=2)),
        # MAX with the mask top (flat index h*W+w within the plane)
        LayerSample("max_mask_direct", (x7,), _pool(kernel_size=3, stride=2), n_tops=2),
        LayerSample("max_mask_padded", (x5,), _pool(kernel_size=3, stride=2, pad=1), n_tops=2),
        LayerSample("max_mask_pad_over_half", (x3,), _pool(kernel_size=3, stride=2, pad=2), n_tops=2),
        LayerSample("max_mask_window_past_input", (x4,), _pool(kernel_size=1, stride=2), n_tops=2),
        LayerSample("max_mask_rect", (x_rect,), _pool(kernel_h=2, kernel_w=3, stride_h=1, stride_w=2, pad_h=1,
                                                      pad_w=2), n_tops=2),
        LayerSample("max_ties_first_wins", (ties,), _pool(kernel_size=2, stride=2), n_tops=2, check_grad=False,
                    expected=(np.array([[[[5.0, 5.0], [3.0, 4.0]]]]),
                              np.array([[[[1.0, 2.0], [8.0, 14.0]]]]))),
        # AVE: divisor counts padding, not the ceil overhang
        LayerSample("ave_3x3_twos_k3s1p1", (twos,), _pool(pool="AVE", kernel_size=3, stride=1, pad=1),
                    expected=(np.array([[[[8 / 9, 4 / 3, 8 / 9], [4 / 3, 2.0, 4 / 3], [8 / 9, 4 / 3, 8 / 9]]]]),)),
        LayerSample("ave_6x6_k3s2_ceil_overhang", (x6,), _pool(pool="AVE", kernel_size=3, stride=2)),
        LayerSample("ave_7x7_k2s2_overhang", (x7,), _pool(pool="AVE", kernel_size=2, stride=2)),
        LayerSample("ave_5x5_k2s2p1", (x5,), _pool(pool="AVE", kernel_size=2, stride=2, pad=1)),
        LayerSample("ave_3x3_k3s2p2_pad_over_half", (x3,), _pool(pool="AVE", kernel_size=3, stride=2, pad=2)),
        LayerSample("ave_5x5_k3s2p2", (x5,), _pool(pool="AVE", kernel_size=3, stride=2, pad=2)),
        LayerSample("ave_rect", (x_rect,), _pool(pool="AVE", kernel_h=3, kernel_w=2, stride_h=2, stride_w=3,
                                                 pad_h=1, pad_w=1)),
        LayerSample("ave_floor", (x7,), _pool(pool="AVE", kernel_size=2, stride=2, pad=1, round_mode="FLOOR")),
        LayerSample("ave_floor_pad_over_half", (x7,), _pool(pool="AVE", kernel_size=3, stride=2, pad=2,
                                                            round_mode="FLOOR")),
        LayerSample("ave_global", (x_rect,), _pool(pool="AVE", global_pooling=True)),
        LayerSample("ave_kernel_over_input_ceil", (x4,), _pool(pool="AVE", kernel_size=5, stride=2)),
        LayerSample("ave_5x5_k1s3_window_past_input", (x5,), _pool(pool="AVE", kernel_size=1, stride=3),
                    check_grad=False),
        LayerSample("ave_window_past_input_nan", (x4,), _pool(pool="AVE", kernel_size=1, stride=2),
                    check_grad=False),
        # STOCHASTIC: TEST is deterministic (sum x^2 / sum x); TRAIN samples (checked for shapes/grad)
        LayerSample("stochastic_test", (positive,), _pool(pool="STOCHASTIC", kernel_size=3, stride=2),
                    phase="TEST"),
        LayerSample("stochastic_test_zero_window", (with_zero_window,),
                    _pool(pool="STOCHASTIC", kernel_size=3, stride=3), phase="TEST", check_grad=False),
        LayerSample("stochastic_train", (positive,), _pool(pool="STOCHASTIC", kernel_size=2, stride=2), seed=3),
        LayerSample("stochastic_train_overlap", (positive,), _pool(pool="STOCHASTIC", kernel_size=3, stride=1),
                    seed=5),
    ]]


INFOS = [
    LayerInfo("Pooling", _samples, reference=pooling_reference, deterministic=False,
              tol={"float64": (1e-12, 1e-12), "float32": (1e-5, 1e-6)}),
]
