"""LayerInfo entry: BatchNorm (BVLC master semantics).

The reference normalises with the batch mean and biased variance (TRAIN, or use_global_stats false) or with
blob0/blob2 and blob1/blob2 (global stats; 0 when blob2 == 0).  The blobs handed to it are those after the
forward, which is what the global-stats branch needs (it never updates them).
"""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample

_STATS = (np.array([1.2, -0.6, 3.0]), np.array([4.0, 0.5, 7.5]), np.array([2.5]))


def _samples(rng):
    x4 = rng.standard_normal((3, 4, 3, 2)) * 2.0 + 0.5
    x3 = rng.standard_normal((2, 3, 5))
    eps = 1e-5
    return [
        LayerSample("train_4d", (x4,)),
        LayerSample("train_2d_eps_maf", (rng.standard_normal((6, 5)),),
                    layer={"batch_norm_param": {"eps": 1e-3, "moving_average_fraction": 0.9}}),
        LayerSample("train_3d_odd", (x3,)),
        LayerSample("train_5d", (rng.standard_normal((2, 3, 2, 3, 2)),)),
        LayerSample("train_m_equals_1", (rng.standard_normal((1, 3)),), expected=(np.zeros((1, 3)),)),
        LayerSample("test_global_stats", (x3,), phase="TEST", blobs=_STATS),
        LayerSample("test_untrained_is_x_over_sqrt_eps", (x3,), phase="TEST",
                    expected=(x3 / np.sqrt(eps),)),
        LayerSample("train_use_global_stats_true", (x3,), blobs=_STATS,
                    layer={"batch_norm_param": {"use_global_stats": True}}),
        LayerSample("test_use_global_stats_false", (x3,), phase="TEST",
                    layer={"batch_norm_param": {"use_global_stats": False}}),
        LayerSample("test_zero_factor_with_sums", (x3,), phase="TEST",
                    blobs=(np.array([5.0, 5.0, 5.0]), np.array([9.0, 9.0, 9.0]), np.array([0.0])),
                    expected=(x3 / np.sqrt(eps),)),
    ]


def _reference(sample, bottoms, blobs):
    p = sample.layer.get("batch_norm_param", {})
    eps = p.get("eps", 1e-5)
    global_stats = p.get("use_global_stats", sample.phase == "TEST")
    x = bottoms[0]
    channels = x.shape[1]
    y = np.empty_like(x)
    for c in range(channels):
        xc = x[:, c]
        if global_stats:
            s = 0.0 if blobs[2][0] == 0 else 1.0 / blobs[2][0]
            mean, var = s * blobs[0][c], s * blobs[1][c]
        else:
            mean = xc.sum() / xc.size
            var = ((xc - mean) ** 2).sum() / xc.size
        y[:, c] = (xc - mean) / np.sqrt(var + eps)
    return [y]


INFOS = [LayerInfo("BatchNorm", _samples, reference=_reference)]
