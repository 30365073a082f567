"""LayerInfo entry: LRN (ACROSS_CHANNELS and WITHIN_CHANNEL), with a NumPy reference written from Caffe's
definitions (lrn_layer.cpp: the across-channel scale, and the split/square/AVE-pool/power/product net
that Caffe builds for WITHIN_CHANNEL), loops over positions."""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def lrn_reference(sample, bottoms, blobs):
    p = sample.layer.get("lrn_param", {})
    size, alpha, beta, k = p.get("local_size", 5), p.get("alpha", 1.0), p.get("beta", 0.75), p.get("k", 1.0)
    x = bottoms[0]
    n_, c_, h_, w_ = x.shape
    half = (size - 1) // 2
    scale = np.zeros_like(x)
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    if p.get("norm_region", "ACROSS_CHANNELS") == "ACROSS_CHANNELS":
                        total = sum(x[n, cc, h, w] ** 2 for cc in range(c - half, c + half + 1) if 0 <= cc < c_)
                        scale[n, c, h, w] = k + alpha / size * total
                    else:
                        total = sum(x[n, c, hh, ww] ** 2
                                    for hh in range(h - half, h + half + 1) for ww in range(w - half, w + half + 1)
                                    if 0 <= hh < h_ and 0 <= ww < w_)
                        scale[n, c, h, w] = 1.0 + alpha * total / (size * size)
    return [x * scale ** (-beta)]


def _samples(rng):
    x = rng.standard_normal((2, 7, 3, 4))
    return [
        LayerSample("across_defaults", (x,)),
        LayerSample("across_n3_k2", (x,), {"lrn_param": {"local_size": 3, "alpha": 0.5, "beta": 0.5, "k": 2.0}}),
        LayerSample("across_window_wider_than_channels", (rng.standard_normal((2, 2, 3, 3)),),
                    {"lrn_param": {"local_size": 7, "alpha": 2.0, "beta": 0.75}}),
        LayerSample("across_n1", (x,), {"lrn_param": {"local_size": 1, "alpha": 0.3, "beta": 1.5, "k": 0.5}}),
        LayerSample("within_n3", (x,), {"lrn_param": {"norm_region": "WITHIN_CHANNEL", "local_size": 3,
                                                      "alpha": 2.0, "beta": 0.75}}),
        LayerSample("within_n5_k_ignored", (rng.standard_normal((1, 2, 4, 6)),),
                    {"lrn_param": {"norm_region": "WITHIN_CHANNEL", "local_size": 5, "alpha": 1.5, "beta": 0.6,
                                   "k": 7.0}}),
    ]


INFOS = [
    LayerInfo("LRN", _samples, reference=lrn_reference),
]
